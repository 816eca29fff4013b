"""``daq run``: start a whole partition as separate processes, run it, stop it cleanly.

Control, builders, nodes and the timing master each run in their own process (their logs go to
``<data_root>/<experiment>/logs/``). The launcher drives the transitions through the control
process, shows a live status table, ends the run after a duration, an event count or Ctrl-C
(EndRun written, files closed and renamed), and prints a final summary.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from daq.config import PartitionConfig

from ._link import request


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the launcher dies, so no process outlives it (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class RunResult:
    ok: bool
    run: int | None
    messages: list[str] = field(default_factory=list)
    final_status: dict[str, Any] = field(default_factory=dict)


class Partition:
    """The processes of one partition, started from a config file."""

    def __init__(self, cfg: PartitionConfig, config_path: Path, *, record: bool = True,
                 log_dir: Path | None = None, python: str = sys.executable,
                 overrides: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.overrides = overrides
        self.config_path = config_path
        self.record = record and cfg.recording.enabled
        self.log_dir = log_dir or (cfg.data_root / cfg.experiment / "logs")
        self.python = python
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []

    def _spawn(self, name: str, args: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        cmd = [self.python, "-m", "daq.cli", *args]
        env = dict(os.environ)
        if self.overrides:
            env["DAQ_PARTITION_OVERRIDES"] = json.dumps(self.overrides)
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=_die_with_parent)

    def start(self) -> None:
        cfgp = str(self.config_path)
        self._spawn("control", ["control", "serve", cfgp])
        for i in range(self.cfg.builders):
            self._spawn(f"eb-{i}", ["eb", cfgp, "--index", str(i),
                                    *([] if self.record else ["--no-record"])])
        if self.cfg.monitor_tag is not None:
            self._spawn("meb-0", ["eb", cfgp, "--index", "0", "--monitor"])
        for n in self.cfg.nodes:
            self._spawn(f"node-{n.id}", ["node", cfgp, "--id", str(n.id)])
        self._spawn("timing", ["timing", cfgp])

    def dead(self) -> list[str]:
        return [f"{name} (exit {p.returncode})" for name, p in self.procs.items()
                if p.poll() is not None]

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            dead = self.dead()
            if dead:
                raise RuntimeError(f"processes exited at start: {', '.join(dead)} (see "
                                   f"{self.log_dir})")
            try:
                status = request(self.cfg.control, {"cmd": "status"}, timeout=2.0)
            except TimeoutError:
                continue
            if not status.get("missing"):
                return status
            time.sleep(0.05)  # polling a remote process's registration, not synchronising
        raise RuntimeError(f"partition not ready after {timeout:.0f} s: missing "
                           f"{', '.join(status.get('missing', ['control']))}")

    def stop(self, timeout: float = 10.0) -> None:
        try:
            if all(p.poll() is None for p in self.procs.values()):
                request(self.cfg.control, {"cmd": "shutdown"}, timeout=3.0)
        except (TimeoutError, OSError):
            pass
        deadline = time.monotonic() + timeout
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(3)
        for log in self._logs:
            log.close()


def transition(cfg: PartitionConfig, cmd: str, timeout: float = 120.0,
               **extra: Any) -> dict[str, Any]:
    reply = request(cfg.control, {"cmd": cmd, "timeout": timeout, **extra}, timeout=timeout + 5)
    if not reply.get("ok"):
        raise RuntimeError(reply.get("message", f"{cmd} failed"))
    return reply


def drive_run(cfg: PartitionConfig, *, duration: float | None, events: int | None,
              stopping: Callable[[], bool], show: Callable[[dict[str, Any]], None] | None = None,
              interval: float = 1.0, record: bool = True) -> RunResult:
    """Configure, run the steps, end the run and unconfigure; returns what happened."""
    result = RunResult(ok=True, run=None)
    transition(cfg, "configure", timeout=300)
    try:
        reply = transition(cfg, "beginrun", record=record)
        result.run = reply.get("run")
        steps = cfg.scan.values if cfg.scan is not None else (None,)
        per_step = cfg.scan.events_per_step if cfg.scan is not None else events
        t_end = None if duration is None else time.monotonic() + duration
        for _ in steps:
            if stopping():
                break
            transition(cfg, "beginstep")
            transition(cfg, "enable", events=per_step)
            next_show = time.monotonic()
            while not stopping():
                st = request(cfg.control, {"cmd": "status"}, timeout=5)
                if st.get("enable_done") or (t_end is not None and time.monotonic() >= t_end):
                    break
                if show is not None and time.monotonic() >= next_show:
                    show(st)
                    next_show += interval
                time.sleep(0.05)  # status polling cadence for the table, not synchronisation
            transition(cfg, "disable")
            transition(cfg, "endstep")
            if t_end is not None and time.monotonic() >= t_end:
                break
    finally:
        for cmd in ("disable", "endstep", "endrun", "unconfigure"):
            st = request(cfg.control, {"cmd": "status"}, timeout=5)
            from .control import TRANSITIONS

            if st.get("state") == TRANSITIONS[cmd][1]:
                try:
                    reply = transition(cfg, cmd)
                except RuntimeError as exc:
                    result.ok = False
                    result.messages.append(str(exc))
        result.final_status = request(cfg.control, {"cmd": "status"}, timeout=5)
    return result


# -- the live table -------------------------------------------------------------------------------

#: event-builder counters of datagrams or contributions thrown away (the table's "dropped")
DROP_COUNTERS = ("stale", "duplicates", "malformed", "unknown_node", "bad_datagrams",
                 "checksum_errors", "foreign_datagrams", "stale_epoch", "fragment_dups",
                 "reassembly_dropped")


class StatusTable:
    """Per process: events, MB/s, damaged, dropped, queue depth, kernel drops."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.prev: dict[str, tuple[float, float]] = {}
        self.lines = 0

    @staticmethod
    def row(name: str, st: dict[str, Any]) -> tuple[str, int, float, int, int, int, int]:
        role = st.get("role")
        if role in ("eb", "meb"):
            dropped = sum(int(st.get(k, 0)) for k in DROP_COUNTERS)
            return (name, int(st.get("events", 0)), float(st.get("built_bytes", 0)),
                    int(st.get("incomplete", 0)), dropped, int(st.get("depth", 0)),
                    int(st.get("kernel_drops", 0)))
        if role == "node":
            return (name, int(st.get("events", 0)), float(st.get("bytes", 0)), 0,
                    int(st.get("timing_errors", 0)), 0, int(st.get("kernel_drops", 0)))
        return (name, int(st.get("events", 0)), 0.0, 0, 0, 0, 0)

    def render(self, status: dict[str, Any]) -> str:
        now = time.monotonic()
        lines = [f"state {status.get('state')}  run {status.get('run')}  step "
                 f"{status.get('step')}  errors {len(status.get('errors', []))}",
                 f"{'process':<10} {'events':>10} {'MB/s':>9} {'damaged':>8} {'dropped':>8} "
                 f"{'queue':>6} {'kdrops':>7}"]
        for name in sorted(status.get("processes", {})):
            st = status["processes"][name]
            n, ev, nbytes, dmg, drop, depth, kd = self.row(name, st)
            t0, b0 = self.prev.get(name, (now, nbytes))
            rate = (nbytes - b0) / (now - t0) / 1e6 if now > t0 else 0.0
            self.prev[name] = (now, nbytes)
            lines.append(f"{n:<10} {ev:>10} {rate:>9.1f} {dmg:>8} {drop:>8} {depth:>6} {kd:>7}")
        for err in status.get("errors", [])[-3:]:
            lines.append(f"! {err}")
        return "\n".join(lines)

    def show(self, status: dict[str, Any]) -> None:
        text = self.render(status)
        if self.out.isatty() and self.lines:
            self.out.write(f"\x1b[{self.lines}F\x1b[J")
        self.out.write(text + "\n")
        self.out.flush()
        self.lines = text.count("\n") + 1


