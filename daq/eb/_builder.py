"""Event building: match contributions by pulse id, retire events in time order.

Each event has a contract: the readout nodes expected to contribute (transitions: every node;
L1Accepts: the members of the readout groups named in the env). An event is retired when
complete, when a newer event with the same contract completes (the older one can no longer
complete in order), or after a timeout; an incomplete event gets ``DroppedContribution`` on its
root and an empty damaged Segment Parent for each missing node. Events always leave in pulse-id
(= time) order. Duplicates, stale contributions (older than what was already retired) and
contributions from unknown nodes are counted and dropped.
"""

from __future__ import annotations

import heapq
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from daq.xtc import Damage, Dgram, Level, TransitionId, XtcError, event_src, make_env

from ._batch import BuiltBatch, build_rows
from ._pool import BufferPool

_DGRAM = struct.Struct("<IIIIHHI")
_XTC = struct.Struct("<IHHI")
_DROPPED = int(Damage.DroppedContribution)
_SEGMENT = int(Level.Segment) << 28
_OUT_OF_SYNCH = int(Damage.OutOfSynch)


@dataclass
class BuilderCounters:
    contributions: int = 0
    events: int = 0  #: L1Accepts retired
    transitions: int = 0
    complete: int = 0
    incomplete: int = 0  #: retired with DroppedContribution
    timed_out: int = 0
    superseded: int = 0
    absent: int = 0  #: retired at once because the missing nodes are absent (missed many)
    duplicates: int = 0
    stale: int = 0
    unknown_node: int = 0
    malformed: int = 0
    missing_by_node: dict[int, int] = field(default_factory=dict)

    def asdict(self) -> dict[str, object]:
        d = dict(self.__dict__)
        d["missing_by_node"] = {str(k): v for k, v in self.missing_by_node.items()}
        return d


class _Pending:
    __slots__ = ("contract", "done", "expired", "first_seen", "key", "parts", "service", "time")

    def __init__(self, key: int, service: int, contract: frozenset[int], now: float) -> None:
        self.key = key
        self.service = service
        self.contract = contract
        self.parts: dict[int, Dgram] = {}
        self.first_seen = now
        self.done = False
        self.expired = False
        self.time: tuple[int, int] | None = None  #: (seconds, ns) when announced by control


class _Unit:
    """Events whose contributions arrive as batches: every node of the contract sends one batch
    datagram for the same pulse ids (first ``key`` .. ``last``); built all at once."""

    __slots__ = ("batches", "contract", "done", "expired", "first_seen", "key", "last", "pids",
                 "service")

    def __init__(self, pids: np.ndarray, contract: frozenset[int], now: float) -> None:
        self.pids = pids
        self.key = int(pids[0])
        self.last = int(pids[-1])
        self.service = int(TransitionId.L1Accept)
        self.contract = contract
        self.batches: dict[int, np.ndarray] = {}
        self.first_seen = now
        self.done = False
        self.expired = False


@dataclass(frozen=True)
class BuiltEvent:
    """A retired event: the whole dgram (Event-level root) and what was missing."""

    key: int
    service: int
    data: bytearray | memoryview
    missing: tuple[int, ...]
    pool: BufferPool | None = field(default=None, repr=False, compare=False)

    def dgram(self) -> Dgram:
        return Dgram(self.data)

    def release(self) -> None:
        """Every sink has copied the event: its buffer may be reused (no-op without a pool)."""
        if self.pool is not None:
            self.pool.put(self.data)


Built = Union[BuiltEvent, BuiltBatch]  # noqa: UP007  (a runtime alias)


