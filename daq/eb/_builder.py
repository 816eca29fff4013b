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

from daq.xtc import Damage, Dgram, Level, TransitionId, event_src, make_env

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


@dataclass(frozen=True)
class BuiltEvent:
    """A retired event: the whole dgram (Event-level root) and what was missing."""

    key: int
    service: int
    data: bytearray
    missing: tuple[int, ...]

    def dgram(self) -> Dgram:
        return Dgram(self.data)


class EventBuilder:
    """Builds events from node contributions (each a dgram whose root holds one Segment Parent).

    ``groups`` maps readout group -> member node ids. ``clock`` gives seconds (monotonic).
    """

    def __init__(self, builder_id: int, groups: dict[int, list[int]], *, timeout: float = 2.0,
                 transition_timeout: float = 30.0, absent_after: int = 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.builder_id = builder_id
        self.groups = {g: frozenset(m) for g, m in groups.items()}
        self.all_nodes = frozenset(n for m in groups.values() for n in m)
        self.timeout = timeout
        self.transition_timeout = max(timeout, transition_timeout)
        self.absent_after = absent_after
        self.clock = clock
        self.counters = BuilderCounters()
        self._pending: dict[int, _Pending] = {}
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
        self._heap.clear()
        self._last_retired = -1
        self._missed.clear()

    def absent(self) -> list[int]:
        """Nodes that missed ``absent_after`` events in a row (e.g. killed): events missing
        only such nodes retire at once instead of each waiting for the timeout."""
        return sorted(n for n, k in self._missed.items() if k >= self.absent_after)

    def add(self, node: int, key: int, contribution: Dgram) -> list[BuiltEvent]:
        """Add one node's contribution for pulse ``key``; returns events retired by it."""
        c = self.counters
        c.contributions += 1
        if node not in self.all_nodes:
            c.unknown_node += 1
            return []
        if key <= self._last_retired:
            c.stale += 1
            self._missed[node] = 0  # late, but alive: stop treating it as absent
            return []
        root = contribution.root
        # exactly one child, the Segment-level Parent of the claimed node
        if root.extent < 24:
            c.malformed += 1
            return []
        k_src, _k_dmg, k_cont, k_ext = _XTC.unpack_from(contribution.buf, root.offset + 12)
        if k_src != _SEGMENT | node or k_cont & 0xFFF != 0 or k_ext != root.extent - 12:
            c.malformed += 1
            return []
        service = contribution.service
        now = self.clock()
        ev = self._pending.get(key)
        if ev is None:
            ev = _Pending(key, service, self.contract(service, contribution.readout_groups), now)
            self._pending[key] = ev
            heapq.heappush(self._heap, key)
        elif ev.service != service:
            c.malformed += 1
            return []
        if node in ev.parts:
            c.duplicates += 1
            return []
        if node not in ev.contract:
            c.unknown_node += 1
            return []
        del root
        self._missed[node] = 0
        ev.parts[node] = contribution
        if len(ev.parts) == len(ev.contract):
            ev.done = True
            # older events with the same contract can no longer complete in order
            if self._heap[0] != key:
                for other in self._pending.values():
                    if other.key < key and not other.done and other.contract == ev.contract:
                        other.expired = True
        return self._retire(now)

    def expect(self, key: int, service: int, seconds: int, nanoseconds: int) -> list[BuiltEvent]:
        """A transition announced over the reliable control path: it will be retired (with
        every missing node marked) even if none of its contributions arrives."""
        if key <= self._last_retired or service == TransitionId.L1Accept:
            return []
        ev = self._pending.get(key)
        if ev is None:
            ev = _Pending(key, service, self.all_nodes, self.clock())
            self._pending[key] = ev
            heapq.heappush(self._heap, key)
        ev.time = (seconds, nanoseconds)
        return self._retire(self.clock())

    def poll(self) -> list[BuiltEvent]:
        """Retire what timed out (call regularly even when no data arrives)."""
        return self._retire(self.clock())

    def flush(self) -> list[BuiltEvent]:
        """Retire everything still pending (end of a run or shutdown)."""
        for ev in self._pending.values():
            if not ev.done:
                ev.expired = True
        return self._retire(self.clock())

    def _retire(self, now: float) -> list[BuiltEvent]:
        out: list[BuiltEvent] = []
        heap = self._heap
        while heap:
            ev = self._pending[heap[0]]
            if not ev.done:
                if ev.expired:
                    self.counters.superseded += 1
                elif now - ev.first_seen >= (self.timeout if ev.service == TransitionId.L1Accept
                                             else self.transition_timeout):
                    self.counters.timed_out += 1
                elif all(self._missed.get(n, 0) >= self.absent_after
                         for n in ev.contract if n not in ev.parts):
                    self.counters.absent += 1
                else:
                    break
            heapq.heappop(heap)
            del self._pending[ev.key]
            self._last_retired = ev.key
            out.append(self._build(ev))
        return out

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
        out = bytearray(size)
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
            body = part.memoryview()[24:]
            out[pos : pos + len(body)] = body
            pos += len(body)
            damage |= part.damage | _segment_damage(part)
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
        return BuiltEvent(ev.key, ev.service, out, missing)


def _segment_damage(dg: Dgram) -> int:
    return struct.unpack_from("<H", dg.buf, dg.offset + 28)[0]
