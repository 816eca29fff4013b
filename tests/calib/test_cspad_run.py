"""A short full-size CSPAD run through the commands: darks, truth, show, diff, and the
calibrated sources (``cspad:calib``, ``cspad:image``) the monitor and offline reading use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from calib import (
    CalibSources,
    CalibStore,
    RunIndex,
    RunReader,
    calibrated_events,
    default_geometry,
    derived_sources,
)
from calib.cli import main
from daq.sim import Cspad, Opal
from daq.timing import Shot

from ._runs import record_sim_run

EXPT = "cxitst01"
N_DARK, N_BEAM = 24, 3


@dataclass
class Runs:
    root: Path
    det: Cspad
    beam: list[Shot]

    @property
    def store(self) -> CalibStore:
        return CalibStore(self.root / EXPT / "calib")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("cspad")
    det = Cspad("cspad", hit_rate=1.0)
    opal = Opal("opal")
    record_sim_run(root, EXPT, 1, [det, opal], N_DARK, dark=True, streams=3)
    beam = record_sim_run(root, EXPT, 2, [det], N_BEAM, dark=False, streams=2, first=N_DARK)
    return Runs(root, det, beam)


def _cli(runs: Runs, *args: str) -> int:
    return main([*args, "--exp", EXPT, "--dir", str(runs.root)])


def test_darks_of_a_full_cspad(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(runs, "darks", "--run", "1") == 1  # two area detectors: which one?
    assert "give --det" in capsys.readouterr().err
    # with only 24 events the rms of a pixel is known to ~15 %: a lower noisy threshold
    assert _cli(runs, "darks", "--run", "1", "--det", "cspad", "--deploy", "--fmt", "npy",
                "--noisy-rms", "2.5") == 0
    out = capsys.readouterr().out
    assert f"{N_DARK} dark events" in out and "deployed" in out
    truth = runs.det.truth()
    ped = runs.store.load("cspad", "cspad", "pedestals", 1)
    rms = runs.store.load("cspad", "cspad", "pixel_rms", 1)
    status = runs.store.load("cspad", "cspad", "pixel_status", 1)
    good = truth["pixel_status"] == 0
    assert ped.shape == (32, 185, 388)
    assert np.mean((np.abs(ped - truth["pedestals"]) < 4 * rms / np.sqrt(N_DARK))[good]) > 0.999
    bad = truth["pixel_status"] != 0
    assert np.mean(status[bad] != 0) >= 0.99
    assert np.mean(status[good] != 0) < 1e-3


def test_truth_show_diff_and_sources(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(runs, "truth", "--det", "cspad", "--param", "hit_rate=1.0",
                "--runs", "2-end") == 0
    capsys.readouterr()
    assert _cli(runs, "show", "cspad", "--run", "2") == 0
    out = capsys.readouterr().out
    for ctype in ("pedestals", "pixel_gain", "common_mode", "geometry"):
        assert ctype in out
    assert "calibration: ready" in out and "2-end.npy" in out
    assert _cli(runs, "diff", "cspad", "--runs", "1", "2") == 0
    out = capsys.readouterr().out
    assert "pedestals: 1-end.npy -> 2-end.npy" in out and "pixel_status" in out

    sources = derived_sources(runs.store, {"cspad": "cspad", "opal": "opal"}, 2)
    assert {n: s.type for n, s in sources.items()} == {"cspad:calib": "array",
                                                       "cspad:image": "image"}
    assert sources["cspad:calib"].raw == "cspad:raw"
    index = RunIndex.from_run(runs.root, EXPT, 2)
    truth = runs.det.truth()
    with RunReader(index) as reader:
        i, raw = reader.first_frame("cspad")
    kev = sources["cspad:calib"].fn(raw)
    sig = runs.det.truth_signal(runs.beam[i])
    strong = (sig > 50) & (truth["pixel_status"] == 0)
    assert strong.sum() > 100
    np.testing.assert_allclose(np.median(kev[strong] / sig[strong]), 1.0, atol=0.03)
    img = sources["cspad:image"].fn(raw)
    geo_img = default_geometry("cspad")
    assert img.shape == (int(geo_img.image_indexes()[0].max()) + 1,
                         int(geo_img.image_indexes()[1].max()) + 1)
    assert np.isclose(img.sum(), kev.sum(), rtol=1e-4)


def test_offline_reading_with_and_without_constants(runs: Runs) -> None:
    problems: list[str] = []
    index = RunIndex.from_run(runs.root, EXPT, 1)
    events = calibrated_events(index, runs.store, problems=problems)
    i, first = next(events)
    assert i == 0 and {"cspad:raw", "cspad:calib", "cspad:image", "opal:raw"} <= set(first)
    assert "opal:calib" not in first
    assert any("opal: raw data only (no pedestals" in p for p in problems)
    cal = first["cspad:calib"]
    assert cal.dtype == np.float32 and abs(float(np.median(cal))) < 1.0  # dark: ~0 after all
    assert sum(1 for _ in events) == N_DARK - 1


def test_no_constants_for_the_run(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    srcs = CalibSources(runs.store)
    assert srcs.for_run({"cspad": "cspad"}, 0) == {}
    assert "no pedestals for cspad/cspad run 0" in srcs.problems["cspad"]
    assert _cli(runs, "show", "cspad", "--run", "0") == 0
    out = capsys.readouterr().out
    assert "none for this run" in out and "raw data only" in out
