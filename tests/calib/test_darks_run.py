"""``calib darks`` on a recorded 1000-event ePix100 dark run, checked against the simulator's truth.

The run is written as real XTC2 files (two streams, events alternating) and read back by the
command; the constants are then judged against ``det.truth()``: pedestals, bad pixels, the
residual noise after pedestal and common mode, and the single-photon peak of a beam run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from calib import (
    Calibrator,
    CalibStore,
    CommonMode,
    RunIndex,
    RunReader,
    StatusBit,
)
from calib.cli import main
from daq.sim import Epix100
from daq.timing import Shot

from ._runs import record_sim_run

N_DARK = 1000
N_BEAM = 12
EXPT, DARK_RUN, BEAM_RUN = "xpptst01", 5, 6


@dataclass
class Runs:
    root: Path
    det: Epix100
    truth: dict[str, np.ndarray]
    beam_shots: list[Shot]
    dark_npz: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("darks")
    det = Epix100("epix", dead_fraction=1e-3, hot_fraction=1e-3, noisy_fraction=2e-3)
    record_sim_run(root, EXPT, DARK_RUN, [det], N_DARK, dark=True, streams=2)
    beam = record_sim_run(root, EXPT, BEAM_RUN, [det], N_BEAM, dark=False, streams=2,
                          first=N_DARK)
    npz = root / "dark.npz"
    assert main(["darks", "--exp", EXPT, "--run", str(DARK_RUN), "--dir", str(root),
                 "--deploy", "--out", str(npz), "--mpi", "off"]) == 0
    return Runs(root, det, det.truth(), beam, npz)


def _dark(runs: Runs) -> dict[str, np.ndarray]:
    with np.load(runs.dark_npz) as f:
        return {k: f[k] for k in f.files}


def test_the_dark_run_is_read_from_both_streams(runs: Runs) -> None:
    index = RunIndex.from_run(runs.root, EXPT, DARK_RUN)
    assert len(index.streams) == 2 and len(index) == N_DARK
    ts = [e.timestamp for e in index.events]
    assert ts == sorted(ts) and {e.stream for e in index.events[:2]} == {0, 1}
    assert index.run_info() == (EXPT, DARK_RUN)
    assert int(_dark(runs)["n_events"]) == N_DARK


def test_pedestals_match_the_truth(runs: Runs) -> None:
    """Within 4 standard errors (measured rms / sqrt(N), which includes the common-mode
    noise of a raw dark frame) for >= 99.9 % of good pixels; the true noise is seen too."""
    d, t = _dark(runs), runs.truth
    good = t["pixel_status"] == 0
    err = np.abs(d["pedestals"] - t["pedestals"])[good]
    assert np.mean(err < 4 * d["pixel_rms"][good] / np.sqrt(N_DARK)) >= 0.999
    cm = np.hypot(*t["cm_rms"])  # per bank and per row offsets add to every raw pixel
    expected_rms = np.sqrt(t["pixel_rms"] ** 2 + cm**2 + 1 / 12)
    np.testing.assert_allclose(np.median(d["pixel_rms"][good] / expected_rms[good]), 1.0,
                               atol=0.02)


def test_bad_pixels_are_flagged(runs: Runs) -> None:
    """>= 99 % of the simulated dead, hot and noisy pixels flagged; < 0.1 % false flags."""
    d, t = _dark(runs), runs.truth
    status, true = d["pixel_status"], t["pixel_status"]
    for bit in (StatusBit.DEAD, StatusBit.HOT, StatusBit.NOISY):
        sim = (true & np.uint64(bit)) != 0
        assert sim.sum() > 400
        assert np.mean(status[sim] != 0) >= 0.99, bit
        assert np.mean((status[sim] & np.uint64(bit)) != 0) >= 0.99, bit  # for the right reason
    assert np.mean(status[true == 0] != 0) < 1e-3


def test_residual_noise_after_pedestal_and_common_mode(runs: Runs) -> None:
    """Per good pixel, the rms over the 1000 dark events of (raw - pedestal - common mode)
    stays within 1.1 x the true noise (the standard error of that rms is ~2 %). The common
    mode is per row within each bank (which also removes the bank offsets), deployed from a
    psana text file."""
    pars = runs.root / "cmpars.txt"
    pars.write_text("7 1 30 10\n")
    assert main(["deploy", str(pars), "--det", "epix", "--type", "epix100", "--ctype",
                 "common_mode", "--runs", f"{DARK_RUN}-{DARK_RUN}", "--exp", EXPT, "--dir",
                 str(runs.root)]) == 0
    store = CalibStore(runs.root / EXPT / "calib")
    cal = Calibrator.from_store(store, "epix100", "epix", DARK_RUN)
    assert cal.common_mode == CommonMode(alg=7, mode=1, cormax=30.0, npixmin=10)
    sumsq = np.zeros(runs.det.shape)
    out = np.empty(runs.det.shape, np.float32)
    index = RunIndex.from_run(runs.root, EXPT, DARK_RUN)
    with RunReader(index, reuse_buffer=True) as reader:
        for _, raw in reader.frames("epix"):
            cal.calib(raw, out=out)
            sumsq += np.square(out, dtype=np.float64)
    good = (runs.truth["pixel_status"] == 0) & cal.good
    ratio = np.sqrt(sumsq / N_DARK)[good] / runs.truth["pixel_rms"][good]
    assert np.mean(ratio <= 1.1) >= 0.999
    assert np.median(ratio) < 1.03


def test_single_photon_peak_after_gain(runs: Runs, tmp_path: Path) -> None:
    """Beam events calibrated with the dark constants: single-photon pixels sit at the true ADU
    per photon (without gain) and at the photon energy (with the true gain), within 2 %."""
    store = CalibStore(runs.root / EXPT / "calib")
    t = runs.truth
    cal_adu = Calibrator.from_store(store, "epix100", "epix", BEAM_RUN)
    store.deploy("epix100", "epix", "pixel_gain", t["pixel_gain"], runs=(BEAM_RUN, BEAM_RUN),
                 fmt="npy")
    cal_kev = Calibrator.from_store(store, "epix100", "epix", BEAM_RUN)
    index = RunIndex.from_run(runs.root, EXPT, BEAM_RUN)
    adu, kev = [], []
    with RunReader(index) as reader:
        for i, raw in reader.frames("epix"):
            ev = runs.det.truth_event(runs.beam_shots[i])
            one = ev["signal_index"][ev["signal_photons"] == 1.0]
            one = one[(t["pixel_status"].ravel()[one] == 0) & cal_adu.good.ravel()[one]]
            adu.append(cal_adu.calib(raw).ravel()[one] / t["adu_per_photon"].ravel()[one])
            kev.append(cal_kev.calib(raw).ravel()[one])
    a, k = np.concatenate(adu), np.concatenate(kev)
    assert a.size > 5000
    np.testing.assert_allclose(np.median(a), 1.0, atol=0.02)
    np.testing.assert_allclose(np.median(k), float(t["photon_energy_kev"]), rtol=0.02)


def test_one_dark_run_for_a_detector_without_gain_switching(
        runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["darks", "--exp", EXPT, "--run", str(DARK_RUN), str(BEAM_RUN), "--dir",
                 str(runs.root), "--mpi", "off"]) == 1
    assert "epix (epix100) takes one dark run, not 2" in capsys.readouterr().err
    out = tmp_path / "one.npz"  # one thread gives the same constants as the default (cores)
    assert main(["darks", "--exp", EXPT, "--run", str(DARK_RUN), "--dir", str(runs.root),
                 "--threads", "1", "--out", str(out), "--mpi", "off"]) == 0
    with np.load(out) as f:
        for key, value in _dark(runs).items():
            np.testing.assert_array_equal(f[key], value, err_msg=key)


def _mpiexec() -> str | None:
    """mpiexec of the mpich wheel beside this Python, or on PATH; None if mpi4py cannot load
    an MPI library (checked in a child process: MPI is never initialised inside pytest)."""
    if importlib.util.find_spec("mpi4py") is None:
        return None
    probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"], capture_output=True,
                           timeout=60, check=False)
    if probe.returncode != 0:
        return None
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


@pytest.mark.slow
def test_mpi_and_serial_give_identical_constants(runs: Runs, tmp_path: Path) -> None:
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("mpi4py with an MPI library is not installed (pip install mpi4py mpich)")
    out = tmp_path / "mpi.npz"
    cmd = [mpiexec, "-n", "2", sys.executable, "-m", "calib", "darks", "--exp", EXPT, "--run",
           str(DARK_RUN), "--dir", str(runs.root), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=100, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "on 2 MPI ranks" in proc.stdout
    with np.load(out) as f:
        parallel = {k: f[k] for k in f.files}
    serial = _dark(runs)
    for key in ("pedestals", "pixel_rms", "pixel_status", "n_events"):
        np.testing.assert_array_equal(parallel[key], serial[key], err_msg=key)
