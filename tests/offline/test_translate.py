"""``daq translate``: every field aligned by event, readable with plain h5py."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from daq.translate import translate

from ._runs import SimRun, Truth


def test_translate_matches_truth(scalar_run: tuple[Path, SimRun, Truth], tmp_path: Path
                                 ) -> None:
    root, sim, truth = scalar_run
    out = tmp_path / "scl.h5"
    assert translate(root, "scl", 3, out) == len(truth.shots)
    with h5py.File(out, "r") as f:
        assert f["timestamp"][:].tolist() == [s.timestamp64 for s in truth.shots]
        assert f["fiducials"][:].tolist() == [s.fiducial for s in truth.shots]
        assert f["pulse_id"][:].tolist() == [s.pulse_id for s in truth.shots]
        assert f["stream"][:].tolist() == [i % 3 for i in range(len(truth.shots))]
        acq, gas = sim.detector("acqiris"), sim.detector("gasdet")
        for i in (0, 13, len(truth.shots) - 1):
            shot = truth.shots[i]
            np.testing.assert_array_equal(f["acqiris/waveforms"][i], acq.read(shot)["waveforms"])
            assert f["gasdet/f_21_ENRC"][i] == gas.read(shot)["f_21_ENRC"]
            assert f["timing/eventcodes"][i].tolist() == \
                sim.detector("timing").read(shot)["eventcodes"].tolist()
        assert f["scan/motor1"][:].tolist() == [truth.scan[k] for k in truth.step_of]
        assert f["epics/XPP:MON:TEMP:01"][:].tolist() == [e["XPP:MON:TEMP:01"]
                                                          for e in truth.epics]
        assert f["acqiris/present"][:].all()
    assert translate(root, "scl", 3, out, max_events=4) == 4
