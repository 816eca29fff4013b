"""calib on the simulated detectors of daq.sim, checked against their ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calib import (
    Calibrator,
    CalibStore,
    CommonMode,
    DarkAccumulator,
    ImageAssembler,
    StatusBit,
    dark_constants,
    default_geometry,
    detector_spec,
)
from daq.sim import Epix100, Jungfrau
from daq.timing import TimingConfig, TimingSystem

START = 1_700_000_000.0
DARK = TimingSystem(TimingConfig(start_time=START, xray_off_fraction=1.0))
BEAM = TimingSystem(TimingConfig(start_time=START))


@pytest.fixture(scope="module")
def epix() -> Epix100:
    det = Epix100("epix_calib", dead_fraction=1e-3, hot_fraction=1e-3, noisy_fraction=2e-3,
                  photon_rate=0.01)
    det.prepare()
    return det


def test_dark_run_of_the_simulated_epix100(epix: Epix100, tmp_path: Path) -> None:
    """Pedestals and bad pixels from 300 dark events, deployed, then a photon event
    calibrated to keV: the photons are found at their energy, the rest is noise."""
    truth = epix.truth()
    n = 300
    acc = DarkAccumulator(epix.shape, batch=100)
    for i in range(n):
        acc.add(epix.read(DARK.shot(i))["raw"], index=i)
    ped, rms, status = dark_constants(acc.result())
    good = truth["pixel_status"] == 0
    assert np.mean(np.abs(ped - truth["pedestals"])[good]
                   < 4 * truth["pixel_rms"][good] / np.sqrt(n) + 1.0) > 0.999
    for bit in (StatusBit.DEAD, StatusBit.HOT, StatusBit.NOISY):
        declared = (truth["pixel_status"] & np.uint64(bit)) != 0
        assert np.all(status[declared] != 0), bit  # flagged (dead ones also as cold)
    assert np.mean(status[good] != 0) < 1e-3

    store = CalibStore(tmp_path, user="test", clock=lambda: START)
    for ctype, value in (("pedestals", ped), ("pixel_rms", rms), ("pixel_status", status),
                         ("pixel_gain", truth["pixel_gain"])):
        store.deploy("epix100", "epix_calib", ctype, value, runs=(1, None), fmt="npy")
    store.deploy("epix100", "epix_calib", "common_mode", np.array([7, 5, 100, 10]))
    cal = Calibrator.from_store(store, "epix100", "epix_calib", 2)
    assert cal.common_mode == CommonMode(alg=7, mode=5, cormax=100.0, npixmin=10)
    shot = BEAM.shot(5)
    kev = cal.calib(epix.read(shot)["raw"])
    sig = epix.truth_signal(shot)
    ok = good & (status == 0)
    hit = ok & (sig > 0)
    assert hit.sum() > 100
    e = float(truth["photon_energy_kev"])
    np.testing.assert_allclose(np.median(kev[hit] / sig[hit]), 1.0, atol=0.05)
    noise_kev = truth["pixel_rms"] / truth["pixel_gain"]
    dark = ok & (sig == 0)
    assert np.sqrt(np.mean((kev[dark] / noise_kev[dark]) ** 2)) < 1.15
    assert np.mean(np.abs(kev[dark]) > e / 2) < 1e-4  # no false photons at half the energy
    img = ImageAssembler.from_geometry(default_geometry("epix100")).assemble(kev)
    assert img.shape == (773, 709)


def test_jungfrau_hits_with_the_true_constants() -> None:
    det = Jungfrau("jf_calib", hit_rate=1.0, spots_per_hit=40, spot_photons=4000.0,
                   photon_rate=0.0)
    truth = det.truth()
    spec = detector_spec("jungfrau")
    cal = Calibrator.for_detector(
        spec, truth["pedestals"], gain=1.0 / truth["pixel_gain"], status=truth["pixel_status"],
        common_mode=CommonMode(mode=1, cormax=100.0, threshold=40.0),
    )
    for n in range(3):
        shot = BEAM.shot(n)
        raw = det.read(shot)["raw"]
        kev = cal.calib(raw)
        ev = det.truth_event(shot)
        pix = ev["signal_index"]
        ok = (truth["pixel_status"].ravel()[pix] == 0) & ((raw.ravel()[pix] & 0x3FFF) < 16383)
        got, want = kev.ravel()[pix][ok], ev["signal_kev"][ok]
        stage = ev["signal_stage"][ok]
        big = want > 50
        assert {0, 1, 2} >= set(stage.tolist())
        np.testing.assert_allclose(got[big], want[big], rtol=0.05, atol=1.0)
