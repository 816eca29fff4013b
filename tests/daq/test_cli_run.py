"""``daq run`` as a user runs it: Ctrl-C ends the run cleanly; a write error mid-run is reported
and the run never looks complete."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from daq.xtc._files import run_streams
from daq.xtc._validate import validate_file

from .conftest import SMALL_NODES, Running, write_config

pytestmark = pytest.mark.slow


def test_ctrl_c_ends_the_run_cleanly(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, SMALL_NODES, 2)
    proc = subprocess.Popen([sys.executable, "-m", "daq.cli", "run", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # the live table shows a running state: then press Ctrl-C
        lines.append(line)
        if line.startswith("state enabled") and len([x for x in lines
                                                      if x.startswith("eb-0")]) >= 2:
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=120)
    out = "".join(lines) + rest
    assert proc.returncode == 0, out
    assert "stopping: ending the run cleanly" in out and "run 1 of tst01: ok" in out
    streams = run_streams(tmp_path / "data", "tst01", 1)
    files = [c for chunks in streams.values() for c in chunks]
    assert len(files) == 2 and not list((tmp_path / "data").rglob("*.inprogress"))
    for f in files:
        report = validate_file(f)
        assert report.ok and report.events > 0, report.problems


def test_write_error_mid_run_is_reported(partition: Callable[..., Running]) -> None:
    p = partition(builders=1)
    # replace the builder by one whose files may not grow past 200 kB (writes then fail with
    # EFBIG, as they would with ENOSPC on a full disk)
    p.part.procs["eb-0"].terminate()
    p.part.procs["eb-0"].wait(10)
    limited = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, "
               "(200000, 200000)); from daq.cli import main; sys.exit(main(sys.argv[1:]))")
    log = open(p.part.log_dir / "eb-0-limited.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-c", limited, "eb", str(p.part.config_path),
                             "--index", "0"], stdout=log, stderr=subprocess.STDOUT)
    p.part.procs["eb-0"] = proc
    try:
        p.wait(lambda st: st["pids"].get("eb-0") == proc.pid and not st["missing"])
        p.cmd("configure")
        run = p.cmd("beginrun")["run"]
        p.cmd("beginstep")
        p.cmd("enable")
        st = p.wait(lambda st: bool(st["errors"]))
        assert any("File too large" in e and "tst01-r0001" in e for e in st["errors"]), st
        p.cmd("disable")
        p.cmd("endstep")
        from daq.proc._link import request

        reply = request(p.cfg.control, {"cmd": "endrun"}, timeout=60)
        assert reply["state"] == "configured"
        assert not run_streams(p.cfg.data_root, "tst01", run)  # never looks complete
        assert run_streams(p.cfg.data_root, "tst01", run, include_inprogress=True)
    finally:
        log.close()
