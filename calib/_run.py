"""Reading one detector's frames out of a recorded run: all streams, merged by timestamp.

A run is recorded as several streams (one per event builder), each split into chunks; the events
of the run are spread over the streams. :class:`RunIndex` scans the dgram headers of every chunk
(24 bytes each, one ``pread`` per dgram: no payload is read) and orders the L1Accepts by
``(timestamp, stream)``. That order numbers the events, so every process that indexes the same
files gives each event the same number, which is what lets MPI ranks split a run on block
boundaries and still reproduce the serial result bit for bit. :class:`RunReader` then reads the
events it is asked for with one ``pread`` each.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from daq.xtc import (
    DGRAM_HEADER_SIZE,
    Decoder,
    Dgram,
    Event,
    NamesLookup,
    TransitionId,
    XtcError,
)
from daq.xtc._files import parse_name, run_streams

from ._errors import CalibError

_HEADER = struct.Struct("<IIIIHHI")  # ns, sec, env, src, damage, contains, extent
_L1 = int(TransitionId.L1Accept)
_BOOKKEEPING = frozenset({"runinfo", "chunkinfo", "smdinfo"})


@dataclass(frozen=True, slots=True)
class EventRef:
    """Where one L1Accept of the run lives."""

    timestamp: int
    stream: int
    path: Path
    offset: int
    size: int


def _scan(path: Path) -> tuple[list[tuple[int, int, int, int]], bool]:
    """(service, timestamp, offset, size) of every complete dgram of a file; and whether the
    file ends inside a dgram (a run still being written, or cut short)."""
    out = []
    with open(path, "rb", buffering=0) as fh:
        fd = fh.fileno()
        end = os.fstat(fd).st_size
        pos = 0
        while pos + DGRAM_HEADER_SIZE <= end:
            head = os.pread(fd, DGRAM_HEADER_SIZE, pos)
            ns, sec, env, _src, _dmg, _contains, extent = _HEADER.unpack(head)
            size = 12 + extent
            if extent < 12:
                raise XtcError(f"corrupt dgram with too small extent: {extent}",
                               source=str(path), offset=pos, rule="extent-too-small")
            if pos + size > end:
                break
            out.append(((env >> 24) & 0xF, (sec << 32) | ns, pos, size))
            pos += size
    return out, pos != end


def group_streams(files: Sequence[str | os.PathLike[str]]) -> dict[int, list[Path]]:
    """Files named like run chunks grouped by stream (chunk order); other files are each a
    stream of their own, in the order given."""
    streams: dict[int, list[tuple[int, Path]]] = {}
    extra = 1 << 20
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise CalibError(f"no such XTC2 file: {p}")
        info = parse_name(p)
        if info is None or info.smd:
            if info is not None and info.smd:
                raise CalibError(f"{p} is a small-data file: give the big-data chunks")
            streams[extra] = [(0, p)]
            extra += 1
        else:
            streams.setdefault(info.stream, []).append((info.chunk, p))
    return {s: [p for _, p in sorted(v)] for s, v in sorted(streams.items())}


class RunIndex:
    """Every L1Accept of a run, in (timestamp, stream) order, plus each stream's Configure.

    Build with :meth:`from_run` (``<root>/<expt>/xtc``) or :meth:`from_files`.
    ``truncated`` lists files that end inside a dgram (their complete dgrams are used).
    """

    def __init__(self, streams: dict[int, list[Path]]) -> None:
        if not streams:
            raise CalibError("no XTC2 files to read")
        self.streams = streams
        self.events: list[EventRef] = []
        self.truncated: list[Path] = []
        self.configures: dict[int, Dgram] = {}
        self.begin_runs: dict[int, Dgram] = {}
        for stream, paths in streams.items():
            for path in paths:
                dgrams, cut = _scan(path)
                if cut:
                    self.truncated.append(path)
                for service, ts, off, size in dgrams:
                    if service == _L1:
                        self.events.append(EventRef(ts, stream, path, off, size))
                    elif service == TransitionId.Configure and stream not in self.configures:
                        self.configures[stream] = _read_dgram(path, off, size)
                    elif service == TransitionId.BeginRun and stream not in self.begin_runs:
                        self.begin_runs[stream] = _read_dgram(path, off, size)
            if stream not in self.configures:
                raise CalibError(f"stream {stream} ({paths[0]}) has no Configure: give chunk "
                                 "000 of every stream")
        self.events.sort(key=lambda e: (e.timestamp, e.stream))

    @classmethod
    def from_run(cls, root: str | os.PathLike[str], expt: str, run: int,
                 include_inprogress: bool = False) -> RunIndex:
        """The run's chunks under ``<root>/<expt>/xtc`` (finished files only by default)."""
        streams = run_streams(Path(root), expt, run, include_inprogress)
        if not streams:
            where = Path(root) / expt / "xtc"
            hint = "" if include_inprogress else " (runs still being written end in .inprogress)"
            raise CalibError(f"no files of run {run} of {expt} in {where}{hint}")
        return cls(streams)

    @classmethod
    def from_files(cls, files: Sequence[str | os.PathLike[str]]) -> RunIndex:
        return cls(group_streams(files))

    def __len__(self) -> int:
        return len(self.events)

    def detectors(self) -> dict[str, str]:
        """Detector name -> detector type, from every stream's Configure (the recorder's
        bookkeeping blocks, runinfo and chunkinfo, left out)."""
        out: dict[str, str] = {}
        for dg in self.configures.values():
            for names in NamesLookup.from_configure(dg).values():
                if names.det_type not in _BOOKKEEPING:
                    out.setdefault(names.det_name, names.det_type)
        return out

    def run_info(self) -> tuple[str, int] | None:
        """(experiment, run number) from a BeginRun's ``runinfo``, if recorded."""
        for stream, dg in self.begin_runs.items():
            ev = Decoder(NamesLookup.from_configure(self.configures[stream])).decode(dg)
            expt, run = ev.get("runinfo", "expt"), ev.get("runinfo", "runnum")
            if run is not None:
                return str(expt or ""), int(run)
        return None


