"""``calib darks`` of a Jungfrau: three recorded dark runs, one per gain stage (G0 with dynamic
gain, G1 and G2 with the gain held by the simulator's ``gain_mode``), combined into (3, ...)
constants and checked against the simulator's truth, stage by stage."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from calib import (
    CalibError,
    Calibrator,
    CalibStore,
    RunIndex,
    StatusBit,
    process_dark_stages,
)
from calib.cli import main
from daq.sim import Jungfrau

from ._runs import record_sim_run, timing

N = 100
EXPT = "xpptst02"
RUNS = {"dynamic": 5, "fixed_g1": 6, "fixed_g2": 7}  # gain mode -> run number
BAD = {"dead_fraction": 1e-3, "hot_fraction": 1e-3, "noisy_fraction": 2e-3}


@dataclass
class Darks:
    root: Path
    truth: dict[str, np.ndarray]
    consts: dict[str, np.ndarray]
    out: str


@pytest.fixture(scope="module")
def darks(tmp_path_factory: pytest.TempPathFactory) -> Darks:
    root = tmp_path_factory.mktemp("jfdarks")
    for mode, run in RUNS.items():
        record_sim_run(root, EXPT, run, [Jungfrau("jf", gain_mode=mode, **BAD)], N, dark=True,
                       streams=2, first=run * 1000)
    npz = root / "jf.npz"
    buf = io.StringIO()
    # Runs given out of stage order on purpose. Thresholds for this detector: hot pixels are
    # 3000-6000 ADU up, from 10 pedestal spreads (300 ADU) on; noisy ones have 8 x the noise,
    # but the raw dark rms also holds 4 ADU of common mode, twice the G2 noise (ratio ~3.7).
    with contextlib.redirect_stdout(buf):
        assert main(["darks", "--exp", EXPT, "--run", "7", "5", "6", "--dir", str(root),
                     "--hot-sigma", "6", "--noisy-rms", "2.5", "--deploy", "--out", str(npz),
                     "--mpi", "off", "--fmt", "npy"]) == 0
    with np.load(npz) as f:
        consts = {k: f[k] for k in f.files}
    return Darks(root, Jungfrau("jf", **BAD).truth(), consts, buf.getvalue())


def test_three_stages_are_combined(darks: Darks) -> None:
    c = darks.consts
    assert c["pedestals"].shape == (3, 1, 512, 1024) == c["pixel_rms"].shape
    assert c["pixel_status"].shape == (3, 1, 512, 1024) and int(c["n_events"]) == 3 * N
    assert "(100, 100, 100 per gain stage)" in darks.out and "G2: bad pixels" in darks.out
    assert "deployed" in darks.out and "pedestals/5-end.npy" in darks.out


def test_pedestals_and_noise_of_each_stage_match_the_truth(darks: Darks) -> None:
    """Per stage: pedestals within 4 standard errors for >= 99.9 % of good pixels; the rms is
    the stage's noise with the common mode (per bank) and the rounding added."""
    t, c = darks.truth, darks.consts
    good = t["pixel_status"] == 0
    cm = float(t["cm_rms"][0])
    for g in range(3):
        ped, rms = c["pedestals"][g][good], c["pixel_rms"][g][good]
        assert np.mean(np.abs(ped - t["pedestals"][g][good]) < 4 * rms / np.sqrt(N)) >= 0.999
        expected = np.sqrt(t["pixel_rms"][g][good] ** 2 + cm**2 + 1 / 12)
        np.testing.assert_allclose(np.median(rms / expected), 1.0, atol=0.03)
        assert np.mean(c["pixel_status"][g][good] != 0) < 1e-3, g


def test_bad_pixels_are_flagged_in_every_stage(darks: Darks) -> None:
    t, status = darks.truth["pixel_status"], darks.consts["pixel_status"]
    for bit in (StatusBit.DEAD, StatusBit.HOT, StatusBit.NOISY):
        sim = (t & np.uint64(bit)) != 0
        for g in range(3):
            assert np.mean((status[g][sim] & np.uint64(bit)) != 0) >= 0.99, (bit, g)
    dead = (t & np.uint64(StatusBit.DEAD)) != 0  # stuck at 0: gain bits 00 in G1/G2 runs
    bad_gain = (status & np.uint64(StatusBit.BAD_GAIN)) != 0
    assert not bad_gain[0].any() and bad_gain[1][dead].all() and bad_gain[2][dead].all()
    assert not bad_gain[1][~dead].any()


