"""Cursor math on 1-D traces: the numbers a scientist reads off a plot between two cursors.

Cursors are in x units (the sample index when no x axis is given), may sit between samples (values
are linearly interpolated) and may be given in either order. A cursor interval is clipped to the
trace, so a cursor dragged past the end integrates what is there. NaN samples inside an interval
make its result NaN: a hole in the data is shown, not hidden. Nothing here warns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
NAN = float("nan")


def _trace(y: ArrayLike, x: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) as float64 with x increasing."""
    yy = np.asarray(y, dtype=np.float64)
    if yy.ndim != 1:
        raise ValueError(f"expected a 1-D trace, got shape {yy.shape}")
    if x is None:
        return np.arange(yy.size, dtype=np.float64), yy
    xx = np.asarray(x, dtype=np.float64)
    if xx.shape != yy.shape:
        raise ValueError(f"x axis shape {xx.shape} does not match trace shape {yy.shape}")
    if xx.size > 1 and xx[-1] < xx[0]:
        xx, yy = xx[::-1], yy[::-1]
    if np.any(np.diff(xx) < 0) or np.isnan(xx).any():
        raise ValueError("the x axis must be monotonic and free of NaN")
    return xx, yy


def _segment(
    x: np.ndarray, y: np.ndarray, a: float, b: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Samples between cursors a and b (any order), with interpolated end points; None if empty."""
    if x.size == 0 or not (np.isfinite(a) and np.isfinite(b)):
        return None
    lo, hi = max(min(a, b), x[0]), min(max(a, b), x[-1])
    if hi < lo:
        return None
    inside = (x > lo) & (x < hi)
    xs = np.concatenate(([lo], x[inside], [hi]))
    ys = np.concatenate(([np.interp(lo, x, y)], y[inside], [np.interp(hi, x, y)]))
    return xs, ys


def _trapezoid(xs: np.ndarray, ys: np.ndarray) -> float:
    return float(np.sum((ys[1:] + ys[:-1]) * np.diff(xs)) / 2.0)


def cursor_value(y: ArrayLike, at: float, x: ArrayLike | None = None) -> float:
    """The trace at cursor ``at`` (linear interpolation); NaN off the trace."""
    xx, yy = _trace(y, x)
    if xx.size == 0 or not xx[0] <= at <= xx[-1]:
        return NAN
    return float(np.interp(at, xx, yy))


def cursor_integral(y: ArrayLike, a: float, b: float, x: ArrayLike | None = None) -> float:
    """Trapezoid integral of the trace between cursors ``a`` and ``b`` (order does not matter)."""
    xx, yy = _trace(y, x)
    seg = _segment(xx, yy, a, b)
    return 0.0 if seg is None else _trapezoid(*seg)


def _ratio(num: float, den: float) -> float:
    return num / den if den != 0 and np.isfinite(den) else NAN


def cursor_ratio(
    y: ArrayLike,
    a: float,
    b: float,
    c: float,
    d: float,
    x: ArrayLike | None = None,
) -> float:
    """Integral over [a, b] divided by the integral over [c, d]; NaN when the latter is 0."""
    return _ratio(cursor_integral(y, a, b, x), cursor_integral(y, c, d, x))


def cursor_difference(
    y: ArrayLike,
    a: float,
    b: float,
    c: float,
    d: float,
    x: ArrayLike | None = None,
) -> float:
    """Integral over [a, b] minus the integral over [c, d]."""
    return cursor_integral(y, a, b, x) - cursor_integral(y, c, d, x)


def cursor_moments(
    y: ArrayLike, a: float, b: float, x: ArrayLike | None = None
) -> tuple[float, float]:
    """Centroid and variance of the trace between cursors, weighting x by the trace value.

    ``centroid = ∫x·y / ∫y`` and ``variance = ∫(x - centroid)²·y / ∫y`` (trapezoid rule); both
    NaN when ``∫y`` is 0 or the interval is empty.
    """
    xx, yy = _trace(y, x)
    seg = _segment(xx, yy, a, b)
    if seg is None:
        return NAN, NAN
    xs, ys = seg
    area = _trapezoid(xs, ys)
    centroid = _ratio(_trapezoid(xs, xs * ys), area)
    if np.isnan(centroid):
        return NAN, NAN
    return centroid, _ratio(_trapezoid(xs, (xs - centroid) ** 2 * ys), area)
