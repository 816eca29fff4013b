"""``ami local``: a manager, a global collector, a local collector and N workers on this host,
each its own process (``python -m ami ...``); Ctrl-C or SIGTERM stops them all cleanly."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ami.comm import Security, Status, StopFlag

from ._client import ResultsClient

STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Endpoints:
    """Where each part listens: ``command``, ``graph`` (manager), ``results``, ``collect``
    (global collector) and ``local`` (this node's local collector)."""

    command: str
    graph: str
    results: str
    collect: str
    local: str

    @classmethod
    def tcp(cls, port: int, host: str = "127.0.0.1") -> Endpoints:
        return cls(*(f"tcp://{host}:{port + i}" for i in range(5)))

    @classmethod
    def ipc(cls, folder: str | Path) -> Endpoints:
        d = Path(folder)
        return cls(*(f"ipc://{d / n}" for n in ("command", "graph", "results", "collect",
                                                  "local")))


@dataclass
class LocalConfig:
    source: str
    workers: int = 1
    endpoints: Endpoints = field(default_factory=lambda: Endpoints.tcp(5560))
    graph_file: str | None = None
    hz: float = 10.0
    deadline: float = 1.0
    missing_after: float = 3.0
    duration: float | None = None
    until_done: bool = False
    security: Security = field(default_factory=Security)
    calib_dir: str | None = None
    calib_run: int | None = None
    grace: float = 0.5


def _security_args(security: Security) -> list[str]:
    out = ["--keys", str(security.keys)] if security.keys else []
    return out + (["--insecure"] if security.insecure else [])


def commands(cfg: LocalConfig) -> list[list[str]]:
    """The command lines of every process, manager first."""
    ep, py = cfg.endpoints, [sys.executable, "-m", "ami"]
    sec = _security_args(cfg.security)
    common = ["--heartbeat-hz", str(cfg.hz), *sec]
    timing = ["--deadline", str(cfg.deadline), "--missing-after", str(cfg.missing_after)]
    manager = [*py, "manager", "--command", ep.command, "--graph-pub", ep.graph,
               "--results", ep.results, *common]
    if cfg.graph_file:
        manager += ["--graph", cfg.graph_file]
    out = [manager,
           [*py, "collector", "--name", "global", "--listen", ep.collect, "--results",
            ep.results, "--manager", ep.command, "--graph-pub", ep.graph, "--expect", "1",
            *timing, *common],
           [*py, "collector", "--name", "local0", "--listen", ep.local, "--upstream",
            ep.collect, "--expect", str(cfg.workers), *timing, *common]]
    for i in range(cfg.workers):
        calib = ["--calib-dir", cfg.calib_dir] if cfg.calib_dir else []
        if cfg.calib_dir and cfg.calib_run is not None:
            calib += ["--calib-run", str(cfg.calib_run)]
        out.append([*py, "worker", "--id", f"w{i}", "--source", cfg.source, "--index", str(i),
                    "--count", str(cfg.workers), "--manager", ep.command, "--graph-pub",
                    ep.graph, "--collector", ep.local, "--grace", str(cfg.grace), *calib,
                    *common])
    return out


def run_local(cfg: LocalConfig, stop: StopFlag | None = None) -> int:
    """Start every process, wait for the end (duration, done, a signal), stop them all."""
    stop = stop or StopFlag()
    procs = [subprocess.Popen(cmd) for cmd in commands(cfg)]
    t0 = time.monotonic()
    code = 0
    try:
        with ResultsClient(cfg.endpoints.results, views=[], security=cfg.security) as results:
            while not stop.is_set():
                if cfg.duration is not None and time.monotonic() - t0 >= cfg.duration:
                    break
                msg = results.next(0.1)
                if cfg.until_done and isinstance(msg, Status) and msg.finished:
                    break
                if any(p.poll() not in (None, 0) for p in procs[:3]):
                    print("ami local: a manager or collector process failed", file=sys.stderr)
                    code = 1
                    break
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return code
