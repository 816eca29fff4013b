"""Shared-memory ring: big events to distributed/shared clients, small-event rate, latency."""

from __future__ import annotations

import multiprocessing as mp
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from daq.xtc import (
    DataType,
    Decoder,
    EncodedDgram,
    Field,
    Names,
    NamesBlock,
    ParentBlock,
    RawBlock,
    ShapesDataBlock,
    TransitionId,
    TypeId,
    event_src,
    make_dgram,
    segment_src,
)
from shmem import ShmemClient, ShmemServer

from ._common import Result

SUITE = "shmem"
CSPAD_SHAPE = (32, 185, 388)  # 4.6 MB of int16
_TIME = struct.Struct("<II")  # nanoseconds, seconds of a dgram header


def _cspad() -> tuple[EncodedDgram, list[bytes]]:
    names = Names.create("cspad", "cspad", [Field("raw", DataType.INT16, 3)], node_id=1,
                         index=0)
    cfg = make_dgram(TransitionId.Configure, 1, 0, [ParentBlock(segment_src(1),
                     [NamesBlock(names)])], root_src=event_src(0))
    frames = [np.full(CSPAD_SHAPE, k, np.int16) for k in range(2)]
    events = [make_dgram(TransitionId.L1Accept, 2, k, [ParentBlock(segment_src(1), [
        ShapesDataBlock(names, (f,))])], root_src=event_src(0)).tobytes()
        for k, f in enumerate(frames)]
    return cfg, events


def _small(size: int = 1000) -> bytearray:
    n = size - 24 - 12 - 12  # dgram header, segment Parent, the raw xtc's header
    raw = RawBlock(struct.pack("<IHHI", segment_src(1), 0, TypeId.Data, 12 + n) + b"\0" * n)
    return bytearray(make_dgram(TransitionId.L1Accept, 0, 0, [ParentBlock(segment_src(1), [raw])],
                                root_src=event_src(0)).tobytes())


def _transition(t: TransitionId) -> bytes:
    return make_dgram(t, 1, 0, root_src=event_src(0)).tobytes()


_DISABLE = int(TransitionId.Disable)
_CONFIGURE = int(TransitionId.Configure)
_L1 = int(TransitionId.L1Accept)
BATCH = 32  # dgrams per put_many / most per take_many in the batch rows


def _cpus() -> tuple[int | None, int | None]:
    """(producer CPU, client CPU): two different CPUs we may use, or (None, None)."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


@contextmanager
def _pinned(cpu: int | None) -> Iterator[None]:
    """This process on ``cpu`` alone meanwhile (nothing if None)."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _busy() -> float:
    """CPU-seconds the machine's CPUs have been busy so far (or stolen by the host)."""
    with open("/proc/stat") as fh:
        t = [int(x) for x in fh.readline().split()[1:9]]
    return (t[0] + t[1] + t[2] + t[5] + t[6] + t[7]) / os.sysconf("SC_CLK_TCK")


class _Load:
    """How busy the machine was around a measurement, for the notes: the load average and
    the CPU pressure (``some avg10``) at the start, and the CPUs other tasks used meanwhile
    (the machine's busy time less this process's and the clients')."""

    def __init__(self) -> None:
        self.load = os.getloadavg()[0]
        try:
            with open("/proc/pressure/cpu") as fh:
                self.psi = fh.readline().split()[1].split("=")[1] + " %"
        except (OSError, IndexError):
            self.psi = "n/a"
        self.t0, self.busy0, self.own0 = time.perf_counter(), _busy(), time.process_time()

    def note(self, clients_cpu: float) -> str:
        dt = time.perf_counter() - self.t0
        others = _busy() - self.busy0 - (time.process_time() - self.own0) - clients_cpu
        return (f"load {self.load:.2f}, PSI {self.psi}, other tasks "
                f"{max(others, 0.0) / dt:.2f} CPU")


