"""Live reading: a run read while a writer thread records it (handshakes, no sleeps)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ami.offline import DataSource, LiveTimeoutWarning

from ._runs import SimRun

WAIT = 30.0  # bound on every wait


def test_live_run_follows_writer_through_chunks_to_endrun(tmp_path: Path) -> None:
    sim = SimRun(tmp_path, "liv", 2, streams=2, acqiris=True, events_per_step=8,
                 chunk_bytes=10_000)
    first_step_seen = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            sim.open()
            sim.step()  # ends with transitions on every stream: the reader can merge to there
            sim.flush()
            if not first_step_seen.wait(WAIT):
                raise TimeoutError("reader never saw the first step")
            sim.step()
            sim.step()
            sim.close()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    got = []
    try:
        ds = DataSource(exp="liv", run=2, dir=tmp_path, live=True, timeout=WAIT, poll=0.01)
        for run in ds.runs():
            acq = run.Detector("acqiris")
            for evt in run.events():
                shot = sim.truth.shots[len(got)]
                assert evt.timestamp == shot.timestamp64
                np.testing.assert_array_equal(
                    acq.raw(evt), sim.detector("acqiris").read(shot)["waveforms"])
                got.append(evt.timestamp)
                if len(got) == 8:
                    smd = tmp_path / "liv" / "xtc" / "smalldata"
                    assert list(smd.glob("*.inprogress"))  # still being written
                    first_step_seen.set()
    finally:
        first_step_seen.set()
        thread.join(WAIT)
    assert not thread.is_alive() and not errors, errors
    assert got == [s.timestamp64 for s in sim.truth.shots] and len(got) == 24
    assert len(list((tmp_path / "liv" / "xtc").glob("liv-r0002-s000-c*.xtc2"))) > 1


def test_live_run_without_endrun_ends_after_timeout(tmp_path: Path) -> None:
    sim = SimRun(tmp_path, "liv", 3, streams=2, events_per_step=5)
    sim.open()
    sim.step()
    sim.flush()
    try:
        ds = DataSource(exp="liv", run=3, dir=tmp_path, live=True, timeout=0.3, poll=0.01)
        with pytest.warns(LiveTimeoutWarning, match="no new data"):
            n = sum(1 for run in ds.runs() for _ in run.events())
        assert n == 5
    finally:
        sim.close(end_run=False)
