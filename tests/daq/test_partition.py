"""A whole partition on real processes and real multicast: what it records is what the
simulator generated, every file is valid, streams merge back without loss or duplicates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from daq.sim import make_detector
from daq.timing import Shot
from daq.xtc import Damage, Decoder, TransitionId, XtcFileReader
from daq.xtc._files import run_streams
from daq.xtc._validate import validate_file

from .conftest import Running

pytestmark = pytest.mark.slow


def events_of(paths: list[Path]) -> list[tuple[int, object]]:
    out = []
    for p in paths:
        decoder = Decoder()
        with XtcFileReader(p) as r:
            for dg in r:
                ev = decoder.decode(dg)
                if dg.service == TransitionId.L1Accept:
                    out.append((dg.timestamp, ev))
    return out


def shot_of(ev: object) -> Shot:
    """Rebuild the timing Shot from the recorded timing detector (for regeneration)."""
    t = ev.detectors["timing"][0]["raw"]  # type: ignore[attr-defined]
    codes = 0
    for code in np.flatnonzero(t["eventcodes"]):
        codes |= 1 << int(code)
    dg = ev.dgram  # type: ignore[attr-defined]
    return Shot(pulse_id=t["pulse_id"], fiducial=t["fiducial"], seconds=dg.seconds,
                nanoseconds=dg.nanoseconds, counter=t["counter"], event_codes=codes,
                readout_groups=t["readout_groups"], laser_on=bool(t["laser_on"]),
                xray_on=bool(t["xray_on"]), beam_present=bool(t["beam_present"]))


def test_recorded_run_is_the_simulators_data(partition: Callable[..., Running]) -> None:
    p = partition()
    p.cmd("configure")
    run = p.cmd("beginrun")["run"]
    p.cmd("beginstep")
    p.cmd("enable", events=60)
    p.wait(lambda st: st["enable_done"])
    for c in ("disable", "endstep", "endrun", "unconfigure"):
        p.cmd(c)
    streams = run_streams(p.cfg.data_root, "tst01", run)
    assert sorted(streams) == [0, 1]
    files = [c for chunks in streams.values() for c in chunks]
    smd = [f.parent / "smalldata" / f.name.replace(".xtc2", ".smd.xtc2") for f in files]
    for f in files + smd:
        report = validate_file(f)
        assert report.ok, report.problems
    events = events_of(files)
    # streams merge back into one time-ordered sequence with no event lost or duplicated
    assert len(events) == 60
    stamps = sorted(ts for ts, _ in events)
    assert len(set(stamps)) == 60
    per_stream = [len(events_of([f])) for f in files]
    assert all(n > 0 for n in per_stream) and sum(per_stream) == 60
    acq = make_detector("acqiris", "acqiris")
    gas = make_detector("gasdet", "gasdet")
    for _ts, ev in events:
        assert ev.damage == 0  # type: ignore[attr-defined]
        shot = shot_of(ev)
        want = acq.read(shot)["waveforms"]
        got = ev.get("acqiris", "waveforms")  # type: ignore[attr-defined]
        np.testing.assert_array_equal(got, want)
        assert ev.get("gasdet", "f_11_ENRC") == gas.read(shot)["f_11_ENRC"]  # type: ignore
    # runinfo was recorded
    first = XtcFileReader(files[0])
    dec = Decoder()
    begin = [dec.decode(d) for d in first if d.service in (TransitionId.Configure,
                                                          TransitionId.BeginRun)][-1]
    assert begin.get("runinfo", "runnum") == run and begin.get("runinfo", "expt") == "tst01"
    first.close()


def test_killed_node_gives_dropped_contributions_and_rejoins(
        partition: Callable[..., Running]) -> None:
    p = partition(eb_timeout=0.5)  # the dead node's first events wait for the timeout
    p.cmd("configure")
    run = p.cmd("beginrun")["run"]
    p.cmd("beginstep")
    p.cmd("enable")
    p.wait(lambda st: sum(p.builder_status(st, i).get("complete", 0) for i in (0, 1)) > 30)
    p.part.procs["node-2"].kill()
    p.part.procs["node-2"].wait(10)
    st = p.wait(lambda st: sum(p.builder_status(st, i).get("incomplete", 0) for i in (0, 1))
                > 20)
    missing = {k: v for i in (0, 1)
               for k, v in p.builder_status(st, i).get("missing_by_node", {}).items()}
    assert set(missing) == {"2"}
    p.cmd("disable")
    p.cmd("endstep")
    p.cmd("endrun")
    files = [c for chunks in run_streams(p.cfg.data_root, "tst01", run).values() for c in chunks]
    assert len(files) == 2
    damaged = 0
    for f in files:
        assert validate_file(f).ok
        for _ts, ev in events_of([f]):
            if ev.damage & Damage.DroppedContribution:  # type: ignore[attr-defined]
                damaged += 1
                assert ev.nodes[2] == Damage.DroppedContribution  # type: ignore[attr-defined]
                assert ev.get("acqiris", "waveforms") is None  # type: ignore[attr-defined]
                assert ev.get("gasdet", "f_11_ENRC") is not None  # type: ignore[attr-defined]
    assert damaged > 20
    p.cmd("unconfigure")
    # the node restarted joins at the next Configure
    p.part._spawn("node-2", ["node", str(p.part.config_path), "--id", "2"])
    new_pid = p.part.procs["node-2"].pid
    p.wait(lambda st: st["pids"].get("node-2") == new_pid and not st["missing"])
    p.cmd("configure")
    run2 = p.cmd("beginrun")["run"]
    assert run2 == run + 1
    p.cmd("beginstep")
    p.cmd("enable", events=20)
    p.wait(lambda st: st["enable_done"])
    for c in ("disable", "endstep", "endrun"):
        p.cmd(c)
    files = [c for chunks in run_streams(p.cfg.data_root, "tst01", run2).values()
             for c in chunks]
    events = events_of(files)
    assert len(events) == 20
    assert all(ev.damage == 0 for _ts, ev in events), [ev.nodes for _, ev in events[:3]]

