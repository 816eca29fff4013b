"""Server and clients in one process: delivery, modes, drop policy, refusals, life cycle."""

from __future__ import annotations

import os
import socket
import stat
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from daq.xtc import Dgram, ParentBlock, RawBlock, TransitionId, event_src, make_dgram, segment_src
from shmem import (
    AttachRefusedError,
    ServerGoneError,
    ServerNotFoundError,
    ShmemClient,
    ShmemServer,
    TagInUseError,
    status,
)
from shmem._layout import segment_path, socket_path

from .conftest import event, transition

T = TransitionId
Factory = Callable[..., ShmemServer]


def drain(c: ShmemClient) -> list[Dgram]:
    out = []
    while (dg := c.next(timeout=0.05)) is not None:
        out.append(Dgram(bytes(dg.memoryview())))  # a copy outlives the release
    c.release()
    return out


def names(dgs: list[Dgram]) -> list[str]:
    return [T.name_of(d.service) for d in dgs]


def begin(srv: ShmemServer) -> None:
    for t in (T.Configure, T.BeginRun, T.BeginStep, T.Enable):
        srv.put(transition(t))


def test_late_joiner_gets_cached_transitions_first(server: Factory, shm_dir: Path) -> None:
    srv = server()
    begin(srv)
    srv.put(event(1))  # nobody attached: not stored
    srv.put(transition(T.Disable))
    srv.put(transition(T.Enable))
    with ShmemClient("t", directory=shm_dir) as c:
        srv.put(event(2))
        srv.put(transition(T.SlowUpdate))
        got = drain(c)
    assert names(got) == ["Configure", "BeginRun", "BeginStep", "Enable", "L1Accept",
                          "SlowUpdate"]
    assert got[4].nanoseconds == 2


def test_put_accepts_dgram_bytes_memoryview_and_encoded(server: Factory, shm_dir: Path) -> None:
    srv = server()
    with ShmemClient("t", directory=shm_dir) as c:
        raw = event(7, 300)
        srv.put(raw)
        srv.put(memoryview(bytearray(raw)))
        srv.put(Dgram(b"\0" * 8 + raw, 8))
        srv.put(transition(T.SlowUpdate))
        got = drain(c)
    assert [bytes(d.memoryview()) for d in got[:3]] == [raw] * 3
    assert names(got)[3] == "SlowUpdate"
    encoded = make_dgram(T.L1Accept, 3, 4, [ParentBlock(segment_src(1), [RawBlock(
        struct.pack("<IHHI", segment_src(1), 0, 3, 12 + 8) + b"x" * 8)])],
        root_src=event_src(0))
    with ShmemClient("t", directory=shm_dir) as c:  # every path: put, put_many, general
        srv.put(encoded)
        srv.put_many([encoded, encoded])
        with ShmemClient("t", "d", "distributed", directory=shm_dir) as d:
            srv.put(encoded)
            assert [bytes(x.memoryview()) for x in drain(d)] == [encoded.tobytes()]
        assert [bytes(x.memoryview()) for x in drain(c)] == [encoded.tobytes()] * 4
    with pytest.raises(ValueError):
        srv.put(raw[:20])


def test_reads_are_zero_copy_and_read_only(server: Factory, shm_dir: Path) -> None:
    srv = server()
    with ShmemClient("t", directory=shm_dir) as c:
        srv.put(event(5))
        msg = c.take(timeout=1)
        assert msg is not None
        with msg:
            view = msg.dgram.memoryview()
            assert view.readonly
            arr = np.frombuffer(view, np.uint8)
            assert not arr.flags.writeable
            assert msg.intact()
        assert c.statistics()["delivered"] == 1


def test_shared_members_each_see_every_event(server: Factory, shm_dir: Path) -> None:
    srv = server()
    with ShmemClient("t", "mon", directory=shm_dir) as a, \
            ShmemClient("t", "mon", directory=shm_dir) as b:
        for i in range(5):
            srv.put(event(i))
        assert [d.nanoseconds for d in drain(a)] == list(range(5))
        assert [d.nanoseconds for d in drain(b)] == list(range(5))


