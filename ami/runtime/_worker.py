"""The worker process: a source, the graph's per-event stage, contributions to a collector.

Before reading, the worker says hello to the manager and gets the current graph; it announces
its sources at every Configure and takes graph updates from the manager's publisher.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import zmq

from ami.comm import (
    Command,
    GraphUpdate,
    Reply,
    Security,
    StopFlag,
    WireError,
    connected,
    recv,
    send,
)
from ami.graph import Graph, GraphError
from daq.xtc import TransitionId

from ._source import Source, open_source
from ._worker_core import WorkerCore

log = logging.getLogger("ami.worker")


@dataclass
class WorkerConfig:
    """What a worker reads and whom it talks to."""

    worker_id: str
    source: str
    manager: str
    graph: str
    collector: str
    index: int = 0
    count: int = 1
    hz: float = 10.0
    grace: float = 0.5  #: live sources: how long after its end an idle heartbeat is closed
    hello_timeout: float = 30.0
    calib_dir: str | None = None  #: constants store: offer DET:calib and DET:image sources
    calib_run: int | None = None  #: run whose constants apply (None: the newest valid ones)
    security: Security = field(default_factory=Security)


class _Link:
    """The worker's sockets: DEALER to the manager, SUB for graphs, PUSH to its collector."""

    def __init__(self, cfg: WorkerConfig, ctx: zmq.Context[Any]) -> None:
        self.dealer = connected(ctx, zmq.DEALER, cfg.manager, cfg.security)
        self.sub = connected(ctx, zmq.SUB, cfg.graph, cfg.security)
        self.sub.subscribe(b"graph")
        self.push = connected(ctx, zmq.PUSH, cfg.collector, cfg.security, hwm=100, linger=2000)
        self.dropped = 0

    def close(self) -> None:
        for s in (self.dealer, self.sub, self.push):
            s.close()



def _calib_deriver(cfg: WorkerConfig) -> Any:
    """{det_name: det_type} -> derived sources from the constants store, or None."""
    if not cfg.calib_dir:
        return None
    from calib import CalibSources

    sources = CalibSources(cfg.calib_dir)
    run = cfg.calib_run if cfg.calib_run is not None else LATEST_RUN

    def derive(detectors: dict[str, str]) -> dict[str, Any]:
        out = sources.for_run(detectors, run)
        for problem in sources.problems.values():
            log.warning("%s", problem)
        return out

    return derive


LATEST_RUN = 999_999  #: without a run number, constants valid for the newest runs apply

def _take_graph(core: WorkerCore, update: GraphUpdate) -> None:
    try:
        core.set_graph(Graph.from_dict(update.graph), update.graph_version, update.apply_from)
    except GraphError as exc:
        core.graph_error = str(exc)


def _hello(cfg: WorkerConfig, link: _Link, core: WorkerCore, stop: StopFlag) -> bool:
    send(link.dealer, Command(cmd="hello", args={"name": cfg.worker_id, "role": "worker"}))
    t0 = time.monotonic()
    while not link.dealer.poll(100):
        if stop.is_set():
            return False
        if time.monotonic() - t0 > cfg.hello_timeout:
            raise TimeoutError(f"worker {cfg.worker_id}: no answer from the manager at "
                               f"{cfg.manager} within {cfg.hello_timeout} s")
    reply = recv(link.dealer, expect=(Reply,))
    if reply.ok and isinstance(reply.result, dict) and reply.result.get("version", 0) > 0:
        r = reply.result
        _take_graph(core, GraphUpdate(graph_version=r["version"], graph=r["graph"]))
    return True


def _send(link: _Link, core: WorkerCore, msg: Any, block: bool, stop: StopFlag) -> None:
    """Send; recorded data waits for the collector (until stopped), live data is dropped."""
    while not send(link.push, msg, block=False):
        if not block or stop.is_set():
            core.counters["dropped"] += 1
            return
        link.push.poll(100, zmq.POLLOUT)


def _announce(cfg: WorkerConfig, link: _Link, core: WorkerCore, stop: StopFlag) -> None:
    """Tell the manager our sources and wait for its answer, so that the graph update it
    publishes for them is on its way before our first contribution."""
    sources = {n: s.to_dict() for n, s in core.sources.items()}
    send(link.dealer, Command(cmd="announce", args={"name": cfg.worker_id, "sources": sources}))
    t0 = time.monotonic()
    while not stop.is_set() and time.monotonic() - t0 < cfg.hello_timeout:
        if link.dealer.poll(100):
            with contextlib.suppress(WireError):
                recv(link.dealer, expect=(Reply,))
            return


def _poll_control(link: _Link, core: WorkerCore) -> None:
    while link.sub.poll(0):
        try:
            _take_graph(core, recv(link.sub, topic=True, expect=(GraphUpdate,)))
        except WireError:
            continue
    while link.dealer.poll(0):
        try:
            recv(link.dealer, expect=(Reply,))  # acknowledgements of announcements
        except WireError:
            continue


def run_worker(cfg: WorkerConfig, stop: StopFlag | None = None,
               source: Source | None = None) -> int:
    """Run one worker until its source ends or it is stopped."""
    stop = stop or StopFlag()
    source = source or open_source(cfg.source, cfg.index, cfg.count)
    ctx = zmq.Context()
    link = _Link(cfg, ctx)
    core = WorkerCore(cfg.worker_id, cfg.hz, live=source.live, grace=cfg.grace,
                      derive=_calib_deriver(cfg))
    block = not source.live  # recorded data waits for the collector; live data is dropped
    try:
        if not _hello(cfg, link, core, stop):
            return 0
        _send(link, core, core.progress(), block, stop)  # our collector now waits for us
        source.open()
        next_check = 0.0
        while not stop.is_set():
            now = time.monotonic()
            try:
                dgram = source.next(timeout=0.05)
            except StopIteration:
                for msg in core.finish():
                    _send(link, core, msg, True, stop)
                break
            if dgram is None:
                msgs = core.idle()
            else:
                msgs = core.on_dgram(dgram)
                if dgram.service == TransitionId.Configure:
                    _announce(cfg, link, core, stop)
            if now >= next_check:
                next_check = now + 0.01
                _poll_control(link, core)
                if dgram is not None:
                    msgs.extend(core.idle(flowing=True))
            for msg in msgs:
                _send(link, core, msg, block, stop)
    finally:
        source.close()
        link.close()
        ctx.term()
    return 0
