"""A run: its events in time order, grouped in steps, with EPICS and scan values; random access.

Records come from a *feed*: the merged small data of all streams (serial), or the batches rank 0
hands this rank (MPI). Each item is ``(record, batch, index)``: the event's batch and its number
in the data source (-1 for transitions). Transitions update the run's state: SlowUpdate -> EPICS
values, BeginStep -> the step and its scan values.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from daq.xtc import Decoder, Dgram, NamesLookup, TransitionId

from ._detector import AreaDetector, Detector, EpicsPV, ScanVariable, make_detector
from ._errors import OfflineError
from ._event import BigReader, OfflineEvent
from ._stream import Record, SmdStream, merge

if TYPE_CHECKING:
    from ._datasource import DataSource

Feed = Iterator[tuple[Record, int, int]]
BOOKKEEPING = frozenset({"runinfo", "chunkinfo", "smdinfo"})
_L1 = int(TransitionId.L1Accept)


class Step:
    """One step of a run (BeginStep .. EndStep): ``scan`` holds its recorded scan values."""

    def __init__(self, run: Run, index: int, scan: dict[str, Any]) -> None:
        self.run = run
        self.index = index  #: 0-based, in the run
        self.scan = scan  #: e.g. {"step": 3, "motor1": 0.5}; {} when nothing was recorded
        self._done = False

    def __repr__(self) -> str:
        return f"<Step {self.index} {self.scan}>"

    def value(self, name: str) -> float | None:
        v = self.scan.get(name)
        return None if v is None else float(v)

    def events(self) -> Iterator[OfflineEvent]:
        """The step's events (those passing the data source's filter)."""
        if self._done:
            return
        yield from self.run._iterate(stop_at_step_end=True)
        self._done = True


def decoders_of(configures: dict[int, Dgram]) -> dict[int, Decoder]:
    return {s: Decoder(NamesLookup.from_configure(dg)) for s, dg in configures.items()}


class Run:
    """One run of a :class:`DataSource` (see the module docstring)."""

    def __init__(self, ds: DataSource, expt: str, runnum: int, feed: Feed,
                 configures: dict[int, Dgram], big: BigReader,
                 smd_paths: dict[int, Path], on_end: Callable[[], None] | None = None) -> None:
        self.ds = ds
        self.expt = expt
        self.runnum = runnum
        self.configures = configures
        self.decoders = decoders_of(configures)
        self.big = big
        self.smd_paths = smd_paths
        self._feed = feed
        self._on_end = on_end
        self._pushback: tuple[Record, int, int] | None = None
        self.epics: dict[str, Any] = {}
        self.step: Step | None = None
        self._nsteps = 0
        self._ended = False
        self.stats = {"events": 0, "filtered_out": 0, "transitions": 0}
        self._index: _RandomIndex | None = None
        self.detnames: dict[str, str] = {}
        self._fields: dict[str, list[str]] = {}
        self.epics_names: list[str] = []
        self.scan_names: list[str] = []
        for lookup in (d.lookup for d in self.decoders.values()):
            for names in lookup.values():
                if names.det_type in BOOKKEEPING or names.det_name in BOOKKEEPING:
                    continue
                self.detnames.setdefault(names.det_name, names.det_type)
                flds = self._fields.setdefault(names.det_name, [])
                flds.extend(f.name for f in names.fields if f.name not in flds)
                if names.det_type == "epics":
                    self.epics_names.extend(f.name for f in names.fields
                                            if f.name not in self.epics_names)
                if names.det_name == "scan":
                    self.scan_names.extend(f.name for f in names.fields
                                           if f.name != "step" and f.name not in self.scan_names)

    def __repr__(self) -> str:
        return f"<Run {self.expt} r{self.runnum:04d}: {', '.join(self.detnames)}>"

    @property
    def calib_dir(self) -> Path:
        return self.ds.calib_dir_for(self.expt)

    def fields(self, det_name: str) -> list[str]:
        return list(self._fields.get(det_name, []))

    def Detector(self, name: str) -> Detector | AreaDetector | EpicsPV | ScanVariable:
        """A handle on a detector, an EPICS PV or a scan variable of this run."""
        return make_detector(self, name)

    # -- sequential access ------------------------------------------------------------------
    def events(self) -> Iterator[OfflineEvent]:
        """Every event of the run (passing the filter), in time order, across steps."""
        yield from self._iterate(stop_at_step_end=False)

    def steps(self) -> Iterator[Step]:
        """The run's steps; a run recorded without BeginStep has one step with ``scan == {}``."""
        while not self._ended:
            item = self._next()
            if item is None:
                return
            rec = item[0]
            if rec.service == TransitionId.BeginStep:
                self._transition(rec)
            elif rec.service in (TransitionId.Enable, _L1) and self.step is None:
                self._pushback = item
                self.step = Step(self, self._nsteps, {})
                self._nsteps += 1
            else:
                self._transition(rec)
                continue
            step = self.step
            assert step is not None
            yield step
            for _ in step.events():  # what the caller did not read
                pass

    def _next(self) -> tuple[Record, int, int] | None:
        if self._pushback is not None:
            item, self._pushback = self._pushback, None
            return item
        if self._ended:
            return None
        try:
            return next(self._feed)
        except StopIteration:
            self._end()
            return None

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            close = getattr(self._feed, "close", None)
            if close is not None:  # runs the feed's clean-up: last batch folded, files closed
                close()
            if self._on_end is not None:
                self._on_end()

    def _iterate(self, stop_at_step_end: bool) -> Iterator[OfflineEvent]:
        filt = self.ds.filter
        while True:
            item = self._next()
            if item is None:
                return
            rec, batch, index = item
            if rec.is_event:
                evt = OfflineEvent(self, rec, index, batch, self.step, self.epics)
                if filt is not None and not filt(evt):
                    self.stats["filtered_out"] += 1
                    continue
                self.stats["events"] += 1
                yield evt
                continue
            if stop_at_step_end and rec.service == TransitionId.BeginStep:
                self._pushback = item
                return
            self._transition(rec)
            if stop_at_step_end and rec.service == TransitionId.EndStep:
                return

    def _transition(self, rec: Record) -> None:
        self.stats["transitions"] += 1
        service = rec.service
        if service == TransitionId.BeginStep:
            self.step = Step(self, self._nsteps, scan_values(self.decoders[rec.stream], rec.dgram))
            self._nsteps += 1
        elif service == TransitionId.EndStep:
            self.step = None
        elif service == TransitionId.EndRun:
            self._end()
        elif service != TransitionId.Configure:
            update = epics_values(self.decoders[rec.stream], rec.dgram)
            if update:
                self.epics = {**self.epics, **update}  # events keep the dict they saw

    # -- random access ----------------------------------------------------------------------
    def event(self, timestamp: int | None = None, *, fiducial: int | None = None,
              pulse_id: int | None = None) -> OfflineEvent:
        """The event with this timestamp (``seconds << 32 | ns``), fiducial or pulse id, through
        an index of the small data (built on first use). KeyError if there is none; ValueError
        if a fiducial matches several events (fiducials wrap: use the timestamp)."""
        if self._index is None:
            self._index = _RandomIndex(self)
        return self._index.event(timestamp, fiducial, pulse_id)

    @property
    def timestamps(self) -> np.ndarray:
        """Timestamps of every event of the run (from the index), in time order."""
        if self._index is None:
            self._index = _RandomIndex(self)
        return self._index.ts