def _client_main(tag: str, group: str, mode: str, kind: str, conn: Connection,
                 core: int | None = None, spin: float | None = None) -> None:
    """A client process (on CPU ``core`` alone if given): reads until Disable, then sends
    back what it measured."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    decoder = Decoder()
    lat: list[int] = []
    n = nbytes = 0
    t0 = t1 = 0.0
    cpu0 = 0.0
    with ShmemClient(tag, group, mode, name=f"bench-{kind}", spin=spin) as client:
        conn.send("ready")
        if kind == "small-batch":  # take_many: every ready dgram in one pass
            done = False
            while not done:
                batch = client.take_many(BATCH)
                assert batch is not None
                with batch:
                    for dg in batch:
                        service = dg.service
                        if service == _L1:
                            if n == 0:
                                t0, cpu0 = time.perf_counter(), time.process_time()
                            n += 1
                            nbytes += dg.size
                        elif service == _DISABLE:
                            done = True
                            break
            t1 = time.perf_counter()
        else:
            for dg in client:
                service = dg.service
                if service != _L1:
                    if service == _DISABLE:
                        break
                    if service == _CONFIGURE:
                        decoder.decode(dg)
                    continue
                if n == 0:
                    t0, cpu0 = time.perf_counter(), time.process_time()
                n += 1
                nbytes += dg.size
                if kind == "big":
                    arr = decoder.decode(dg).items[0].values["raw"]  # zero-copy view
                    nbytes += int(arr[0, 0, 0]) * 0 + int(arr[-1, -1, -1]) * 0
                    t1 = time.perf_counter()
                elif kind == "latency":
                    ns, sec = _TIME.unpack_from(dg.buf, dg.offset)
                    lat.append(time.perf_counter_ns() - (sec * 1_000_000_000 + ns))
            if kind != "big":
                t1 = time.perf_counter()  # at the Disable, which follows the last event
        cpu = time.process_time() - cpu0
        stats = client.statistics()
    conn.send({"n": n, "bytes": nbytes, "dt": t1 - t0, "cpu": cpu, "lat": lat, **stats})


class _Clients:
    """Client processes attached to a server, with a ready handshake; always reaped."""

    def __init__(self, tag: str, specs: list[tuple[str, str, str]], core: int | None = None,
                 spin: float | None = None) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        for group, mode, kind in specs:
            ours, theirs = ctx.Pipe()
            p = ctx.Process(target=_client_main, args=(tag, group, mode, kind, theirs, core, spin),
                            daemon=True)
            p.start()
            theirs.close()
            self.procs.append(p)
            self.conns.append(ours)
        for c in self.conns:
            if not c.poll(30) or c.recv() != "ready":
                raise RuntimeError("benchmark client did not attach")

    def results(self, timeout: float = 60) -> list[dict[str, Any]]:
        out = []
        for c in self.conns:
            if not c.poll(timeout):
                raise RuntimeError("benchmark client did not finish")
            out.append(c.recv())
        return out

    def close(self) -> None:
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()


def _tag(name: str) -> str:
    return f"bench-{name}-{os.getpid()}"


def big_events(n_events: int, specs: list[tuple[str, str, str]]) -> tuple[float, float, str]:
    """(client GB/s summed over clients, producer GB/s, note)."""
    cfg, events = _cspad()
    tag = _tag("big")
    with ShmemServer(tag, n_buffers=16, buffer_size=len(events[0]) + 4096,
                     transition_size=1 << 16) as srv:
        srv.put(cfg)
        clients = _Clients(tag, specs)
        try:
            t0 = time.perf_counter()
            for i in range(n_events):
                srv.put(events[i & 1])
            t_put = time.perf_counter() - t0
            srv.put(_transition(TransitionId.Disable))
            res = clients.results()
        finally:
            clients.close()
    size = len(events[0])
    client_rate = sum(r["bytes"] / r["dt"] for r in res if r["dt"] > 0) / 1e9
    got = [r["n"] for r in res]
    return client_rate, n_events * size / t_put / 1e9, f"delivered {got} of {n_events}"


def small_events(n_events: int, batch: bool = False) -> tuple[float, float, str]:
    """(client events/s, producer events/s, note) for ~1 kB events to one client, producer
    and client on different CPUs; with ``batch``, the producer calls ``put_many`` and the
    client ``take_many``."""
    ev = _small()
    tag = _tag("small")
    mine, theirs = _cpus()
    with ShmemServer(tag, n_buffers=64, buffer_size=4096, transition_size=4096) as srv, \
            _pinned(mine):
        clients = _Clients(tag, [("bench", "shared", "small-batch" if batch else "small")],
                           theirs)
        load = _Load()
        try:
            if batch:
                put_many = srv.put_many
                chunk = [ev] * BATCH
                t0 = time.perf_counter()
                for _ in range(n_events // BATCH):
                    put_many(chunk)
                t_put = time.perf_counter() - t0
                n_events = n_events // BATCH * BATCH
            else:
                put = srv.put
                t0 = time.perf_counter()
                for _ in range(n_events):
                    put(ev)
                t_put = time.perf_counter() - t0
            srv.put(_transition(TransitionId.Disable))
            (res,) = clients.results()
            loaded = load.note(res["cpu"])
        finally:
            clients.close()
    rate = res["n"] / res["dt"] if res["dt"] > 0 else 0.0
    busy = res["cpu"] / res["dt"] if res["dt"] > 0 else 0.0
    return rate, n_events / t_put, (f"delivered {res['n']} of {n_events} ({res['skipped']} "
                                    f"taken back), {len(ev)} B, client on CPU {busy:.0%}, "
                                    f"blocked {res['sleeps']} times; {loaded}")


def latency(n_events: int, period: float = 500e-6, spin: float | None = None,
            idle: bool = False) -> tuple[float, float, float, str]:
    """(p50 us, p99 us, max us, note): put -> client for 1 kB events, one every ``period``,
    producer and client each on a CPU of its own. The producer waits for the next event
    spinning, or with ``idle`` sleeping (then spinning the last 200 us), which leaves its CPU
    to other tasks but makes the next ``put`` run cold; ``spin`` is the client's (None:
    adaptive)."""
    ev = _small()
    tag = _tag("lat")
    mine, theirs = _cpus()
    with ShmemServer(tag, n_buffers=16, buffer_size=4096, transition_size=4096) as srv, \
            _pinned(mine):
        clients = _Clients(tag, [("bench", "shared", "latency")], theirs, spin)
        load = _Load()
        took = np.zeros(n_events, np.int64)  # how long each put took
        try:
            due = time.perf_counter()
            for k in range(n_events):
                due += period
                if idle and due - time.perf_counter() > 300e-6:
                    time.sleep(due - time.perf_counter() - 200e-6)
                while time.perf_counter() < due:  # pacing the producer
                    pass
                t = time.perf_counter_ns()
                _TIME.pack_into(ev, 0, t % 1_000_000_000, t // 1_000_000_000)
                srv.put(ev)
                took[k] = time.perf_counter_ns() - t
            srv.put(_transition(TransitionId.Disable))
            (res,) = clients.results()
            loaded = load.note(res["cpu"])
        finally:
            clients.close()
    lat = np.array(res["lat"], np.float64) / 1e3
    p50, p99 = np.percentile(lat, [50, 99])
    slow = np.count_nonzero(lat > 100) / max(len(lat), 1)
    busy = res["cpu"] / res["dt"] if res["dt"] > 0 else 0.0
    return float(p50), float(p99), float(lat.max()), (
        f"{len(lat)} events, 1 per {period * 1e6:.0f} us, {slow:.1%} over 100 us; put took "
        f"{np.median(took) / 1e3:.1f} us (median); client blocked {res['sleeps']} times, on "
        f"CPU {busy:.0%}; {loaded}")


def run(quick: bool = False) -> list[Result]:
    n_big = 40 if quick else 2000
    n_small = 5_000 if quick else 500_000
    n_lat = 200 if quick else 10_000
    out: list[Result] = []
    c, p, note = big_events(n_big, [("bench", "distributed", "big")])
    out.append(Result(SUITE, "4.6 MB events -> 1 distributed client", c, "GB/s", 5.0,
                      note=f"{note}; producer {p:.1f} GB/s"))
    c, p, note = big_events(n_big, [("bench", "shared", "big"), ("bench", "shared", "big")])
    out.append(Result(SUITE, "4.6 MB events -> 2 shared clients (sum)", c, "GB/s", 5.0,
                      note=f"{note}; producer {p:.1f} GB/s"))
    c, p, note = small_events(n_small, batch=True)
    out.append(Result(SUITE, "1 kB events -> 1 client", c, "events/s", 300_000,
                      note=f"put_many/take_many of {BATCH}; {note}; producer {p:,.0f}/s"))
    c, p, note = small_events(n_small)
    out.append(Result(SUITE, "1 kB events -> 1 client, one at a time", c, "events/s",
                      300_000, note=f"put/next; {note}; producer {p:,.0f}/s"))
    p50, p99, mx, note = latency(n_lat)
    out.append(Result(SUITE, "latency put -> client p50", p50, "us", 20, higher_is_better=False,
                      note=f"producer spinning between events; {note}"))
    out.append(Result(SUITE, "latency put -> client p99", p99, "us", 200,
                      higher_is_better=False, note=f"max {mx:.0f} us"))
    p50, p99, mx, note = latency(n_lat, idle=True)
    out.append(Result(SUITE, "latency p50, producer idle between events", p50, "us",
                      higher_is_better=False, note=f"p99 {p99:.0f} us, max {mx:.0f} us; {note}"))
    return out
