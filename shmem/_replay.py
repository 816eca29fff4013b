"""Replay recorded XTC2 into a server: files merged across streams in time order, looped."""

from __future__ import annotations

import heapq
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from daq.xtc import Dgram, TransitionId, XtcFileReader, event_src, make_dgram

_TIME = struct.Struct("<II")
EPICS_EPOCH_NS = 631152000 * 1_000_000_000
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
            previous: tuple[int, int] | None = None
            for dg in _merged(self.paths):
                if not dg.is_event:
                    # each stream of a run holds the same transitions: pass them on once
                    if previous == (dg.timestamp, dg.service):
                        continue
                    previous = (dg.timestamp, dg.service)
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


def stamped(dg: Dgram, epics_ns: int) -> Dgram:
    """A copy of ``dg`` carrying the time ``epics_ns`` (nanoseconds since the EPICS epoch)."""
    buf = bytearray(dg.memoryview())
    _TIME.pack_into(buf, 0, epics_ns % 1_000_000_000, epics_ns // 1_000_000_000)
    return Dgram(buf, source=dg.source)


def replay(sink: _Sink, sources: Iterable[str | os.PathLike[str]], *,
           rate: float | None = None, loop: bool = False, count: int | None = None,
           should_stop: Callable[[], bool] = lambda: False,
           clock: Callable[[], float] = time.perf_counter,
           sleep: Callable[[float], None] = time.sleep, retime: bool = True,
           wall: Callable[[], float] = time.time) -> int:
    """Put recorded dgrams into ``sink`` (L1Accepts paced at ``rate`` Hz if given).

    With ``retime`` (the default) every dgram carries the time it is put, so clients that
    work by event time (AMI heartbeats) see the replay as live data; ``retime=False`` keeps the
    recorded times. Stops after ``count`` L1Accepts, at the end of the files (unless ``loop``),
    or when ``should_stop()`` says so; returns the number of dgrams put.
    """
    last_ns = 0
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
        if retime:
            last_ns = max(int(wall() * 1e9) - EPICS_EPOCH_NS, last_ns + 1)
            dg = stamped(dg, last_ns)
        sink.put(dg)
        done += 1
    return done
