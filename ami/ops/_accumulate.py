"""Accumulators: reductions over events that workers compute in parts and collectors merge.

AMI reduces at heartbeats: every worker folds its events into partial states, ships them, and the
collectors merge them. So every accumulator here is mergeable, and merging the partial states of
*any* split of the events (even interleaved across workers) gives what one accumulator fed every
event would give: reductions are sums, and wherever order matters it comes from each event's
``key`` (its timestamp), never from arrival order.

Arrays are accumulated NaN-aware, per element: a NaN pixel in one event leaves that pixel's mean
to the events where it was finite.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

Header = dict[str, Any]
State = tuple[Header, list[np.ndarray]]


@runtime_checkable
class Accumulator(Protocol):
    """What every accumulator offers; ``kind`` names it on the wire."""

    kind: ClassVar[str]

    def update(self, value: Any, *, key: float | None = None) -> None:
        """Fold in one event's value; ``key`` is the event timestamp where order matters."""

    def merge(self, other: Any) -> None:
        """Fold in another partial state of the same kind and parameters (associative)."""

    def result(self) -> Any:
        """What a view shows."""

    def reset(self) -> None:
        """Forget every event, keep the parameters."""

    def to_state(self) -> State:
        """A msgpack-able header and raw arrays, for the wire."""

    @classmethod
    def from_state(cls, header: Header, arrays: list[np.ndarray]) -> Self:
        """Rebuild from :meth:`to_state` output."""


def check_key(key: float) -> float:
    """Keys order events: they must be finite numbers."""
    k = float(key)
    if not math.isfinite(k):
        raise ValueError(f"event key must be a finite number, got {key!r}")
    return k


def check_mergeable(acc: Any, other: Any, *params: str) -> None:
    """Refuse to merge accumulators of another kind or with other parameters."""
    if type(other) is not type(acc):
        raise ValueError(f"cannot merge {type(other).__name__} into {type(acc).__name__}")
    for name in params:
        mine, theirs = getattr(acc, name), getattr(other, name)
        if mine != theirs:
            raise ValueError(f"cannot merge {acc.kind}: {name} differs ({mine} vs {theirs})")


def _as_result(a: np.ndarray) -> float | np.ndarray:
    return float(a) if a.ndim == 0 else a.copy()


def _owned(a: np.ndarray, dtype: Any) -> np.ndarray:
    """A private, writable copy of a wire array."""
    return np.array(a, dtype=dtype, copy=True)


class _SumCount:
    """Per-element sum and count of finite values: the state of every plain mean."""

    kind: ClassVar[str] = ""
    _params: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._sum: np.ndarray | None = None
        self._count: np.ndarray | None = None
        self.events = 0

    def update(self, value: Any, *, key: float | None = None) -> None:
        v = np.asarray(value, dtype=np.float64)
        if self._sum is None or self._count is None:
            self._sum = np.zeros(v.shape)
            self._count = np.zeros(v.shape, dtype=np.int64)
        elif v.shape != self._sum.shape:
            raise ValueError(f"{self.kind}: value shape {v.shape} differs from {self._sum.shape}")
        finite = np.isfinite(v)
        np.add(self._sum, v, out=self._sum, where=finite)
        self._count += finite
        self.events += 1

    def merge(self, other: Any) -> None:
        check_mergeable(self, other, *self._params)
        if other._sum is not None:
            if self._sum is None or self._count is None:
                self._sum, self._count = other._sum.copy(), other._count.copy()
            elif other._sum.shape != self._sum.shape:
                raise ValueError(
                    f"cannot merge {self.kind}: shape {other._sum.shape} vs {self._sum.shape}"
                )
            else:
                self._sum += other._sum
                self._count += other._count
        self.events += other.events

    def mean(self) -> float | np.ndarray:
        """Per-element mean of finite values (NaN where there were none, or before any event)."""
        if self._sum is None:
            return float("nan")
        with np.errstate(invalid="ignore", divide="ignore"):
            return _as_result(self._sum / self._count)

    def reset(self) -> None:
        self._sum = self._count = None
        self.events = 0

    def to_state(self) -> State:
        header = {name: getattr(self, name) for name in self._params}
        header["events"] = self.events
        arrays = [] if self._sum is None or self._count is None else [self._sum, self._count]
        return header, arrays

    @classmethod
    def from_state(cls, header: Header, arrays: list[np.ndarray]) -> Self:
        acc = cls(**{name: header[name] for name in cls._params})
        acc.events = int(header["events"])
        if arrays:
            acc._sum, acc._count = _owned(arrays[0], np.float64), _owned(arrays[1], np.int64)
            if acc._sum.shape != acc._count.shape:
                raise ValueError("sum and count arrays differ in shape")
        return acc


class RunningMean(_SumCount):
    """Mean of every event since the last reset; also the running background reference (feed it
    only the events a filter selects, e.g. x-ray off)."""

    kind: ClassVar[str] = "running_mean"

    def result(self) -> float | np.ndarray:
        return self.mean()


class RunningSum(_SumCount):
    """Sum of every event since the last reset (NaN elements skipped; 0 before any event)."""

    kind: ClassVar[str] = "running_sum"

    def result(self) -> float | np.ndarray:
        return 0.0 if self._sum is None else _as_result(self._sum)


