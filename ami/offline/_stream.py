"""Small-data streams of a run, read (or followed while written) and merged in time order.

Each stream (one per event builder) has one small-data file: every transition verbatim and, per
L1Accept, the big dgram's (offset, size) in its chunk plus the event's small contributions. A
:class:`SmdStream` turns that file into :class:`Record` objects, following chunk switches (an
Enable carrying ``chunkinfo``). :func:`merge` orders the records of all streams by
``(timestamp, stream)``; transitions, which every stream carries, come out once.

Live files (``.inprogress``) are followed: at the end of the data the reader waits and retries,
and a run ends at EndRun, or with a warning after ``timeout`` seconds without new data.
"""

from __future__ import annotations

import heapq
import os
import struct
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from daq.xtc import (
    DGRAM_HEADER_SIZE,
    Decoder,
    Dgram,
    NamesLookup,
    TransitionId,
    TypeId,
    XtcError,
)
from daq.xtc._files import INPROGRESS, chunk_name, parse_name, smd_dir, xtc_dir

_HEADER = struct.Struct("<IIIIHHI")
_XTC = struct.Struct("<IHHI")
_QQ = struct.Struct("<QQ")
_L1 = int(TransitionId.L1Accept)
_READ = 1 << 22


class LiveTimeoutWarning(UserWarning):
    """A live run ended because no new data arrived within the timeout (no EndRun seen)."""


@dataclass(slots=True)
class Record:
    """One small-data dgram of a stream; for an L1Accept also where its big dgram lives."""

    stream: int
    dgram: Dgram
    chunk: int = 0
    offset: int = -1  #: of the big dgram in its chunk (-1: transitions)
    size: int = 0

    @property
    def timestamp(self) -> int:
        return self.dgram.timestamp

    @property
    def service(self) -> int:
        return self.dgram.service

    @property
    def is_event(self) -> bool:
        return self.dgram.service == _L1