class EventBuilder:
    """Builds events from node contributions (each a dgram whose root holds one Segment Parent).

    ``groups`` maps readout group -> member node ids. ``clock`` gives seconds (monotonic).
    With a ``pool``, built events come from it (call ``BuiltEvent.release`` once the sinks
    are done) and the buffers of contributions are returned to it once copied.
    """

    def __init__(self, builder_id: int, groups: dict[int, list[int]], *, timeout: float = 2.0,
                 transition_timeout: float = 30.0, absent_after: int = 3,
                 clock: Callable[[], float] = time.monotonic,
                 pool: BufferPool | None = None) -> None:
        self.builder_id = builder_id
        self.groups = {g: frozenset(m) for g, m in groups.items()}
        self.all_nodes = frozenset(n for m in groups.values() for n in m)
        self.timeout = timeout
        self.transition_timeout = max(timeout, transition_timeout)
        self.absent_after = absent_after
        self.clock = clock
        self.pool = pool
        self.counters = BuilderCounters()
        self._pending: dict[int, _Pending | _Unit] = {}
        self._units: dict[int, _Unit] = {}
        self._heap: list[int] = []
        self._last_retired = -1
        self._contracts: dict[int, frozenset[int]] = {}
        self._missed: dict[int, int] = {}  # events in a row each node failed to contribute to

    @property
    def depth(self) -> int:
        """Events waiting to be retired (the builder's queue depth)."""
        return len(self._pending)

    def contract(self, service: int, readout_groups: int) -> frozenset[int]:
        if service != TransitionId.L1Accept:
            return self.all_nodes
        got = self._contracts.get(readout_groups)
        if got is None:
            members: set[int] = set()
            for g, nodes in self.groups.items():
                if readout_groups >> g & 1:
                    members |= nodes
            got = self._contracts[readout_groups] = frozenset(members)
        return got

    def reset(self) -> None:
        """Forget everything pending (a new Configure epoch)."""
        self._pending.clear()
        self._units.clear()
        self._heap.clear()
        self._last_retired = -1
        self._missed.clear()

    def absent(self) -> list[int]:
        """Nodes that missed ``absent_after`` events in a row (e.g. killed): events missing
        only such nodes retire at once instead of each waiting for the timeout."""
        return sorted(n for n, k in self._missed.items() if k >= self.absent_after)

    def add(self, node: int, key: int, contribution: Dgram) -> list[Built]:
        """Add one node's contribution for pulse ``key``; returns events retired by it."""
        self.counters.contributions += 1
        now = self.clock()
        if self._units:
            self._explode_overlapping(key, key, now)
        self._place(node, key, contribution, now)
        return self._retire(now)

    def _place(self, node: int, key: int, contribution: Dgram, now: float,
               inherit: _Unit | None = None) -> None:
        c = self.counters
        if node not in self.all_nodes:
            c.unknown_node += 1
            return
        if key <= self._last_retired:
            c.stale += 1
            self._missed[node] = 0  # late, but alive: stop treating it as absent
            return
        root = contribution.root
        # exactly one child, the Segment-level Parent of the claimed node
        if root.extent < 24:
            c.malformed += 1
            return
        k_src, _k_dmg, k_cont, k_ext = _XTC.unpack_from(contribution.buf, root.offset + 12)
        if k_src != _SEGMENT | node or k_cont & 0xFFF != 0 or k_ext != root.extent - 12:
            c.malformed += 1
            return
        service = contribution.service
        ev = self._pending.get(key)
        if ev is None:
            ev = _Pending(key, service, self.contract(service, contribution.readout_groups), now)
            if inherit is not None:  # exploded from a batch unit: keep its age and fate
                ev.first_seen, ev.expired = inherit.first_seen, inherit.expired
            self._pending[key] = ev
            heapq.heappush(self._heap, key)
        elif isinstance(ev, _Unit) or ev.service != service:
            c.malformed += 1
            return
        if node in ev.parts:
            c.duplicates += 1
            return
        if node not in ev.contract:
            c.unknown_node += 1
            return
        del root
        self._missed[node] = 0
        ev.parts[node] = contribution
        if len(ev.parts) == len(ev.contract):
            ev.done = True
            self._supersede(ev)

    def _supersede(self, ev: _Pending | _Unit) -> None:
        """Older events with the same contract can no longer complete in order."""
        if self._heap[0] != ev.key:
            for other in self._pending.values():
                if other.key < ev.key and not other.done and other.contract == ev.contract:
                    other.expired = True

    # -- batches -------------------------------------------------------------------------------
    def add_batch(self, node: int, pids: np.ndarray, rows: np.ndarray) -> list[Built]:
        """Add one node's batch: contributions ``rows`` (N, size) for increasing ``pids``.

        When every node of the contract sends a batch with the same pulse ids, the events are
        built together; anything else (a node missing, different pulse ids, mixed readout
        groups, a bad row) falls back to event-by-event building of those contributions."""
        c = self.counters
        n = len(pids)
        now = self.clock()
        contract = self._batch_contract(node, rows)
        first, last = int(pids[0]), int(pids[-1])
        unit = self._pending.get(first)
        if contract is None or first <= self._last_retired or (
                unit is not None and not isinstance(unit, _Unit)):
            self._explode_overlapping(first, last, now)
            self._explode_rows(node, pids, rows, now, None)
            return self._retire(now)
        if unit is None:
            self._explode_overlapping(first, last, now)
            if any(first <= k <= last for k in self._pending):  # singles already in the range
                self._explode_rows(node, pids, rows, now, None)
                return self._retire(now)
            unit = _Unit(np.array(pids), contract, now)
            self._pending[first] = self._units[first] = unit
            heapq.heappush(self._heap, first)
        elif node in unit.batches:
            c.contributions += n
            c.duplicates += n
            return []
        elif unit.contract != contract or not np.array_equal(unit.pids, pids):
            self._explode(unit, now)
            self._explode_rows(node, pids, rows, now, None)
            return self._retire(now)
        c.contributions += n
        self._missed[node] = 0
        unit.batches[node] = rows
        if len(unit.batches) == len(contract):
            unit.done = True
            self._supersede(unit)
        return self._retire(now)

    def _batch_contract(self, node: int, rows: np.ndarray) -> frozenset[int] | None:
        """The contract shared by every row, or None when the rows need one-by-one handling."""
        if node not in self.all_nodes or rows.shape[1] < 36:
            return None
        env = rows[:, 8:12].view("<u4")[:, 0]
        if np.any(env != env[0]) or (int(env[0]) >> 24) & 0xF != TransitionId.L1Accept:
            return None
        size = rows.shape[1]
        head = rows[:, 12:36].view("<u4")  # root (src, dmg|contains, extent), child (...)
        good = ((head[:, 0] == 0) & (head[:, 1] >> 16 == 0) & (head[:, 2] == size - 12)
                & (head[:, 3] == _SEGMENT | node) & ((head[:, 4] >> 16) & 0xFFF == 0)
                & (head[:, 5] == size - 24))
        if not bool(np.all(good)):
            return None
        contract = self.contract(TransitionId.L1Accept, int(env[0]) & 0xFFFF)
        return contract if node in contract else None

    def _explode_rows(self, node: int, pids: np.ndarray, rows: np.ndarray, now: float,
                      inherit: _Unit | None) -> None:
        self.counters.contributions += 0 if inherit is not None else len(pids)
        for pid, row in zip(pids.tolist(), rows, strict=True):
            try:
                dg = Dgram(memoryview(row), source=f"node {node}")
            except XtcError:  # a malformed row
                self.counters.malformed += 1
                continue
            self._place(node, pid, dg, now, inherit)

    def _explode(self, unit: _Unit, now: float) -> None:
        """Turn a unit back into single events (same age), e.g. when it cannot complete."""
        del self._pending[unit.key]
        del self._units[unit.key]
        for node, rows in sorted(unit.batches.items()):
            self._explode_rows(node, unit.pids, rows, now, unit)

    def _explode_overlapping(self, first: int, last: int, now: float) -> None:
        for unit in [u for u in self._units.values() if u.key <= last and u.last >= first]:
            self._explode(unit, now)

    def expect(self, key: int, service: int, seconds: int, nanoseconds: int) -> list[Built]:
        """A transition announced over the reliable control path: it will be retired (with
        every missing node marked) even if none of its contributions arrives."""
        if key <= self._last_retired or service == TransitionId.L1Accept:
            return []
        now = self.clock()
        if self._units:
            self._explode_overlapping(key, key, now)
        ev = self._pending.get(key)
        if ev is None:
            ev = _Pending(key, service, self.all_nodes, now)
            self._pending[key] = ev
            heapq.heappush(self._heap, key)
        if isinstance(ev, _Pending):
            ev.time = (seconds, nanoseconds)
        return self._retire(now)

    def poll(self) -> list[Built]:
        """Retire what timed out (call regularly even when no data arrives)."""
        return self._retire(self.clock())

    def flush(self) -> list[Built]:
        """Retire everything still pending (end of a run or shutdown)."""
        for ev in self._pending.values():
            if not ev.done:
                ev.expired = True
        return self._retire(self.clock())

    def _retire(self, now: float) -> list[Built]:
        out: list[Built] = []
        heap = self._heap
        while heap:
            ev = self._pending.get(heap[0])
            if ev is None:  # a stale heap entry (a unit exploded into singles)
                heapq.heappop(heap)
                continue
            if not ev.done:
                reason = self._why_retire(ev, now)
                if reason is None:
                    break
                if isinstance(ev, _Unit):
                    self._explode(ev, now)  # its events retire one by one, marked
                    continue
                setattr(self.counters, reason, getattr(self.counters, reason) + 1)
            heapq.heappop(heap)
            del self._pending[ev.key]
            if isinstance(ev, _Unit):
                del self._units[ev.key]
                self._last_retired = ev.last
                out.append(self._build_unit(ev))
                continue
            self._last_retired = ev.key
            out.append(self._build(ev))
        return out

    def _why_retire(self, ev: _Pending | _Unit, now: float) -> str | None:
        """Why an incomplete event must go now (the counter to bump), or None to keep it."""
        if ev.expired:
            return "superseded"
        limit = self.timeout if ev.service == TransitionId.L1Accept else self.transition_timeout
        if now - ev.first_seen >= limit:
            return "timed_out"
        have = ev.batches if isinstance(ev, _Unit) else ev.parts
        if all(self._missed.get(n, 0) >= self.absent_after for n in ev.contract if n not in have):
            return "absent"
        return None

    def _build_unit(self, unit: _Unit) -> BuiltBatch:
        c = self.counters
        n = len(unit.pids)
        c.events += n
        c.complete += n
        parts = [unit.batches[k] for k in sorted(unit.contract)]
        return BuiltBatch(unit.pids, unit.service, build_rows(self.builder_id, parts))

    def _build(self, ev: _Pending) -> BuiltEvent:
        c = self.counters
        if ev.service == TransitionId.L1Accept:
            c.events += 1
        else:
            c.transitions += 1
        nodes = sorted(ev.contract)
        missing = tuple(n for n in nodes if n not in ev.parts)
        first = ev.parts[min(ev.parts)] if ev.parts else None
        size = 24 + sum(p.size - 24 for p in ev.parts.values()) + 12 * len(missing)
        pool = self.pool
        inplace = None
        if pool is not None and len(ev.parts) == 1 and not missing:
            (only,) = ev.parts.values()
            buf = only.buf
            if isinstance(buf, memoryview) and not buf.readonly and only.offset == 0 \
                    and len(buf) == size:
                inplace = only  # one contribution: its dgram becomes the event's, header only
        out = (bytearray(size) if pool is None else pool.get(size)) if inplace is None \
            else inplace.buf
        damage = 0
        groups = 0
        sync = 0
        pos = 24
        for n in nodes:
            part = ev.parts.get(n)
            if part is None:
                _XTC.pack_into(out, pos, (int(Level.Segment) << 28) | n, _DROPPED, 0, 12)
                pos += 12
                self._missed[n] = self._missed.get(n, 0) + 1
                c.missing_by_node[n] = c.missing_by_node.get(n, 0) + 1
                continue
            damage |= part.damage | _segment_damage(part)
            body = part.memoryview()[24:]
            if part is not inplace:
                out[pos : pos + len(body)] = body
            pos += len(body)
            groups |= part.readout_groups
            if first is not None and part.timestamp != first.timestamp:
                sync = _OUT_OF_SYNCH
        if missing:
            damage |= _DROPPED
            c.incomplete += 1
        else:
            c.complete += 1
        damage |= sync
        if first is not None:
            ns, sec = first.nanoseconds, first.seconds
            env = make_env(ev.service, groups)
        else:  # a transition announced by control whose every contribution was lost
            sec, ns = ev.time or (0, 0)
            env = make_env(ev.service, 0)
        _DGRAM.pack_into(out, 0, ns, sec, env, event_src(self.builder_id), damage & 0xFFFF, 0,
                         size - 12)
        if pool is not None:
            for part in ev.parts.values():
                if part is not inplace:
                    pool.put(part.buf)
            ev.parts.clear()
        return BuiltEvent(ev.key, ev.service, out, missing, pool)


def _segment_damage(dg: Dgram) -> int:
    return struct.unpack_from("<H", dg.buf, dg.offset + 28)[0]
