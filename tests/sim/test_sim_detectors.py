"""Digitizers, beam-line data, EPICS, scans, the timing detector and the registry."""

from __future__ import annotations

import time

import numpy as np
import pytest

from daq.sim import (
    DETECTOR_KINDS,
    Acqiris,
    Detector,
    Ebeam,
    Encoder,
    Epics,
    Gasdet,
    Hsd,
    Ipm,
    Phasecav,
    PvSpec,
    StepScan,
    TimingDetector,
    make_detector,
)
from daq.timing import ConfigError, TimingConfig, TimingSystem
from daq.xtc import Names

START = 1_700_000_000.0
MIXED = TimingSystem(
    TimingConfig(start_time=START, xray_off_fraction=0.2, drop_fraction=0.05, seed=9)
)

SMALL = {"jungfrau": {"modules": 1}}


# -- every kind --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(DETECTOR_KINDS))
def test_every_kind_reads_its_declared_fields_deterministically(kind: str) -> None:
    det = make_detector(kind, f"{kind}_1", seed=3, **SMALL.get(kind, {}))
    twin = make_detector(kind, f"{kind}_1", seed=3, **SMALL.get(kind, {}))
    assert det.det_type == kind and det.det_name == f"{kind}_1"
    assert det.det_id == twin.det_id and det.segment == 0
    assert det.alg.name == "raw" and det.alg.version_tuple == (1, 0, 0)
    specs = det.fields
    names = Names.create(det.det_name, det.det_type, det.xtc_fields(), node_id=1, index=0,
                         det_id=det.det_id, alg=det.alg, segment=det.segment)  # fmt: skip
    assert [f.rank for f in names.fields] == [len(f.shape) for f in specs]
    out = det.allocate()
    for n in (0, 1, 2):
        shot = MIXED.shot(n)
        data = det.read(shot, out)
        assert list(data) == [f.name for f in specs]
        for f in specs:
            v = np.asarray(data[f.name])
            assert v.dtype == f.dtype and v.shape == f.shape, f.name
            if f.shape:
                assert data[f.name] is out[f.name]
        again = twin.read(shot)
        for f in specs:
            assert np.asarray(again[f.name]).tobytes() == np.asarray(data[f.name]).tobytes()


def test_registry_errors_name_kind_and_key() -> None:
    with pytest.raises(ConfigError, match="unknown detector kind 'cspad2'"):
        make_detector("cspad2", "x")
    with pytest.raises(ConfigError, match=r"unknown parameter 'channel'.*channels"):
        make_detector("acqiris", "x", channel=3)
    with pytest.raises(ConfigError, match="acqiris 'x': parameter 'polarity'"):
        make_detector("acqiris", "x", polarity=0)
    with pytest.raises(ConfigError, match="'seed'"):
        make_detector("gasdet", "x", seed=-1)


# -- digitizers --------------------------------------------------------------------------------
def _edge_50(wave: np.ndarray, start: int, baseline: float, height: float) -> float:
    """The first 50 % crossing after ``start`` (linear interpolation), for a negative pulse."""
    level = baseline - 0.5 * height
    i = start
    while wave[i] > level:
        i += 1
    return i - 1 + (wave[i - 1] - level) / (wave[i - 1] - wave[i])


def test_acqiris_pulses_arrive_at_the_truth_times() -> None:
    det = Acqiris("acq", noise=1.0, hits=0.6, time_jitter=40.0)
    checked = 0
    for n in range(40):
        shot = MIXED.shot(n)
        t = det.truth_event(shot)
        wf = det.read(shot)["waveforms"].astype(np.float64)
        if not shot.xray_on:
            assert t["time"].size == 0 and abs(wf.std() - 1.0) < 0.1
            continue
        for ch, edge, amp in zip(t["channel"], t["time_samples"], t["amplitude"], strict=True):
            others = t["peak_samples"][t["channel"] == ch]
            isolated = np.sum(np.abs(others - (edge + 1.8)) < 40) == 1
            if not isolated or amp < 200 or not 20 < edge < 960:
                continue
            found = _edge_50(wf[ch], int(edge) - 10, 0.0, amp)
            assert abs(found - edge) < 0.3
            assert 0.75 * amp < -wf[ch, int(edge) - 5 : int(edge) + 15].min() < 1.02 * amp
            checked += 1
    assert checked > 20
    assert det.truth()["sample_interval"] == 1e-9


def test_hsd_is_12_bit_with_positive_pulses() -> None:
    det = Hsd("hsd")
    shot = next(s for s in MIXED.iter_shots() if s.xray_on and det.truth_event(s)["time"].size)
    wf = det.read(shot)["waveforms"]
    assert wf.dtype == np.uint16 and wf.max() <= 4095
    assert wf.max() > 200 + 300 and abs(np.median(wf) - 200) < 2


# -- beam-line data ----------------------------------------------------------------------------
def test_gas_detector_channels_correlate_and_vanish_without_xrays() -> None:
    det = Gasdet("gdet")
    rows, on = [], []
    for n in range(600):
        shot = MIXED.shot(n)
        r = det.read(shot)
        rows.append([float(r[k]) for k in det.names])
        on.append(shot.xray_on)
        assert det.truth_event(shot)["pulse_energy_mj"] == pytest.approx(
            det.beam.state(shot).pulse_energy_mj
        )
    v, on_ = np.array(rows), np.array(on)
    assert abs(v[on_].mean() - 2.0) < 0.1
    c = np.corrcoef(v[on_].T)
    assert c[0, 1] > c[0, 2] > 0.8  # pairs share a detector term
    assert np.all(np.abs(v[~on_]) < 0.02)


