"""``calib truth``: the simulator's constants deployed, then used through the sources adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calib import CalibStore, RunIndex, derived_sources, process_dark, truth_constants
from calib.cli import main
from daq.sim import Jungfrau

from ._runs import record_sim_run, timing


def test_truth_of_a_jungfrau_calibrates_its_hits(tmp_path: Path) -> None:
    assert main(["truth", "--det", "jf", "--kind", "jungfrau", "--param", "hit_rate=1.0",
                 "--param", "photon_rate=0", "--runs", "3-end", "--calib-dir",
                 str(tmp_path)]) == 0
    det = Jungfrau("jf", hit_rate=1.0, photon_rate=0.0)
    truth = det.truth()
    store = CalibStore(tmp_path)
    np.testing.assert_array_equal(store.load("jungfrau", "jf", "pedestals", 3),
                                  truth["pedestals"])
    sources = derived_sources(store, {"jf": "jungfrau"}, 3)
    assert set(sources) == {"jf:calib", "jf:image"} and sources["jf:calib"].type == "array"
    shot = timing(dark=False).shot(1)
    raw = det.read(shot)["raw"]
    kev = sources["jf:calib"].fn(raw)
    ev = det.truth_event(shot)
    pix = ev["signal_index"]
    ok = (truth["pixel_status"].ravel()[pix] == 0) & (ev["signal_kev"] > 100)
    ok &= (raw.ravel()[pix] & 0x3FFF) < 16383  # not saturated
    assert ok.sum() > 50
    np.testing.assert_allclose(kev.ravel()[pix][ok], ev["signal_kev"][ok], rtol=0.05, atol=2.0)
    assert sources["jf:image"].fn(raw).ndim == 2


def test_truth_common_mode_covers_the_simulated_offsets() -> None:
    cspad = truth_constants("cspad", {"pedestals": np.zeros(1), "pixel_rms": np.zeros(1),
                                      "pixel_gain": np.zeros(1), "pixel_status": np.zeros(1),
                                      "cm_rms": np.array([30.0, 0.0])})
    assert cspad["common_mode"].tolist() == [7, 1, 240, 10]
    opal = truth_constants("opal", {"pedestals": np.zeros(1), "pixel_rms": np.zeros(1),
                                    "pixel_gain": np.zeros(1), "pixel_status": np.zeros(1),
                                    "cm_rms": np.array([0.0, 0.0])})
    assert opal["common_mode"].tolist() == [0, 0, 0, 0] and "MTRX" in opal["geometry"]


def test_darks_of_a_gain_switching_detector_are_refused(tmp_path: Path) -> None:
    det = Jungfrau("jf", photon_rate=0.0, hit_rate=0.0)
    record_sim_run(tmp_path, "jf01", 1, [det], 2, dark=True, streams=1)
    with pytest.raises(ValueError, match="one dark run per gain stage"):
        process_dark(RunIndex.from_run(tmp_path, "jf01", 1), "jf")