def _read_dgram(path: Path, offset: int, size: int) -> Dgram:
    with open(path, "rb", buffering=0) as fh:
        buf = np.empty(size, np.uint8)
        if os.preadv(fh.fileno(), [memoryview(buf)], offset) != size:  # type: ignore[arg-type]
            raise XtcError("file shrank while being read", source=str(path), offset=offset,
                           rule="truncated")
    return Dgram(buf, 0, source=str(path), file_offset=offset)


class RunReader:
    """Reads events of a :class:`RunIndex` by number; a context manager (closes its files).

    With ``reuse_buffer`` one read buffer is recycled: arrays from :meth:`frames` are then
    valid only until the next event is read (the cheap way to stream a dark run).
    """

    def __init__(self, index: RunIndex, *, reuse_buffer: bool = False) -> None:
        self.index = index
        self.reuse_buffer = reuse_buffer
        self._fds: dict[Path, int] = {}
        self._decoders = {s: Decoder(NamesLookup.from_configure(dg))
                          for s, dg in index.configures.items()}
        self._buf = np.empty(0, np.uint8)

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def dgram(self, i: int) -> Dgram:
        """The dgram of event ``i`` (in run order)."""
        ref = self.index.events[i]
        fd = self._fds.get(ref.path)
        if fd is None:
            fd = self._fds[ref.path] = os.open(ref.path, os.O_RDONLY)
        if self.reuse_buffer:
            if self._buf.size < ref.size:
                self._buf = np.empty(max(ref.size, 2 * self._buf.size), np.uint8)
            buf = self._buf[: ref.size]
        else:
            buf = np.empty(ref.size, np.uint8)
        if os.preadv(fd, [memoryview(buf)], ref.offset) != ref.size:  # type: ignore[arg-type]
            raise XtcError("file shrank while being read", source=str(ref.path),
                           offset=ref.offset, rule="truncated")
        return Dgram(buf, 0, source=str(ref.path), file_offset=ref.offset)

    def event(self, i: int) -> Event:
        """Event ``i`` decoded (arrays are views into its read buffer)."""
        return self._decoders[self.index.events[i].stream].decode(self.dgram(i))

    def get(self, i: int, det_name: str, field: str = "raw") -> Any:
        """One field of one detector in event ``i``, or None when the event lacks it."""
        return self.event(i).get(det_name, field)

    def frames(self, det_name: str, field: str = "raw",
               indices: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(event number, array) of the events (all by default) holding the field."""
        for i in range(len(self.index)) if indices is None else indices:
            value = self.get(i, det_name, field)
            if value is not None:
                yield i, np.asarray(value)

    def first_frame(self, det_name: str, field: str = "raw") -> tuple[int, np.ndarray]:
        """The first event holding the field (CalibError if none does)."""
        for item in self.frames(det_name, field):
            return item
        have = ", ".join(sorted(self.index.detectors())) or "none"
        raise CalibError(f"no event of the run holds {det_name}:{field} (detectors: {have})")
