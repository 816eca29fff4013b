"""AMI: a worker's event loop (decode, graph, heartbeats) and heartbeat-to-subscriber latency."""

from __future__ import annotations

import os
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ami.comm import Security, StopFlag, ViewUpdate
from ami.graph import Graph, Node
from ami.runtime import (
    CollectorConfig,
    Endpoints,
    ManagerConfig,
    ResultsClient,
    WorkerConfig,
    WorkerCore,
    run_collector,
    run_manager,
    run_worker,
)
from daq.xtc import (
    EPICS_EPOCH_OFFSET,
    DataType,
    Dgram,
    Field,
    Names,
    NamesBlock,
    ParentBlock,
    ShapesDataBlock,
    TransitionId,
    event_src,
    make_dgram,
    segment_src,
)

from ._common import Result

SUITE = "ami"
_TIME = struct.Struct("<II")  # nanoseconds, seconds at the start of a dgram


def _layout(det: str, shape: tuple[int, ...], dtype: Any) -> tuple[Dgram, list[bytearray]]:
    names = Names.create(det, det, [Field("raw", DataType.DOUBLE if dtype == np.float64
                                          else DataType.UINT16, len(shape))],
                         node_id=1, index=0)
    seg = segment_src(1)
    configure = Dgram(make_dgram(TransitionId.Configure, 0, 0, [ParentBlock(seg, [
        NamesBlock(names)])], root_src=event_src(0)).tobytes())
    rng = np.random.default_rng(1)
    bufs = [bytearray(make_dgram(TransitionId.L1Accept, 0, 0, [ParentBlock(seg, [
        ShapesDataBlock(names, {"raw": (rng.random(shape) * 1000).astype(dtype)})])],
        root_src=event_src(0)).tobytes()) for _ in range(2)]
    return configure, bufs


def _events(bufs: list[bytearray], n: int, t0: float, rate: float = 120.0) -> Iterator[Dgram]:
    for i in range(n):
        buf = bufs[i % len(bufs)]
        t = t0 + i / rate
        _TIME.pack_into(buf, 0, int((t % 1) * 1e9), int(t))
        yield Dgram(buf)


def worker_rate(graph: Graph, det: str, shape: tuple[int, ...], dtype: Any, n: int) -> float:
    """Events/s of one worker's loop (decode, graph, heartbeat reports) over in-memory dgrams."""
    return worker_rates(graph, det, shape, dtype, n)[0]


def worker_rates(graph: Graph, det: str, shape: tuple[int, ...], dtype: Any,
                 n: int) -> tuple[float, float]:
    """Events/s of one worker's loop by the wall clock and by this process's CPU time (the
    second is the steadier figure on a machine that other work shares)."""
    configure, bufs = _layout(det, shape, dtype)
    core = WorkerCore("bench")
    core.on_dgram(configure)
    core.set_graph(graph, 1)
    for d in _events(bufs, 5, 1.0e9):  # warm up (numba compiles)
        core.on_dgram(d)
    t0, c0 = time.perf_counter(), time.process_time()
    reports = 0
    for d in _events(bufs, n, 1.0e9 + 10):
        reports += len(core.on_dgram(d))
    reports += len(core.finish())
    return n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)


def image_graph() -> Graph:
    return Graph((Node("roi", "roi", {"image": "img:raw"},
                       {"r0": 256, "r1": 768, "c0": 256, "c1": 768}),
                  Node("proj", "projection", {"image": "roi.area"})), {"proj": "proj"})


def cspad_graph() -> Graph:
    return Graph((Node("roi", "roi", {"image": "cspad:raw"},
                       {"tile": 3, "r0": 20, "r1": 170, "c0": 50, "c1": 350}),
                  Node("proj", "projection", {"image": "roi.area"}),
                  Node("hist", "histogram1d", {"value": "roi.area"},
                       {"nbins": 200, "lo": 0, "hi": 1000})),
                 {"proj": "proj", "hist": "hist"})


