"""``daq demo``: run the demo partition for a few seconds, validate what it recorded, summarise.

The demo partition (``examples/demo.toml``): timing, readout nodes for a CSPAD, an Acqiris
digitizer and beam-line data + EPICS at 120 Hz, two event builders recording to ``./data`` and a
monitoring builder feeding the shared-memory ring ``demo``. Earlier demo runs are removed first
(a CSPAD at 120 Hz writes ~550 MB/s).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from daq.config import PartitionError, load_partition
from daq.xtc._files import run_streams, smd_path_for_big
from daq.xtc._validate import validate_file

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "examples" / "demo.toml"


def run_demo(args: argparse.Namespace) -> int:
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
    p = sub.add_parser("demo", help="run the demo partition briefly and validate its files")
    p.add_argument("--config", default=str(DEMO_CONFIG), help="partition (default: the demo)")
    p.add_argument("--out", default="data", help="data root (default %(default)s)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds (default %(default)s)")
    p.set_defaults(func=run_demo)
