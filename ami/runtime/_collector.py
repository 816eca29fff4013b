"""Collector processes: a local collector merges its node's workers and forwards upstream; the
global collector merges the local collectors, runs the per-heartbeat stage and publishes views
(topic ``view:<name>``) and status (topic ``status``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import zmq

from ami.comm import (
    Command,
    Contribution,
    Done,
    GraphUpdate,
    Progress,
    Reply,
    Security,
    StopFlag,
    WireError,
    bound,
    connected,
    recv,
    send,
)

from ._merger import Merger
from ._results import STATUS_TOPIC, Results

_CHILD_MESSAGES = (Contribution, Progress, Done)
SEND_WAIT = 1.0
RESULTS_HWM = 1000  # messages queued per subscriber before the publisher drops


@dataclass
class CollectorConfig:
    """Where a collector listens and what it feeds; exactly one of ``upstream`` (a local
    collector) or ``results`` (the global one, which also needs ``manager`` and ``graph``)."""

    name: str
    listen: str
    upstream: str | None = None
    results: str | None = None
    manager: str | None = None
    graph: str | None = None
    expected: int = 0
    hz: float = 10.0
    deadline: float = 1.0
    missing_after: float = 3.0
    security: Security = field(default_factory=Security)


class _Upstream:
    """Forwarding for a local collector."""

    def __init__(self, cfg: CollectorConfig, ctx: zmq.Context[Any]) -> None:
        assert cfg.upstream is not None
        self.cfg = cfg
        self.push = connected(ctx, zmq.PUSH, cfg.upstream, cfg.security, hwm=1000, linger=2000)
        self.sent_watermark = -2
        self.sent_late = 0
        self.last_sent = 0.0
        self.dropped = 0

    def workers(self, merger: Merger) -> dict[str, dict[str, Any]]:
        own = {"state": "running", "dropped": self.dropped, "incomplete": merger.forced,
               "role": "collector"}
        return {**merger.workers, f"collector:{self.cfg.name}": own}

    def step(self, merger: Merger, released: list[Any]) -> None:
        late_total = merger.late + merger.late_events
        watermark = merger.watermark()
        for i, m in enumerate(released):
            # Promise only what is sent already: the next heartbeat follows this message.
            later = released[i + 1].heartbeat - 1 if i + 1 < len(released) else watermark
            msg = Contribution(sender=self.cfg.name, heartbeat=m.heartbeat,
                               graph_version=m.graph_version, watermark=min(later, watermark),
                               events=m.events, states=m.states, errors=m.errors,
                               workers=self.workers(merger), late=late_total - self.sent_late)
            self._send(msg)
            self.sent_late = late_total
        now = time.monotonic()
        if not released and (watermark > self.sent_watermark
                             or now - self.last_sent > 1.0 / self.cfg.hz):
            self._send(Progress(sender=self.cfg.name, watermark=watermark,
                                workers=self.workers(merger), late=late_total - self.sent_late))
            self.sent_late = late_total
        self.sent_watermark = watermark

    def _send(self, msg: Any) -> None:
        """Send, waiting up to SEND_WAIT s for a busy upstream (back-pressure reaches the
        workers, where live data is dropped at the edge), then drop and count."""
        self.last_sent = time.monotonic()
        if not send(self.push, msg, block=False):
            if self.push.poll(int(SEND_WAIT * 1000), zmq.POLLOUT) and send(self.push, msg,
                                                                           block=False):
                return
            self.dropped += 1

    def finish(self, merger: Merger) -> None:
        send(self.push, Done(sender=self.cfg.name, workers=self.workers(merger)))

    def close(self) -> None:
        self.push.close()


class _Publisher:
    """Publishing for the global collector."""

    def __init__(self, cfg: CollectorConfig, ctx: zmq.Context[Any]) -> None:
        assert cfg.results and cfg.manager and cfg.graph
        self.cfg = cfg
        self.pub = bound(ctx, zmq.PUB, cfg.results, cfg.security, hwm=RESULTS_HWM)
        self.sub = connected(ctx, zmq.SUB, cfg.graph, cfg.security)
        self.sub.subscribe(b"graph")
        self.dealer = connected(ctx, zmq.DEALER, cfg.manager, cfg.security)
        self.results = Results(cfg.hz)
        self.last_status = 0.0
        self.held: list[Any] = []
        self.held_since = 0.0
        send(self.dealer, Command(cmd="hello", args={"name": cfg.name, "role": "collector"}))

    def sockets(self) -> list[zmq.Socket[Any]]:
        return [self.sub, self.dealer]

    def on_socket(self, sock: zmq.Socket[Any]) -> None:
        if sock is self.sub:
            msg = recv(sock, topic=True, expect=(GraphUpdate,))
            self.results.set_graph(msg)
        else:
            reply = recv(sock, expect=(Reply,))
            if reply.ok and isinstance(reply.result, dict) and "graph" in reply.result:
                r = reply.result
                self.results.set_graph(GraphUpdate(graph_version=r["version"], graph=r["graph"],
                                                   sources=r.get("sources", {})))

    def _ready(self, released: list[Any]) -> list[Any]:
        """Released heartbeats in order, holding back (up to the deadline) those of a graph
        version whose update has not arrived yet."""
        now = time.monotonic()
        if released and not self.held:
            self.held_since = now
        self.held.extend(released)
        out: list[Any] = []
        while self.held:
            m = self.held[0]
            known = m.graph_version == 0 or m.graph_version <= self.results.graph_version
            if not known and now - self.held_since < self.cfg.deadline:
                break
            out.append(self.held.pop(0))
            self.held_since = now
        return out

    def step(self, merger: Merger, released: list[Any], finished: bool = False) -> None:
        released = self._ready(released)
        finished = finished and not self.held
        for topic, msg in self.results.publish(released):
            send(self.pub, msg, topic=topic, block=False)
        now = time.monotonic()
        if released or now - self.last_status >= 1.0 / self.cfg.hz:
            self.last_status = now
            send(self.pub, self.results.status(merger, finished=finished),
                 topic=STATUS_TOPIC, block=False)

    def finish(self, merger: Merger) -> None:
        self.step(merger, [], finished=True)

    def close(self) -> None:
        for s in (self.pub, self.sub, self.dealer):
            s.close()


def run_collector(cfg: CollectorConfig, stop: StopFlag | None = None) -> int:
    """Run a collector until stopped (a local one also ends once all its workers are done)."""
    stop = stop or StopFlag()
    ctx = zmq.Context()
    pull = bound(ctx, zmq.PULL, cfg.listen, cfg.security, hwm=1000)
    auth = cfg.security.authenticator(ctx)
    role: _Upstream | _Publisher = (_Upstream(cfg, ctx) if cfg.upstream
                                    else _Publisher(cfg, ctx))
    merger = Merger(expected=cfg.expected, deadline=cfg.deadline,
                    missing_after=cfg.missing_after)
    poller = zmq.Poller()
    for sock in [pull, *(role.sockets() if isinstance(role, _Publisher) else [])]:
        poller.register(sock, zmq.POLLIN)
    done_sent = False
    try:
        while not stop.is_set():
            for sock, _ in poller.poll(timeout=20):
                try:
                    if sock is pull:
                        for _ in range(100):
                            merger.receive(recv(pull, expect=_CHILD_MESSAGES))
                            if not pull.poll(0):
                                break
                    elif isinstance(role, _Publisher):
                        role.on_socket(sock)
                except WireError:
                    merger.merge_errors += 1
            released = merger.release()
            if isinstance(role, _Upstream):
                role.step(merger, released)
                if merger.finished and not done_sent:
                    role.finish(merger)
                    done_sent = True
                    break
            else:
                role.step(merger, released, finished=merger.finished)
    finally:
        role.close()
        pull.close()
        if auth is not None:
            auth.stop()
        ctx.term()
    return 0