def summary(result: RunResult, cfg: PartitionConfig) -> str:
    procs = result.final_status.get("processes", {})
    lines = [f"run {result.run} of {cfg.experiment}: " + ("ok" if result.ok else "FAILED")]
    for name in sorted(procs):
        st = procs[name]
        if st.get("role") in ("eb", "meb"):
            lines.append(f"  {name}: {st.get('events', 0)} events ({st.get('complete', 0)} "
                         f"complete, {st.get('incomplete', 0)} damaged), "
                         f"{st.get('built_bytes', 0) / 1e6:.1f} MB built, kernel drops "
                         f"{st.get('kernel_drops', 0)}")
        elif st.get("role") == "node":
            lines.append(f"  {name}: {st.get('events', 0)} contributions sent")
        elif st.get("role") == "timing":
            lines.append(f"  {name}: {st.get('events', 0)} shots")
    for m in result.messages + result.final_status.get("errors", []):
        lines.append(f"  ! {m}")
    return "\n".join(lines)


def run_partition(cfg: PartitionConfig, config_path: Path, *, duration: float | None,
                  events: int | None, record: bool, out: TextIO = sys.stdout,
                  overrides: dict[str, Any] | None = None,
                  results: list[RunResult] | None = None) -> int:
    """Run a partition from the command line; ``results`` (if given) receives the outcome."""
    if record and cfg.recording.enabled:
        _check_writable(cfg)
    hint = rmem_hint(cfg.network.rcvbuf)
    if hint:
        out.write(hint + "\n")
    part = Partition(cfg, config_path, record=record, overrides=overrides)
    stopping = {"flag": False}

    def on_sigint(signum: int, frame: object) -> None:
        if stopping["flag"]:
            raise KeyboardInterrupt
        stopping["flag"] = True
        out.write("\nstopping: ending the run cleanly (Ctrl-C again to kill)\n")

    old = signal.signal(signal.SIGINT, on_sigint)
    table = StatusTable(out)
    try:
        part.start()
        part.wait_ready()
        result = drive_run(cfg, duration=duration, events=events,
                           stopping=lambda: stopping["flag"], show=table.show, record=record)
        table.show(result.final_status)
        out.write(summary(result, cfg) + "\n")
        if results is not None:
            results.append(result)
        return 0 if result.ok else 1
    except RuntimeError as exc:
        out.write(f"error: {exc}\n")
        return 1
    finally:
        signal.signal(signal.SIGINT, old)
        part.stop()


def rmem_hint(want: int) -> str | None:
    """A hint when the kernel caps receive buffers below what the partition asks for."""
    try:
        cap = int(Path("/proc/sys/net/core/rmem_max").read_text())
    except (OSError, ValueError):
        return None
    if cap >= want:
        return None
    return (f"note: the kernel caps UDP receive buffers at {cap >> 20} MiB (asked "
            f"{want >> 20} MiB); at high rates builders will drop datagrams. As root: "
            f"sysctl -w net.core.rmem_max={want}")


def _check_writable(cfg: PartitionConfig) -> None:
    d = cfg.data_root / cfg.experiment / "xtc"
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".write-test-{os.getpid()}"
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        raise SystemExit(f"error: data root {d} is not writable: {exc.strerror}") from None
