"""Faults with real processes: kill -9, slow readers, server crashes, the command line."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from daq.xtc import (
    DataType,
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
from shmem import ServerGoneError, ShmemClient, ShmemServer

from .conftest import Children, event, transition

T = TransitionId
Factory = Callable[..., ShmemServer]


def wait_until(cond: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``cond()`` held; fails the test after ``timeout``."""
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "condition not met in time"
        threading.Event().wait(0.002)
    return time.monotonic() - t0


@pytest.mark.slow
def test_killed_client_buffers_come_back_and_others_go_on(
        server: Factory, shm_dir: Path, children: Children) -> None:
    srv = server(n_buffers=4)
    holder = children.worker(shm_dir, "t", "hold", "3")
    with ShmemClient("t", "other", directory=shm_dir) as other:
        for i in range(3):
            srv.put(event(i))
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert [other.next(timeout=1) is not None for _ in range(3)] == [True] * 3
        other.release()
        assert [c["held"] for c in srv.statistics()["clients"]] == [3, 0]
        assert srv.statistics()["free_buffers"] == 1
        holder.send_signal(signal.SIGKILL)
        took = wait_until(lambda: srv.statistics()["detached"] == 1, timeout=1.0)
        assert took < 1.0
        assert srv.statistics()["free_buffers"] == 4
        for i in range(3, 10):
            srv.put(event(i))
            dg = other.next(timeout=1)
            assert dg is not None and dg.nanoseconds == i


@pytest.mark.slow
def test_slow_client_slows_neither_producer_nor_fast_client(
        server: Factory, shm_dir: Path, children: Children) -> None:
    srv = server(n_buffers=16)
    srv.put(transition(T.Configure))
    slow = children.worker(shm_dir, "t", "count", "slow", "shared", "0.02")
    fast = children.worker(shm_dir, "t", "count", "fast", "shared", "0")
    n = 200
    for i in range(n):
        assert srv.put(event(i, 2000)) in (True, False)  # returns at once, never waits
        threading.Event().wait(0.001)  # pacing the producer at ~1 kHz
    srv.put(transition(T.Disable))
    out = {}
    for name, p in (("slow", slow), ("fast", fast)):
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
        out[name] = json.loads(stdout.splitlines()[-1])
    wait_until(lambda: srv.statistics()["detached"] == 2, timeout=5)
    # had the producer waited for the slow client, the slow client would have seen every event
    assert out["fast"]["seen"] == list(range(n))
    assert len(out["slow"]["seen"]) < n
    for st in srv.retired:  # exact accounting, per client
        assert st["delivered"] + st["dropped"] == st["offered"] == n
        assert st["queued"] == st["held"] == 0


def _timing_file(path: Path, n: int) -> None:
    names = Names.create("timing", "timing", [Field("pulseId", DataType.UINT64),
                                              Field("fiducial", DataType.UINT32),
                                              Field("img", DataType.UINT16, 2)],
                         node_id=1, index=0)
    seg = segment_src(1)
    dgs = [make_dgram(T.Configure, 1, 0, [ParentBlock(seg, [NamesBlock(names)])],
                      root_src=event_src(0))]
    dgs += [make_dgram(t, 1, k + 1, root_src=event_src(0))
            for k, t in enumerate((T.BeginRun, T.BeginStep, T.Enable))]
    img = np.zeros((8, 8), np.uint16)
    dgs += [make_dgram(T.L1Accept, 2, i, [ParentBlock(seg, [
        ShapesDataBlock(names, (i, 1000 + i, img))])], root_src=event_src(0))
        for i in range(n)]
    path.write_bytes(b"".join(d.tobytes() for d in dgs))


@pytest.mark.slow
def test_cli_serve_monitor_status(tmp_path: Path, shm_dir: Path, children: Children) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _timing_file(run / "x-r0001-s000-c000.xtc2", 20)
    serve = children.start("-m", "shmem", "serve", "--tag", "cli", "--dir", str(shm_dir),
                           "--replay", str(run), "--loop", "--rate", "500",
                           "--wait-clients", "1", "--linger", "60", "--buffer-size", "65536")
    assert serve.stdout is not None
    assert serve.stdout.readline().startswith("serving tag cli")
    mon = children.start("-m", "shmem", "monitor", "--tag", "cli", "--dir", str(shm_dir),
                         "--count", "60", "--duration", "30", "--interval", "0.05")
    status = children.start("-m", "shmem", "status", "--tag", "cli", "--dir", str(shm_dir))
    s_out, s_err = status.communicate(timeout=30)
    assert status.returncode == 0, s_err
    assert "buffers: 16 x 65,536 B" in s_out
    out, err = mon.communicate(timeout=60)
    assert mon.returncode == 0, err
    lines = out.splitlines()
    assert lines[1] == "Configure: detectors: timing"  # the first message is the Configure
    assert any("fiducial 10" in ln for ln in lines)
    final = json.loads(lines[-1].removeprefix("final: "))
    assert final["events"] >= 60 and final["detectors"] == ["timing"]
    assert final["by_transition"]["Configure"] >= 3  # the replay loops: Configure again
    serve.send_signal(signal.SIGTERM)
    s_out, s_err = serve.communicate(timeout=30)
    assert serve.returncode == 0, s_err
    assert "replayed" in s_out
    assert not list(shm_dir.iterdir())  # segment and socket removed


@pytest.mark.slow
def test_crashed_server_gives_server_gone_and_a_new_one_takes_over(
        tmp_path: Path, shm_dir: Path, children: Children) -> None:
    f = tmp_path / "a.xtc2"
    _timing_file(f, 5)
    serve = children.start("-m", "shmem", "serve", "--tag", "g", "--dir", str(shm_dir),
                           "--replay", str(f), "--loop", "--rate", "200", "--wait-clients", "1",
                           "--buffer-size", "65536")
    assert serve.stdout is not None and serve.stdout.readline().startswith("serving")
    with ShmemClient("g", directory=shm_dir) as c:
        dg = c.next(timeout=10)
        assert dg is not None and dg.service == T.Configure
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        with pytest.raises(ServerGoneError):
            while True:
                c.next(timeout=10)
    with ShmemServer("g", buffer_size=4096, directory=shm_dir) as srv, \
            ShmemClient("g", directory=shm_dir) as c2:
        srv.put(event(3))
        dg = c2.next(timeout=5)
        assert dg is not None and dg.nanoseconds == 3
