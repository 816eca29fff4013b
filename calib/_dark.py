"""Dark-run statistics: per-pixel mean and variance, mergeable with identical bits.

Users run the same pedestal command serially or under MPI and expect identical constants. A
floating-point sum depends on its order, so the order is fixed by the event numbers alone:

* events fall into fixed-size blocks by event index (block ``b`` = events ``b*B .. b*B+B-1``);
  within a block, events are added in index order with Welford's update;
* blocks are combined with Chan et al.'s pairwise formula along a fixed binary tree over block
  indices: blocks ``2j`` and ``2j+1`` make node ``(1, j)``, nodes ``(1, 2j)`` and ``(1, 2j+1)``
  make ``(2, j)``, and so on; the nodes left at the end (incomplete pairs) are combined in order
  of their first block.

Every combination is therefore fixed by which blocks hold events, never by which process added
them or when partial results were merged: one process, or any number of ranks each taking whole
blocks (contiguous ranges keep only log2(blocks) partial nodes in memory), give the same bits.
The tree also bounds rounding growth to O(log N). A block must be accumulated by one process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _kernels as k
from ._errors import CalibError
from ._status import StatusBit

STATE_VERSION = 1


@dataclass(frozen=True)
class _Node:
    """Statistics of a run of blocks: count, mean and sum of squared deviations (float64)."""

    n: int
    mean: np.ndarray
    m2: np.ndarray


def _chan(a: _Node, b: _Node) -> _Node:
    """Combine two partial results (Chan, Golub and LeVeque); ``a`` holds the earlier events."""
    n = a.n + b.n
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.n / n)
    m2 = a.m2 + b.m2 + delta * delta * (a.n * b.n / n)
    return _Node(n, mean, m2)


@dataclass(frozen=True)
class DarkStats:
    """Result of a dark run: event count, per-pixel mean and (population) variance."""

    n: int
    mean: np.ndarray
    var: np.ndarray

    @property
    def rms(self) -> np.ndarray:
        return np.sqrt(self.var)


class DarkAccumulator:
    """Streaming per-pixel mean and variance of frames of ``shape`` (see the module docstring).

    ``add(frame, index)`` takes events in increasing ``index`` (default: consecutive from 0);
    ``merge(other)`` folds in another accumulator's blocks; ``result()`` gives DarkStats.
    ``state()`` / ``from_state()`` carry partial results between processes (plain dicts of
    ints and float64 arrays).
    """

    def __init__(self, shape: tuple[int, ...], block_size: int = 64) -> None:
        if block_size < 1:
            raise CalibError(f"block_size must be >= 1, not {block_size}")
        self.shape = tuple(shape)
        self.block_size = block_size
        self._npix = int(np.prod(self.shape))
        self._nodes: dict[tuple[int, int], _Node] = {}  # (level, index) -> node
        self._open_block = -1
        self._open_n = 0
        self._mean = np.zeros(0)
        self._m2 = np.zeros(0)
        self._next = 0  # lowest event index still accepted

    @property
    def n_events(self) -> int:
        return sum(node.n for node in self._nodes.values()) + self._open_n

    def add(self, frame: npt.ArrayLike, index: int | None = None) -> None:
        """Add one event; ``index`` (global event number) decides its block."""
        arr = np.asarray(frame)
        if arr.shape != self.shape:
            raise CalibError(f"frame shape {arr.shape} does not match the accumulator {self.shape}")
        i = self._next if index is None else int(index)
        if i < self._next:
            raise CalibError(f"event index {i} is not after the previous one ({self._next - 1})")
        block = i // self.block_size
        if block != self._open_block:
            self._close()
            self._open_block = block
            self._mean = np.zeros(self._npix)
            self._m2 = np.zeros(self._npix)
        self._open_n += 1
        k.welford_update(np.ascontiguousarray(arr).reshape(-1), self._open_n, self._mean, self._m2)
        self._next = i + 1

    def _close(self) -> None:
        if self._open_n:
            self._insert(0, self._open_block, _Node(self._open_n, self._mean, self._m2))
        self._open_block, self._open_n = -1, 0

    def _insert(self, level: int, index: int, node: _Node) -> None:
        first, last = index << level, ((index + 1) << level) - 1
        for lv, ix in self._nodes:
            if (ix << lv) <= last and first <= ((ix + 1) << lv) - 1:
                raise CalibError(
                    f"events of blocks {first}..{last} were accumulated twice: split events "
                    f"between ranks on block boundaries (block_size={self.block_size})"
                )
        while (level, index ^ 1) in self._nodes:  # complete pairs climb the tree
            sibling = self._nodes.pop((level, index ^ 1))
            node = _chan(sibling, node) if index & 1 else _chan(node, sibling)
            level, index = level + 1, index >> 1
        self._nodes[(level, index)] = node

    def _all_nodes(self) -> list[tuple[int, int, _Node]]:
        nodes = [(lv, ix, nd) for (lv, ix), nd in self._nodes.items()]
        if self._open_n:
            nodes.append((0, self._open_block, _Node(self._open_n, self._mean.copy(),
                                                     self._m2.copy())))
        return nodes

    def merge(self, other: DarkAccumulator) -> None:
        """Fold in the blocks of ``other`` (unchanged); any merge order gives the same bits."""
        if (other.shape, other.block_size) != (self.shape, self.block_size):
            raise CalibError(
                f"cannot merge accumulators of shape/block size {other.shape}/"
                f"{other.block_size} into {self.shape}/{self.block_size}"
            )
        self._close()
        for level, index, node in other._all_nodes():
            self._insert(level, index, node)
        self._next = max(self._next, other._next)

    def result(self) -> DarkStats:
        """Mean and variance over all events so far (the accumulator can go on)."""
        nodes = sorted(self._all_nodes(), key=lambda t: t[1] << t[0])
        if not nodes:
            raise CalibError("no events were accumulated")
        total = nodes[0][2]
        for _, _, node in nodes[1:]:
            total = _chan(total, node)
        mean = total.mean if len(nodes) > 1 else total.mean.copy()  # never hand out our state
        var = total.m2 / total.n
        return DarkStats(total.n, mean.reshape(self.shape), var.reshape(self.shape))

    def state(self) -> dict[str, Any]:
        """Partial results as a plain dict (for sending to another process)."""
        return {
            "version": STATE_VERSION,
            "shape": list(self.shape),
            "block_size": self.block_size,
            "next": self._next,
            "nodes": [
                {"level": lv, "index": ix, "n": nd.n, "mean": nd.mean, "m2": nd.m2}
                for lv, ix, nd in self._all_nodes()
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DarkAccumulator:
        """Accumulator rebuilt from :meth:`state` (arrays may come as any buffer)."""
        if state.get("version") != STATE_VERSION:
            raise CalibError(f"unsupported dark state version {state.get('version')!r}")
        acc = cls(tuple(state["shape"]), int(state["block_size"]))
        for nd in state["nodes"]:
            mean = np.asarray(nd["mean"], dtype=np.float64).reshape(-1)
            m2 = np.asarray(nd["m2"], dtype=np.float64).reshape(-1)
            acc._insert(int(nd["level"]), int(nd["index"]), _Node(int(nd["n"]), mean, m2))
        acc._next = int(state["next"])
        return acc


@dataclass(frozen=True)
class DarkThresholds:
    """Bad-pixel criteria of :func:`dark_constants` (medians are over the detector, or over
    each segment with ``per_segment``)."""

    dead_rms: float = 0.1  # rms below this x median rms: DEAD (stuck, no noise)
    noisy_rms: float = 3.0  # rms above this x median rms: NOISY
    hot_sigma: float = 10.0  # pedestal above median + this x robust spread: HOT
    cold_sigma: float = 10.0  # pedestal below median - this x robust spread: COLD
    saturation: float | None = None  # pedestal at or above this ADU: SATURATED
    per_segment: bool = False


def _median_over(a: np.ndarray, per_segment: bool) -> np.ndarray:
    """Median of ``a`` over the detector, or per leading-axis segment (broadcastable)."""
    if per_segment and a.ndim >= 3:
        flat = a.reshape(a.shape[0], -1)
        return np.median(flat, axis=1).reshape((a.shape[0],) + (1,) * (a.ndim - 1))
    return np.asarray(np.median(a))


def dark_constants(
    stats: DarkStats, thresholds: DarkThresholds | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pedestals (float32), rms (float32) and pixel status (uint64, StatusBit) of a dark run.

    The pedestal spread is robust (1.4826 x MAD), floored at the median rms: a pedestal is not
    judged more precisely than its own noise.
    """
    t = thresholds or DarkThresholds()
    ped, rms = stats.mean, stats.rms
    med_rms = _median_over(rms, t.per_segment)
    med_ped = _median_over(ped, t.per_segment)
    spread = np.maximum(1.4826 * _median_over(np.abs(ped - med_ped), t.per_segment), med_rms)
    status = np.zeros(ped.shape, np.uint64)

    def flag(cond: np.ndarray, bit: StatusBit) -> None:
        status[cond] |= np.uint64(bit)

    flag(rms < t.dead_rms * med_rms, StatusBit.DEAD)
    flag(rms > t.noisy_rms * med_rms, StatusBit.NOISY)
    flag(ped > med_ped + t.hot_sigma * spread, StatusBit.HOT)
    flag(ped < med_ped - t.cold_sigma * spread, StatusBit.COLD)
    if t.saturation is not None:
        flag(ped >= t.saturation, StatusBit.SATURATED)
    return ped.astype(np.float32), rms.astype(np.float32), status