def test_distributed_round_robin_and_several_groups(server: Factory, shm_dir: Path) -> None:
    srv = server()
    with ShmemClient("t", "ami", "distributed", directory=shm_dir) as w1, \
            ShmemClient("t", "ami", "distributed", directory=shm_dir) as w2, \
            ShmemClient("t", "mon", directory=shm_dir) as m:
        srv.put(transition(T.Configure))
        for i in range(6):
            srv.put(event(i))
        g1, g2, gm = drain(w1), drain(w2), drain(m)
    assert names(g1)[0] == names(g2)[0] == names(gm)[0] == "Configure"
    assert [d.nanoseconds for d in g1[1:]] == [0, 2, 4]
    assert [d.nanoseconds for d in g2[1:]] == [1, 3, 5]
    assert len(gm) == 7


def test_full_client_loses_its_oldest_queued_events_and_accounting_is_exact(
        server: Factory, shm_dir: Path) -> None:
    srv = server(n_buffers=4)
    with ShmemClient("t", directory=shm_dir) as c:
        for i in range(10):
            assert srv.put(event(i))
        got = [d.nanoseconds for d in drain(c)]
        st = srv.statistics()["clients"][0]
    assert got == [6, 7, 8, 9]  # the freshest win
    assert st["delivered"] == 4 and st["dropped"] == 6 and st["offered"] == 10
    assert st["queued"] == st["held"] == 0


def test_held_buffers_are_never_reused(server: Factory, shm_dir: Path) -> None:
    srv = server(n_buffers=3)
    with ShmemClient("t", directory=shm_dir) as c:
        for i in range(3):
            srv.put(event(i, 1000))
        held = [c.take(timeout=1) for _ in range(3)]
        before = [bytes(m.dgram.memoryview()) for m in held if m is not None]
        for i in range(3, 20):
            assert not srv.put(event(i, 1000))  # no buffer can be taken back: dropped
        assert [bytes(m.dgram.memoryview()) for m in held if m is not None] == before
        assert all(m is not None and m.intact() for m in held)
        st = srv.statistics()
        assert st["unrouted"] == 17 and st["clients"][0]["held"] == 3
        for m in held:
            assert m is not None
            m.release()
        srv.put(event(99))
        assert [d.nanoseconds for d in drain(c)] == [99]
        st = srv.statistics()["clients"][0]
        assert st["delivered"] + st["dropped"] == st["offered"] == 21


def test_slow_shared_client_does_not_starve_a_fast_one(server: Factory,
                                                       shm_dir: Path) -> None:
    srv = server(n_buffers=4)
    with ShmemClient("t", "a", directory=shm_dir) as slow, \
            ShmemClient("t", "b", directory=shm_dir) as fast:
        for i in range(50):
            srv.put(event(i))
            dg = fast.next(timeout=1)
            assert dg is not None and dg.nanoseconds == i
        fast.release()
        assert len(drain(slow)) == 4
        st = {c["group"]: c for c in srv.statistics()["clients"]}
    assert st["b"]["delivered"] == 50
    assert st["a"]["delivered"] + st["a"]["dropped"] == 50


def test_max_clients_and_mode_clash_are_refused(server: Factory, shm_dir: Path) -> None:
    server(max_clients=1)
    with ShmemClient("t", "g", directory=shm_dir), \
            pytest.raises(AttachRefusedError, match="too many clients"):
        ShmemClient("t", "h", directory=shm_dir).open()
    with ShmemClient("t", "g", directory=shm_dir):
        pass
    srv2 = server("u", max_clients=4)
    with ShmemClient("u", "g", "shared", directory=shm_dir), \
            pytest.raises(AttachRefusedError, match="shared"):
        ShmemClient("u", "g", "distributed", directory=shm_dir).open()
    assert srv2.statistics()["refused"] == 1


def test_malformed_control_messages_are_ignored_and_counted(server: Factory,
                                                            shm_dir: Path) -> None:
    srv = server()
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.connect(str(socket_path("t", shm_dir)))
        for junk in (b"\xc1", b"hello", b"\x81\xa1v\x02", b"\x82\xa1v\x01\xa2op\xa4zzzz"):
            s.send(junk)
        s.send(b"\x83\xa1v\x01\xa2op\xa6attach\xa5group\x01")  # bad group, no fd
        s.settimeout(5)
        assert b"refused" in s.recv(4096)
    with ShmemClient("t", directory=shm_dir) as c:  # still serving
        srv.put(event(1))
        assert c.next(timeout=1) is not None
    assert status("t", directory=shm_dir)["bad_messages"] == 5


