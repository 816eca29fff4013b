"""The Calibrator end to end on synthetic detectors with known truth."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from calib import (
    CalibError,
    Calibrator,
    CalibStore,
    CommonMode,
    DarkAccumulator,
    apply_common_mode,
    dark_constants,
    detector_spec,
    split_gain,
)
from calib import _kernels as k

from ._synth import FakeDetector, fake_detector


def _dark(det: FakeDetector, rng: np.random.Generator, n: int = 300, **cm: float):
    acc = DarkAccumulator(det.shape)
    for _ in range(n):
        acc.add(det.frame(rng, **cm))
    return dark_constants(acc.result())


@pytest.mark.parametrize("mode", [1, 5, 7])
def test_pedestal_and_common_mode_leave_only_the_noise(mode: int) -> None:
    rng = np.random.default_rng(11)
    det = fake_detector(rng, shape=(2, 64, 128), banks=(32, 64))
    cm_offsets = {"bank_sigma": 10.0, "row_sigma": 5.0}
    ped, _, status = _dark(det, rng, **cm_offsets)
    cal = Calibrator(ped, status=status, banks=det.banks,
                     common_mode=CommonMode(mode=mode, cormax=1000.0, npixmin=10))
    plain = Calibrator(ped, status=status, banks=det.banks)
    n = 600
    sq = np.zeros(det.shape)
    sq_plain = np.zeros(det.shape)
    out = np.empty(det.shape, np.float32)
    for _ in range(n):
        raw = det.frame(rng, **cm_offsets)
        sq += cal.calib(raw, out=out).astype(np.float64) ** 2
        sq_plain += plain.calib(raw).astype(np.float64) ** 2
    good = status == 0
    ratio = np.sqrt(sq / n)[good] / det.noise[good]
    assert np.mean(ratio <= 1.1) >= 0.999, np.quantile(ratio, [0.5, 0.999])
    assert np.sqrt(np.mean(ratio**2)) <= 1.05
    assert np.median(np.sqrt(sq_plain / n)[good] / det.noise[good]) > 2.0  # cm was there
    assert np.all(out[~good] == 0)


def test_photons_above_threshold_do_not_bias_common_mode() -> None:
    rng = np.random.default_rng(5)
    det = fake_detector(rng, shape=(1, 32, 128), banks=(32, 64), bad_fraction=0.0)
    ped, _, _ = _dark(det, rng, n=200)
    signal = np.where(rng.random(det.shape) < 0.3, 150.0, 0.0)  # 30 % of pixels hit
    raw = det.frame(rng, row_sigma=5.0, signal=signal)
    dark = signal == 0
    for stat in ("mean", "median"):
        cut = Calibrator(ped, banks=det.banks,
                         common_mode=CommonMode(mode=1, threshold=60.0, statistic=stat))
        assert np.abs(cut.calib(raw)[dark]).mean() < 3.0, stat
    naive = Calibrator(ped, banks=det.banks, common_mode=CommonMode(mode=1, statistic="mean"))
    assert np.abs(naive.calib(raw)[dark]).mean() > 30.0  # the mean is pulled by photons


def test_gain_and_mask_are_applied() -> None:
    rng = np.random.default_rng(2)
    ped = rng.normal(100, 5, (2, 8, 16)).astype(np.float32)
    gain = rng.uniform(0.5, 2, ped.shape).astype(np.float32)
    mask = rng.random(ped.shape) > 0.2
    raw = (ped + 50).astype(np.int16)
    out = Calibrator(ped, gain=gain, mask=mask).calib(raw)
    expect = (raw.astype(np.float32) - ped) * gain * mask
    np.testing.assert_array_equal(out, expect)


def test_jungfrau_gain_switching() -> None:
    """Three gain ranges with their own pedestals and gains; common mode on G0 only."""
    rng = np.random.default_rng(9)
    shape = (1, 64, 128)
    ped = np.stack([rng.normal(m, 20, shape) for m in (3000.0, 12000.0, 14000.0)])
    adu_per_kev = np.stack([np.full(shape, g) for g in (40.0, 1.5, 0.1)])
    energy = rng.choice([0.0, 2.0, 300.0, 9000.0], shape, p=[0.6, 0.2, 0.1, 0.1])
    g = np.select([energy < 100, energy < 1000], [0, 1], 2)
    row_cm = np.repeat(rng.normal(0, 8, (1, 64, 2)), 64, axis=2)  # per bank row
    adu = np.take_along_axis(ped, g[None], 0)[0] + energy * np.take_along_axis(
        adu_per_kev, g[None], 0)[0] + np.where(g == 0, row_cm, 0.0) + rng.normal(0, 1, shape)
    bits = np.array([0, 1, 3], np.uint16)[g] << 14
    raw = bits | np.clip(np.rint(adu), 0, 0x3FFF).astype(np.uint16)
    raw[0, 0, :4] = 0x8000 | 123  # the invalid gain code 10
    cal = Calibrator(ped, gain=1.0 / adu_per_kev, gain_switching=True, banks=(32, 64),
                     common_mode=CommonMode(mode=1, cormax=100.0, threshold=40.0))
    out = cal.calib(raw)
    assert np.all(out[0, 0, :4] == 0)
    ok = np.ones(shape, bool)
    ok[0, 0, :4] = False
    np.testing.assert_allclose(out[ok], energy[ok], atol=0.2, rtol=0.02)
    gi, data = split_gain(raw)
    np.testing.assert_array_equal(gi[ok], g[ok])
    assert data.max() <= 0x3FFF
    with pytest.raises(CalibError):
        Calibrator(ped[0], gain_switching=True)


def test_apply_common_mode_alone_matches_reference() -> None:
    rng = np.random.default_rng(4)
    data = rng.normal(0, 3, (2, 16, 32)).astype(np.float32)
    data += rng.normal(0, 10, (2, 16, 1)).astype(np.float32)
    good = rng.random(data.shape) > 0.1
    ref = data.copy()
    k.common_mode_ref(ref, good, np.ones(data.shape, bool), (8, 16), 7, math.inf, 10, math.inf,
                      False)
    apply_common_mode(data, good, CommonMode(mode=7, cormax=math.inf), banks=(8, 16))
    np.testing.assert_array_equal(data, ref)


def test_common_mode_parameters() -> None:
    assert CommonMode.from_pars([7, 0, 100, 10]) is None
    cm = CommonMode.from_pars(np.array([2, 3, 30, 5]))
    assert cm is not None and cm.statistic == "mean" and cm.pars() == (2, 3, 30.0, 5)
    for bad in ({"mode": 8}, {"statistic": "mode"}):
        with pytest.raises(CalibError):
            CommonMode(**bad)  # type: ignore[arg-type]


def test_shape_errors_are_clear() -> None:
    cal = Calibrator(np.zeros((2, 8, 16), np.float32), banks=(8, 8))
    with pytest.raises(CalibError, match=r"raw frame shape \(8, 16\)"):
        cal.calib(np.zeros((8, 16), np.int16))
    with pytest.raises(CalibError, match="out must be"):
        cal.calib(np.zeros((2, 8, 16), np.int16), out=np.zeros((2, 8, 16)))
    with pytest.raises(CalibError, match="banks"):
        Calibrator(np.zeros((8, 16)), banks=(3, 8))
    with pytest.raises(CalibError, match="gain shape"):
        Calibrator(np.zeros((8, 16)), gain=np.ones((4, 4)))


def test_from_store(tmp_path: Path) -> None:
    store = CalibStore(tmp_path, user="t", clock=lambda: 0.0)
    rng = np.random.default_rng(1)
    shape = detector_spec("epix100").data_shape()
    ped = rng.normal(500, 10, shape).astype(np.float32)
    status = np.zeros(shape, np.uint64)
    status[0, :5] = 2
    store.deploy("epix100", "e1", "pedestals", ped, runs=(3, None), fmt="npy")
    store.deploy("epix100", "e1", "pixel_status", status, runs=(3, None), fmt="npy")
    store.deploy("epix100", "e1", "common_mode", np.array([7, 1, 50, 10]), runs=(3, None))
    cal = Calibrator.from_store(store, "epix100", "e1", 4)
    assert cal.common_mode == CommonMode(alg=7, mode=1, cormax=50.0, npixmin=10)
    raw = (ped + 7).astype(np.uint16)
    out = cal.calib(raw)
    assert np.all(out[0, :5] == 0) and np.abs(out[1:]).max() < 1.0  # row cm removed the 7
    with pytest.raises(CalibError, match="no pedestals"):
        Calibrator.from_store(store, "epix100", "e1", 2)
    store.deploy("epix100", "e1", "pixel_gain", np.ones((3, 3)), runs=(5, None))
    with pytest.raises(CalibError, match=r"pixel_gain shape \(3, 3\)"):
        Calibrator.from_store(store, "epix100", "e1", 5)
    with pytest.raises(CalibError, match="unknown detector type"):
        Calibrator.from_store(store, "pnccd", "p", 5)


def test_full_size_cspad_calibration_runs_fast() -> None:
    """A smoke check of the 2.3 Mpix path; the figure quoted in docs comes from a benchmark."""
    spec = detector_spec("cspad")
    rng = np.random.default_rng(0)
    ped = rng.normal(1000, 20, spec.data_shape()).astype(np.float32)
    raw = (ped + rng.normal(0, 3, ped.shape)).astype(np.int16)
    cal = Calibrator.for_detector(spec, ped)
    out = np.empty(ped.shape, np.float32)
    cal.calib(raw, out=out)
    best = math.inf
    for _ in range(5):
        t = time.perf_counter()
        cal.calib(raw, out=out)
        best = min(best, time.perf_counter() - t)
    assert best < 0.1, f"{best * 1e3:.1f} ms per CSPAD event"
    assert np.abs(out).mean() < 3.0