def test_deployed_constants_calibrate_each_stage(darks: Darks, capsys: pytest.CaptureFixture
                                                 ) -> None:
    """A dark frame of each stage calibrates to ~0 ADU with the deployed (3, ...) constants;
    ``calib show`` calls the calibration ready."""
    assert main(["show", "jf", "--run", "8", "--exp", EXPT, "--dir", str(darks.root)]) == 0
    assert "calibration: ready" in capsys.readouterr().out
    store = CalibStore(darks.root / EXPT / "calib")
    cal = Calibrator.from_store(store, "jungfrau", "jf", 8, common_mode=None)
    ts = timing(dark=True)
    for mode in RUNS:
        det = Jungfrau("jf", gain_mode=mode, **BAD)
        frames = [cal.calib(det.read(ts.shot(90_000 + i))["raw"]) for i in range(8)]
        good = cal.good & (darks.truth["pixel_status"] == 0)
        mean = np.mean(frames, axis=0)[good]
        assert abs(float(np.median(mean))) < 1.0 and np.percentile(np.abs(mean), 99) < 8, mode


def test_stages_must_be_one_run_each(darks: Darks, capsys: pytest.CaptureFixture) -> None:
    assert main(["darks", "--exp", EXPT, "--run", "5", "6", "6", "--dir", str(darks.root),
                 "--mpi", "off"]) == 1
    assert "--run lists a run twice" in capsys.readouterr().err
    assert main(["darks", "--exp", EXPT, "--run", "5", "--dir", str(darks.root),
                 "--mpi", "off"]) == 1
    assert "needs 3 dark runs (one per gain stage G0, G1, G2), got 1" in capsys.readouterr().err
    indexes = [RunIndex.from_run(darks.root, EXPT, r) for r in (5, 5, 7)]
    with pytest.raises(CalibError, match=r"need one dark run in each gain stage G0, G1, G2, "
                                         r"but a is in G0, b is in G0, c is in G2"):
        process_dark_stages(indexes, "jf", labels=["a", "b", "c"])


@pytest.mark.parametrize(("mode", "stage"), [("dynamic", 0), ("fixed_g1", 1), ("fixed_g2", 2)])
def test_the_simulator_holds_the_gain_stage(mode: str, stage: int) -> None:
    """gain_mode: every pixel (but the dead ones, stuck at 0) carries the stage's gain bits
    and its pedestal; with beam, signal pixels stay in the stage too (numba = NumPy twin)."""
    det = Jungfrau("jf", gain_mode=mode, **BAD)
    t = det.truth()
    dark = det.read(timing(dark=True).shot(3))["raw"]
    dead = (t["pixel_status"] & np.uint64(StatusBit.DEAD)) != 0
    code = (dark >> 14) & 3
    assert (code[~dead] == (0, 1, 3)[stage]).all() and (dark[dead] == 0).all()
    d = (dark & 0x3FFF).astype(float) - t["pedestals"][stage]
    assert abs(np.median(d[~dead])) < 10 and np.std(d[~dead]) < 5 * t["pixel_rms"][stage].max()
    shot = next(s for s in (timing(dark=False).shot(i) for i in range(200))
                if det.truth_event(s)["hit"])
    beam = det.read(shot)["raw"]
    np.testing.assert_array_equal(beam, det.read_reference(shot)["raw"])
    ev = det.truth_event(shot)
    if stage:
        assert (ev["signal_stage"] == stage).all()
        assert (((beam.ravel()[ev["signal_index"]] >> 14) & 3) == (0, 1, 3)[stage]).all()


def test_a_wrong_gain_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="parameter 'gain_mode': expected one of dynamic, "
                                         "fixed_g1, fixed_g2, got 'g1'"):
        Jungfrau("jf", gain_mode="g1")
