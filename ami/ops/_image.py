"""Per-event array operations: projection, threshold, mask, background, normalisation, contrast and
hit finding.

Masks follow psana: True (non-zero) marks a good pixel. NaN pixels are treated like masked ones
wherever a statistic is formed, and no operation here emits a NumPy warning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._kernels import KERNEL_DTYPES, as_rows, project_kernel

ArrayLike = npt.ArrayLike


def _mask_like(data: np.ndarray, mask: ArrayLike) -> np.ndarray:
    """``mask`` as booleans of ``data``'s shape (no copy when it already is)."""
    m = np.asarray(mask, dtype=bool)
    if m.shape != data.shape:
        raise ValueError(f"mask shape {m.shape} does not match data shape {data.shape}")
    return m


def _valid(data: np.ndarray, mask: ArrayLike | None) -> np.ndarray:
    """Boolean array of pixels that count: finite and not masked out."""
    valid = np.isfinite(data) if data.dtype.kind in "fc" else np.ones(data.shape, dtype=bool)
    if mask is not None:
        valid &= _mask_like(data, mask)
    return valid


def project(
    data: ArrayLike, axis: int = 0, *, mean: bool = False, mask: ArrayLike | None = None
) -> np.ndarray:
    """Sum (or mean) of ``data`` along ``axis``, skipping NaN and masked pixels.

    A line with no valid pixel sums to 0 and averages to NaN.
    """
    d = np.asarray(data)
    if not -d.ndim <= axis < d.ndim:
        raise ValueError(f"axis {axis} is out of range for {d.ndim}-D data")
    if d.ndim == 2 and d.dtype in KERNEL_DTYPES:
        ax = axis % 2
        m = None if mask is None else _mask_like(d, mask)
        if d.strides[0] == d.itemsize != d.strides[1]:  # column-major: rows of the transpose
            d, ax, m = d.T, 1 - ax, None if m is None else m.T
        flat, n0, n1, rs = as_rows(d)
        mflat, mrs = None, 0
        if m is not None:
            mflat, _, _, mrs = as_rows(m)
        length = n1 if ax == 0 else n0
        sums, counts = np.empty(length), np.empty(length, dtype=np.int64)
        project_kernel(flat, n0, n1, rs, mflat, mrs, ax, sums, counts, mean)
        if not mean:
            return sums
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / counts
    if mask is None and d.dtype.kind in "biuf":
        # Other shapes: a line whose plain sum is finite held no NaN or infinity, so that sum is
        # the answer; the NaN-aware pass runs only when some line's sum is not finite.
        total = np.asarray(d.sum(axis=axis, dtype=np.float64))
        if d.dtype.kind != "f" or np.isfinite(total).all():
            if not mean:
                return total
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.asarray(total / d.shape[axis])
    return project_numpy(d, axis, mean=mean, mask=mask)


def project_numpy(
    data: ArrayLike, axis: int = 0, *, mean: bool = False, mask: ArrayLike | None = None
) -> np.ndarray:
    """:func:`project` in plain NumPy: the reference the fast paths are tested against."""
    d = np.asarray(data)
    if not -d.ndim <= axis < d.ndim:
        raise ValueError(f"axis {axis} is out of range for {d.ndim}-D data")
    valid = _valid(d, mask)
    total = np.where(valid, d, 0).sum(axis=axis, dtype=np.float64)
    if not mean:
        return np.asarray(total)
    n = valid.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / n)


def threshold(data: ArrayLike, lo: float, hi: float | None = None) -> np.ndarray:
    """Copy of ``data`` with values below ``lo`` (or outside ``[lo, hi]``) zeroed; NaN stays."""
    d = np.asarray(data)
    outside = d < lo
    if hi is not None:
        if hi < lo:
            raise ValueError(f"hi ({hi}) must not be less than lo ({lo})")
        outside |= d > hi
    return np.where(outside, np.zeros((), dtype=d.dtype), d)


def apply_mask(data: ArrayLike, mask: ArrayLike, fill: float = 0.0) -> np.ndarray:
    """Copy of ``data`` with masked-out pixels (mask False/0) set to ``fill`` (e.g. 0 or NaN)."""
    d = np.asarray(data)
    m = np.asarray(mask, dtype=bool)
    if m.shape != d.shape:
        raise ValueError(f"mask shape {m.shape} does not match data shape {d.shape}")
    keep_type = d.dtype.kind in "fc" or (np.isfinite(fill) and float(fill).is_integer())
    return np.where(m, d, fill).astype(d.dtype if keep_type else np.float64, copy=False)


def subtract_background(data: ArrayLike, reference: ArrayLike) -> np.ndarray:
    """``data - reference`` in float64; the reference is a fixed or running-mean array."""
    d = np.asarray(data, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != d.shape and ref.ndim != 0:
        raise ValueError(f"background shape {ref.shape} does not match data shape {d.shape}")
    return d - ref


def normalize(data: ArrayLike, norm: ArrayLike) -> np.ndarray | float:
    """``data / norm`` for a scalar normaliser (e.g. pulse energy).

    A normaliser that is zero or not finite gives NaN of the data's shape, quietly: a missing
    gas-detector reading must not turn into infinities or warnings.
    """
    d = np.asarray(data, dtype=np.float64)
    n = np.asarray(norm, dtype=np.float64)
    if n.size != 1:
        raise ValueError(f"the normaliser must be a single number, got shape {n.shape}")
    value = float(n.reshape(()))
    out = np.full(d.shape, np.nan) if value == 0 or not np.isfinite(value) else d / value
    return float(out) if out.ndim == 0 else out


def contrast(data: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Speckle contrast, std / mean over valid pixels; NaN when there are none or the mean is 0."""
    d = np.asarray(data)
    values = d[_valid(d, mask)].astype(np.float64)
    if values.size == 0:
        return float("nan")
    mean = values.mean()
    if mean == 0:
        return float("nan")
    return float(values.std() / mean)


@dataclass(frozen=True)
class Hits:
    """Pixels above threshold: how many, where (one row of indices per hit) and their values."""

    count: int
    positions: np.ndarray
    values: np.ndarray


def find_hits(data: ArrayLike, threshold: float, mask: ArrayLike | None = None) -> Hits:
    """Valid pixels strictly above ``threshold``, in C order."""
    d = np.asarray(data)
    above = _valid(d, mask) & (d > threshold)
    positions = np.argwhere(above)
    return Hits(int(positions.shape[0]), positions, d[above])