def test_ebeam_ipm_phasecav_follow_the_beam() -> None:
    ebeam, ipm, pcav, gdet = Ebeam("eb"), Ipm("ipm2"), Phasecav("pc"), Gasdet("g")
    sums, energies = [], []
    for n in range(300):
        shot = MIXED.shot(n)
        e = ebeam.read(shot)
        p = pcav.read(shot)
        if not shot.beam_present:
            assert float(e["ebeamCharge"]) == 0.0 and float(p["charge1"]) == 0.0
            continue
        assert 0.2 < float(e["ebeamCharge"]) < 0.3
        assert abs(float(e["ebeamPhotonEnergy"]) - 9500) < 50
        assert abs(float(p["charge1"]) - 1000 * float(e["ebeamCharge"])) < 10
        r = ipm.read(shot)
        assert float(r["sum"]) == pytest.approx(r["channel"].sum())
        if shot.xray_on:
            sums.append(float(r["sum"]))
            energies.append(float(gdet.read(shot)["f_11_ENRC"]))
            truth = ipm.truth_event(shot)
            assert abs(float(r["xpos"]) - truth["x_mm"]) < 0.05
    assert np.corrcoef(sums, energies)[0, 1] > 0.9


def test_encoder_counts_and_position_agree() -> None:
    det = Encoder("enc", channels=2)
    r = det.read(MIXED.shot(5))
    assert r["value"].dtype == np.uint32 and r["value"].shape == (2,)
    assert np.allclose(r["position"], r["value"] * 1e-4)
    assert np.all(np.abs(r["position"] - 10.0) < 0.02)


def test_bld_reads_are_cheap() -> None:
    shot = MIXED.shot(1)
    for det in (Gasdet("g"), Ebeam("e"), Ipm("i"), Phasecav("p"), TimingDetector("t")):
        t0 = time.perf_counter()
        for _ in range(2000):
            det.read(shot)
        assert (time.perf_counter() - t0) / 2000 < 200e-6, det.kind  # ~10-20 us unloaded


# -- EPICS and scans ---------------------------------------------------------------------------
def test_epics_values_hold_within_a_sample_and_drift_slowly() -> None:
    det = Epics("epics")
    names = [f.name for f in det.fields]
    assert "XPP:MON:TEMP:01" in names and det.rate_hz == 1.0
    a, b = det.read(START + 0.1), det.read(START + 0.9)
    assert a == b and det.read(MIXED.shot(0)) == det.read(MIXED.shot(0).posix_time)
    assert not det.is_new_sample(START + 0.1, START + 0.9)
    assert det.is_new_sample(START + 0.9, START + 1.1)
    temps = [float(det.read(START + k * 60.0)["XPP:MON:TEMP:01"]) for k in range(120)]
    assert all(21.5 < t < 22.5 for t in temps) and np.std(temps) > 0.01
    assert max(abs(np.diff(temps))) < 0.1  # slow drift


def test_epics_custom_pvs_and_rate() -> None:
    det = Epics("slow", pvs={"XPP:MOT:1.RBV": 3.0}, rate_hz=10.0)
    assert float(det.read(START)["XPP:MOT:1.RBV"]) == 3.0
    assert det.sample_index(START + 0.25) == det.sample_index(START) + 2
    det2 = Epics("slow2", pvs=[PvSpec("A:B", 1.0, 0.5, 100.0, 0.0)])
    assert abs(float(det2.read(START)["A:B"]) - 1.0) <= 0.5
    with pytest.raises(ConfigError, match="'pvs'"):
        Epics("bad", pvs={"bad name": 1.0})


def test_step_scan() -> None:
    scan = StepScan.linspace("XPP:MOT:X", 0.0, 1.0, 5, 10)
    assert scan.nsteps == 5 and scan.total_events == 50
    assert scan.step_values(4) == {"XPP:MOT:X": 1.0}
    assert scan.step_of(0) == 0 and scan.step_of(49) == 4
    assert [f.name for f in scan.fields] == ["XPP:MOT:X"]
    two = StepScan({"a": [1, 2], "b": [3, 4]}, events_per_step=3)
    assert two.step_values(1) == {"a": 2.0, "b": 4.0}
    with pytest.raises(IndexError):
        scan.step_values(5)
    with pytest.raises(ConfigError, match="same number of steps"):
        StepScan({"a": [1, 2], "b": [3]}, 1)
    with pytest.raises(ConfigError, match="events_per_step"):
        StepScan({"a": [1]}, 0)


# -- timing detector ---------------------------------------------------------------------------
def test_timing_detector_carries_the_shot() -> None:
    det: Detector = TimingDetector("timing")
    for n in range(20):
        shot = MIXED.shot(n)
        r = det.read(shot)
        assert int(r["pulse_id"]) == shot.pulse_id and int(r["fiducial"]) == shot.fiducial
        assert tuple(np.flatnonzero(r["eventcodes"])) == shot.codes
        assert bool(r["xray_on"]) == shot.xray_on and bool(r["laser_on"]) == shot.laser_on
        assert int(r["readout_groups"]) == shot.readout_groups
