"""Image assembly: scatter detector pixels into a 2-D image through a precomputed index map."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from . import _kernels as k
from ._errors import CalibError
from ._geometry import Geometry


def affine_tiles(flat: np.ndarray) -> np.ndarray | None:
    """Split a (segments, rows, cols) map of image cells into rectangles where the cell is an
    affine function of (row, col): the rows of :func:`calib._kernels.scatter_tiles`. None when
    the map is not made of such rectangles (tilted segments)."""
    tiles = []
    segs, rows, cols = flat.shape

    def runs(line: np.ndarray) -> list[tuple[int, int]]:
        """[start, stop) ranges of constant step along a 1-D map."""
        out, start = [], 0
        d = np.diff(line)
        for i in range(1, d.size):
            if d[i] != d[start]:
                out.append((start, i + 1))
                start = i + 1
        out.append((start, line.size))
        return out

    for s in range(segs):
        m = flat[s]
        for c0, c1 in runs(m[0]):
            for r0, r1 in runs(m[:, c0]):
                block = m[r0:r1, c0:c1]
                dr = int(block[1, 0] - block[0, 0]) if r1 - r0 > 1 else cols
                dc = int(block[0, 1] - block[0, 0]) if c1 - c0 > 1 else 1
                expect = block[0, 0] + np.arange(r1 - r0)[:, None] * dr + np.arange(c1 - c0) * dc
                if not np.array_equal(block, expect):
                    return None
                tiles.append((s * rows * cols + r0 * cols + c0, cols, r1 - r0, c1 - c0,
                              int(block[0, 0]), dr, dc))
    return np.array(tiles, dtype=np.int64)


class ImageAssembler:
    """Maps frames of ``rows.shape`` pixels to images of ``image_shape``.

    ``assemble`` writes each pixel to its cell (a later pixel wins where two share a cell, as
    psana's ``img[rows, cols] = v``; cells no pixel reaches are 0); ``assemble_mean`` averages
    the pixels that share a cell (smalldata's imageFunc). Both accept any frame with as many
    pixels as the map (e.g. (32, 185, 388) or (5920, 388)).
    """

    def __init__(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> None:
        r = np.asarray(rows, dtype=np.int64)
        c = np.asarray(cols, dtype=np.int64)
        if r.shape != c.shape or r.size == 0 or r.min() < 0 or c.min() < 0:
            raise CalibError("row and column index maps must be non-empty, >= 0, of one shape")
        self.shape = r.shape
        self.image_shape = (int(r.max()) + 1, int(c.max()) + 1)
        n_cells = self.image_shape[0] * self.image_shape[1]
        dtype = np.uint32 if n_cells < 2**32 else np.uint64
        flat = (r * self.image_shape[1] + c).reshape(-1)
        self._idx = flat.astype(dtype)
        self.counts = np.bincount(flat, minlength=n_cells).reshape(self.image_shape)
        self._empty = np.flatnonzero(self.counts.reshape(-1) == 0).astype(dtype)
        # pixels that share their cell with an earlier pixel (0 for a clean geometry)
        self.n_shared = int(flat.size - (n_cells - self._empty.size))
        self._inv = np.divide(1.0, self.counts, out=np.zeros(self.image_shape),
                              where=self.counts > 0).reshape(-1)
        # without shared cells, rectangles of affine cells need no index per pixel (faster)
        self._tiles = None
        if self.n_shared == 0 and r.ndim == 3 and r.shape[1] > 1 and r.shape[2] > 1:
            self._tiles = affine_tiles(flat.reshape(r.shape))

    @classmethod
    def from_geometry(cls, geometry: Geometry, frame: str = "psana") -> ImageAssembler:
        return cls(*geometry.image_indexes(frame))


    def _prepare(
        self, data: npt.ArrayLike, out: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        d = np.ascontiguousarray(data).reshape(-1)
        if d.size != self._idx.size:
            raise CalibError(f"frame of {d.size} pixels for an image map of {self._idx.size}")
        if out is None:
            out = np.empty(self.image_shape, np.result_type(d.dtype, np.float32))
        elif out.shape != self.image_shape or not out.flags.c_contiguous:
            raise CalibError(f"out must be a C-contiguous array of shape {self.image_shape}")
        return d, out

    def assemble(self, data: npt.ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
        """The image of ``data`` (float32 unless data is float64); ``out`` is reused."""
        d, out = self._prepare(data, out)
        if self._tiles is not None:
            k.scatter_tiles(d, self._tiles, self._empty, out.reshape(-1))
        else:
            k.scatter(d, self._idx, self._empty, out.reshape(-1))
        return out

    def assemble_mean(self, data: npt.ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
        """The image with pixels sharing a cell averaged; ``out`` must be floating point."""
        if out is not None and out.dtype.kind != "f":
            raise CalibError("assemble_mean needs a floating-point out array")
        if self.n_shared == 0:
            return self.assemble(data, out)  # one pixel per cell: the mean is the pixel
        d, out = self._prepare(data, out)
        k.scatter_mean(d, self._idx, self._inv, out.reshape(-1))
        return out
