"""Fixtures for the shmem tests: a private folder per test, dgram makers, child processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daq.xtc import (
    EncodedDgram,
    ParentBlock,
    RawBlock,
    TransitionId,
    event_src,
    make_dgram,
    segment_src,
)
from shmem import ShmemServer

REPO = Path(__file__).resolve().parents[2]


def transition(t: TransitionId, sec: int = 1, ns: int = 0) -> EncodedDgram:
    return make_dgram(t, sec, ns, root_src=event_src(0))


def event(i: int, size: int = 200) -> bytes:
    """An L1Accept of ``size`` bytes whose nanoseconds field is ``i``."""
    import struct

    n = size - 48
    raw = RawBlock(struct.pack("<IHHI", segment_src(1), 0, 3, 12 + n) + bytes([i & 255]) * n)
    return make_dgram(TransitionId.L1Accept, 2, i, [ParentBlock(segment_src(1), [raw])],
                      root_src=event_src(0)).tobytes()


@pytest.fixture
def shm_dir(tmp_path: Path) -> Path:
    d = tmp_path / "s"
    d.mkdir()
    return d


@pytest.fixture
def server(shm_dir: Path) -> Iterator[Callable[..., ShmemServer]]:
    """A factory of open servers in the test's folder, closed at the end."""
    made: list[ShmemServer] = []

    def make(tag: str = "t", **kw: object) -> ShmemServer:
        kw.setdefault("buffer_size", 4096)
        kw.setdefault("transition_size", 4096)
        srv = ShmemServer(tag, directory=shm_dir, **kw)  # type: ignore[arg-type]
        made.append(srv.open())
        return srv

    yield make
    for s in made:
        s.close()


class Children:
    """Child processes started by a test, each killed and reaped at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        p = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.procs.append(p)
        return p

    def worker(self, shm_dir: Path, tag: str, *args: str) -> subprocess.Popen[str]:
        """tests/shmem/_worker.py; waits for its ``ready`` line."""
        p = self.start("-m", "tests.shmem._worker", str(shm_dir), tag, *args)
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.strip() == "ready", (line, p.communicate(timeout=10)[1])
        return p

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)


@pytest.fixture
def children() -> Iterator[Children]:
    c = Children()
    try:
        yield c
    finally:
        c.close()
