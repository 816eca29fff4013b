"""Whole batches of events built at once: column-wise numpy over (N, size) contribution arrays.

When every node of an event's contract sends its contributions for the same N pulse ids in one
batch datagram each (small events at high rates), the N events are built by copying columns:
the header from the first node's rows, each node's Segment Parent body side by side, the damage
or-ed per row. The result is an (N, event size) array whose rows are the built dgrams, byte for
byte what building them one at a time gives.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from daq.xtc import Damage, Dgram, TransitionId, event_src, make_env

_OUT_OF_SYNCH = int(Damage.OutOfSynch)


@dataclass(frozen=True)
class BuiltBatch:
    """N retired events in a row, all complete: ``data[i]`` is the dgram of ``keys[i]``."""

    keys: np.ndarray
    service: int
    data: np.ndarray
    missing: tuple[int, ...] = ()

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def dgrams(self) -> Iterator[Dgram]:
        for row in self.data:
            yield Dgram(memoryview(row))

    def release(self) -> None:
        """Nothing pooled: the array is freed with the last reference."""


def _u16(rows: np.ndarray, at: int) -> np.ndarray:
    return rows[:, at : at + 2].view("<u2")[:, 0]


def _u32(rows: np.ndarray, at: int) -> np.ndarray:
    return rows[:, at : at + 4].view("<u4")[:, 0]


def build_rows(builder_id: int, parts: Sequence[np.ndarray]) -> np.ndarray:
    """Events from per-node (N, size) contribution arrays, given in node order."""
    first = parts[0]
    n = first.shape[0]
    size = 24 + sum(p.shape[1] - 24 for p in parts)
    out = np.empty((n, size), np.uint8)
    out[:, 0:8] = first[:, 0:8]  # time of the first node, as one at a time
    damage = np.zeros(n, np.uint16)
    groups = np.zeros(n, np.uint32)
    pos = 24
    for rows in parts:
        width = rows.shape[1] - 24
        out[:, pos : pos + width] = rows[:, 24:]
        pos += width
        damage |= _u16(rows, 16) | _u16(rows, 28)
        groups |= _u32(rows, 8) & 0xFFFF
        if rows is not first:
            synch = np.any(rows[:, 0:8] != first[:, 0:8], axis=1)
            damage[synch] |= _OUT_OF_SYNCH
    _u32(out, 8)[...] = make_env(TransitionId.L1Accept, 0) | groups
    _u32(out, 12)[...] = event_src(builder_id)
    _u16(out, 16)[...] = damage
    _u16(out, 18)[...] = 0
    _u32(out, 20)[...] = size - 12
    return out
