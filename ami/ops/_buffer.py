"""Accumulators that keep points rather than sums: a rolling buffer of the latest (x, y) points
(strip charts, scatter plots) and means binned by a scan value (mean vs scan step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from ._accumulate import Header, State, check_key, check_mergeable


@dataclass(frozen=True)
class RollingResult:
    """The points held, oldest first: their keys, x and y."""

    keys: np.ndarray
    x: np.ndarray
    y: np.ndarray


class RollingBuffer:
    """The latest ``capacity`` points by key (the event timestamp).

    ``update(y, key=t)`` adds the point (t, y), for a strip chart; ``update((x, y), key=t)`` adds
    (x, y), for a scatter plot. Merging keeps the latest ``capacity`` points of both; points with
    equal keys are ordered by x, then y, so the outcome never depends on the order of merging.
    Without a key, each update counts as one step after the latest key so far.
    """

    kind: ClassVar[str] = "rolling_buffer"

    def __init__(self, capacity: int) -> None:
        if int(capacity) != capacity or capacity < 1:
            raise ValueError(f"capacity ({capacity}) must be a whole number, at least 1")
        self.capacity = int(capacity)
        self.reset()

    def reset(self) -> None:
        # Room for twice the capacity: the buffer is trimmed once per ``capacity`` updates.
        self._data = np.empty((3, 2 * self.capacity))
        self._n = 0

    def _trim(self, data: np.ndarray) -> None:
        """Keep the latest ``capacity`` columns of (key, x, y) ``data``, sorted."""
        order = np.lexsort((data[2], data[1], data[0]))[-self.capacity :]
        self._n = order.size
        self._data[:, : self._n] = data[:, order]

    def update(self, value: Any, *, key: float | None = None) -> None:
        if key is None:
            key = float(self._data[0, : self._n].max()) + 1.0 if self._n else 0.0
        k = check_key(key)
        if isinstance(value, tuple | list):
            x, y = (float(v) for v in value)
        else:
            x, y = k, float(value)
        if self._n == self._data.shape[1]:
            self._trim(self._data.copy())
        self._data[:, self._n] = (k, x, y)
        self._n += 1

    def merge(self, other: Any) -> None:
        check_mergeable(self, other, "capacity")
        self._trim(np.concatenate((self._data[:, : self._n], other._data[:, : other._n]), axis=1))

    def result(self) -> RollingResult:
        self._trim(self._data[:, : self._n].copy())
        keys, x, y = self._data[:, : self._n].copy()
        return RollingResult(keys, x, y)

    def to_state(self) -> State:
        self._trim(self._data[:, : self._n].copy())
        return {"capacity": self.capacity}, [self._data[:, : self._n]]

    @classmethod
    def from_state(cls, header: Header, arrays: list[np.ndarray]) -> Self:
        acc = cls(header["capacity"])
        points = np.asarray(arrays[0], dtype=np.float64)
        if points.ndim != 2 or points.shape[0] != 3 or points.shape[1] > acc.capacity:
            raise ValueError(f"rolling_buffer: points shape {points.shape}")
        acc._trim(points)
        return acc


@dataclass(frozen=True)
class BinnedResult:
    """Scan values (ascending), the mean of y at each, and the count of finite y values."""

    values: np.ndarray
    mean: np.ndarray
    counts: np.ndarray


class BinnedMean:
    """Mean of y for each scan value: ``update((scan_value, y))``, y a number or an array.

    With ``resolution``, scan values are rounded to multiples of it, so a motor that settles
    a little differently each time still lands in one bin. Events with a NaN scan value are
    counted in ``dropped``.
    """

    kind: ClassVar[str] = "binned_mean"

    def __init__(self, resolution: float | None = None) -> None:
        if resolution is not None and not (math.isfinite(resolution) and resolution > 0):
            raise ValueError(f"resolution ({resolution}) must be a positive number")
        self.resolution = resolution
        self.reset()

    def reset(self) -> None:
        self._bins: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._shape: tuple[int, ...] | None = None
        self.dropped = 0

    def _bin(self, scan_value: float) -> float:
        if self.resolution is None:
            return scan_value + 0.0  # one bin for -0.0 and 0.0
        return math.floor(scan_value / self.resolution + 0.5) * self.resolution + 0.0

    def _entry(self, key: float, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        if self._shape is None:
            self._shape = shape
        elif shape != self._shape:
            raise ValueError(f"binned_mean: value shape {shape} differs from {self._shape}")
        if key not in self._bins:
            self._bins[key] = (np.zeros(shape), np.zeros(shape, dtype=np.int64))
        return self._bins[key]

    def update(self, value: Any, *, key: float | None = None) -> None:
        scan_value, y = value
        s = float(scan_value)
        if not math.isfinite(s):
            self.dropped += 1
            return
        v = np.asarray(y, dtype=np.float64)
        total, count = self._entry(self._bin(s), v.shape)
        finite = np.isfinite(v)
        np.add(total, v, out=total, where=finite)
        count += finite

    def merge(self, other: Any) -> None:
        check_mergeable(self, other, "resolution")
        for key, (other_total, other_count) in other._bins.items():
            total, count = self._entry(key, other_total.shape)
            total += other_total
            count += other_count
        self.dropped += other.dropped

    def result(self) -> BinnedResult:
        keys = sorted(self._bins)
        shape = self._shape or ()
        totals = np.array([self._bins[k][0] for k in keys]).reshape(len(keys), *shape)
        counts = np.array([self._bins[k][1] for k in keys], dtype=np.int64).reshape(totals.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = totals / counts
        return BinnedResult(np.array(keys, dtype=np.float64), mean, counts)

    def to_state(self) -> State:
        keys = sorted(self._bins)
        header = {"resolution": self.resolution, "dropped": self.dropped}
        if not keys:
            return header, []
        totals = np.array([self._bins[k][0] for k in keys])
        counts = np.array([self._bins[k][1] for k in keys], dtype=np.int64)
        return header, [np.array(keys, dtype=np.float64), totals, counts]

    @classmethod
    def from_state(cls, header: Header, arrays: list[np.ndarray]) -> Self:
        acc = cls(header["resolution"])
        acc.dropped = int(header["dropped"])
        if arrays:
            keys, totals, counts = arrays
            shape = (keys.size, *totals.shape[1:])
            if not (keys.ndim == 1 and totals.shape == counts.shape == shape):
                raise ValueError("binned_mean: inconsistent array shapes")
            acc._shape = tuple(totals.shape[1:])
            for i, k in enumerate(keys.tolist()):
                acc._bins[float(k)] = (
                    np.array(totals[i], dtype=np.float64, copy=True),
                    np.array(counts[i], dtype=np.int64, copy=True),
                )
        return acc
