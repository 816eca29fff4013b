"""Run sums and binned sums that come out bit for bit the same serially and under MPI.

Floating-point addition is not associative, so summing per rank and reducing would make the result
depend on the number of ranks. Instead every batch of events (the unit rank 0 hands out, the
same batches in a serial run) gets its own partial sums, computed event by event in order, and
partials are folded into the totals strictly in batch order, wherever they were computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Key = tuple[str, int]  #: (name, bin); bin -1 for plain run sums
_OPS = ("sum", "max", "min")


def _fold(op: str, total: np.ndarray | None, value: np.ndarray) -> np.ndarray:
    if total is None:
        return np.array(value, dtype=value.dtype, copy=True)
    if op == "sum":
        return total + value
    if op == "max":
        return np.maximum(total, value)
    return np.minimum(total, value)


class BatchSums:
    """Partial sums of the current batch, and totals folded in batch order."""

    def __init__(self) -> None:
        self.batch = -1
        self.partial: dict[Key, np.ndarray] = {}
        self.ops: dict[str, str] = {}
        self.totals: dict[Key, np.ndarray] = {}
        self._pending: dict[int, dict[Key, np.ndarray]] = {}
        self._next = 0

    def add(self, batch: int, name: str, value: Any, *, bin: int = -1, op: str = "sum") -> None:
        """Add ``value`` (array or number) to ``name`` (in ``bin``) for an event of ``batch``.

        Events must come in batch order on this process; a new batch number closes the batch
        before (its partial is then handed to :meth:`take`)."""
        if op not in _OPS:
            raise ValueError(f"op must be one of {_OPS}, not {op!r}")
        if self.ops.setdefault(name, op) != op:
            raise ValueError(f"{name!r} was accumulated with {self.ops[name]!r}, not {op!r}")
        if batch != self.batch:
            raise RuntimeError(f"sum for batch {batch} while batch {self.batch} is open")
        arr = np.asarray(value)
        if arr.dtype.kind in "biu":
            arr = arr.astype(np.int64)
        elif arr.dtype.kind == "f" and arr.dtype.itemsize < 8:
            arr = arr.astype(np.float64)
        key = (name, bin)
        self.partial[key] = _fold(op, self.partial.get(key), arr)

    def open(self, batch: int) -> None:
        self.batch = batch

    def take(self) -> tuple[int, dict[Key, np.ndarray]]:
        """The finished batch number and its partial sums (and forget them here)."""
        out = (self.batch, self.partial)
        self.partial = {}
        self.batch = -1
        return out

    def combine(self, batch: int, partial: dict[Key, np.ndarray],
                ops: dict[str, str] | None = None) -> None:
        """Fold a batch's partial into the totals once every earlier batch is in."""
        if ops:
            for name, op in ops.items():
                self.ops.setdefault(name, op)
        self._pending[batch] = partial
        while self._next in self._pending:
            for key, value in self._pending.pop(self._next).items():
                op = self.ops.get(key[0], "sum")
                self.totals[key] = _fold(op, self.totals.get(key), value)
            self._next += 1

    def skip_to(self, batch: int) -> None:
        """Batches before ``batch`` hold nothing (never handed out)."""
        while self._next < batch:
            self.combine(self._next, {})

    @property
    def complete(self) -> bool:
        return not self._pending

    def run_sums(self) -> dict[str, np.ndarray]:
        """``{name: total}`` of the plain (unbinned) sums."""
        return {k[0]: v for k, v in self.totals.items() if k[1] < 0}

    def binned(self, prefix: str) -> dict[str, dict[int, np.ndarray]]:
        """``{name: {bin: total}}`` for names starting with ``prefix`` (prefix removed)."""
        out: dict[str, dict[int, np.ndarray]] = {}
        for (name, b), v in self.totals.items():
            if b >= 0 and name.startswith(prefix):
                out.setdefault(name[len(prefix):], {})[b] = v
        return out


def pack_partial(partial: dict[Key, np.ndarray]) -> tuple[list[Any], list[np.ndarray]]:
    """A header list [(name, bin, dtype, shape)] and the arrays, for sending."""
    header = [(k[0], k[1], v.dtype.str, list(v.shape)) for k, v in partial.items()]
    return header, [np.require(v, requirements="C") for v in partial.values()]
