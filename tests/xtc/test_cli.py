"""The ``daq xtc`` commands, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daq.cli import main

DAQ = [sys.executable, "-m", "daq.cli"]


def test_dump_command_matches_reference(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["xtc", "dump", "-d", str(vectors / "steps.xtc2")]) == 0
    assert capsys.readouterr().out.splitlines() == \
        (vectors / "steps.dump.txt").read_text().splitlines()


def test_dump_headers_only(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["xtc", "dump", str(vectors / "basic.xtc2")]) == 0
    ref = [ln for ln in (vectors / "basic.dump.txt").read_text().splitlines()
           if ln.startswith("event ")]
    assert capsys.readouterr().out.splitlines() == ref


def test_validate_exit_codes_in_a_real_process(vectors: Path) -> None:
    good = subprocess.run([*DAQ, "xtc", "validate", str(vectors / "basic.xtc2")],
                          capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert "valid (13 dgrams, 5 events)" in good.stdout
    bad = subprocess.run([*DAQ, "xtc", "validate", str(vectors / "bad_namesid.xtc2")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "bad_namesid.xtc2 at byte 41000" in bad.stdout and "unknown-namesid" in bad.stdout


def test_smd_command_matches_reference_smd(vectors: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "basic.smd.xtc2"
    assert main(["xtc", "smd", str(vectors / "basic.xtc2"), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["xtc", "dump", "-d", str(out)]) == 0
    ours = capsys.readouterr().out.splitlines()
    assert ours == (vectors / "basic.smd.dump.txt").read_text().splitlines()
    assert main(["xtc", "validate", str(out), "--big", str(vectors / "basic.xtc2")]) == 0


def test_dump_of_corrupt_file_fails_cleanly(vectors: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["xtc", "dump", "-d", str(vectors / "bad_child_extent.xtc2")]) == 1
    err = capsys.readouterr().err
    assert "bad_child_extent.xtc2 at byte 41000" in err and "too small extent" in err
