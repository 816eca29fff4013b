"""Area detectors: determinism, noise statistics, common mode, bad pixels, signal, gain stages."""

from __future__ import annotations

import numpy as np
import pytest

from daq.sim import (
    STATUS_DEAD,
    STATUS_HOT,
    STATUS_NOISY,
    AreaDetector,
    Cspad,
    Epix100,
    Gasdet,
    Jungfrau,
    Opal,
)
from daq.timing import ConfigError, TimingConfig, TimingSystem

START = 1_700_000_000.0
DARK = TimingSystem(TimingConfig(start_time=START, xray_off_fraction=1.0))
BEAM = TimingSystem(TimingConfig(start_time=START))
MIXED = TimingSystem(TimingConfig(start_time=START, xray_off_fraction=0.2, seed=4))


def cm_image(det: AreaDetector, truth: dict[str, np.ndarray]) -> np.ndarray:
    """The event's common mode per pixel, from ``truth_event``."""
    bh, bw = det.model.bank_shape
    rows = np.repeat(truth["cm_bank"], bh, axis=1) + truth["cm_row"]
    return np.repeat(rows, bw, axis=2).reshape(det.shape)


@pytest.fixture(scope="module")
def cspad() -> Cspad:
    det = Cspad("cspad_test")
    det.prepare()
    return det


@pytest.fixture(scope="module")
def epix() -> Epix100:
    det = Epix100("epix_test", dead_fraction=1e-3, hot_fraction=1e-3, noisy_fraction=2e-3)
    det.prepare()
    return det


# -- determinism -------------------------------------------------------------------------------
def test_same_seed_and_pulse_id_give_identical_bytes() -> None:
    a, b = Jungfrau("jf", seed=5), Jungfrau("jf", seed=5)
    for n in (0, 7, 123):
        assert a.read(BEAM.shot(n))["raw"].tobytes() == b.read(BEAM.shot(n))["raw"].tobytes()
    r0, r1 = a.read(BEAM.shot(0))["raw"], a.read(BEAM.shot(1))["raw"]
    assert np.mean(r0 != r1) > 0.5  # a new pulse id draws new noise
    assert not np.array_equal(r0, Jungfrau("jf", seed=6).read(BEAM.shot(0))["raw"])
    assert not np.array_equal(r0, Jungfrau("jf2", seed=5).read(BEAM.shot(0))["raw"])


def test_out_buffer_is_reused_and_checked(cspad: Cspad) -> None:
    out = cspad.allocate()
    shot = BEAM.shot(3)
    res = cspad.read(shot, out)
    assert res["raw"] is out["raw"]
    assert np.array_equal(res["raw"], cspad.read(shot)["raw"])
    with pytest.raises(ValueError, match="C-contiguous"):
        cspad.read(shot, {"raw": np.empty((32, 185, 388), np.uint16)})


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_cspad_numba_matches_numpy_reference(cspad: Cspad, n: int) -> None:
    shot = BEAM.shot(n)
    assert np.array_equal(cspad.read(shot)["raw"], cspad.read_reference(shot)["raw"])


@pytest.mark.parametrize(
    "det",
    [
        Epix100("e", photon_rate=0.01),
        Jungfrau("j", hit_rate=1.0, spot_photons=5000.0),
        Opal("o"),
        Cspad("c", hit_rate=1.0, ring_photons=2.0, dead_fraction=0.01),
    ],
    ids=["epix100", "jungfrau", "opal", "cspad"],
)
def test_every_kind_matches_numpy_reference(det: AreaDetector) -> None:
    for n in range(3):
        shot = MIXED.shot(n)
        assert np.array_equal(det.read(shot)["raw"], det.read_reference(shot)["raw"])


# -- noise, pedestals, common mode -------------------------------------------------------------
def test_noise_statistics_per_pixel(epix: Epix100) -> None:
    truth = epix.truth()
    good = truth["pixel_status"] == 0
    ped = truth["pedestals"].astype(np.float64)
    rms = np.sqrt(truth["pixel_rms"].astype(np.float64) ** 2 + 1 / 12)  # with ADC rounding
    n = 300
    s1 = np.zeros(epix.shape)
    s2 = np.zeros(epix.shape)
    lag = np.zeros(epix.shape)
    prev = None
    event_corr = []
    for i in range(n):
        shot = DARK.shot(i)
        res = epix.read(shot)["raw"] - ped - cm_image(epix, epix.truth_event(shot))
        z = res / rms
        s1 += res
        s2 += res**2
        if prev is not None:
            lag += z * prev
            event_corr.append(np.mean(z[good] * prev[good]))
        prev = z
    mean = s1 / n
    var = s2 / n - mean**2
    within = np.abs(mean[good]) < 4 * rms[good] / np.sqrt(n)
    assert within.mean() > 0.999
    ratio = var[good] / rms[good] ** 2
    assert abs(ratio.mean() - 1) < 0.01
    assert np.quantile(ratio, 0.99) < 1.35  # chi2(300) scatter, no outliers
    assert abs(np.mean(event_corr)) < 3 / np.sqrt(good.sum() * (n - 1))
    assert abs(np.mean(lag[good] / (n - 1))) < 3 / np.sqrt(good.sum() * (n - 1))


