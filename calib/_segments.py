"""Pixel layouts of geometry leaf segments, in the segment's own frame (micrometres).

x runs along columns and y along rows, origin at the segment centre, as psana's SegGeometry
classes define them. Wide pixels are placed as psana does by default (``wide_pixel_center=False``:
the regular grid continues and the wide pixel's extra width shows as a gap); with ``True`` their
coordinate is the geometric centre of the wide pixel.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ._errors import GeometryError


@dataclass(frozen=True, eq=False)
class SegmentType:
    """A leaf segment: shape, pixel scale (for image indexes) and per-column/row coordinates."""

    name: str
    rows: int
    cols: int
    pixel_size: float  # um, the scale of image indexes
    x_um: np.ndarray = field(repr=False)  # (cols,) x of each column
    y_um: np.ndarray = field(repr=False)  # (rows,) y of each row

    def __post_init__(self) -> None:
        self.x_um.setflags(write=False)  # shared through the cache
        self.y_um.setflags(write=False)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    def coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, y, z (um) of every pixel, each of shape (rows, cols)."""
        x, y = np.meshgrid(self.x_um, self.y_um)
        return x, y, np.zeros_like(x)


def _with_wide_centre(n_half: int, pix: float, wide: float, wpc: bool) -> np.ndarray:
    """Coordinates of 2 x n_half pixels about 0 whose two central pixels are ``wide``."""
    rhs = np.arange(n_half) * pix + wide - pix / 2
    if wpc:
        rhs[0] = wide / 2
    return np.hstack([-rhs[::-1], rhs])


def _cspad2x1(wpc: bool) -> SegmentType:
    pix = 109.92
    x = _with_wide_centre(194, pix, 274.80, wpc)
    y = -np.arange(185) * pix
    y -= y[-1] / 2  # first row on top
    return SegmentType("SENS2X1:V1", 185, 388, pix, x, y)


def _epix100(name: str, wpc: bool) -> SegmentType:
    x = _with_wide_centre(384, 50.0, 175.0, wpc)
    y = _with_wide_centre(352, 50.0, 175.0, wpc)
    return SegmentType(name, 704, 768, 50.0, x, y)


def _jungfrau(name: str, flip_y: bool) -> SegmentType:
    pix = 75.0
    asic = np.arange(256) * pix
    # 2 x 4 ASICs of 256 x 256; the 150 um edge pixels appear as 2-pixel gaps between ASICs
    x = np.hstack([asic + x0 * pix for x0 in (-514.5, -256.5, 1.5, 259.5)])
    y = np.hstack([asic + y0 * pix for y0 in (-256.5, 1.5)])  # first row at the bottom
    return SegmentType(name, 512, 1024, pix, x, y[::-1] if flip_y else y)


def _matrix(name: str) -> SegmentType:
    """``MTRX:[V2:]rows:cols:pixel_rows_um:pixel_cols_um``: a plain pixel matrix (cameras)."""
    fields = name.split(":")
    try:
        rows, cols = int(fields[-4]), int(fields[-3])
        prow, pcol = float(fields[-2]), float(fields[-1])
    except (ValueError, IndexError):
        raise GeometryError(
            f"matrix segment {name!r} must read MTRX:V2:<rows>:<cols>:<row um>:<col um>"
        ) from None
    if rows < 1 or cols < 1 or prow <= 0 or pcol <= 0:
        raise GeometryError(f"matrix segment {name!r} has a non-positive size")
    x = (np.arange(cols) - (cols - 1) / 2) * pcol
    y = (np.arange(rows) - (rows - 1) / 2) * -prow  # first row on top
    return SegmentType(name, rows, cols, min(prow, pcol), x, y)


@functools.lru_cache(maxsize=32)
def segment_type(name: str, wide_pixel_center: bool = False) -> SegmentType:
    """The layout of a leaf segment name; GeometryError for an unknown name."""
    if name == "SENS2X1:V1":
        return _cspad2x1(wide_pixel_center)
    if name in ("EPIX100A", "EPIX100:V1"):
        return _epix100(name, wide_pixel_center)
    if name in ("JUNGFRAU:V1", "JUNGFRAU:V2"):
        return _jungfrau(name, flip_y=name.endswith("V1"))
    if name.startswith("MTRX:"):
        return _matrix(name)
    raise GeometryError(f"unknown segment type {name!r} (known: {', '.join(SEGMENT_TYPES)})")


SEGMENT_TYPES = ("SENS2X1:V1", "EPIX100A", "EPIX100:V1", "JUNGFRAU:V1", "JUNGFRAU:V2",
                 "MTRX:V2:<rows>:<cols>:<row um>:<col um>")
