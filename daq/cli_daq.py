"""The DAQ sub-commands of ``daq``: run, timing, node, eb, control, status."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from daq.config import PartitionConfig, PartitionError, load_partition

OVERRIDES_ENV = "DAQ_PARTITION_OVERRIDES"


def _load(path: Path) -> PartitionConfig:
    """Load a partition config, applying overrides a launcher passed in the environment."""
    raw = os.environ.get(OVERRIDES_ENV)
    try:
        return load_partition(path, json.loads(raw) if raw else None)
    except PartitionError as exc:
        raise SystemExit(f"error: {exc}") from None


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="start a whole partition, record a run, stop cleanly")
    p.add_argument("config", type=Path)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--duration", type=float, default=None, metavar="S")
    g.add_argument("--events", type=int, default=None, metavar="N")
    p.add_argument("--no-record", action="store_true", help="build events but write no files")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("timing", help="run the timing master of a partition")
    p.add_argument("config", type=Path)
    p.set_defaults(func=lambda a: _proc("timing_master", a))

    p = sub.add_parser("node", help="run one readout node")
    p.add_argument("config", type=Path)
    p.add_argument("--id", type=int, required=True)
    p.set_defaults(func=lambda a: _proc("node", a, a.id))

    p = sub.add_parser("eb", help="run one event builder (with its recorder)")
    p.add_argument("config", type=Path)
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--no-record", action="store_true")
    p.add_argument("--monitor", action="store_true",
                   help="be the monitoring builder: hear every group, feed the shared-memory "
                   "ring named by [monitor] tag, record nothing")
    p.set_defaults(func=lambda a: _proc("builder", a, a.index, not a.no_record, a.monitor))

    p = sub.add_parser("control", help="run control: 'serve', or send a transition")
    p.add_argument("action", choices=["serve", "configure", "beginrun", "beginstep", "enable",
                                      "disable", "endstep", "endrun", "unconfigure", "status",
                                      "shutdown"])
    p.add_argument("config", type=Path)
    p.add_argument("--events", type=int, default=None, help="with enable: stop after N shots")
    p.set_defaults(func=cmd_control)

    p = sub.add_parser("status", help="ask a running partition for its status")
    p.add_argument("config", type=Path)
    p.set_defaults(func=cmd_status)


def _proc(module: str, args: argparse.Namespace, *extra: Any) -> int:
    import importlib

    cfg = _load(args.config)
    mod = importlib.import_module(f"daq.proc.{module}")
    return int(mod.main(cfg, *extra))


def cmd_run(args: argparse.Namespace) -> int:
    from daq.proc.launcher import run_partition

    cfg = _load(args.config)
    return run_partition(cfg, args.config, duration=args.duration, events=args.events,
                         record=not args.no_record)


def cmd_control(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if args.action == "serve":
        from daq.proc.control import main

        return main(cfg)
    from daq.proc._link import request

    body: dict[str, Any] = {"cmd": args.action}
    if args.events is not None:
        body["events"] = args.events
    try:
        reply = request(cfg.control, body, timeout=300)
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.action == "status":
        return _print_status(reply)
    print(reply.get("message", reply))
    return 0 if reply.get("ok") else 1


def cmd_status(args: argparse.Namespace) -> int:
    from daq.proc._link import request

    cfg = _load(args.config)
    try:
        reply = request(cfg.control, {"cmd": "status"}, timeout=5)
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return _print_status(reply)


def _print_status(reply: dict[str, Any]) -> int:
    from daq.proc.launcher import StatusTable

    print(StatusTable().render(reply))
    if reply.get("missing"):
        print("not connected: " + ", ".join(reply["missing"]))
    return 0