def test_calibration_recipe_recovers_pedestals_and_noise(epix: Epix100) -> None:
    """What calibration will do: pedestals from 1000 dark events, then common mode per row
    of each 352 x 96 bank by the median; residual rms within 1.1 x the true noise."""
    n = 1000
    roi = (slice(0, 352), slice(0, 96))  # bank (0, 0)
    stack = np.empty((n, 352, 96), dtype=np.float32)
    for i in range(n):
        stack[i] = epix.read(DARK.shot(i))["raw"][roi]
    truth = epix.truth()
    good = truth["pixel_status"][roi] == 0
    true_ped = truth["pedestals"][roi]
    true_rms = truth["pixel_rms"][roi]
    ped = stack.mean(axis=0)
    assert np.mean(np.abs(ped - true_ped)[good] < 4 * true_rms[good] / np.sqrt(n)) > 0.999
    res = stack - ped
    # bad pixels out of the median: half go to -inf, half to +inf, so the median is the good one's
    inf = np.float32(np.inf)
    fill = np.where(np.arange(good.size).reshape(good.shape) % 2, inf, -inf).astype(np.float32)
    ordered = np.sort(np.where(good, res, fill), axis=2)
    res -= 0.5 * (ordered[..., 47:48] + ordered[..., 48:49])  # median of 96
    resid = res.std(axis=0)
    assert np.quantile(resid[good] / true_rms[good], 0.99) <= 1.1


def test_common_mode_per_bank_is_present(cspad: Cspad) -> None:
    truth = cspad.truth()
    for n in range(3):
        shot = DARK.shot(n)
        d = cspad.read(shot)["raw"] - truth["pedestals"]
        ev = cspad.truth_event(shot)
        med = np.median(d.reshape(32, 185, 2, 194), axis=(1, 3))
        assert np.allclose(med, ev["cm_bank"][:, 0, :], atol=0.5)
        assert 4.0 < ev["cm_bank"].std() < 8.0  # cm_bank_rms = 6 ADU


def test_epix_row_common_mode(epix: Epix100) -> None:
    shot = DARK.shot(11)
    ev = epix.truth_event(shot)
    d = epix.read(shot)["raw"] - epix.truth()["pedestals"]
    med = np.median(d.reshape(704, 8, 96), axis=2)
    expect = (np.repeat(ev["cm_bank"], 352, axis=1) + ev["cm_row"]).reshape(704, 8)
    assert np.sqrt(np.mean((med - expect) ** 2)) < 1.0  # median of 96 pixels of rms 5
    assert ev["cm_row"].std() > 2.0


# -- bad pixels --------------------------------------------------------------------------------
def test_bad_pixels_behave_as_declared(epix: Epix100) -> None:
    truth = epix.truth()
    status = truth["pixel_status"]
    assert status.dtype == np.uint64 and status.shape == epix.shape
    npix = status.size
    for bit, frac in ((STATUS_DEAD, 1e-3), (STATUS_HOT, 1e-3), (STATUS_NOISY, 2e-3)):
        assert np.count_nonzero(status & bit) == round(frac * npix)
    frames = np.stack([epix.read(MIXED.shot(i))["raw"] for i in range(60)]).astype(np.float64)
    dead, hot = status == STATUS_DEAD, status == STATUS_HOT
    noisy = status == STATUS_NOISY
    assert np.all(frames[:, dead] == truth["dead_value"])
    ped = truth["pedestals"]
    assert np.all(ped[hot] > np.median(ped) + 2000)
    assert np.allclose(np.median(frames[:, hot], axis=0), ped[hot], atol=20)
    std = frames.std(axis=0)
    assert np.median(std[noisy]) > 5 * np.median(std[status == 0])


# -- signal ------------------------------------------------------------------------------------
def test_single_photons_at_the_declared_adu() -> None:
    det = Epix100("photons", photon_rate=0.003)
    truth = det.truth()
    adu = truth["adu_per_photon"]
    assert np.allclose(np.median(adu), 16.3 * 9.5, rtol=0.01)
    ratios = []
    for n in range(8):
        shot = BEAM.shot(n)
        ev = det.truth_event(shot)
        assert ev["xray_on"] and ev["photon_index"].size > 500
        one = ev["signal_index"][ev["signal_photons"] == 1]
        d = det.read(shot)["raw"] - truth["pedestals"] - cm_image(det, ev)
        ok = truth["pixel_status"].ravel()[one] == 0
        ratios.append(d.ravel()[one[ok]] / adu.ravel()[one[ok]])
    r = np.concatenate(ratios)
    assert abs(r.mean() - 1) < 0.005 and r.std() < 0.06  # noise 5 ADU / 155 ADU per photon


def test_no_signal_on_xray_off_shots(cspad: Cspad) -> None:
    shot = next(s for s in MIXED.iter_shots() if not s.xray_on)
    ev = cspad.truth_event(shot)
    assert ev["signal_index"].size == 0 and not ev["hit"]
    assert not cspad.truth_signal(shot).any()


