"""DataSource on recorded runs: everything back as the simulator made it, in time order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ami.offline import DataSource, OfflineError
from daq.xtc import Damage

from ._runs import SimRun, Truth


def test_runs_read_back_to_truth_in_order(scalar_run: tuple[Path, SimRun, Truth]) -> None:
    root, sim, truth = scalar_run
    assert len(list((root / "scl" / "xtc").glob("scl-r0003-s000-c*.xtc2"))) > 1  # chunked
    ds = DataSource(exp="scl", run=3, dir=root)
    n = 0
    for run in ds.runs():
        assert (run.expt, run.runnum) == ("scl", 3)
        assert {"timing", "gasdet", "acqiris", "epics", "scan"} <= set(run.detnames)
        gas, acq = run.Detector("gasdet"), run.Detector("acqiris")
        pv = run.Detector("XPP:MON:TEMP:02")
        motor = run.Detector("motor1")
        steps = list(run.steps())  # steps() drains the events the caller skips
        assert [s.index for s in steps] == [0, 1, 2]
        assert run.stats["events"] == len(truth.shots) and run.big.reads == 0
        assert gas.type == "gasdet" and acq.fields == ["waveforms"]
        assert pv.name == "XPP:MON:TEMP:02" and motor.name == "motor1"
    for run in DataSource(exp="scl", run=3, dir=root).runs():
        for step in run.steps():
            assert step.scan == {"step": step.index, "motor1": truth.scan[step.index]}
            for evt in step.events():
                shot = truth.shots[n]
                assert evt.index == n
                assert evt.timestamp == shot.timestamp64
                assert (evt.fiducial, evt.pulse_id) == (shot.fiducial, shot.pulse_id)
                assert evt.stream == n % 3
                assert evt.damage == 0
                assert pv(evt) == truth.epics[n]["XPP:MON:TEMP:02"]
                assert motor(evt) == truth.scan[truth.step_of[n]]
                want = sim.detector("gasdet").read(shot)
                assert gas.f_12_ENRC(evt) == pytest.approx(float(want["f_12_ENRC"]))
                assert not evt.big_read  # scalar data come from the small data
                wf = acq.raw(evt)
                np.testing.assert_array_equal(wf, sim.detector("acqiris").read(shot)["waveforms"])
                assert evt.big_read and acq.damage(evt) == 0
                n += 1
        assert run.stats["events"] == n
    assert n == len(truth.shots)


def test_filter_on_small_data_skips_big_reads(scalar_run: tuple[Path, SimRun, Truth]) -> None:
    root, _sim, truth = scalar_run
    ds = DataSource(exp="scl", run=3, dir=root,
                    filter=lambda evt: evt.get("timing", "laser_on") == 1)
    got = []
    for run in ds.runs():
        acq = run.Detector("acqiris")
        for evt in run.events():
            assert acq.raw(evt) is not None
            got.append(evt.timestamp)
        assert run.big.reads == len(got)  # only the events kept were read
        assert run.stats["filtered_out"] == len(truth.shots) - len(got)
    assert got == [s.timestamp64 for s in truth.shots if s.laser_on]
    assert 0 < len(got) < len(truth.shots)


def test_random_access(scalar_run: tuple[Path, SimRun, Truth]) -> None:
    root, sim, truth = scalar_run
    run = next(DataSource(exp="scl", run=3, dir=root).runs())
    for i in (0, 17, len(truth.shots) - 1):
        shot = truth.shots[i]
        for evt in (run.event(shot.timestamp64), run.event(pulse_id=shot.pulse_id),
                    run.event(fiducial=shot.fiducial)):
            assert evt.index == i and evt.timestamp == shot.timestamp64
            assert run.Detector("motor1")(evt) == truth.scan[truth.step_of[i]]
            assert run.Detector("XPP:MON:TEMP:01")(evt) == truth.epics[i]["XPP:MON:TEMP:01"]
            np.testing.assert_array_equal(run.Detector("acqiris").raw(evt),
                                          sim.detector("acqiris").read(shot)["waveforms"])
    with pytest.raises(KeyError):
        run.event(truth.shots[0].timestamp64 + 1)
    with pytest.raises(TypeError):
        run.event()
    assert list(run.timestamps) == [s.timestamp64 for s in truth.shots]


def test_files_and_errors(scalar_run: tuple[Path, SimRun, Truth], tmp_path: Path) -> None:
    root, _sim, truth = scalar_run
    files = sorted((root / "scl" / "xtc").glob("scl-r0003-s*-c000.xtc2"))
    ts = [e.timestamp for r in DataSource(files=files).runs() for e in r.events()]
    assert ts == [s.timestamp64 for s in truth.shots]
    with pytest.raises(OfflineError, match="no small-data files"):
        list(DataSource(exp="scl", run=9, dir=root).runs())
    run = next(DataSource(exp="scl", run=3, dir=root, max_events=5).runs())
    assert len(list(run.events())) == 5
    with pytest.raises(OfflineError, match="no detector"):
        run.Detector("nope")


def test_detector_damage_of_a_missing_contribution(tmp_path: Path) -> None:
    """An event without a node's contribution reports DroppedContribution for its detectors."""
    from daq.xtc import ParentBlock, ShapesDataBlock, TransitionId, segment_src

    sim = SimRun(tmp_path, "dmg", 1, streams=1, acqiris=True)
    sim.open()
    sim.begin_step()
    sim.events(2)
    shot = sim._next_shot()  # an event where node 3 (acqiris) is missing
    parents = [ParentBlock(segment_src(1), [ShapesDataBlock(n, d.read(shot)) for n, d in
                                            zip(sim.names[1], sim.dets[1], strict=True)]),
               ParentBlock(segment_src(3), [])]
    dg = sim._dgram(TransitionId.L1Accept, shot, parents, 0)
    sim.writers[0].write(dg)
    sim.end_step()
    sim.close()
    run = next(DataSource(exp="dmg", run=1, dir=tmp_path).runs())
    evts = list(run.events())
    assert len(evts) == 3
    acq = run.Detector("acqiris")
    assert acq.damage(evts[0]) == 0
    assert acq.raw(evts[2]) is None
    assert acq.damage(evts[2]) & Damage.DroppedContribution
