"""Real partitions for end-to-end tests: unique ports, groups and control socket per test."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daq.config import PartitionConfig, load_partition
from daq.proc._link import request
from daq.proc.launcher import Partition


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return repr(v)


def write_config(tmp: Path, nodes: list[dict[str, Any]], builders: int = 2, *,
                 timing: dict[str, Any] | None = None, extra: str = "",
                 eb_timeout: float = 2.0, data_root: Path | None = None,
                 network: dict[str, Any] | None = None) -> Path:
    a, b = random.randint(1, 250), random.randint(1, 200)
    lines = [
        'experiment = "tst01"',
        f'data_root = "{data_root or (tmp / "data")}"',
        f"partition = {random.randint(1, 60000)}",
        "[timing]",
        *(f"{k} = {toml_value(v)}" for k, v in (timing or {"beam_rate": 120.0}).items()),
    ]
    for n in nodes:
        lines += ["[[nodes]]", *(f"{k} = {toml_value(v)}" for k, v in n.items())]
    lines += [
        "[builders]", f"count = {builders}",
        "[network]",
        f'timing_group = "239.254.{a}.{b}"', f"timing_port = {free_udp_port()}",
        f'builder_group_base = "239.253.{a}.{b}"', f"builder_port = {free_udp_port()}",
        *(f"{k} = {toml_value(v)}" for k, v in (network or {}).items()),
        "[control]", f'address = "ipc://{tmp}/control.sock"',
        "[eb]", f"timeout = {eb_timeout}",
        extra,
    ]
    path = tmp / "partition.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


SMALL_NODES = [
    {"id": 1, "name": "bld", "detectors": [{"kind": "timing", "name": "timing"},
                                           {"kind": "gasdet", "name": "gasdet"},
                                           {"kind": "epics", "name": "epics"}]},
    {"id": 2, "name": "digi", "detectors": [{"kind": "acqiris", "name": "acqiris"}]},
]


class Running:
    """A started partition plus helpers to drive it from a test."""

    def __init__(self, cfg: PartitionConfig, part: Partition) -> None:
        self.cfg = cfg
        self.part = part

    def cmd(self, cmd: str, **kw: Any) -> dict[str, Any]:
        reply = request(self.cfg.control, {"cmd": cmd, **kw}, timeout=120)
        assert reply.get("ok"), reply
        return reply

    def status(self) -> dict[str, Any]:
        return request(self.cfg.control, {"cmd": "status"}, timeout=10)

    def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> \
            dict[str, Any]:
        """Poll the control process's status until ``pred`` holds (a remote condition)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            if pred(st):
                return st
            time.sleep(0.05)
        raise AssertionError(f"condition not reached in {timeout} s: {self.status()}")

    def builder_status(self, st: dict[str, Any], i: int) -> dict[str, Any]:
        return st["processes"].get(f"eb-{i}", {})


@pytest.fixture
def partition(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Partition] = []

    def start(nodes: list[dict[str, Any]] | None = None, builders: int = 2,
              **kw: Any) -> Running:
        path = write_config(tmp_path, nodes or SMALL_NODES, builders, **kw)
        cfg = load_partition(path)
        part = Partition(cfg, path, log_dir=tmp_path / "logs")
        started.append(part)
        part.start()
        part.wait_ready()
        return Running(cfg, part)

    yield start
    for part in started:
        part.stop()
