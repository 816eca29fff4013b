"""A collector's logic, without sockets: contributions of the same heartbeat merged, released
when every live child has passed it (its watermark) or a deadline has passed.

Heartbeats are released in order; a contribution for a heartbeat already released is counted
late and dropped, never mixed into another heartbeat. A child silent for ``missing_after``
seconds is reported missing and no longer waited for; one whose source ended is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ami.comm import NO_HEARTBEAT, Contribution, Done, Progress
from ami.ops import Accumulator

INFINITE = 1 << 62


@dataclass
class _Child:
    watermark: int = NO_HEARTBEAT
    last_seen: float = 0.0
    done: bool = False
    missing: bool = False


@dataclass
class Merged:
    """One heartbeat's merged contributions (for one graph version)."""

    heartbeat: int
    graph_version: int
    events: int = 0
    states: dict[str, Accumulator] = field(default_factory=dict)
    errors: dict[str, list[Any]] = field(default_factory=dict)
    senders: set[str] = field(default_factory=set)
    complete: bool = True

    def add(self, msg: Contribution) -> None:
        self.events += msg.events
        self.senders.add(msg.sender)
        for key, acc in msg.states.items():
            mine = self.states.get(key)
            if mine is None:
                self.states[key] = acc
            else:
                mine.merge(acc)
        for node, (count, text) in msg.errors.items():
            old = self.errors.get(node, [0, ""])
            self.errors[node] = [old[0] + count, text]


@dataclass
class _Pending:
    first: float
    by_version: dict[int, Merged] = field(default_factory=dict)


class Merger:
    """Merges children's contributions by heartbeat; see the module docstring."""

    def __init__(self, *, expected: int = 0, deadline: float = 1.0, missing_after: float = 3.0,
                 max_pending: int = 256, clock: Callable[[], float] = time.monotonic) -> None:
        self.expected = expected
        self.deadline, self.missing_after = deadline, missing_after
        self.max_pending = max_pending
        self.clock = clock
        self.children: dict[str, _Child] = {}
        self.workers: dict[str, dict[str, Any]] = {}  # counters of every worker below
        self.pending: dict[int, _Pending] = {}
        self.released = NO_HEARTBEAT
        self.late = 0  # contributions that came after their heartbeat was released
        self.late_events = 0  # events counted late by the workers
        self.forced = 0  # heartbeats released before every child had reported
        self.merge_errors = 0
        self._started = clock()

    def _child(self, sender: str) -> _Child:
        child = self.children.get(sender)
        if child is None:
            child = self.children[sender] = _Child()
        child.last_seen = self.clock()
        if child.missing:
            child.missing = False
        return child

    def receive(self, msg: Contribution | Progress | Done) -> None:
        """Take one message from a child."""
        child = self._child(msg.sender)
        self.workers.update(msg.workers)
        if isinstance(msg, Done):
            child.done, child.watermark = True, INFINITE
            return
        self.late_events += msg.late
        child.watermark = max(child.watermark, msg.watermark)
        if isinstance(msg, Progress):
            return
        if msg.heartbeat <= self.released:
            self.late += 1
            return
        pending = self.pending.get(msg.heartbeat)
        if pending is None:
            pending = self.pending[msg.heartbeat] = _Pending(self.clock())
        merged = pending.by_version.get(msg.graph_version)
        if merged is None:
            merged = pending.by_version[msg.graph_version] = Merged(msg.heartbeat,
                                                                    msg.graph_version)
        try:
            merged.add(msg)
        except (TypeError, ValueError):
            self.merge_errors += 1

    def _waiting(self) -> list[_Child]:
        now = self.clock()
        for name, child in self.children.items():
            if not child.done and not child.missing and now - child.last_seen > self.missing_after:
                child.missing = True
                self.workers.setdefault(name, {})["state"] = "missing"
        return [c for c in self.children.values() if not (c.done or c.missing)]

    @property
    def all_known(self) -> bool:
        return len(self.children) >= self.expected

    @property
    def finished(self) -> bool:
        """Every expected child is done (or missing) and nothing is pending, and at least one
        really finished: children that are only silent (a live source's workers busy compiling
        or starved) never end a collector."""
        self._waiting()
        children = self.children.values()
        return (self.all_known and bool(self.children) and not self.pending
                and all(c.done or c.missing for c in children)
                and any(c.done for c in children))

    def release(self) -> list[Merged]:
        """The heartbeats ready now, oldest first."""
        out: list[Merged] = []
        waiting = self._waiting()
        now = self.clock()
        joined = self.all_known or now - self._started > self.missing_after
        while self.pending:
            k = min(self.pending)
            pending = self.pending[k]
            complete = joined and all(c.watermark >= k for c in waiting)
            overdue = joined and now - pending.first >= self.deadline
            if not (complete or overdue or len(self.pending) > self.max_pending):
                break
            del self.pending[k]
            self.released = k
            if not complete:
                self.forced += 1
            for merged in pending.by_version.values():
                merged.complete = complete
                out.append(merged)
        return out

    def watermark(self) -> int:
        """Nothing more will be released for heartbeats up to this."""
        if not self.children:
            return self.released
        waiting = self._waiting()
        lowest = min((c.watermark for c in waiting), default=INFINITE)
        if not self.all_known:
            lowest = min(lowest, NO_HEARTBEAT)
        if self.pending:
            lowest = min(lowest, min(self.pending) - 1)
        return max(self.released, lowest)

    def statistics(self) -> dict[str, Any]:
        return {"late": self.late, "late_events": self.late_events, "forced": self.forced,
                "pending": len(self.pending), "merge_errors": self.merge_errors,
                "children": {n: ("done" if c.done else "missing" if c.missing else "ok")
                             for n, c in self.children.items()}}
