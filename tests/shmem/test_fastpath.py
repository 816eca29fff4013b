"""put's fast paths (one client, one distributed group, all groups shared) against the general
routing: the same operations on a server with and one without them give the same dgrams to
every client and the same counters."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daq.xtc import TransitionId
from shmem import Batch, Message, ShmemClient, ShmemServer

from .conftest import event, transition

T = TransitionId

# groups of the clients of each configuration: (group, mode)
CONFIGS = {
    "one shared": [("m", "shared")],
    "one distributed": [("w", "distributed")],
    "two distributed": [("w", "distributed"), ("w", "distributed")],
    "three distributed": [("w", "distributed")] * 3,
    "two shared groups": [("a", "shared"), ("b", "shared")],
    "distributed and shared": [("w", "distributed"), ("w", "distributed"), ("m", "shared")],
}


def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for ``cond()`` (a detach is handled by the server's control thread)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        threading.Event().wait(0.002)


def general_only(srv: ShmemServer) -> None:
    """Turn off the fast paths of ``srv``: every dgram goes through the general routing."""
    regroup = srv._regroup

    def no_fast_path() -> None:
        regroup()
        srv._fast_one = srv._fast_group = None
        srv._fast_shared = srv._batch_members = ()

    srv._regroup = no_fast_path  # type: ignore[method-assign]
    no_fast_path()


def counting_general_puts(srv: ShmemServer) -> list[int]:
    """How many events went through the general routing (``_put_event``)."""
    count = [0]
    put_event = srv._put_event

    def counted(src: Any, size: int) -> Any:
        count[0] += 1
        return put_event(src, size)

    srv._put_event = counted  # type: ignore[method-assign]
    return count


def script(seed: int, n_clients: int, n: int = 400) -> list[tuple[Any, ...]]:
    """A random run: puts (events, transitions, batches) and clients reading one at a time,
    holding messages, taking batches and releasing them out of order."""
    rng = random.Random(seed)
    ops: list[tuple[Any, ...]] = [("put", transition(T.Configure)),
                                  ("put", transition(T.BeginRun))]
    i = 0
    for _ in range(n):
        r = rng.random()
        k = rng.randrange(n_clients)
        if r < 0.30:
            ops.append(("put", event(i)))
            i += 1
        elif r < 0.33:
            ops.append(("put_many", [event(i + j) for j in range(rng.randrange(1, 5))]))
            i += 4
        elif r < 0.35:
            ops.append(("put", transition(T.SlowUpdate, ns=i)))
        elif r < 0.72:
            ops.append(("next", k))
        elif r < 0.80:
            ops.append(("take", k))
        elif r < 0.86:
            ops.append(("take_many", k, rng.randrange(1, 6)))
        else:
            ops.append(("release", k, rng.random()))
    ops += [("drain", k) for k in range(n_clients)]
    return ops


def run(srv: ShmemServer, shm_dir: Path, groups: list[tuple[str, str]],
        ops: list[tuple[Any, ...]]) -> tuple[list[list[tuple[int, int]]], dict[str, Any]]:
    """Play ``ops``: what each client read (service, nanoseconds) and the final counters."""
    clients = [ShmemClient(srv.tag, g, m, directory=shm_dir, queue_depth=3, spin=0).open()
               for g, m in groups]
    got: list[list[tuple[int, int]]] = [[] for _ in clients]
    held: list[list[Message | Batch]] = [[] for _ in clients]
    try:
        for op in ops:
            kind = op[0]
            if kind == "put":
                srv.put(op[1])
            elif kind == "put_many":
                srv.put_many(op[1])
            elif kind == "next":
                dg = clients[op[1]].next(timeout=0)
                if dg is not None:
                    got[op[1]].append((dg.service, dg.nanoseconds))
            elif kind == "take":
                msg = clients[op[1]].take(timeout=0)
                if msg is not None:
                    got[op[1]].append((msg.dgram.service, msg.dgram.nanoseconds))
                    held[op[1]].append(msg)
            elif kind == "take_many":
                batch = clients[op[1]].take_many(op[2], timeout=0)
                if batch is not None:
                    got[op[1]] += [(d.service, d.nanoseconds) for d in batch]
                    held[op[1]].append(batch)
            elif kind == "release" and held[op[1]]:
                held[op[1]].pop(int(op[2] * len(held[op[1]]))).release()
            elif kind == "drain":
                c = clients[op[1]]
                for rec in held[op[1]]:
                    rec.release()
                while (dg := c.next(timeout=0)) is not None:
                    got[op[1]].append((dg.service, dg.nanoseconds))
                c.release()
        stats = srv.statistics()
    finally:
        for c in clients:
            c.close()
    for c in stats["clients"]:
        for key in ("id", "name", "pid", "wakes"):
            del c[key]
    del stats["pid"], stats["segment"], stats["tag"]
    return got, stats


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seed", range(4))
def test_fast_paths_route_and_count_as_the_general_one(shm_dir: Path, config: str,
                                                       seed: int) -> None:
    groups = CONFIGS[config]
    ops = script(seed, len(groups))
    results = []
    general_puts = []
    for tag, fast in (("fast", True), ("general", False)):
        with ShmemServer(tag, n_buffers=6, buffer_size=4096, transition_size=4096,
                         directory=shm_dir) as srv:
            if not fast:
                general_only(srv)
            general_puts.append(counting_general_puts(srv))
            results.append(run(srv, shm_dir, groups, ops))
    (got, stats), (got_general, stats_general) = results
    assert got == got_general
    assert stats == stats_general
    assert sum(len(g) for g in got) > 50
    for c in stats["clients"]:  # every client drained: the accounting is exact
        assert c["queued"] == c["held"] == 0
        assert c["delivered"] + c["dropped"] == c["offered"]
    if config != "distributed and shared":  # (mixed groups always route the general way)
        assert general_puts[0][0] < general_puts[1][0]  # the fast paths were taken


def test_fast_path_for_one_client_switches_with_attach_and_detach(server: Any,
                                                                  shm_dir: Path) -> None:
    srv = server(n_buffers=4)
    general = counting_general_puts(srv)
    assert srv._fast_one is None and srv._fast_group is None and not srv._fast_shared
    assert not srv.put(event(0))  # nobody attached: unrouted, counted
    with ShmemClient("t", "w", "distributed", directory=shm_dir, spin=0) as a:
        assert srv._fast_one is srv._clients[0]
        general[0] = 0
        for i in range(100, 120):  # keeping up: the fast path every time
            assert srv.put(event(i))
            dg = a.next(timeout=0)
            assert dg is not None and dg.nanoseconds == i
        a.release()
        assert general[0] == 0
        with ShmemClient("t", "w", "distributed", directory=shm_dir, spin=0) as b:
            assert srv._fast_one is None and srv._fast_group is not None
            for i in range(1, 5):
                assert srv.put(event(i))
            got_b = [a.next(timeout=0), b.next(timeout=0), a.next(timeout=0),
                     b.next(timeout=0)]
            assert [d.nanoseconds for d in got_b if d is not None] == [1, 2, 3, 4]
            with ShmemClient("t", "m", directory=shm_dir, spin=0):
                assert srv._fast_group is None and not srv._fast_shared  # mixed: general
            wait_until(lambda: srv.statistics()["detached"] == 1)
            assert srv._fast_group is not None
            a.release()
            b.release()
        wait_until(lambda: srv.statistics()["detached"] == 2)
        assert srv._fast_one is srv._clients[0] and srv._fast_group is None
        for i in range(5, 15):  # a full client: the oldest queued are taken back
            assert srv.put(event(i))
        got = []
        while (dg := a.next(timeout=0)) is not None:
            got.append(dg.nanoseconds)
        a.release()
        st = srv.statistics()
    assert got == [11, 12, 13, 14]
    cl = st["clients"][0]
    assert cl["delivered"] + cl["dropped"] == cl["offered"] == 32
    assert st["unrouted"] == 1 and st["free_buffers"] == 4


def test_put_checks_sizes_on_the_fast_path(server: Any, shm_dir: Path) -> None:
    srv = server(buffer_size=512)
    with ShmemClient("t", directory=shm_dir, spin=0) as c:
        raw = event(3, 300)
        with pytest.raises(ValueError, match="cannot hold"):
            srv.put(raw[:20])
        with pytest.raises(ValueError, match="300 bytes in a 299-byte buffer"):
            srv.put(raw[:-1])
        assert srv.put(bytearray(raw + b"trailing bytes"))  # only the dgram is copied
        assert not srv.put(event(4, 600))  # larger than the buffers: dropped, counted
        dg = c.next(timeout=0)
        assert dg is not None and bytes(dg.memoryview()) == raw
        assert c.next(timeout=0) is None
        st = srv.statistics()
    assert st["oversize"] == 1
    assert st["clients"][0]["dropped"] == 1 and st["clients"][0]["offered"] == 2
