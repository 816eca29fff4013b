"""Regions of interest: a rectangle on an image (or on one tile of a stack), a range on 1-D data,
a single pixel; with the statistics users read off them.

Bounds are half-open like Python slices (``r0 <= row < r1``) and clipped to the array, so a ROI
dragged partly off the detector keeps working. Pixels that are masked out or NaN do not count:
``sum`` and the centre of mass add only valid pixels, ``mean`` divides by their number.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._kernels import (
    KERNEL_DTYPES,
    ROI_COL_MOMENT,
    ROI_COUNT,
    ROI_MAX,
    ROI_NPIX,
    ROI_ROW_MOMENT,
    ROI_SUM,
    as_rows,
    roi_stats_kernel,
)

ArrayLike = npt.ArrayLike


@dataclass(frozen=True)
class RoiResult:
    """What a ROI gives: the selected ``area`` (a view) and its statistics.

    ``origin`` is the index of ``area[0, 0]`` in the full array, so ``com`` (centre of mass,
    intensity weighted) is in full-array coordinates: (row, col) for images, (index,) for 1-D.
    ``count`` is the number of valid pixels above the count threshold, ``npix`` the valid pixels.
    """

    area: np.ndarray
    origin: tuple[int, ...]
    sum: float
    mean: float
    max: float
    com: tuple[float, ...]
    count: int
    npix: int


def _index(name: str, value: object) -> int:
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None


def _check_span(lo_name: str, lo: int, hi_name: str, hi: int) -> None:
    if hi <= lo:
        raise ValueError(f"{hi_name} ({hi}) must be greater than {lo_name} ({lo})")


def _clip(lo: int, hi: int, size: int) -> slice:
    lo, hi = min(max(lo, 0), size), min(max(hi, 0), size)
    return slice(lo, max(lo, hi))


def _select_tile(data: np.ndarray, tile: int | None, want_ndim: int) -> np.ndarray:
    """The ``want_ndim``-dimensional array a ROI works on: ``data`` itself or one of its tiles."""
    if tile is None:
        if data.ndim != want_ndim:
            extra = " (give a tile for tiled data)" if data.ndim == want_ndim + 1 else ""
            raise ValueError(f"expected {want_ndim}-D data, got shape {data.shape}{extra}")
        return data
    if data.ndim != want_ndim + 1:
        raise ValueError(f"tile {tile} given but data of shape {data.shape} is not tiled")
    if not 0 <= tile < data.shape[0]:
        raise ValueError(f"tile {tile} is out of range: the data has {data.shape[0]} tiles")
    return data[tile]


STATISTICS = frozenset({"sum", "mean", "max", "com", "count"})
"""What :func:`roi_stats` can be limited to (``only=``); ``npix`` always comes along."""


def roi_stats(
    area: ArrayLike,
    *,
    origin: tuple[int, ...] | None = None,
    mask: ArrayLike | None = None,
    count_threshold: float = 0.0,
    only: Collection[str] | None = None,
) -> RoiResult:
    """Sum, mean, max, centre of mass and count above threshold over the valid pixels of ``area``.

    ``mask`` is True (or non-zero) for good pixels, as in psana. Empty or fully masked areas give
    NaN mean, max and centre of mass, and zero sum and count; nothing warns.

    ``only`` (a subset of :data:`STATISTICS`) skips the work of the statistics not named: those
    are NaN (``count``: -1) in the result. Sum, mean and ``npix`` cost one pass whatever is
    asked; the centre of mass, the count and the max each add a little.
    """
    a = np.asarray(area)
    if only is not None and not STATISTICS.issuperset(only):
        raise ValueError(f"unknown statistics {sorted(set(only) - STATISTICS)}")
    if a.ndim not in (1, 2) or a.dtype not in KERNEL_DTYPES:
        return _forget(roi_stats_numpy(a, origin=origin, mask=mask,
                                       count_threshold=count_threshold), only)
    origin = origin if origin is not None else (0,) * a.ndim
    flat, n0, n1, rs = as_rows(a if a.ndim == 2 else a.reshape(1, -1))  # 1-D: one row
    mflat: np.ndarray | None = None
    mrs = 0
    if mask is not None:
        m = np.broadcast_to(np.asarray(mask, dtype=bool), a.shape)
        mflat, _, _, mrs = as_rows(m if m.ndim == 2 else m.reshape(1, -1))
    want = STATISTICS if only is None else only
    want_com = "com" in want
    out = np.empty(6)
    row0, col0 = (origin[0], origin[1]) if a.ndim == 2 else (0, origin[0])
    roi_stats_kernel(flat, n0, n1, rs, mflat, mrs, row0, col0, float(count_threshold), want_com,
                     "count" in want, "max" in want, out)
    total, npix = float(out[ROI_SUM]), int(out[ROI_NPIX])
    nan = float("nan")
    count = int(out[ROI_COUNT]) if "count" in want else -1
    if npix == 0:
        return RoiResult(a, origin, 0.0, nan, nan, (nan,) * a.ndim, count, 0)
    com: tuple[float, ...] = (nan,) * a.ndim
    if want_com:
        moments = (out[ROI_ROW_MOMENT], out[ROI_COL_MOMENT])[2 - a.ndim :]
        com = tuple(float(w) / total if total != 0 else nan for w in moments)
    return RoiResult(a, origin, total, total / npix, float(out[ROI_MAX]), com, count, npix)


def _forget(result: RoiResult, only: Collection[str] | None) -> RoiResult:
    """``result`` with the statistics not in ``only`` blanked, as the kernel path leaves them."""
    if only is None:
        return result
    nan = float("nan")
    return dataclasses.replace(
        result,
        max=result.max if "max" in only else nan,
        com=result.com if "com" in only else (nan,) * len(result.com),
        count=result.count if "count" in only else -1,
    )


def roi_stats_numpy(
    area: ArrayLike,
    *,
    origin: tuple[int, ...] | None = None,
    mask: ArrayLike | None = None,
    count_threshold: float = 0.0,
) -> RoiResult:
    """:func:`roi_stats` in plain NumPy, for any number of dimensions: the reference of the
    one-pass kernel."""
    a = np.asarray(area)
    origin = origin if origin is not None else (0,) * a.ndim
    valid = np.isfinite(a) if a.dtype.kind in "fc" else np.ones(a.shape, dtype=bool)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    npix = int(np.count_nonzero(valid))
    if npix == 0:
        nan = float("nan")
        return RoiResult(a, origin, 0.0, nan, nan, (nan,) * a.ndim, 0, 0)
    w = np.where(valid, a, 0).astype(np.float64, copy=False)
    total = float(w.sum())
    com = []
    for axis in range(a.ndim):
        others = tuple(k for k in range(a.ndim) if k != axis)
        profile = w.sum(axis=others)
        coord = np.arange(profile.size) + origin[axis]
        com.append(float(profile @ coord) / total if total != 0 else float("nan"))
    count = int(np.count_nonzero(valid & (a > count_threshold)))
    return RoiResult(a, origin, total, total / npix, float(a[valid].max()), tuple(com), count, npix)


@dataclass(frozen=True)
class RectRoi:
    """Rectangle ``[r0, r1) x [c0, c1)`` on an image, or on one tile of a (tile, row, col) stack."""

    r0: int
    r1: int
    c0: int
    c1: int
    tile: int | None = None
    count_threshold: float = 0.0

    def __post_init__(self) -> None:
        for name in ("r0", "r1", "c0", "c1"):
            object.__setattr__(self, name, _index(name, getattr(self, name)))
        _check_span("r0", self.r0, "r1", self.r1)
        _check_span("c0", self.c0, "c1", self.c1)
        if self.tile is not None:
            tile = _index("tile", self.tile)
            if tile < 0:
                raise ValueError(f"tile ({tile}) must be at least 0")
            object.__setattr__(self, "tile", tile)

    def select(self, data: ArrayLike) -> tuple[np.ndarray, tuple[int, int]]:
        """The clipped sub-array (a view) and the (row, col) of its first pixel."""
        plane = _select_tile(np.asarray(data), self.tile, 2)
        rows = _clip(self.r0, self.r1, plane.shape[0])
        cols = _clip(self.c0, self.c1, plane.shape[1])
        return plane[rows, cols], (rows.start, cols.start)

    def __call__(self, data: ArrayLike, mask: ArrayLike | None = None, *,
                 only: Collection[str] | None = None) -> RoiResult:
        """The area and its statistics (``only``: just those, see :func:`roi_stats`)."""
        area, origin = self.select(data)
        sub_mask = None
        if mask is not None:
            sub_mask, _ = self.select(np.broadcast_to(mask, np.shape(data)))
        return roi_stats(area, origin=origin, mask=sub_mask, count_threshold=self.count_threshold,
                         only=only)


@dataclass(frozen=True)
class RangeRoi:
    """Index range ``[x0, x1)`` on 1-D data (a waveform or a projection)."""

    x0: int
    x1: int
    count_threshold: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "x0", _index("x0", self.x0))
        object.__setattr__(self, "x1", _index("x1", self.x1))
        _check_span("x0", self.x0, "x1", self.x1)

    def select(self, data: ArrayLike) -> tuple[np.ndarray, tuple[int]]:
        """The clipped sub-array (a view) and the index of its first sample."""
        line = _select_tile(np.asarray(data), None, 1)
        span = _clip(self.x0, self.x1, line.shape[0])
        return line[span], (span.start,)

    def __call__(self, data: ArrayLike, mask: ArrayLike | None = None, *,
                 only: Collection[str] | None = None) -> RoiResult:
        """The area and its statistics (``only``: just those, see :func:`roi_stats`)."""
        area, origin = self.select(data)
        sub_mask = None
        if mask is not None:
            sub_mask, _ = self.select(np.broadcast_to(mask, np.shape(data)))
        return roi_stats(area, origin=origin, mask=sub_mask, count_threshold=self.count_threshold,
                         only=only)


@dataclass(frozen=True)
class PixelRoi:
    """One pixel ``(row, col)`` of an image or of tile ``tile``; NaN when it is off the array."""

    row: int
    col: int
    tile: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", _index("row", self.row))
        object.__setattr__(self, "col", _index("col", self.col))
        if self.tile is not None:
            object.__setattr__(self, "tile", _index("tile", self.tile))

    def __call__(self, data: ArrayLike) -> float:
        plane = _select_tile(np.asarray(data), self.tile, 2)
        if 0 <= self.row < plane.shape[0] and 0 <= self.col < plane.shape[1]:
            return float(plane[self.row, self.col])
        return float("nan")
