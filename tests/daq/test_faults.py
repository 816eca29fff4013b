"""Faults on real processes: bad datagrams, a killed builder, an unwritable data root, and the
monitoring ring fed while recording."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from daq.net import fragments, sender
from daq.xtc import TransitionId, XtcFileReader
from daq.xtc._files import run_streams
from daq.xtc._validate import validate_file

from .conftest import SMALL_NODES, Running, write_config
from .test_partition import events_of

pytestmark = pytest.mark.slow


def bad_datagrams(p: Running) -> int:
    """Send garbage, truncated, oversized, foreign, stale and replayed datagrams to eb-0."""
    net = p.cfg.network
    dest = (net.builder_group(0), net.builder_port)
    good = [b"".join(bytes(x) for x in parts) for parts in fragments(
        os.urandom(3000), fragment_size=1000, transition=12, partition=p.cfg.partition,
        node=2, pulse_id=1, epoch=1, full_crc=True)]
    stale = good[0]
    foreign = next(b"".join(bytes(x) for x in parts) for parts in fragments(
        b"x" * 100, fragment_size=1000, transition=12, partition=p.cfg.partition ^ 1,
        node=2, pulse_id=5, epoch=99))
    corrupt = bytearray(good[1])
    corrupt[-3] ^= 0x55
    sends = [os.urandom(500), good[0][:20], b"\0" * 65000, foreign, bytes(corrupt), stale,
             stale, b"XDF1" + os.urandom(100)]
    with sender(net.interface) as s:
        for d in sends:
            s.sendto(d, dest)
    return len(sends)


def test_bad_datagrams_are_counted_and_nothing_is_corrupted(
        partition: Callable[..., Running]) -> None:
    p = partition(network={"checksum": "full"})
    p.cmd("configure")
    run = p.cmd("beginrun")["run"]
    p.cmd("beginstep")
    p.cmd("enable", events=40)
    sent = bad_datagrams(p)
    p.wait(lambda st: st["enable_done"])
    for c in ("disable", "endstep", "endrun"):
        p.cmd(c)
    st = p.builder_status(p.status(), 0)
    # 8 sent: random bytes, a cut header, a 65 kB blank, another partition, a bad checksum,
    # a fragment of an event that never completes (accepted) and its replay, a bad version
    assert st["foreign_datagrams"] == 4 and st["checksum_errors"] == 1, st
    assert st["bad_datagrams"] == 1 and st["fragment_dups"] == 1, st
    assert st["partial"] == 1 and sent == 8
    files = [c for chunks in run_streams(p.cfg.data_root, "tst01", run).values() for c in chunks]
    assert all(validate_file(f).ok for f in files)
    events = events_of(files)
    assert len(events) == 40 and all(ev.damage == 0 for _, ev in events)  # type: ignore


def test_killed_builder_leaves_files_readable(partition: Callable[..., Running]) -> None:
    p = partition()
    p.cmd("configure")
    run = p.cmd("beginrun")["run"]
    p.cmd("beginstep")
    p.cmd("enable")
    p.wait(lambda st: p.builder_status(st, 1).get("events", 0) > 30)
    p.part.procs["eb-1"].kill()
    p.part.procs["eb-1"].wait(10)
    chunks = run_streams(p.cfg.data_root, "tst01", run, include_inprogress=True)
    big = chunks[1][0]
    assert big.name.endswith(".inprogress")  # it never looks complete
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a torn tail is reported as a warning
        with XtcFileReader(big) as r:
            dgrams = list(r)
    assert dgrams[0].service == TransitionId.Configure
    assert sum(d.service == TransitionId.L1Accept for d in dgrams) > 0
    report = validate_file(big, check_smd=False)
    assert report.ok or [x.rule for x in report.problems] == ["truncated"], report.problems


def test_unwritable_data_root_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    cfg = write_config(tmp_path, SMALL_NODES, 1, data_root=blocker)
    out = subprocess.run([sys.executable, "-m", "daq.cli", "run", str(cfg), "--events", "5"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "not writable" in out.stdout + out.stderr and str(blocker) in out.stdout + out.stderr
    assert not list(tmp_path.rglob("*.xtc2"))


def test_monitoring_ring_gets_every_event(partition: Callable[..., Running]) -> None:
    import shmem

    tag = f"t{uuid.uuid4().hex[:10]}"
    p = partition(extra=f"[monitor]\ntag = \"{tag}\"\nbuffers = 128\nbuffer_size = 65536")
    p.cmd("configure")
    with shmem.attach(tag, group="test", mode="shared") as client:
        p.cmd("beginrun")
        p.cmd("beginstep")
        p.cmd("enable", events=50)
        p.wait(lambda st: st["enable_done"])
        first = client.next(timeout=10)
        assert first is not None and first.service == TransitionId.Configure
        seen = []
        while True:
            dg = client.next(timeout=5)
            assert dg is not None
            if dg.service == TransitionId.L1Accept:
                assert dg.damage == 0
                seen.append(dg.timestamp)
            if len(seen) == 50:
                break
    assert seen == sorted(seen) and len(set(seen)) == 50
    for c in ("disable", "endstep", "endrun"):
        p.cmd(c)