def test_files_are_private_by_default_and_group_readable_on_request(
        server: Factory, shm_dir: Path) -> None:
    server("p")
    server("g", group_access=True)
    assert stat.S_IMODE(os.stat(segment_path("p", shm_dir)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(socket_path("p", shm_dir)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(segment_path("g", shm_dir)).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(socket_path("g", shm_dir)).st_mode) == 0o660


def test_second_server_refused_stale_segment_replaced(server: Factory, shm_dir: Path) -> None:
    srv = server()
    with pytest.raises(TagInUseError):
        ShmemServer("t", buffer_size=4096, directory=shm_dir).open()
    srv.close()
    assert not segment_path("t", shm_dir).exists()
    # a crashed server leaves its files behind, with nobody holding the lock
    segment_path("t", shm_dir).write_bytes(b"\0" * 4096)
    socket_path("t", shm_dir).write_bytes(b"")
    with ShmemServer("t", buffer_size=4096, directory=shm_dir) as again:
        assert again.is_open


def test_server_gone_then_attach_to_a_new_one(server: Factory, shm_dir: Path) -> None:
    with pytest.raises(ServerNotFoundError):
        ShmemClient("t", directory=shm_dir).open()
    srv = server()
    c = ShmemClient("t", directory=shm_dir).open()
    try:
        srv.put(event(1))
        srv.close()
        assert c.next(timeout=1) is not None  # what was queued is still readable
        with pytest.raises(ServerGoneError):
            c.next(timeout=5)
    finally:
        c.close()
    srv2 = server()
    with ShmemClient("t", directory=shm_dir) as c2:
        srv2.put(event(2))
        dg = c2.next(timeout=1)
        assert dg is not None and dg.nanoseconds == 2


def test_blocking_wait_is_woken_by_put(server: Factory, shm_dir: Path) -> None:
    srv = server()
    with ShmemClient("t", directory=shm_dir, spin=0) as c:
        assert c.next(timeout=0.01) is None
        got: list[Dgram | None] = []
        t = threading.Thread(target=lambda: got.append(c.next(timeout=10)))
        t.start()
        srv.put(event(42))
        t.join(10)
        assert [d.nanoseconds for d in got if d is not None] == [42]


def test_put_many_and_take_many_deliver_in_order_with_exact_accounting(
        server: Factory, shm_dir: Path) -> None:
    srv = server(n_buffers=8)
    with ShmemClient("t", directory=shm_dir) as c:
        assert srv.put_many([transition(T.Configure), *(event(i) for i in range(5)),
                             transition(T.SlowUpdate)]) == 7
        batch = c.take_many(100, timeout=1)
        assert batch is not None and len(batch) == 7
        assert names(list(batch)) == ["Configure"] + ["L1Accept"] * 5 + ["SlowUpdate"]
        assert [d.nanoseconds for d in batch[1:6]] == list(range(5))
        view = batch[1].memoryview()
        assert view.readonly and bytes(view) == event(0)  # zero copy, read only
        assert batch.intact()
        assert c.statistics()["held"] == 7
        assert srv.statistics()["clients"][0]["held"] == 5
        batch.release()
        batch.release()  # twice is harmless
        assert c.take_many(10, timeout=0) is None
        # a full client: the freshest events win, exactly counted
        assert srv.put_many(event(i) for i in range(10, 30)) == 20
        with c.take_many(3, timeout=1) as first:  # at most max_n
            assert [d.nanoseconds for d in first] == [22, 23, 24]
        rest = drain(c)
        st = srv.statistics()["clients"][0]
    assert [d.nanoseconds for d in rest] == list(range(25, 30))
    assert st["delivered"] == 13 and st["offered"] == 25
    assert st["delivered"] + st["dropped"] == st["offered"]
    assert st["queued"] == st["held"] == 0 and st["transitions"] == 2


def test_batches_messages_and_next_release_in_ring_order(server: Factory,
                                                         shm_dir: Path) -> None:
    srv = server(n_buffers=4)
    with ShmemClient("t", directory=shm_dir) as c:
        for i in range(3):
            srv.put(event(i))
        first = c.next(timeout=1)  # held until the next call to next()
        assert first is not None and first.nanoseconds == 0
        msg = c.take(timeout=1)
        batch = c.take_many(10, timeout=1)
        assert msg is not None and batch is not None and len(batch) == 1
        batch.release()
        msg.release()
        assert c.statistics()["released"] == 0  # the oldest one is still out
        assert srv.statistics()["clients"][0]["held"] == 3
        assert c.next(timeout=0) is None  # releases the first: everything goes back
        assert c.statistics()["released"] == 3
        assert srv.statistics()["free_buffers"] == 4
        # buffers held in a batch are never reused
        srv.put_many([event(i) for i in range(10, 14)])
        held = c.take_many(10, timeout=1)
        assert held is not None and len(held) == 4
        assert srv.put_many([event(i) for i in range(20, 30)]) == 0
        assert [d.nanoseconds for d in held] == [10, 11, 12, 13] and held.intact()
        held.release()
        st = srv.statistics()["clients"][0]
    assert st["delivered"] + st["dropped"] == st["offered"] == 17


def test_put_many_to_distributed_and_shared_groups(server: Factory, shm_dir: Path) -> None:
    srv = server()
    with ShmemClient("t", "ami", "distributed", directory=shm_dir) as w1, \
            ShmemClient("t", "ami", "distributed", directory=shm_dir) as w2, \
            ShmemClient("t", "mon", directory=shm_dir) as m:
        srv.put_many([event(i) for i in range(6)])
        got = [[d.nanoseconds for d in drain(c)] for c in (w1, w2, m)]
    assert got == [[0, 2, 4], [1, 3, 5], list(range(6))]


def test_put_many_stops_at_a_bad_dgram_and_keeps_what_came_before(
        server: Factory, shm_dir: Path) -> None:
    srv = server()
    with ShmemClient("t", directory=shm_dir) as c:
        with pytest.raises(ValueError):
            srv.put_many([event(1), event(2)[:20], event(3)])
        assert [d.nanoseconds for d in drain(c)] == [1]


def test_blocking_take_many_is_woken_by_put_many(server: Factory, shm_dir: Path) -> None:
    srv = server()
    with ShmemClient("t", directory=shm_dir, spin=0) as c:
        assert c.take_many(10, timeout=0.01) is None
        got: list[int] = []

        def reader() -> None:
            batch = c.take_many(10, timeout=10)
            if batch is not None:
                got.extend(d.nanoseconds for d in batch)
                batch.release()

        t = threading.Thread(target=reader)
        t.start()
        srv.put_many([event(7), event(8)])
        t.join(10)
        assert got[:1] == [7]


def test_wake_fd_must_be_an_eventfd(server: Factory, shm_dir: Path) -> None:
    srv = server()
    r, w = os.pipe()  # a pipe could block the producer: refused
    region = os.memfd_create("region")
    try:
        os.ftruncate(region, 4096)
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.connect(str(socket_path("t", shm_dir)))
            req = b"\x84\xa1v\x01\xa2op\xa6attach\xa5group\xa1g\xa4mode\xa6shared"
            socket.send_fds(s, [req], [region, w])
            s.settimeout(5)
            assert b"refused" in s.recv(4096)
    finally:
        for fd in (r, w, region):
            os.close(fd)
    assert srv.statistics()["bad_messages"] == 1


def test_take_back_racing_a_claim_gives_the_event_to_the_client(
        server: Factory, shm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server marks the oldest queued entry to take it back while the client claims it:
    the client waits for the verdict (the entry is its own) and the counts agree."""
    srv = server(n_buffers=2)
    with ShmemClient("t", directory=shm_dir, spin=0) as c:
        srv.put(event(0))
        srv.put(event(1))  # the client's queue is full
        got: list[Dgram | None] = []
        reader = threading.Thread(target=lambda: got.append(c.next(timeout=5)))
        barrier = srv._barrier

        def racing_barrier() -> None:  # between the server's mark and its look at `read`
            if sys._getframe(1).f_code.co_name == "_make_room" and not reader.is_alive():
                reader.start()  # the client claims entry 0 and finds the mark
                deadline = time.monotonic() + 5
                while srv._clients[0].read() == 0 and time.monotonic() < deadline:
                    threading.Event().wait(0.001)
            barrier()

        monkeypatch.setattr(srv, "_barrier", racing_barrier)
        assert not srv.put(event(2))  # nothing could be taken back: dropped for the client
        reader.join(10)
        assert [d.nanoseconds for d in got if d is not None] == [0]
        rest = [d.nanoseconds for d in drain(c)]
        st = srv.statistics()
    assert rest == [1]
    assert st["take_back_races"] == 1 and st["taken_back"] == 0
    cl = st["clients"][0]
    assert cl["skipped"] == cl["taken_back"] == 0
    assert cl["delivered"] == 2 and cl["offered"] == 3
    assert cl["delivered"] + cl["dropped"] == cl["offered"]
