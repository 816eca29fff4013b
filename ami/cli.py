"""``ami``: run AMI (``local``, or one ``manager`` / ``collector`` / ``worker`` per host), drive
a running manager (``graph``, ``status``), watch a view, list operations, make CURVE keys."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ami.comm import Security, Status, StopFlag, ViewUpdate, make_keys

DEFAULT_PORT = 5560


def _security(args: argparse.Namespace) -> Security:
    return Security(Path(args.keys) if args.keys else None, args.insecure)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--heartbeat-hz", type=float, default=10.0, help="heartbeats per second")
    p.add_argument("--keys", default=None, help="CURVE key folder (needed off loopback)")
    p.add_argument("--insecure", action="store_true",
                   help="allow binding a non-loopback address without CURVE")


def _timing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deadline", type=float, default=1.0,
                   help="seconds a heartbeat waits for slow contributors")
    p.add_argument("--missing-after", type=float, default=3.0,
                   help="seconds of silence before a contributor is reported missing")


def _endpoint_defaults(args: argparse.Namespace) -> Any:
    from ami.runtime import Endpoints

    if getattr(args, "ipc", None):
        return Endpoints.ipc(args.ipc)
    return Endpoints.tcp(getattr(args, "port", None) or DEFAULT_PORT,
                         getattr(args, "host", "127.0.0.1"))


def _grace_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grace", type=float, default=0.5,
                   help="live sources: seconds after its end an idle heartbeat is closed "
                   "(larger tolerates slower workers, delays idle heartbeats)")


def _calib_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib-dir", default=None,
                   help="calibration constants store: offer DET:calib and DET:image sources")
    p.add_argument("--calib-run", type=int, default=None,
                   help="run whose constants apply (default: the newest valid ones)")


def cmd_local(args: argparse.Namespace) -> int:
    from ami.runtime import LocalConfig, run_local

    cfg = LocalConfig(args.source, args.workers, _endpoint_defaults(args), args.graph,
                      args.heartbeat_hz, args.deadline, args.missing_after, args.duration,
                      args.until_done, _security(args), args.calib_dir, args.calib_run,
                      args.grace)
    return run_local(cfg, StopFlag().install())


def cmd_manager(args: argparse.Namespace) -> int:
    from ami.runtime import ManagerConfig, run_manager

    ep = _endpoint_defaults(args)
    cfg = ManagerConfig(args.command or ep.command, args.graph_pub or ep.graph,
                        args.results or ep.results, args.heartbeat_hz, args.graph,
                        args.graph_dir, _security(args))
    return run_manager(cfg, StopFlag().install())


def cmd_collector(args: argparse.Namespace) -> int:
    from ami.runtime import CollectorConfig, run_collector

    ep = _endpoint_defaults(args)
    if args.upstream:
        cfg = CollectorConfig(args.name, args.listen or ep.local, upstream=args.upstream)
    else:
        cfg = CollectorConfig(args.name, args.listen or ep.collect,
                              results=args.results or ep.results,
                              manager=args.manager or ep.command,
                              graph=args.graph_pub or ep.graph)
    cfg.expected, cfg.hz = args.expect, args.heartbeat_hz
    cfg.deadline, cfg.missing_after = args.deadline, args.missing_after
    cfg.security = _security(args)
    return run_collector(cfg, StopFlag().install())


def cmd_worker(args: argparse.Namespace) -> int:
    from ami.runtime import WorkerConfig, run_worker

    ep = _endpoint_defaults(args)
    cfg = WorkerConfig(args.id, args.source, args.manager or ep.command,
                       args.graph_pub or ep.graph, args.collector or ep.local, args.index,
                       args.count, args.heartbeat_hz, security=_security(args),
                       calib_dir=args.calib_dir, calib_run=args.calib_run, grace=args.grace)
    return run_worker(cfg, StopFlag().install())


def _client(args: argparse.Namespace) -> Any:
    from ami.runtime import ManagerClient

    return ManagerClient(args.manager or _endpoint_defaults(args).command,
                         timeout=args.timeout, security=_security(args))


def cmd_graph(args: argparse.Namespace) -> int:
    from ami.graph import Graph
    from ami.runtime import CommandError

    with _client(args) as client:
        try:
            if args.action == "show":
                reply = client.request("get_graph")
                print(json.dumps(reply["graph"], indent=1))
                print(f"# version {reply['version']}", file=sys.stderr)
            elif args.action == "load":
                graph = Graph.load(args.file)
                print(client.request("set_graph", graph=graph.to_dict()))
            else:
                Graph.from_dict(client.request("get_graph")["graph"]).save(args.file)
                print(f"saved to {args.file}")
        except CommandError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 1
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(json.dumps(client.request("status"), indent=1, default=str))
    return 0


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 8:
            return np.array2string(value, precision=4)
        return (f"array{list(value.shape)} {value.dtype} min={np.nanmin(value):.4g} "
                f"max={np.nanmax(value):.4g} sum={np.nansum(value):.6g}")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return repr(value)


def cmd_watch(args: argparse.Namespace) -> int:
    from ami.runtime import ResultsClient

    results = args.results or _endpoint_defaults(args).results
    seen = 0
    with ResultsClient(results, [args.view], status=False, security=_security(args)) as sub:
        while args.count is None or seen < args.count:
            msg = sub.next(args.timeout)
            if msg is None:
                print(f"no update of '{args.view}' within {args.timeout} s", file=sys.stderr)
                return 1
            if isinstance(msg, ViewUpdate):
                seen += 1
                err = f"  ERROR {msg.error}" if msg.error else ""
                print(f"heartbeat {msg.heartbeat} t={msg.time:.1f} events={msg.events} "
                      f"{args.view} = {_show(msg.value)}{err}", flush=True)
            elif isinstance(msg, Status):
                continue
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from ._doc import operations_markdown

    print(operations_markdown())
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    print(f"keys written to {make_keys(args.folder)}")
    return 0


def _endpoints_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=None,
                   help=f"base TCP port of the default endpoints (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1", help="host of the default endpoints")
    p.add_argument("--ipc", default=None, help="use ipc:// endpoints in this folder instead")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ami", description=__doc__)
    sub = top.add_subparsers(dest="command_name", required=True)
    sub.add_parser("smalldata", add_help=False,
                   help="reduce a recorded run to smalldata HDF5 and cubes (--help for options)")
    sub.add_parser("gui", add_help=False,
                   help="the control-room GUI (same as ami-gui; ami gui --help for options)")

    p = sub.add_parser("local", help="manager, collectors and workers on this host")
    p.add_argument("--source", required=True, help="shmem://TAG or xtc://FILES_OR_DIR")
    p.add_argument("-n", "--workers", type=int, default=1)
    p.add_argument("--graph", default=None, help="graph JSON to start with")
    p.add_argument("--duration", type=float, default=None, help="stop after this many s")
    p.add_argument("--until-done", action="store_true", help="stop when the source ends")
    _grace_opt(p)
    _calib_opts(p)
    _endpoints_opts(p)
    _timing(p)
    _common(p)
    p.set_defaults(fn=cmd_local)

    p = sub.add_parser("manager", help="the manager of a multi-host set-up")
    p.add_argument("--command", default=None, help="command endpoint to bind")
    p.add_argument("--graph-pub", default=None, help="graph publisher endpoint to bind")
    p.add_argument("--results", default=None, help="global collector's results endpoint")
    p.add_argument("--graph", default=None, help="graph JSON to start with")
    p.add_argument("--graph-dir", default=".", help="folder of save_graph / load_graph")
    _endpoints_opts(p)
    _common(p)
    p.set_defaults(fn=cmd_manager)

    p = sub.add_parser("collector", help="a local (--upstream) or the global collector")
    p.add_argument("--name", required=True)
    p.add_argument("--listen", default=None, help="endpoint to bind for contributions")
    p.add_argument("--upstream", default=None, help="global collector (makes this local)")
    p.add_argument("--results", default=None, help="results endpoint to bind (global)")
    p.add_argument("--manager", default=None, help="manager command endpoint (global)")
    p.add_argument("--graph-pub", default=None, help="manager graph endpoint (global)")
    p.add_argument("--expect", type=int, default=0, help="contributors to wait for")
    _endpoints_opts(p)
    _timing(p)
    _common(p)
    p.set_defaults(fn=cmd_collector)

    p = sub.add_parser("worker", help="one worker")
    p.add_argument("--id", required=True)
    p.add_argument("--source", required=True, help="shmem://TAG or xtc://FILES_OR_DIR")
    p.add_argument("--index", type=int, default=0, help="this worker's share of a file")
    p.add_argument("--count", type=int, default=1, help="workers sharing the file")
    p.add_argument("--manager", default=None)
    p.add_argument("--graph-pub", default=None)
    p.add_argument("--collector", default=None, help="this node's local collector")
    _grace_opt(p)
    _calib_opts(p)
    _endpoints_opts(p)
    _common(p)
    p.set_defaults(fn=cmd_worker)

    for name, fn, hlp in (("graph", cmd_graph, "show, load or save the manager's graph"),
                          ("status", cmd_status, "the manager's status")):
        p = sub.add_parser(name, help=hlp)
        if name == "graph":
            p.add_argument("action", choices=("show", "load", "save"))
            p.add_argument("file", nargs="?", default=None)
        p.add_argument("--manager", default=None, help="manager command endpoint")
        p.add_argument("--timeout", type=float, default=5.0)
        _endpoints_opts(p)
        _common(p)
        p.set_defaults(fn=fn)

    p = sub.add_parser("watch", help="print a view's latest values")
    p.add_argument("view")
    p.add_argument("--results", default=None, help="results endpoint")
    p.add_argument("--count", type=int, default=None, help="stop after N updates")
    p.add_argument("--timeout", type=float, default=10.0, help="give up after S s of silence")
    _endpoints_opts(p)
    _common(p)
    p.set_defaults(fn=cmd_watch)

    p = sub.add_parser("ops", help="the operations table (Markdown)")
    p.set_defaults(fn=cmd_ops)
    p = sub.add_parser("keys", help="make CURVE server and client keys in a folder")
    p.add_argument("folder")
    p.set_defaults(fn=cmd_keys)
    return top


def main(argv: list[str] | None = None) -> int:
    with contextlib.suppress(io.UnsupportedOperation, AttributeError, ValueError):
        faulthandler.enable()  # a crash in any process leaves a traceback in its log
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["smalldata"]:
        from ami.offline.cli import main as smalldata_main

        return int(smalldata_main(argv[1:]))
    if argv[:1] == ["gui"]:
        # the control-room GUI is its own program (gui imports ami, never the reverse)
        import subprocess

        return subprocess.call([sys.executable, "-m", "gui", *argv[1:]])
    args = parser().parse_args(argv)
    if getattr(args, "command_name", None) == "graph" and args.action != "show" and not args.file:
        print("ami graph load|save needs a FILE", file=sys.stderr)
        return 2
    return int(args.fn(args))
