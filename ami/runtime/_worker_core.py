"""A worker's event loop logic, without sockets: dgrams in, protocol messages out.

Events fold into the graph's per-event stage; when an event of a later heartbeat arrives (or, on
a live source, when the wall clock passes the heartbeat's end plus a grace period) the partial
states of the finished heartbeat leave as one :class:`Contribution`. Graph changes wait for a
heartbeat boundary. An event of a heartbeat already reported is counted late, never mixed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ami.comm import NO_HEARTBEAT, Contribution, Done, Progress
from ami.graph import EventStage, Graph, GraphError, Plan, SourceInfo, sources_from_names, validate
from ami.ops import Registry
from daq.xtc import EPICS_EPOCH_OFFSET, Decoder, Dgram, NamesLookup, TransitionId

from ._heartbeat import Heartbeats

Message = Contribution | Progress | Done
_L1 = TransitionId.L1Accept
_LATCHED = (TransitionId.BeginStep, TransitionId.SlowUpdate, TransitionId.BeginRun,
            TransitionId.Enable)


class WorkerCore:
    """One worker's state: sources, graph, the open heartbeat, counters."""

    def __init__(self, worker_id: str, hz: float = 10.0, *, live: bool = False,
                 grace: float = 0.1, registry: Registry | None = None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 derive: Callable[[dict[str, str]], dict[str, Any]] | None = None) -> None:
        self.worker_id = worker_id
        self.heartbeats = Heartbeats(hz)
        self.live, self.grace = live, grace
        self.registry = registry
        self.clock, self.monotonic = clock, monotonic
        self.sources: dict[str, SourceInfo] = {}
        self.graph: Graph | None = None
        self.graph_version = 0
        self.graph_error = ""
        self.stage: EventStage | None = None
        self._decoder = Decoder()
        self._wanted: dict[int, list[tuple[str, str]]] = {}
        self.derive = derive  # {det_name: det_type} -> {"DET:calib": DerivedSource, ...}
        self._derived: dict[str, Any] = {}
        self._derived_used: list[Any] = []
        self._latched: dict[str, Any] = {}
        self._pending: list[tuple[Graph, int, int]] = []
        self._current: int | None = None
        self._floor = NO_HEARTBEAT  # heartbeats up to here are reported
        self._events = 0  # in the open heartbeat
        self._offset = float(EPICS_EPOCH_OFFSET)  # wall clock minus event time, live sources
        self._last_progress = -1e300
        self.counters: dict[str, Any] = {"events": 0, "rate": 0.0, "late": 0, "dropped": 0,
                                         "errors": 0, "state": "running"}
        self._late_unsent = 0
        self._rate_mark = (monotonic(), 0)

    # -- configuration -----------------------------------------------------------------------
    def configure(self, dgram: Dgram) -> dict[str, SourceInfo]:
        """Learn the sources from a Configure; re-plans the graph for them."""
        lookup = NamesLookup.from_configure(dgram)
        self._decoder = Decoder(lookup)
        self.sources = sources_from_names(lookup.values())
        self._derived = {}
        if self.derive is not None:
            raws = {s.det_name: s.det_type for s in self.sources.values() if s.field == "raw"}
            for name, d in self.derive(raws).items():
                base = self.sources.get(d.raw)
                if base is not None and name not in self.sources:
                    self._derived[name] = d
                    self.sources[name] = SourceInfo(name, d.type, base.det_name, base.det_type,
                                                    base.field, base.alg, base.segment,
                                                    base.names_id)
        self._latched = {}
        if self.graph is not None:
            self._apply(self.graph, self.graph_version)
        return self.sources

    def set_graph(self, graph: Graph, version: int, apply_from: int = NO_HEARTBEAT) -> None:
        """Use ``graph`` from heartbeat ``apply_from`` (or the next boundary) on."""
        if version <= self.graph_version and self.graph is not None:
            return
        if self._current is None and self.counters["events"] == 0:
            self._apply(graph, version)
        else:
            self._pending.append((graph, version, apply_from))

    def _apply(self, graph: Graph, version: int) -> None:
        self.graph, self.graph_version = graph, version
        try:
            plan: Plan | None = validate(graph, {n: s.type for n, s in self.sources.items()},
                                         self.registry)
        except GraphError as exc:
            plan, self.graph_error = None, str(exc)
        else:
            self.graph_error = ""
        self.stage = None if plan is None else EventStage(plan)
        self._wanted = {}
        self._derived_used = []
        for name in () if plan is None else plan.sources:
            d = self._derived.get(name)
            if d is not None:  # computed from its raw source, read under the raw name
                self._derived_used.append(d)
                name = d.raw
            info = self.sources[name]
            entry = (info.field, name)
            wanted = self._wanted.setdefault(info.names_id, [])
            if entry not in wanted:
                wanted.append(entry)

    # -- events ------------------------------------------------------------------------------
    def on_dgram(self, dgram: Dgram) -> list[Message]:
        """Process one dgram; the messages it completes."""
        service = dgram.service
        if service != _L1:
            if service == TransitionId.Configure:
                self.configure(dgram)
            elif service in _LATCHED and self._wanted:
                self._latched.update(self._extract(dgram))
            return []
        k = self.heartbeats.of(dgram.seconds, dgram.nanoseconds)
        out: list[Message] = []
        if self._current is None or k > self._current:
            if k <= self._floor:
                self._late(1)
                return out
            if self._current is not None:
                out.append(self._report(k - 1))
            self._start(k)
        elif k < self._current:
            self._late(1)
            return out
        t = dgram.seconds + dgram.nanoseconds * 1e-9
        if self.live:
            self._offset = self.clock() - t
        self._events += 1
        self.counters["events"] += 1
        if self.stage is not None:
            values = self._extract(dgram)
            if self._latched:
                values = {**self._latched, **values}
            self.stage.process(values, t)
        return out

    def _extract(self, dgram: Dgram) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if not self._wanted:
            return values
        wanted = self._wanted
        for item in self._decoder.decode(dgram).items:
            fields = wanted.get(item.names.names_id)
            if fields:
                v = item.values
                for fld, name in fields:
                    if fld in v:
                        values[name] = v[fld]
        for d in self._derived_used:
            raw = values.get(d.raw)
            if raw is not None:
                try:
                    values[d.name] = d.fn(raw)
                except Exception:  # bad constants must not stop the worker: no value
                    self.counters["errors"] += 1
        return values

    def _late(self, n: int) -> None:
        self.counters["late"] += n
        self._late_unsent += n

    def _start(self, k: int) -> None:
        ready = [p for p in self._pending if p[2] == NO_HEARTBEAT or p[2] <= k]
        if ready:
            graph, version, _ = ready[-1]
            self._pending = [p for p in self._pending if p[1] > version]
            self._apply(graph, version)
        self._current = k
        self._events = 0

    def _report(self, watermark: int) -> Contribution:
        assert self._current is not None
        states = {} if self.stage is None else self.stage.take()
        errors = {} if self.stage is None else self.stage.errors.take()
        self.counters["errors"] += sum(c for c, _ in errors.values())
        msg = Contribution(sender=self.worker_id, heartbeat=self._current,
                           graph_version=self.graph_version, watermark=watermark,
                           events=self._events, states=states, errors=errors,
                           workers={self.worker_id: self._counters()}, late=self._late_unsent)
        self._late_unsent = 0
        self._floor = max(self._floor, watermark, self._current)
        self._current = None
        self._last_progress = self.monotonic()
        return msg

    def _counters(self) -> dict[str, Any]:
        now, events = self.monotonic(), self.counters["events"]
        t0, n0 = self._rate_mark
        if now - t0 >= 0.5:
            self.counters["rate"] = (events - n0) / (now - t0)
            self._rate_mark = (now, events)
        if self.graph_error:
            self.counters["graph_error"] = self.graph_error
        else:
            self.counters.pop("graph_error", None)
        return dict(self.counters)

    # -- time --------------------------------------------------------------------------------
    def idle(self, flowing: bool = False) -> list[Message]:
        """Called when the source had nothing: report by wall clock (live sources) and say
        alive at most once per heartbeat period. While events are ``flowing`` only the alive
        message goes out: the next heartbeat's events close the current one, so a worker that
        is briefly behind (a busy core, a first-event compilation) loses nothing."""
        out: list[Message] = []
        now_event = self.clock() - self._offset - self.grace
        if flowing:
            pass
        elif (self.live and self._current is not None
                and now_event > self.heartbeats.end(self._current)):
            out.append(self._report(self._current))
        if self.live and self._current is None and not flowing:
            floor = self.heartbeats.at(now_event) - 1
            if floor > self._floor:
                self._floor = floor
        if not out and self.monotonic() - self._last_progress >= 1.0 / self.heartbeats.hz:
            out.append(self.progress())
        return out

    def progress(self) -> Progress:
        self._last_progress = self.monotonic()
        late, self._late_unsent = self._late_unsent, 0
        watermark = self._floor if self._current is None else self._current - 1
        return Progress(sender=self.worker_id, watermark=watermark,
                        workers={self.worker_id: self._counters()}, late=late)

    def finish(self) -> list[Message]:
        """The source ended: the open heartbeat, then Done."""
        out: list[Message] = []
        if self._current is not None:
            out.append(self._report(self._current))
        self.counters["state"] = "done"
        out.append(Done(sender=self.worker_id, workers={self.worker_id: self._counters()}))
        return out