def test_cspad_rings_and_hits(cspad: Cspad) -> None:
    truth = cspad.truth()
    hit = next(s for s in BEAM.iter_shots() if cspad.truth_event(s)["hit"])
    ev = cspad.truth_event(hit)
    assert ev["spot_pos"].shape[1] == 3 and ev["spot_photons"].size > 0
    sig = cspad.truth_signal(hit)
    d = cspad.read(hit)["raw"] - truth["pedestals"] - cm_image(cspad, ev)
    expect = sig * truth["pixel_gain"]
    good = (truth["pixel_status"] == 0) & (expect < 15000)
    on = good & (sig > 0)
    assert np.abs((d - expect)[on]).mean() < 5  # noise 4 ADU
    assert np.corrcoef(d[on], expect[on])[0, 1] > 0.95


def test_jungfrau_gain_switching() -> None:
    det = Jungfrau("jfhits", hit_rate=1.0, spots_per_hit=40, spot_photons=4000.0, photon_rate=0)
    truth = det.truth()
    assert truth["pedestals"].shape == (3, 1, 512, 1024)
    ped, gain = truth["pedestals"], truth["pixel_gain"]
    stages_seen = set()
    for n in range(4):
        shot = BEAM.shot(n)
        raw = det.read(shot)["raw"]
        ev = det.truth_event(shot)
        bits = raw >> 14
        stage = np.select([bits == 0, bits == 1, bits == 3], [0, 1, 2], -1)
        assert np.count_nonzero(stage == -1) == 0  # 10 = bad never appears
        assert np.mean(stage == 0) > 0.999
        pix = ev["signal_index"]
        ok = truth["pixel_status"].ravel()[pix] == 0
        pix, kev, st = pix[ok], ev["signal_kev"][ok], ev["signal_stage"][ok]
        assert np.array_equal(stage.ravel()[pix], st)
        stages_seen |= set(st.tolist())
        g = st
        adc = (raw.ravel()[pix] & 0x3FFF).astype(np.float64)
        cm = cm_image(det, ev).ravel()[pix]
        p = ped.reshape(3, -1)[g, pix]
        k = gain.reshape(3, -1)[g, pix]
        unsaturated = adc < 16383
        energy = (adc - p - cm) / k
        tol = 6 * truth["pixel_rms"].reshape(3, -1)[g, pix] / k + 0.5 / k
        assert np.all(np.abs(energy - kev)[unsaturated] < tol[unsaturated])
    assert stages_seen == {0, 1, 2}


def test_opal_blob_follows_the_beam() -> None:
    det = Opal("cam")
    truth = det.truth()
    shot = BEAM.shot(2)
    ev = det.truth_event(shot)
    d = det.read(shot)["raw"] - truth["pedestals"]
    d[d < 20] = 0
    y, x = np.indices(d.shape)
    cy, cx = (y * d).sum() / d.sum() + 0.5, (x * d).sum() / d.sum() + 0.5
    assert np.hypot(cy - ev["blob_center"][0], cx - ev["blob_center"][1]) < 1.0


def test_signal_scales_with_gas_detector_energy() -> None:
    det = Epix100("corr", photon_rate=0.003, cm_bank_rms=0.0, cm_row_rms=0.0, dead_fraction=0)
    gdet = Gasdet("gdet")
    ped = det.truth()["pedestals"].astype(np.float64)
    sums, energies, xray = [], [], []
    for n in range(120):
        shot = MIXED.shot(n)
        sums.append(float((det.read(shot)["raw"] - ped).sum()))
        energies.append(float(gdet.read(shot)["f_11_ENRC"]))
        xray.append(shot.xray_on)
    s, e, on = np.array(sums), np.array(energies), np.array(xray)
    assert np.corrcoef(s[on], e[on])[0, 1] > 0.9
    assert np.all(np.abs(s[~on]) < 5 * 5.0 * np.sqrt(det.npix) + 5e3)
    assert np.all(np.abs(e[~on]) < 0.02)


# -- parameters and truth ----------------------------------------------------------------------
def test_area_parameters_are_validated() -> None:
    with pytest.raises(ConfigError, match="'hit_rate'"):
        Cspad("c", hit_rate=2.0)
    with pytest.raises(ConfigError, match="'modules'"):
        Epix100("e", modules=2)
    with pytest.raises(ConfigError, match="'noise'"):
        Jungfrau("j", noise=-1.0)
    with pytest.raises(ConfigError, match=r"\[0-9A-Za-z_\]"):
        Opal("bad name")


def test_truth_describes_the_detector(cspad: Cspad) -> None:
    t = cspad.truth()
    assert cspad.segment_type == "SENS2X1:V1" and cspad.shape == (32, 185, 388)
    for key in ("pedestals", "pixel_rms", "pixel_gain", "adu_per_photon", "pixel_status"):
        assert t[key].shape == cspad.shape
    assert tuple(t["cm_bank_shape"]) == (185, 194)
    jf = Jungfrau("jf4", modules=2)
    assert jf.shape == (2, 512, 1024) and jf.segment_type == "JUNGFRAU:V2"
    assert Epix100("e").segment_type == "EPIX100A" and Opal("o").shape == (1024, 1024)
