"""One event of a run: small data at once, big data read only when asked for."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from daq.xtc import Damage, Decoder, Dgram, Event, XtcError
from daq.xtc._files import INPROGRESS

from ._stream import Record

if TYPE_CHECKING:
    from ._run import Run, Step


class BigReader:
    """Reads big dgrams by (stream, chunk, offset, size) with one ``pread`` each.

    Live runs: a chunk may still be ``.inprogress`` or not yet hold the dgram; the read is then
    retried every ``poll`` s up to ``timeout`` s.
    """

    def __init__(self, paths: dict[int, Any], *, live: bool = False, timeout: float = 10.0,
                 poll: float = 0.05) -> None:
        self.paths = paths  # stream -> callable(chunk) -> Path
        self.live = live
        self.timeout = timeout
        self.poll = poll
        self.reads = 0
        self.bytes = 0
        self._fds: dict[tuple[int, int], int] = {}

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _fd(self, stream: int, chunk: int) -> int | None:
        fd = self._fds.get((stream, chunk))
        if fd is not None:
            return fd
        path: Path = self.paths[stream](chunk)
        names = [path, Path(str(path) + INPROGRESS), path] if self.live else [path]
        for p in names:
            try:
                fd = os.open(p, os.O_RDONLY)
            except FileNotFoundError:
                continue
            self._fds[(stream, chunk)] = fd
            return fd
        if not self.live:
            raise XtcError("big-data chunk missing", source=str(path), offset=0,
                           rule="smd-offset")
        return None

    def read(self, rec: Record) -> Dgram:
        buf = np.empty(rec.size, np.uint8)
        deadline = time.monotonic() + self.timeout
        while True:
            fd = self._fd(rec.stream, rec.chunk)
            got = 0 if fd is None else os.preadv(fd, [memoryview(buf)], rec.offset)  # type: ignore[arg-type]
            if got == rec.size:
                break
            if not self.live or time.monotonic() > deadline:
                path = self.paths[rec.stream](rec.chunk)
                raise XtcError(f"big dgram of {rec.size} bytes not found (read {got})",
                               source=str(path), offset=rec.offset, rule="smd-offset")
            time.sleep(self.poll)
        self.reads += 1
        self.bytes += rec.size
        path = self.paths[rec.stream](rec.chunk)
        dg = Dgram(buf, 0, source=str(path), file_offset=rec.offset)
        if dg.timestamp != rec.timestamp or dg.size != rec.size:
            raise XtcError("small-data entry points at another dgram", source=str(path),
                           offset=rec.offset, rule="smd-offset")
        return dg


class OfflineEvent:
    """An L1Accept of a run.

    ``timestamp`` is ``seconds << 32 | nanoseconds``; ``fiducial`` and ``pulse_id`` come from the
    ``timing`` detector (None without one). :meth:`get` answers from the small data when the
    value was recorded inline and reads the big dgram otherwise (once); ``big_read`` says
    whether it did.
    """

    __slots__ = ("_big", "_smd", "batch", "epics", "index", "record", "run", "step")

    def __init__(self, run: Run, record: Record, index: int, batch: int, step: Step | None,
                 epics: dict[str, Any]) -> None:
        self.run = run
        self.record = record
        self.index = index  #: number of the event in the data source, in time order
        self.batch = batch
        self.step = step
        self.epics = epics  #: EPICS values in effect (from the last SlowUpdate)
        self._smd: Event | None = None
        self._big: Event | None = None

    def __repr__(self) -> str:
        return (f"<OfflineEvent #{self.index} t={self.seconds}.{self.nanoseconds:09d} "
                f"stream {self.stream}>")

    # -- identity -------------------------------------------------------------------------
    @property
    def timestamp(self) -> int:
        return self.record.timestamp

    @property
    def seconds(self) -> int:
        return self.record.dgram.seconds

    @property
    def nanoseconds(self) -> int:
        return self.record.dgram.nanoseconds

    @property
    def stream(self) -> int:
        return self.record.stream

    @property
    def fiducial(self) -> int | None:
        v = self.get("timing", "fiducial")
        return None if v is None else int(v)

    @property
    def pulse_id(self) -> int | None:
        v = self.get("timing", "pulse_id")
        return None if v is None else int(v)

    @property
    def damage(self) -> int:
        """The event's damage (OR of its contributions'); 0 when undamaged."""
        return int(self.record.dgram.damage)

    @property
    def big_read(self) -> bool:
        return self._big is not None

    # -- data -----------------------------------------------------------------------------
    def _decoder(self) -> Decoder:
        return self.run.decoders[self.record.stream]

    @property
    def smd(self) -> Event:
        """The decoded small-data dgram (inline contributions only)."""
        if self._smd is None:
            self._smd = self._decoder().decode(self.record.dgram)
        return self._smd

    @property
    def big(self) -> Event:
        """The decoded big dgram (read on first use)."""
        if self._big is None:
            self._big = self._decoder().decode(self.run.big.read(self.record))
        return self._big

    def _holder(self, det_name: str) -> Event:
        smd = self.smd
        for item in smd.items:
            if item.det_name == det_name:
                return smd
        return self.big

    def get(self, det_name: str, field: str, *, segment: int | None = None) -> Any:
        """A field of a detector in this event, or None when the event lacks it."""
        return self._holder(det_name).get(det_name, field, segment=segment)

    def values(self, det_name: str, segment: int | None = None) -> dict[str, Any]:
        """Every field of a detector (its first segment, or ``segment``); {} when absent."""
        items = [i for i in self._holder(det_name).items if i.det_name == det_name]
        if not items:
            return {}
        seg = items[0].segment if segment is None else segment
        out: dict[str, Any] = {}
        for item in items:
            if item.segment == seg:
                out.update(item.values)
        return out

    def detector_damage(self, det_name: str) -> int:
        """Damage of a detector's contribution: its ShapesData and its node's; DroppedContribution
        when its node did not contribute to this event."""
        holder = self._holder(det_name)
        for item in holder.items:
            if item.det_name == det_name:
                node = item.node
                return int(item.damage | (holder.nodes.get(node, 0) if node is not None else 0))
        names = [n for n in self._decoder().lookup.values() if n.det_name == det_name]
        if not names:
            raise KeyError(det_name)
        node_id = names[0].names_id >> 8
        if node_id in self.big.nodes:
            return int(self.big.nodes[node_id] | Damage.DroppedContribution)
        return int(Damage.DroppedContribution)


def as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
