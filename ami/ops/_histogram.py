"""Fixed-bin histograms, the accumulators behind AMI's 1-D and 2-D histogram views.

Bins are equal and fixed at construction, so partial histograms from workers add bin by bin.
Binning matches ``numpy.histogram``: bins are half-open except the last, which includes its upper
edge. Values below / above the range are counted as underflow / overflow, NaN separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from ._accumulate import Header, State, check_mergeable
from ._kernels import KERNEL_DTYPES, as_rows, histogram_kernel


def _check_axis(names: tuple[str, str, str], nbins: int, lo: float, hi: float) -> None:
    """Check a binning; ``names`` are the user's names for (nbins, lo, hi)."""
    n_name, lo_name, hi_name = names
    if int(nbins) != nbins or nbins < 1:
        raise ValueError(f"{n_name} ({nbins}) must be a whole number, at least 1")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{lo_name} ({lo}) and {hi_name} ({hi}) must be finite")
    if not hi > lo:
        raise ValueError(f"{hi_name} ({hi}) must be greater than {lo_name} ({lo})")


def bin_index(
    values: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bin of every value in equal-width ``edges``: (index, inside, under, over) arrays.

    ``index`` is only meaningful where ``inside``; NaN is neither inside, under nor over.
    """
    nbins = edges.size - 1
    lo, hi = edges[0], edges[-1]
    under, over = values < lo, values > hi
    inside = (values >= lo) & (values <= hi)
    with np.errstate(invalid="ignore"):
        index = np.where(inside, (values - lo) * (nbins / (hi - lo)), 0).astype(np.int64)
    np.clip(index, 0, nbins - 1, out=index)
    # The scaled index can be one off within an ulp of an edge: settle against the edges.
    index -= inside & (values < edges[index])
    index += inside & (values >= edges[np.minimum(index + 1, nbins)]) & (index < nbins - 1)
    return index, inside, under, over


@dataclass(frozen=True)
class Histogram1DResult:
    edges: np.ndarray
    counts: np.ndarray
    underflow: float
    overflow: float
    nan: float


class Histogram1D:
    """Counts (or weights) of values in ``nbins`` equal bins over ``[lo, hi]``.

    ``update`` takes a number or an array (every element is an entry) and an optional ``weight``
    (a number, or one per element).
    """

    kind: ClassVar[str] = "histogram1d"

    def __init__(self, nbins: int, lo: float, hi: float) -> None:
        _check_axis(("nbins", "lo", "hi"), nbins, lo, hi)
        self.nbins, self.lo, self.hi = int(nbins), float(lo), float(hi)
        self.edges = np.linspace(self.lo, self.hi, self.nbins + 1)
        self.reset()

    def reset(self) -> None:
        self._counts = np.zeros(self.nbins)
        self._under = self._over = self._nan = 0.0

    def update(self, value: Any, *, key: float | None = None, weight: Any = None) -> None:
        a = np.asarray(value)
        if weight is None and a.dtype in KERNEL_DTYPES:  # one pass, no temporaries
            if a.size:
                rows = a.reshape(1, -1) if a.ndim < 2 else a.reshape(-1, a.shape[-1])
                under, over, nan = histogram_kernel(*as_rows(rows), self.edges, self._counts)
                self._under += under
                self._over += over
                self._nan += nan
            return
        self._update_numpy(value, weight)

    def _update_numpy(self, value: Any, weight: Any = None) -> None:
        """:meth:`update` in NumPy: any weights and types, and the reference of the kernel."""
        v = np.asarray(value, dtype=np.float64).ravel()
        w = np.ones(v.size) if weight is None else np.broadcast_to(weight, np.shape(value))
        w = np.asarray(w, dtype=np.float64).ravel()
        index, inside, under, over = bin_index(v, self.edges)
        self._counts += np.bincount(index[inside], weights=w[inside], minlength=self.nbins)
        self._under += float(w[under].sum())
        self._over += float(w[over].sum())
        self._nan += float(w[np.isnan(v)].sum())

    def merge(self, other: Any) -> None:
        check_mergeable(self, other, "nbins", "lo", "hi")
        self._counts += other._counts
        self._under += other._under
        self._over += other._over
        self._nan += other._nan

    def result(self) -> Histogram1DResult:
        return Histogram1DResult(
            self.edges.copy(), self._counts.copy(), self._under, self._over, self._nan
        )

    def to_state(self) -> State:
        header = {"nbins": self.nbins, "lo": self.lo, "hi": self.hi}
        header |= {"under": self._under, "over": self._over, "nan": self._nan}
        return header, [self._counts]

    @classmethod
    def from_state(cls, header: Header, arrays: list[np.ndarray]) -> Self:
        acc = cls(header["nbins"], header["lo"], header["hi"])
        acc._under, acc._over, acc._nan = (float(header[k]) for k in ("under", "over", "nan"))
        counts = np.array(arrays[0], dtype=np.float64, copy=True)
        if counts.shape != (acc.nbins,):
            raise ValueError(f"histogram1d: counts shape {counts.shape} for {acc.nbins} bins")
        acc._counts = counts
        return acc


@dataclass(frozen=True)
class Histogram2DResult:
    xedges: np.ndarray
    yedges: np.ndarray
    counts: np.ndarray  # shape (nx, ny), as numpy.histogram2d
    outside: float
    nan: float


class Histogram2D:
    """Counts (or weights) of (x, y) pairs in ``nx`` x ``ny`` equal bins.

    ``update((x, y))`` takes two numbers or two arrays of one shape; pairs outside the range are
    counted in ``outside``, pairs with a NaN in ``nan``.
    """

    kind: ClassVar[str] = "histogram2d"

    def __init__(self, nx: int, xlo: float, xhi: float, ny: int, ylo: float, yhi: float) -> None:
        _check_axis(("nx", "xlo", "xhi"), nx, xlo, xhi)
        _check_axis(("ny", "ylo", "yhi"), ny, ylo, yhi)
        self.nx, self.xlo, self.xhi = int(nx), float(xlo), float(xhi)
        self.ny, self.ylo, self.yhi = int(ny), float(ylo), float(yhi)
        self.xedges = np.linspace(self.xlo, self.xhi, self.nx + 1)
        self.yedges = np.linspace(self.ylo, self.yhi, self.ny + 1)
        self.reset()

    def reset(self) -> None:
        self._counts = np.zeros((self.nx, self.ny))
        self._outside = self._nan = 0.0

    def update(self, value: Any, *, key: float | None = None, weight: Any = None) -> None:
        x, y = (np.asarray(a, dtype=np.float64) for a in value)
        if x.shape != y.shape:
            raise ValueError(f"histogram2d: x shape {x.shape} does not match y shape {y.shape}")
        w = np.ones(x.shape) if weight is None else np.broadcast_to(weight, x.shape)
        x, y, w = x.ravel(), y.ravel(), np.asarray(w, dtype=np.float64).ravel()
        ix, xin, _, _ = bin_index(x, self.xedges)
        iy, yin, _, _ = bin_index(y, self.yedges)
        both = xin & yin
        flat = np.bincount(
            ix[both] * self.ny + iy[both], weights=w[both], minlength=self._counts.size
        )
        self._counts += flat.reshape(self._counts.shape)
        nan = np.isnan(x) | np.isnan(y)
        self._nan += float(w[nan].sum())
        self._outside += float(w[~both & ~nan].sum())

    def merge(self, other: Any) -> None:
        check_mergeable(self, other, "nx", "xlo", "xhi", "ny", "ylo", "yhi")
        self._counts += other._counts
        self._outside += other._outside
        self._nan += other._nan

    def result(self) -> Histogram2DResult:
        return Histogram2DResult(
            self.xedges.copy(), self.yedges.copy(), self._counts.copy(), self._outside, self._nan
        )

    def to_state(self) -> State:
        header: Header = {"nx": self.nx, "xlo": self.xlo, "xhi": self.xhi}
        header |= {"ny": self.ny, "ylo": self.ylo, "yhi": self.yhi}
        header |= {"outside": self._outside, "nan": self._nan}
        return header, [self._counts]

    @classmethod
    def from_state(cls, header: Header, arrays: list[np.ndarray]) -> Self:
        names = ("nx", "xlo", "xhi", "ny", "ylo", "yhi")
        acc = cls(*(header[k] for k in names))
        acc._outside, acc._nan = float(header["outside"]), float(header["nan"])
        counts = np.array(arrays[0], dtype=np.float64, copy=True)
        if counts.shape != acc._counts.shape:
            raise ValueError(f"histogram2d: counts shape {counts.shape}, want {acc._counts.shape}")
        acc._counts = counts
        return acc