def scan_values(decoder: Decoder, dgram: Dgram) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in decoder.decode(dgram).items:
        if item.det_name == "scan":
            for k, v in item.values.items():
                out[k] = int(v) if k == "step" else float(v)
    return out


def epics_values(decoder: Decoder, dgram: Dgram) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in decoder.decode(dgram).items:
        if item.names.det_type == "epics":
            out.update({k: float(v) for k, v in item.values.items()})
    return out


class _RandomIndex:
    """Every event of a run from its small data: time, fiducial, pulse id, step and EPICS."""

    def __init__(self, run: Run) -> None:
        self.run = run
        streams = [SmdStream(s, p, Path(), live=run.ds.live, follow=False)
                   for s, p in run.smd_paths.items()]
        ts, stream, chunk, off, size, smd_off, fid, pid, step, ep = ([] for _ in range(10))
        self.steps: list[Step] = []
        self.epics: list[dict[str, Any]] = [{}]
        decoders = run.decoders
        for rec in merge(streams):
            dg = rec.dgram
            if rec.is_event:
                ev = decoders[rec.stream].decode(dg)
                f, p = ev.get("timing", "fiducial"), ev.get("timing", "pulse_id")
                ts.append(rec.timestamp)
                stream.append(rec.stream)
                chunk.append(rec.chunk)
                off.append(rec.offset)
                size.append(rec.size)
                smd_off.append(dg.file_offset)
                fid.append(-1 if f is None else int(f))
                pid.append(-1 if p is None else int(p))
                step.append(len(self.steps) - 1)
                ep.append(len(self.epics) - 1)
            elif rec.service == TransitionId.BeginStep:
                self.steps.append(Step(run, len(self.steps),
                                       scan_values(decoders[rec.stream], dg)))
            elif rec.service not in (TransitionId.Configure, TransitionId.EndRun):
                update = epics_values(decoders[rec.stream], dg)
                if update:
                    self.epics.append({**self.epics[-1], **update})
        self.ts = np.asarray(ts, np.uint64)
        self.stream = np.asarray(stream, np.int64)
        self.chunk = np.asarray(chunk, np.int64)
        self.offset = np.asarray(off, np.int64)
        self.size = np.asarray(size, np.int64)
        self.smd_offset = np.asarray(smd_off, np.int64)
        self.fiducial = np.asarray(fid, np.int64)
        self.pulse_id = np.asarray(pid, np.int64)
        self.step = np.asarray(step, np.int64)
        self.epics_at = np.asarray(ep, np.int64)
        self._ts_list = ts

    def position(self, timestamp: int | None, fiducial: int | None,
                 pulse_id: int | None) -> int:
        given = [x is not None for x in (timestamp, fiducial, pulse_id)]
        if sum(given) != 1:
            raise TypeError("give exactly one of timestamp, fiducial, pulse_id")
        if timestamp is not None:
            i = bisect.bisect_left(self._ts_list, int(timestamp))
            if i < len(self._ts_list) and self._ts_list[i] == int(timestamp):
                return i
            raise KeyError(f"no event with timestamp {int(timestamp):#x} in run "
                           f"{self.run.runnum}")
        arr, value, what = ((self.fiducial, fiducial, "fiducial") if fiducial is not None
                            else (self.pulse_id, pulse_id, "pulse id"))
        hits = np.flatnonzero(arr == int(value))  # type: ignore[arg-type]
        if hits.size == 0:
            raise KeyError(f"no event with {what} {value} in run {self.run.runnum}")
        if hits.size > 1:
            raise ValueError(f"{hits.size} events have {what} {value}: use the timestamp")
        return int(hits[0])

    def event(self, timestamp: int | None, fiducial: int | None,
              pulse_id: int | None) -> OfflineEvent:
        i = self.position(timestamp, fiducial, pulse_id)
        s = int(self.stream[i])
        path = self.run.smd_paths[s]
        dg = _read_smd_dgram(path, int(self.smd_offset[i]), self.run.ds.live)
        rec = Record(s, dg, int(self.chunk[i]), int(self.offset[i]), int(self.size[i]))
        k = int(self.step[i])
        step = self.steps[k] if k >= 0 else None
        return OfflineEvent(self.run, rec, i, -1, step, self.epics[int(self.epics_at[i])])


def _read_smd_dgram(path: Path, offset: int, live: bool) -> Dgram:
    from ._stream import open_live

    fd = open_live(path) if live else os.open(path, os.O_RDONLY)
    if fd is None:
        raise OfflineError(f"small-data file {path} disappeared")
    try:
        head = os.pread(fd, 24, offset)
        extent = int.from_bytes(head[20:24], "little")
        data = os.pread(fd, 12 + extent, offset)
    finally:
        os.close(fd)
    return Dgram(bytearray(data), 0, source=str(path), file_offset=offset)
