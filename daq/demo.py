"""``daq demo``: the whole chain: DAQ partition + AMI + control-room GUI, then validation.

The demo partition (``examples/demo.toml``): timing, readout nodes for a CSPAD, an Acqiris
digitizer and beam-line data + EPICS at 120 Hz, two event builders recording to ``./data`` and a
monitoring builder feeding the shared-memory ring ``demo``; ``ami local`` with two workers on that
ring runs ``examples/demo_graph.json``; the GUI shows it (in a window when there is a display;
otherwise headless: status lines, then a PNG of every view in ``data/snapshots``). Ctrl-C or
closing the window ends the run cleanly; every recorded file is then validated. Earlier demo
runs are removed first (a CSPAD at 120 Hz writes ~550 MB/s). The AMI and the GUI run as their own
processes: ``daq`` never imports them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from daq.config import PartitionError, load_partition
from daq.xtc._files import run_streams, smd_path_for_big
from daq.xtc._validate import validate_file

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "examples" / "demo.toml"


DEMO_GRAPH = DEMO_CONFIG.parent / "demo_graph.json"


def run_demo(args: argparse.Namespace) -> int:
    if args.daq_only:
        return run_daq_only(args)
    return run_chain(args)


def run_daq_only(args: argparse.Namespace) -> int:
    from daq.proc.launcher import RunResult, run_partition

    config = Path(args.config)
    overrides = {"data_root": str(Path(args.out).resolve())}
    try:
        cfg = load_partition(config, overrides)
    except PartitionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    old = cfg.data_root / cfg.experiment / "xtc"
    if old.exists():
        print(f"removing earlier demo runs in {old}")
        shutil.rmtree(old)
    print(f"demo: {config.name} for {args.duration:g} s, data in {cfg.data_root}")
    results: list[RunResult] = []
    rc = run_partition(cfg, config, duration=args.duration, events=None, record=True,
                       overrides=overrides, results=results)
    if rc != 0 or not results or results[0].run is None:
        return rc or 1
    return validate_run(cfg.data_root, cfg.experiment, results[0].run)


def _spawn(cmd: list[str], log: Path | None) -> subprocess.Popen[bytes]:
    from daq.proc.launcher import _die_with_parent

    out = open(log, "ab") if log is not None else None  # noqa: SIM115 - the child owns it
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if out else None,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_die_with_parent)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_chain(args: argparse.Namespace) -> int:
    """DAQ partition -> shared memory -> ami local (2 workers) -> GUI; then validation."""
    from daq.proc.launcher import Partition, StatusTable, rmem_hint, transition

    config = Path(args.config)
    out_root = Path(args.out).resolve()
    overrides = {"data_root": str(out_root)}
    try:
        cfg = load_partition(config, overrides)
    except PartitionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if cfg.monitor_tag is None:
        print("error: the demo needs a [monitor] tag in its partition config", file=sys.stderr)
        return 2
    old = cfg.data_root / cfg.experiment / "xtc"
    if old.exists():
        print(f"removing earlier demo runs in {old}")
        shutil.rmtree(old)
    snapshots = out_root / "snapshots"
    logs = cfg.data_root / cfg.experiment / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    hint = rmem_hint(cfg.network.rcvbuf)
    if hint:
        print(hint)
    headless = args.headless or not (os.environ.get("DISPLAY") or
                                      os.environ.get("WAYLAND_DISPLAY"))
    stopping = {"flag": False}

    def on_sigint(signum: int, frame: object) -> None:
        stopping["flag"] = True

    old_handler = signal.signal(signal.SIGINT, on_sigint)
    part = Partition(cfg, config, overrides=overrides, log_dir=logs)
    ami = gui = None
    run = None
    table = StatusTable()
    try:
        print(f"starting the DAQ partition ({config.name}); logs in {logs}")
        part.start()
        part.wait_ready()
        transition(cfg, "configure", timeout=300)
        run = transition(cfg, "beginrun")["run"]
        transition(cfg, "beginstep")
        transition(cfg, "enable")
        print(f"run {run} is recording; starting ami local (2 workers on shmem://"
              f"{cfg.monitor_tag}) with {Path(args.graph).name}")
        ami = _spawn([sys.executable, "-m", "ami", "local", "--source",
                      f"shmem://{cfg.monitor_tag}", "-n", "2", "--graph", str(args.graph),
                      "--port", str(args.ami_port)], logs / "ami.log")
        manager = f"tcp://127.0.0.1:{args.ami_port}"
        _wait_for_results(args.ami_port, ami, stopping, timeout=180.0)
        gui_cmd = [sys.executable, "-m", "gui", "--manager", manager, "--port",
                   str(args.ami_port)]
        if headless:
            print(f"no display: the GUI runs headless for {args.duration:g} s, snapshots to "
                  f"{snapshots}")
            gui_cmd += ["--headless", "--duration", str(args.duration), "--snapshots",
                        str(snapshots)]
        gui = _spawn(gui_cmd, None)
        next_table = time.monotonic() + 5
        while gui.poll() is None and not stopping["flag"]:
            if ami.poll() is not None:
                print(f"ami local exited ({ami.returncode}); see {logs / 'ami.log'}")
                break
            time.sleep(0.1)  # waiting for the GUI to end (window closed / time up)
            if time.monotonic() >= next_table:
                table.show(_status(cfg))
                next_table += 5
    except RuntimeError as exc:
        print(f"error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, old_handler)
        for proc in (gui, ami):
            if proc is not None:
                _stop(proc)
        for cmd in ("disable", "endstep", "endrun", "unconfigure"):
            with contextlib.suppress(RuntimeError, TimeoutError):
                transition(cfg, cmd)
        with contextlib.suppress(RuntimeError, TimeoutError):
            table.show(_status(cfg))
        part.stop()
    if snapshots.is_dir():
        pngs = sorted(snapshots.glob("*.png"))
        print(f"{len(pngs)} snapshots in {snapshots}: {', '.join(p.name for p in pngs)}")
    if run is None:
        return 1
    return validate_run(cfg.data_root, cfg.experiment, int(run))


def _wait_for_results(port: int, ami: subprocess.Popen[bytes], stopping: dict[str, bool],
                      timeout: float) -> None:
    """Wait until AMI has published a heartbeat (a first start compiles its kernels)."""
    print("waiting for AMI's first results (the first start compiles its numba kernels)",
          flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping["flag"] and ami.poll() is None:
        out = subprocess.run([sys.executable, "-m", "ami", "status", "--port", str(port)],
                             capture_output=True, text=True, timeout=30, check=False)
        try:
            if json.loads(out.stdout).get("published", 0) > 0:
                return
        except (json.JSONDecodeError, AttributeError):
            pass
        time.sleep(1.0)  # polling another process's progress, once a second
    print("AMI has published nothing yet; starting the GUI anyway")


def _status(cfg: Any) -> dict[str, Any]:
    from daq.proc._link import request

    return request(cfg.control, {"cmd": "status"}, timeout=10)


def validate_run(root: Path, expt: str, run: int) -> int:
    streams = run_streams(root, expt, run)
    if not streams:
        print(f"no files recorded for run {run}")
        return 1
    ok = True
    events = 0
    print(f"validating run {run}:")
    for stream, chunks in streams.items():
        files = [*chunks, smd_path_for_big(chunks[0])]
        for i, f in enumerate(files):
            report = validate_file(f, config=chunks[0] if 0 < i < len(chunks) else None)
            if f.suffixes[-2:] != [".smd", ".xtc2"]:
                events += report.events
            status = "valid" if report.ok else "INVALID"
            print(f"  s{stream:03d} {f.name:<36} {f.stat().st_size / 1e6:9.1f} MB "
                  f"{report.events:6d} events  {status}")
            for p in report.problems[:5]:
                print(f"    {p}")
            ok &= report.ok
    print(f"summary: {events} events recorded in {len(streams)} streams; "
          + ("all files valid" if ok else "validation FAILED"))
    return 0 if ok else 1


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole chain: DAQ + AMI + GUI, then validate the files")
    p.add_argument("--config", default=str(DEMO_CONFIG), help="partition (default: the demo)")
    p.add_argument("--graph", default=str(DEMO_GRAPH), help="AMI graph (default: the demo's)")
    p.add_argument("--out", default="data", help="data root (default %(default)s)")
    p.add_argument("--duration", type=float, default=10.0,
                   help="seconds of headless GUI (default %(default)s); with a display the "
                   "demo runs until the window is closed")
    p.add_argument("--headless", action="store_true", help="no window even with a display")
    p.add_argument("--ami-port", type=int, default=5560, help="base port of ami local")
    p.add_argument("--daq-only", action="store_true",
                   help="only the DAQ partition for --duration seconds (no AMI, no GUI)")
    p.set_defaults(func=run_demo)
