"""Replay recorded XTC2 into a server: files merged across streams in time order, looped."""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from daq.xtc import Dgram, TransitionId, XtcFileReader, event_src, make_dgram

_BEGINS = (TransitionId.Configure, TransitionId.BeginRun, TransitionId.BeginStep,
           TransitionId.Enable)


class _Sink(Protocol):
    def put(self, dgram: Dgram) -> bool: ...


def run_files(sources: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """XTC2 files named, or found in named folders (big data only: no ``.smd.xtc2``)."""
    out: list[Path] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            found = sorted(f for f in p.glob("*.xtc2") if not f.name.endswith(".smd.xtc2"))
            if not found:
                raise FileNotFoundError(f"no .xtc2 files in {p}")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p} is neither an .xtc2 file nor a folder")
    return out


def _merged(paths: Sequence[Path]) -> Iterator[Dgram]:
    """Every dgram of every file, in time order (ties keep file order)."""
    def keyed(i: int, path: Path) -> Iterator[tuple[int, int, int, Dgram]]:
        with XtcFileReader(path) as reader:
            for n, dg in enumerate(reader):
                yield dg.timestamp, i, n, dg
    for _ts, _i, _n, dg in heapq.merge(*(keyed(i, p) for i, p in enumerate(paths)),
                                       key=lambda t: t[:3]):
        yield dg


class ReplaySource:
    """The dgrams of recorded files; with ``loop`` they repeat for ever.

    Before each new pass the transitions still open (Enable, BeginStep, BeginRun,
    Configure) are closed with synthesized end transitions, so every pass starts with a
    Configure and a client's transition cache stays consistent.
    """

    def __init__(self, sources: Iterable[str | os.PathLike[str]], *, loop: bool = False):
        self.paths = run_files(sources)
        self.loop = loop
        self.passes = 0

    def __iter__(self) -> Iterator[Dgram]:
        while True:
            open_levels: list[int] = []
            last = (0, 0)
            n = 0
            for dg in _merged(self.paths):
                n += 1
                last = (dg.seconds, dg.nanoseconds)
                _track(open_levels, dg.service)
                yield dg
            self.passes += 1
            if not self.loop or n == 0:
                return
            for level in reversed(open_levels):
                end = TransitionId(_BEGINS[level] + 1)
                yield Dgram(make_dgram(end, *last, root_src=event_src(0)).tobytes())


def _track(levels: list[int], service: int) -> None:
    for level, begin in enumerate(_BEGINS):
        if service == begin:
            del levels[levels.index(level) if level in levels else len(levels):]
            levels.append(level)
        elif service == begin + 1:
            del levels[levels.index(level) if level in levels else len(levels):]


def replay(sink: _Sink, sources: Iterable[str | os.PathLike[str]], *,
           rate: float | None = None, loop: bool = False, count: int | None = None,
           should_stop: Callable[[], bool] = lambda: False,
           clock: Callable[[], float] = time.perf_counter,
           sleep: Callable[[float], None] = time.sleep) -> int:
    """Put recorded dgrams into ``sink`` (L1Accepts paced at ``rate`` Hz if given).

    Stops after ``count`` L1Accepts, at the end of the files (unless ``loop``), or when
    ``should_stop()`` says so; returns the number of dgrams put.
    """
    period = 1.0 / rate if rate else 0.0
    due = clock()
    events = done = 0
    for dg in ReplaySource(sources, loop=loop):
        if should_stop():
            break
        if dg.is_event:
            if count is not None and events >= count:
                break
            if period:
                now = clock()
                if due > now:
                    sleep(due - now)
                    due += period
                else:  # late: do not burst to catch up
                    due = now + period
            events += 1
        sink.put(dg)
        done += 1
    return done
