"""The global collector's last step, without sockets: merged heartbeats in, published view
updates and status out. Totals accumulate across heartbeats (since the graph was set); each
published heartbeat also says how many events it merged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import groupby
from typing import Any

from ami.comm import GraphUpdate, Status, ViewUpdate
from ami.graph import Graph, GraphError, HeartbeatStage, Plan, validate
from ami.ops import Registry
from daq.xtc import EPICS_EPOCH_OFFSET

from ._heartbeat import Heartbeats
from ._merger import Merged, Merger

STATUS_TOPIC = b"status"


def view_topic(view: str) -> bytes:
    return f"view:{view}".encode()


def _ancestors(plan: Plan, ref: str) -> set[str]:
    """Nodes a reference depends on (itself included)."""
    by_name = {n.name: n for n in plan.nodes}
    todo, seen = [ref.split(".")[0]], set()
    while todo:
        name = todo.pop()
        node = by_name.get(name)
        if node is None or name in seen:
            continue
        seen.add(name)
        todo.extend(r.split(".")[0] for _, r in node.inputs if ":" not in r)
        if node.filter:
            todo.append(node.filter)
    return seen


class Results:
    """Turns released heartbeats into :class:`ViewUpdate` and :class:`Status` messages."""

    def __init__(self, hz: float = 10.0, registry: Registry | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.heartbeats = Heartbeats(hz)
        self.registry = registry
        self.clock = clock
        self.stages: dict[int, HeartbeatStage] = {}
        self.graph_version = 0
        self.graph_error = ""
        self.published = 0
        self.mismatched = 0
        self.last_heartbeat = -1
        self.last_time = 0.0
        self.last_events = 0
        self.errors: dict[str, list[Any]] = {}
        self._ancestors: dict[int, dict[str, set[str]]] = {}

    def set_graph(self, update: GraphUpdate) -> None:
        """Prepare the stage of a new graph version (keeping unchanged totals)."""
        if update.graph_version in self.stages or update.graph_version < self.graph_version:
            return
        try:
            plan = validate(Graph.from_dict(update.graph), update.sources, self.registry)
        except GraphError as exc:
            self.graph_error = str(exc)
            return
        previous = self.stages.get(self.graph_version)
        self.stages[update.graph_version] = HeartbeatStage(plan, previous)
        self._ancestors[update.graph_version] = {v: _ancestors(plan, r)
                                                 for v, r in plan.views.items()}
        self.graph_version, self.graph_error = update.graph_version, ""
        for old in [v for v in self.stages if v < update.graph_version - 1]:
            del self.stages[old]
            del self._ancestors[old]

    def publish(self, released: list[Merged]) -> list[tuple[bytes, Any]]:
        """(topic, message) pairs for every heartbeat in ``released``."""
        out: list[tuple[bytes, Any]] = []
        for k, group in groupby(released, key=lambda m: m.heartbeat):
            candidates = sorted(group, key=lambda m: m.graph_version)
            usable = [m for m in candidates if m.graph_version in self.stages]
            chosen = usable[-1] if usable else candidates[-1]
            self.mismatched += sum(len(m.senders) for m in candidates if m is not chosen)
            out.extend(self._heartbeat(k, chosen))
        return out

    def _heartbeat(self, k: int, merged: Merged) -> list[tuple[bytes, Any]]:
        t = self.heartbeats.start(k)
        self.last_heartbeat, self.last_time, self.last_events = k, t, merged.events
        self.published += 1
        for node, (count, text) in merged.errors.items():
            old = self.errors.get(node, [0, ""])
            self.errors[node] = [old[0] + count, text]
        stage = self.stages.get(merged.graph_version)
        if stage is None:
            return []
        stage.merge(merged.states)
        values = stage.evaluate(t)
        for node, (count, text) in stage.errors.take().items():
            old = self.errors.get(node, [0, ""])
            self.errors[node] = [old[0] + count, text]
        out: list[tuple[bytes, Any]] = []
        for view, value in values.items():
            nodes = self._ancestors[merged.graph_version].get(view, set())
            error = "; ".join(f"{n}: {merged.errors[n][1]}" for n in sorted(nodes)
                              if n in merged.errors)
            out.append((view_topic(view), ViewUpdate(
                view=view, heartbeat=k, time=t, events=merged.events,
                graph_version=merged.graph_version, value=value, error=error)))
        return out

    def status(self, merger: Merger, *, finished: bool = False) -> Status:
        age = (self.clock() - (self.heartbeats.end(self.last_heartbeat) + EPICS_EPOCH_OFFSET)
               if self.last_heartbeat >= 0 else 0.0)
        stats = merger.statistics()
        workers = {w: dict(c) for w, c in merger.workers.items()}
        errors = dict(self.errors)
        if self.graph_error:
            errors["graph"] = [1, self.graph_error]
        return Status(heartbeat=self.last_heartbeat, time=self.last_time,
                      events=self.last_events, published=self.published, age=age,
                      graph_version=self.graph_version, workers=workers,
                      late=stats["late"] + stats["late_events"],
                      dropped=sum(int(c.get("dropped", 0)) for c in workers.values()),
                      mismatched=self.mismatched,
                      incomplete=stats["forced"] + sum(int(c.get("incomplete", 0))
                                                       for c in workers.values()),
                      errors=errors, finished=finished)