class MeanN(_SumCount):
    """Mean over a window of ``n`` events.

    ``ready`` turns true once ``n`` events are in; the owner then shows :meth:`result` and calls
    :meth:`reset`. Partial states merged at a heartbeat may together hold more than ``n`` events:
    the mean then covers all of them, since dropping some would make merging inexact.
    """

    kind: ClassVar[str] = "mean_n"
    _params = ("n",)

    def __init__(self, n: int) -> None:
        if int(n) != n or n < 1:
            raise ValueError(f"n ({n}) must be a whole number, at least 1")
        super().__init__()
        self.n = int(n)

    @property
    def ready(self) -> bool:
        return self.events >= self.n

    def result(self) -> float | np.ndarray:
        return self.mean()


class ExponentialMovingAverage:
    """Exponentially weighted mean with time constant ``tau`` in key units (e.g. seconds).

    An event with key t weighs ``exp(-(T - t) / tau)`` at the latest key T, so partial states
    merge exactly whatever the interleaving of events. With the event number as key and
    ``tau = -1 / ln(1 - alpha)`` this is the classic per-event EMA with smoothing ``alpha``
    (normalised, so the first events are not biased towards zero). Without a key, each update
    counts as one step after the previous one.
    """

    kind: ClassVar[str] = "ema"

    def __init__(self, tau: float) -> None:
        if not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"tau ({tau}) must be a positive number")
        self.tau = float(tau)
        self.reset()

    def reset(self) -> None:
        self._sum: np.ndarray | None = None
        self._weight: np.ndarray | None = None
        self._key = 0.0
        self.events = 0

    def _advance(self, key: float) -> None:
        """Move the reference time forward to ``key``, decaying what is held."""
        if key > self._key and self._sum is not None and self._weight is not None:
            decay = math.exp(-(key - self._key) / self.tau)
            self._sum *= decay
            self._weight *= decay
        self._key = max(self._key, key)

    def update(self, value: Any, *, key: float | None = None) -> None:
        v = np.asarray(value, dtype=np.float64)
        k = check_key(key) if key is not None else self._key + (1.0 if self.events else 0.0)
        if self._sum is None or self._weight is None:
            self._sum, self._weight, self._key = np.zeros(v.shape), np.zeros(v.shape), k
        elif v.shape != self._sum.shape:
            raise ValueError(f"ema: value shape {v.shape} differs from {self._sum.shape}")
        self._advance(k)
        w = math.exp(-(self._key - k) / self.tau)
        finite = np.isfinite(v)
        np.add(self._sum, w * v, out=self._sum, where=finite)
        self._weight += w * finite
        self.events += 1

    def merge(self, other: Any) -> None:
        check_mergeable(self, other, "tau")
        if other._sum is None:
            return
        if self._sum is None or self._weight is None:
            self._sum, self._weight = other._sum.copy(), other._weight.copy()
            self._key, self.events = other._key, other.events
            return
        if other._sum.shape != self._sum.shape:
            raise ValueError(f"cannot merge ema: shape {other._sum.shape} vs {self._sum.shape}")
        self._advance(other._key)
        w = math.exp(-(self._key - other._key) / self.tau)
        self._sum += w * other._sum
        self._weight += w * other._weight
        self.events += other.events

    def result(self) -> float | np.ndarray:
        if self._sum is None:
            return float("nan")
        with np.errstate(invalid="ignore", divide="ignore"):
            return _as_result(self._sum / self._weight)

    def to_state(self) -> State:
        header = {"tau": self.tau, "key": self._key, "events": self.events}
        arrays = [] if self._sum is None or self._weight is None else [self._sum, self._weight]
        return header, arrays

    @classmethod
    def from_state(cls, header: Header, arrays: list[np.ndarray]) -> Self:
        acc = cls(header["tau"])
        acc._key, acc.events = check_key(header["key"]), int(header["events"])
        if arrays:
            acc._sum, acc._weight = _owned(arrays[0], np.float64), _owned(arrays[1], np.float64)
        return acc


class Latest:
    """The value of the event with the largest key (the latest, by timestamp).

    On equal keys the value seen (or merged) first stays. Values are copied: event buffers are
    reused. Without a key, each update counts as later than the previous one.
    """

    kind: ClassVar[str] = "latest"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._value: np.ndarray | None = None
        self._key = 0.0
        self._lent = False  # _value went out in to_state(): never write into it again

    def update(self, value: Any, *, key: float | None = None) -> None:
        if key is None:
            key = self._key + 1.0 if self._value is not None else 0.0
        k = check_key(key)
        if self._value is None or k > self._key:
            v = np.asarray(value)
            if v.dtype.kind not in "biufc":
                raise ValueError(f"latest: only numbers and numeric arrays, got {v.dtype}")
            held = self._value
            if held is not None and not self._lent and held.shape == v.shape \
                    and held.dtype == v.dtype:
                np.copyto(held, v)  # an image per event: no fresh pages to fault in each time
            else:
                self._value, self._lent = np.array(v, copy=True), False
            self._key = k

    def merge(self, other: Any) -> None:
        check_mergeable(self, other)
        if other._value is not None and (self._value is None or other._key > self._key):
            self._value, self._key = other._value.copy(), other._key

    @property
    def key(self) -> float | None:
        """The key of the value held, None when empty."""
        return None if self._value is None else self._key

    def result(self) -> Any:
        if self._value is None:
            return None
        return self._value.item() if self._value.ndim == 0 else self._value.copy()

    def to_state(self) -> State:
        self._lent = self._value is not None
        return {"key": self._key}, [] if self._value is None else [self._value]

    @classmethod
    def from_state(cls, header: Header, arrays: list[np.ndarray]) -> Self:
        acc = cls()
        if arrays:
            acc._value, acc._key = np.array(arrays[0], copy=True), check_key(header["key"])
        return acc