class _LiveSource:
    """Small events at 120 Hz stamped with the wall clock, as from shared memory."""

    live = True

    def __init__(self, duration: float) -> None:
        self.configure, self.bufs = _layout("img", (32, 32), np.float64)
        self.duration = duration
        self._i = -1
        self._t0 = 0.0

    def open(self) -> None:
        self._t0 = time.time()

    def next(self, timeout: float) -> Dgram | None:
        if self._i < 0:
            self._i = 0
            return self.configure
        due = self._t0 + self._i / 120.0
        now = time.time()
        if now - self._t0 > self.duration:
            raise StopIteration
        if due > now:
            time.sleep(min(timeout, due - now))  # real time pacing of a simulated source
            return None
        buf = self.bufs[self._i % 2]
        t = due - EPICS_EPOCH_OFFSET
        _TIME.pack_into(buf, 0, int((t % 1) * 1e9), int(t))
        self._i += 1
        return Dgram(buf)

    def close(self) -> None:
        pass


def latency(duration: float) -> list[float]:
    """Seconds from each heartbeat's end (wall clock) to its view reaching a subscriber."""
    with tempfile.TemporaryDirectory(prefix="amibench") as d:
        ep = Endpoints.ipc(Path(d))
        graph = Path(d) / "g.json"
        Graph((Node("s", "running_sum", {"value": "img:raw"}),), {"s": "s"}).save(graph)
        stop = StopFlag()
        sec = Security()
        threads = [
            threading.Thread(target=run_manager, args=(ManagerConfig(
                ep.command, ep.graph, ep.results, graph_file=str(graph)), stop)),
            threading.Thread(target=run_collector, args=(CollectorConfig(
                "global", ep.collect, results=ep.results, manager=ep.command, graph=ep.graph,
                expected=1, security=sec), stop)),
            threading.Thread(target=run_collector, args=(CollectorConfig(
                "local", ep.local, upstream=ep.collect, expected=1), stop)),
        ]
        for t in threads:
            t.start()
        out: list[float] = []
        try:
            with ResultsClient(ep.results, ["s"], status=True) as sub:
                while sub.next(1.0) is None:
                    pass
                worker = threading.Thread(target=run_worker, args=(WorkerConfig(
                    "w0", "", ep.command, ep.graph, ep.local, grace=0.005), stop,
                    _LiveSource(duration)))
                worker.start()
                threads.append(worker)
                t_end = time.monotonic() + duration + 2
                while time.monotonic() < t_end:
                    msg = sub.next(0.5)
                    if isinstance(msg, ViewUpdate):
                        hb_end = msg.time + 0.1 + EPICS_EPOCH_OFFSET
                        out.append(time.time() - hb_end)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=10)
    return out[1:]


def run(quick: bool) -> list[Result]:
    n_img, n_cspad, dur = (40, 20, 2.0) if quick else (3000, 600, 10.0)
    img, img_cpu = worker_rates(image_graph(), "img", (1024, 1024), np.float64, n_img)
    load = os.getloadavg()[0]
    cspad, cspad_cpu = worker_rates(cspad_graph(), "cspad", (32, 185, 388), np.uint16, n_cspad)
    lat = latency(dur)
    p95 = float(np.percentile(lat, 95)) * 1e3 if lat else float("nan")
    return [
        Result(SUITE, "worker 1024x1024 f8 -> ROI 512x512 -> projection", img, "events/s",
               5000, note=f"{img_cpu:,.0f}/s by CPU time; load average {load:.1f}"),
        Result(SUITE, "worker cspad ROI + projection + histogram", cspad, "events/s", 300,
               note=f"{cspad_cpu:,.0f}/s by CPU time"),
        Result(SUITE, "heartbeat end -> subscriber p95", p95, "ms", 20, higher_is_better=False,
               note=f"{len(lat)} heartbeats, grace 5 ms"),
    ]
