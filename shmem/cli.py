"""``shmem serve | monitor | status``: replay into a ring, watch it, inspect its clients."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from typing import Any

from daq.xtc import TransitionId

from ._client import ShmemClient, status
from ._errors import ShmemError
from ._monitor import MonitorSummary
from ._replay import replay
from ._server import ShmemServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shmem", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tag", required=True, help="the ring's name ([A-Za-z0-9_.-]+)")
    common.add_argument("--dir", default=None, help="folder of segments and sockets "
                        "(default /dev/shm)")

    s = sub.add_parser("serve", parents=[common], help="replay recorded XTC2 into a ring")
    s.add_argument("--replay", nargs="+", required=True, metavar="FILES_OR_RUN",
                   help=".xtc2 files, or a folder of a run's .xtc2 files (not smalldata)")
    s.add_argument("--rate", type=float, default=None, help="L1Accepts per second")
    s.add_argument("--loop", action="store_true", help="replay for ever")
    s.add_argument("--keep-time", action="store_true",
                   help="keep the recorded timestamps (default: stamp each dgram with the "
                   "time it is served, so it looks live)")
    s.add_argument("--count", type=int, default=None, help="stop after N L1Accepts")
    s.add_argument("--buffers", type=int, default=16)
    s.add_argument("--buffer-size", type=int, default=8 << 20)
    s.add_argument("--transitions", type=int, default=16)
    s.add_argument("--transition-size", type=int, default=1 << 20)
    s.add_argument("--max-clients", type=int, default=16)
    s.add_argument("--group-access", action="store_true", help="segment readable by the group")
    s.add_argument("--wait-clients", type=int, default=0,
                   help="start replaying once N clients are attached")
    s.add_argument("--wait-timeout", type=float, default=30.0)
    s.add_argument("--linger", type=float, default=0.0,
                   help="seconds to keep the ring up after the replay ends")

    m = sub.add_parser("monitor", parents=[common], help="attach and print a live summary")
    m.add_argument("--group", default="shmem-monitor")
    m.add_argument("--mode", choices=("shared", "distributed"), default="shared")
    m.add_argument("--interval", type=float, default=1.0, help="seconds between lines")
    m.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    m.add_argument("--count", type=int, default=None, help="stop after N events")

    st = sub.add_parser("status", parents=[common], help="buffers, clients and counters")
    st.add_argument("--json", action="store_true")
    return p


class _Stop:
    def __init__(self) -> None:
        self.flag = False

    def __call__(self, *_: Any) -> None:
        self.flag = True


def _serve(args: argparse.Namespace) -> int:
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv = ShmemServer(args.tag, args.buffers, args.buffer_size, n_transitions=args.transitions,
                      transition_size=args.transition_size, max_clients=args.max_clients,
                      group_access=args.group_access, directory=args.dir)
    with srv:
        print(f"serving tag {args.tag} at {srv.segment_path}", flush=True)
        deadline = time.monotonic() + args.wait_timeout
        while (args.wait_clients and len(srv.statistics()["clients"]) < args.wait_clients
               and not stop.flag):
            if time.monotonic() > deadline:
                print(f"shmem: {args.wait_clients} clients did not attach in time",
                      file=sys.stderr)
                return 1
            time.sleep(0.01)  # polling the attach count, not synchronising
        n = replay(srv, args.replay, rate=args.rate, loop=args.loop, count=args.count,
                   retime=not args.keep_time,
                   should_stop=lambda: stop.flag)
        end = time.monotonic() + args.linger
        while time.monotonic() < end and not stop.flag:
            time.sleep(0.05)
        st = srv.statistics()
        print(f"replayed {n} dgrams: {st['events']} events, {st['transitions']} transitions",
              flush=True)
    return 0


def _monitor(args: argparse.Namespace) -> int:
    summary = MonitorSummary()
    end = None if args.duration is None else time.monotonic() + args.duration
    with ShmemClient(args.tag, args.group, args.mode, directory=args.dir,
                     name="shmem-monitor") as client:
        print(f"attached to {args.tag} as client {client.id} ({args.mode} group "
              f"{args.group!r})", flush=True)
        summary.start(time.monotonic())
        next_line = time.monotonic() + args.interval
        try:
            while True:
                now = time.monotonic()
                if end is not None and now >= end:
                    break
                if args.count is not None and summary.events >= args.count:
                    break
                timeout = min(next_line, end if end is not None else next_line) - now
                dg = client.next(timeout=max(timeout, 0.0))
                if dg is not None:
                    summary.add(dg)
                    if dg.service == TransitionId.Configure:
                        print(f"Configure: {summary.header()}", flush=True)
                    elif not dg.is_event:
                        print(TransitionId.name_of(dg.service), flush=True)
                if time.monotonic() >= next_line:
                    print(summary.line(time.monotonic(), client.statistics()), flush=True)
                    next_line += args.interval
        except KeyboardInterrupt:
            pass
        client.release()
        print("final: " + json.dumps(summary.final() | client.statistics()), flush=True)
    return 0


def _status(args: argparse.Namespace) -> int:
    st = status(args.tag, directory=args.dir)
    if args.json:
        print(json.dumps(st, indent=1))
        return 0
    print(f"tag {st['tag']}  pid {st['pid']}  segment {st['segment']}")
    print(f"buffers: {st['n_buffers']} x {st['buffer_size']:,} B ({st['free_buffers']} free), "
          f"transitions: {st['n_transitions']} x {st['transition_size']:,} B "
          f"({st['cached']} cached)")
    print(f"events {st['events']}  transitions {st['transitions']}  unrouted {st['unrouted']}  "
          f"dropped {st['dropped']}  taken back {st['taken_back']}  "
          f"bad messages {st['bad_messages']}  refused {st['refused']}")
    cols = ("id", "name", "pid", "group", "mode", "offered", "delivered", "dropped", "queued",
            "held", "transitions")
    print(f"clients: {len(st['clients'])} of {st['max_clients']}")
    rows = [[str(c[k]) for k in cols] for c in st["clients"]]
    widths = [max([len(k), *(len(r[i]) for r in rows)]) for i, k in enumerate(cols)]
    for r in [list(cols), *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"serve": _serve, "monitor": _monitor, "status": _status}[args.cmd](args)
    except (ShmemError, FileNotFoundError, ValueError) as exc:
        print(f"shmem: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