class _Tail:
    """Dgrams of a file that may still be growing: whole dgrams only, never a partial one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        self.pos = 0  # file offset of buf[start]
        self.buf = np.empty(0, np.uint8)
        self.start = 0
        self.end = 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def next(self) -> Dgram | None:
        """The next complete dgram, or None if the file does not hold one (yet)."""
        avail = self.end - self.start
        if avail < DGRAM_HEADER_SIZE:
            self._fill(DGRAM_HEADER_SIZE)
            avail = self.end - self.start
            if avail < DGRAM_HEADER_SIZE:
                return None
        extent = _HEADER.unpack_from(memoryview(self.buf), self.start)[6]  # type: ignore[arg-type]
        if extent < 12:
            raise XtcError(f"corrupt dgram with too small extent: {extent}",
                           source=str(self.path), offset=self.pos, rule="extent-too-small")
        size = 12 + extent
        if avail < size:
            self._fill(size)
            if self.end - self.start < size:
                return None
        dg = Dgram(self.buf, self.start, source=str(self.path), file_offset=self.pos)
        self.start += size
        self.pos += size
        return dg

    def _fill(self, need: int) -> None:
        left = self.end - self.start
        new = np.empty(max(_READ, need), np.uint8)
        if left:
            new[:left] = self.buf[self.start : self.end]
        got = os.preadv(self.fd, [memoryview(new)[left:]], self.pos + left)  # type: ignore[arg-type]
        self.buf, self.start, self.end = new, 0, left + got

    @property
    def leftover(self) -> int:
        """Bytes after the last whole dgram (a truncated tail once the file is complete)."""
        return max(0, os.fstat(self.fd).st_size - self.pos)


def open_live(path: Path) -> int | None:
    """An fd on ``path`` or on ``path.inprogress`` (whichever exists now), or None."""
    for p in (path, Path(str(path) + INPROGRESS), path):  # a rename can happen in between
        try:
            return os.open(p, os.O_RDONLY)
        except FileNotFoundError:
            continue
    return None


class SmdStream:
    """The records of one stream's small-data file, with its Configure's Names.

    ``next()`` gives the next record, or None when none is available yet (live) or the stream
    has ended (``done``).
    """

    def __init__(self, stream: int, smd_path: Path, big_dir: Path, *, live: bool = False,
                 follow: bool | None = None) -> None:
        self.stream = stream
        self.smd_path = smd_path
        self.big_dir = big_dir
        self.live = live  #: the file may be .inprogress
        self.follow = live if follow is None else follow  #: wait for more at the end
        self.lookup = NamesLookup()
        self.decoder = Decoder(self.lookup)
        self.chunk = 0
        self.done = False
        self.configure: Dgram | None = None
        self._smd_nid = -1
        self._tail: _Tail | None = None
        info = parse_name(smd_path)
        self._name = info

    def open(self) -> bool:
        """Open the file (live: final or ``.inprogress``); False if it does not exist yet."""
        if self._tail is not None:
            return True
        names = [self.smd_path]
        if self.live:  # the writer renames .inprogress at the end: try both, twice
            names = [self.smd_path, Path(str(self.smd_path) + INPROGRESS), self.smd_path]
        for p in names:
            try:
                self._tail = _Tail(p)
                return True
            except FileNotFoundError:
                continue
        if not self.live:
            raise FileNotFoundError(f"no small-data file {self.smd_path}")
        return False

    def close(self) -> None:
        if self._tail is not None:
            self._tail.close()
            self._tail = None

    def big_path(self, chunk: int) -> Path:
        info = self._name
        if info is None:  # a file not named like a run: the big file is beside it, .smd removed
            name = self.smd_path.name.replace(".smd.xtc2", ".xtc2")
            return self.big_dir / name
        return self.big_dir / chunk_name(info.expt, info.run, info.stream, chunk)

    def next(self) -> Record | None:
        if self.done:
            return None
        if self._tail is None and not self.open():
            return None
        assert self._tail is not None
        dg = self._tail.next()
        if dg is None:
            if not self.follow:
                self.done = True
                if self._tail.leftover and not self.live:
                    warnings.warn(f"{self._tail.path}: file ends inside a dgram "
                                  f"({self._tail.leftover} bytes ignored)", stacklevel=2)
            return None
        service = dg.service
        if service == _L1:
            off, size = self._locate(dg)
            return Record(self.stream, dg, self.chunk, off, size)
        if service == TransitionId.Configure:
            self.lookup.add_configure(dg)
            self.configure = dg
            for nid, names in self.lookup.items():
                if names.det_name == "smdinfo":
                    self._smd_nid = nid
        elif service == TransitionId.Enable:
            cid = self.decoder.decode(dg).get("chunkinfo", "chunkid")
            if cid is not None:
                self.chunk = int(cid)
        elif service == TransitionId.EndRun:
            self.done = True
        return Record(self.stream, dg, self.chunk)

    def _locate(self, dg: Dgram) -> tuple[int, int]:
        buf = dg.buf
        at = dg.root.payload
        if at + 52 <= dg.root.end:
            src, _dmg, contains, extent = _XTC.unpack_from(buf, at)
            if (src & 0x0FFFFFFF) == self._smd_nid and contains & 0xFFF == TypeId.ShapesData \
                    and extent == 52:
                off, size = _QQ.unpack_from(buf, at + 36)
                return int(off), int(size)
        for hdr in dg.children():  # any other layout: decode it
            if hdr.type_id == TypeId.ShapesData:
                names = self.lookup.get(hdr.value)
                if names is not None and names.det_name == "smdinfo":
                    v = self.decoder.decode_shapesdata(dg, hdr).values
                    return int(v["intOffset"]), int(v["intDgramSize"])
        raise dg.error("small-data L1Accept has no smdinfo offset", dg.offset, "smd-offset")


def smd_paths(root: str | os.PathLike[str], expt: str, run: int,
              live: bool = False) -> dict[int, Path]:
    """The small-data file of each stream of a run (final names; live: also in progress)."""
    out: dict[int, Path] = {}
    d = smd_dir(Path(root), expt)
    if not d.is_dir():
        return out
    for p in d.iterdir():
        info = parse_name(p)
        if info is None or not info.smd or info.expt != expt or info.run != run:
            continue
        if info.inprogress and not live:
            continue
        final = p if not info.inprogress else Path(str(p)[: -len(INPROGRESS)])
        out[info.stream] = final
    return dict(sorted(out.items()))


def open_streams(root: str | os.PathLike[str], expt: str, run: int,
                 live: bool = False) -> list[SmdStream]:
    paths = smd_paths(root, expt, run, live)
    big = xtc_dir(Path(root), expt)
    return [SmdStream(s, p, big, live=live) for s, p in paths.items()]


def merge(streams: list[SmdStream], *, live: bool = False, timeout: float = 10.0,
          poll: float = 0.05, rescan: Callable[[], list[SmdStream]] | None = None,
          clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[Record]:
    """Records of all streams by (timestamp, stream); each transition once.

    Live: a stream without a next record is waited for (every ``poll`` s); after ``timeout`` s
    without any new record the run ends with a :class:`LiveTimeoutWarning`. ``rescan`` may add
    streams whose files appear late (before any of their records is due).
    """
    heap: list[tuple[int, int, int, Record]] = []
    waiting = list(streams)
    known = {s.stream for s in streams}
    seq = 0
    last_new = clock()
    last_transition: tuple[int, int] | None = None
    try:
        while True:
            still: list[SmdStream] = []
            for s in waiting:
                rec = s.next()
                if rec is not None:
                    heapq.heappush(heap, (rec.timestamp, s.stream, seq, rec))
                    seq += 1
                    last_new = clock()
                elif not s.done:
                    still.append(s)
            waiting = still
            if waiting:  # live: a stream has nothing yet; wait for it before emitting anything
                if clock() - last_new > timeout:
                    names = ", ".join(str(s.smd_path.name) for s in waiting)
                    warnings.warn(f"no new data for {timeout:g} s from {names}: ending the run "
                                  "as if it had ended (no EndRun seen)", LiveTimeoutWarning,
                                  stacklevel=2)
                    return
                if rescan is not None:
                    for s in rescan():
                        if s.stream not in known:
                            known.add(s.stream)
                            waiting.append(s)
                            streams.append(s)
                sleep(poll)
                continue
            if not heap:
                return
            _ts, stream, _seq, rec = heapq.heappop(heap)
            src = next(s for s in streams if s.stream == stream)
            if not src.done:
                waiting.append(src)
            if rec.is_event:
                yield rec
                continue
            key = (rec.service, rec.timestamp)
            if key == last_transition:
                continue
            last_transition = key
            yield rec
    finally:
        for s in streams:
            s.close()
