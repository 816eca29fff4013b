"""The calib command line on bad input: every problem is one clear line and exit status 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calib import CalibStore, RunIndex, RunReader, default_geometry_text
from calib._darks import block_ranges
from calib._mpi import launched_by_mpiexec, world
from calib.cli import main
from daq.sim import Epix100

from ._runs import record_sim_run

ZEROS = " 0 0 0 0 0 0 0 0 0"


def _err(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("calib: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(("header_lines", "rows", "line", "words"), [
    (5, ["QUAD:V1 0 EPIX100A 1" + ZEROS], 6, "parent QUAD:V1 0 is not defined"),
    (5, ["IP 0 EPIX100A 1 0 0 0 0 0"], 6, "expected 13 columns"),
    (4, ["IP 0 A:V1 0" + ZEROS, "B:V1 0 A:V1 1" + ZEROS, "A:V1 1 B:V1 0" + ZEROS,
         "A:V1 0 EPIX100A 0" + ZEROS], 6,
     "cycle in the geometry tree: A:V1 1 -> B:V1 0 -> A:V1 1"),
])
def test_bad_geometry_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     header_lines: int, rows: list[str], line: int,
                                     words: str) -> None:
    """Lines 1-4 of the default file are comments, line 5 places the sensor."""
    head = default_geometry_text("epix100").splitlines()[:header_lines]
    path = tmp_path / "bad.geom"
    path.write_text("\n".join([*head, *rows]) + "\n")
    err = _err(capsys, ["geometry", str(path)])
    assert f"{path}:{line}:" in err and words in err
    err = _err(capsys, ["deploy", str(path), "--det", "epix", "--type", "epix100", "--ctype",
                        "geometry", "--runs", "1-end", "--calib-dir", str(tmp_path / "c")])
    assert f"{path}:{line}:" in err
    assert not (tmp_path / "c").exists()  # nothing deployed


def test_geometry_of_another_detector_is_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cspad.geom"
    path.write_text(default_geometry_text("cspad"))
    assert main(["geometry", str(path), "--type", "cspad"]) == 0
    assert "32 segments of 185 x 388" in capsys.readouterr().out
    err = _err(capsys, ["deploy", str(path), "--det", "epix", "--type", "epix100",
                        "--ctype", "geometry", "--runs", "1-end", "--calib-dir", str(tmp_path)])
    assert "not a epix100" in err


def test_constants_of_the_wrong_shape_are_refused(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "ped.npy"
    np.save(bad, np.zeros((32, 185, 380), np.float32))
    err = _err(capsys, ["deploy", str(bad), "--det", "cs", "--type", "cspad", "--ctype",
                        "pedestals", "--runs", "3-end", "--calib-dir", str(tmp_path / "c")])
    assert "(32, 185, 380) does not fit a cspad" in err and "refused" in err
    good = tmp_path / "ped2.npy"
    np.save(good, np.ones((32, 185, 388), np.float32))
    assert main(["deploy", str(good), "--det", "cs", "--type", "cspad", "--ctype", "pedestals",
                 "--runs", "3-end", "--calib-dir", str(tmp_path / "c")]) == 0
    assert CalibStore(tmp_path / "c").find("cspad", "cs", "pedestals", 7) is not None
    # a file of the wrong shape placed by hand is refused when used, naming the file
    store = CalibStore(tmp_path / "c")
    store.deploy("cspad", "cs", "pixel_gain", np.ones((2, 2)), runs=(3, None))
    capsys.readouterr()
    assert main(["show", "cs", "--run", "4", "--calib-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "raw data only" in out and "pixel_gain shape (2, 2)" in out


def test_missing_runs_detectors_and_stores(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(capsys, ["darks", "--exp", "none01", "--run", "3", "--dir", str(tmp_path)])
    assert "no files of run 3 of none01" in err
    err = _err(capsys, ["darks", "--run", "3", "--dir", str(tmp_path)])
    assert "give --exp and --run" in err
    err = _err(capsys, ["show", "cspad", "--run", "1", "--calib-dir", str(tmp_path)])
    assert "no constants for detector 'cspad'" in err
    err = _err(capsys, ["show", "cspad", "--run", "1"])
    assert "give --calib-dir" in err
    err = _err(capsys, ["deploy", str(tmp_path / "nothing.npy"), "--det", "a", "--type",
                        "cspad", "--ctype", "pedestals", "--runs", "1-x", "--calib-dir",
                        str(tmp_path)])
    assert "cannot parse run range '1-x'" in err
    err = _err(capsys, ["truth", "--det", "acq", "--kind", "acqiris", "--calib-dir",
                        str(tmp_path)])
    assert "no calibration for kind 'acqiris'" in err


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    det = Epix100("epix", photon_rate=0.0)
    record_sim_run(root, "tst01", 9, [det], 10, dark=True, streams=3)
    return root


def test_run_files_given_one_by_one(small_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted((small_run / "tst01" / "xtc").glob("*.xtc2"))
    assert len(files) == 3
    index = RunIndex.from_files(files)
    assert len(index) == 10 and [e.stream for e in index.events[:4]] == [0, 1, 2, 0]
    err = _err(capsys, ["darks", "--files", str(files[1]), "--det", "epix", "--deploy",
                        "--calib-dir", str(small_run / "c"), "--runs", "x"])
    assert "cannot parse run range 'x'" in err
    assert main(["darks", "--files", *map(str, files), "--det", "epix", "--deploy",
                 "--calib-dir", str(small_run / "c"), "--max-events", "6"]) == 0
    out = capsys.readouterr().out
    assert "6 dark events" in out and "9-end.data" in out  # the run number from runinfo
    err = _err(capsys, ["darks", "--files", str(files[0]), "--det", "nope"])
    assert "detector 'nope' is not in the run (detectors: epix, timing)" in err


def test_a_run_being_written(small_run: Path) -> None:
    """A cut file (a run still being written) gives its complete events, and says so."""
    src = small_run / "tst01" / "xtc" / "tst01-r0009-s000-c000.xtc2"
    cut = small_run / "cut" / "tst01" / "xtc" / "tst01-r0009-s000-c000.xtc2.inprogress"
    cut.parent.mkdir(parents=True)
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) - 5000])
    with pytest.raises(ValueError, match=r"end in \.inprogress"):
        RunIndex.from_run(small_run / "cut", "tst01", 9)
    index = RunIndex.from_run(small_run / "cut", "tst01", 9, include_inprogress=True)
    assert index.truncated == [cut] and len(index) == 3  # events 0, 3, 6; 9 is cut
    with RunReader(index) as reader:
        assert [i for i, _ in reader.frames("epix")] == [0, 1, 2]


def test_block_ranges_cover_the_events_once() -> None:
    for n, b, ranks in [(1000, 64, 2), (10, 64, 3), (129, 8, 5), (0, 4, 2)]:
        parts = block_ranges(n, b, ranks)
        assert [i for p in parts for i in p] == list(range(n))
        assert all(p.start % b == 0 for p in parts if len(p))


def test_mpi_is_not_used_unless_launched(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS",
                "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    assert not launched_by_mpiexec()
    assert world("auto") is None and world("off") is None
    monkeypatch.setenv("PMI_SIZE", "1")
    assert not launched_by_mpiexec()
    monkeypatch.setenv("PMI_SIZE", "4")
    assert launched_by_mpiexec()


def test_python_dash_m_calib() -> None:
    proc = subprocess.run([sys.executable, "-m", "calib", "--help"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "darks" in proc.stdout and "truth" in proc.stdout
