"""``daq translate``: a recorded run to one HDF5 file that plain h5py reads.

Every stream's big data are read and merged by timestamp. Each detector field becomes a dataset
``/<det>/<field>`` of shape ``(events, *field shape)``, aligned by event with ``/timestamp``
(``seconds << 32 | nanoseconds``), ``/seconds``, ``/nanoseconds``, ``/fiducials`` and
``/pulse_id`` (from the ``timing`` detector when recorded), ``/damage`` and ``/<det>/present``
(1 where the event holds the detector). Missing values are NaN (floats), -99999 (signed
integers of 32 bits or more) or 0 (other integers). Detectors of several segments get
``/<det>/seg<k>/<field>``. EPICS values (from SlowUpdates) in effect at each event go to
``/epics/<pv>``, scan values of each event's step to ``/scan/<var>``. Uses only ``daq.xtc``,
h5py and numpy.
"""

from __future__ import annotations

import argparse
import heapq
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from daq.xtc import Decoder, Dgram, NamesLookup, TransitionId, XtcFileReader
from daq.xtc._files import run_streams

_SKIP = frozenset({"runinfo", "chunkinfo", "smdinfo"})
INT_FILL = -99999
BLOCK = 256  #: events buffered before each write


def _fill(dtype: np.dtype) -> Any:
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "i" and dtype.itemsize >= 4:
        return INT_FILL
    return 0


def _stream_dgrams(stream: int, paths: list[Path]) -> Iterator[tuple[int, int, Dgram]]:
    for p in paths:
        with XtcFileReader(p) as reader:
            for dg in reader:
                yield dg.timestamp, stream, dg


def merged(streams: dict[int, list[Path]]) -> Iterator[tuple[int, Dgram]]:
    """(stream, dgram) of every stream in time order; transitions once (from the first)."""
    last: tuple[int, int] | None = None
    for _ts, stream, dg in heapq.merge(*(_stream_dgrams(s, p) for s, p in streams.items()),
                                       key=lambda t: (t[0], t[1])):
        if dg.service != TransitionId.L1Accept:
            key = (dg.service, dg.timestamp)
            if key == last:
                if dg.service == TransitionId.Configure:
                    yield stream, dg
                continue
            last = key
        yield stream, dg


class _Columns:
    """Resizable datasets filled block by block."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.rows = 0
        self.pending: list[dict[str, Any]] = []
        self.dtypes: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}

    def add(self, row: dict[str, Any]) -> None:
        self.pending.append(row)
        if len(self.pending) >= BLOCK:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        n = len(self.pending)
        keys: dict[str, None] = {}
        for row in self.pending:
            keys.update(dict.fromkeys(row))
        for key in keys:
            first = next(r[key] for r in self.pending if key in r)
            a0 = np.asarray(first)
            if key not in self.dtypes:
                self.dtypes[key] = (a0.dtype, a0.shape)
                self.f.create_dataset(key, shape=(self.rows, *a0.shape),
                                      maxshape=(None, *a0.shape), dtype=a0.dtype,
                                      chunks=(max(1, min(BLOCK, (1 << 20) //
                                                         max(1, a0.nbytes))), *a0.shape),
                                      fillvalue=_fill(a0.dtype))
            dtype, shape = self.dtypes[key]
            col = np.full((n, *shape), _fill(dtype), dtype=dtype)
            for i, row in enumerate(self.pending):
                if key in row:
                    v = np.asarray(row[key])
                    if v.shape != shape:
                        raise ValueError(f"{key}: shape {v.shape} in one event, {shape} before")
                    col[i] = v
            ds = self.f[key]
            ds.resize(self.rows + n, axis=0)
            ds[self.rows :] = col
        self.rows += n
        for key in self.dtypes:
            if key not in keys:
                self.f[key].resize(self.rows, axis=0)
        self.pending = []


def translate(root: str | Path, expt: str, run: int, out: str | Path, *,
              max_events: int | None = None, include_inprogress: bool = False) -> int:
    """Write run ``run`` of ``expt`` under ``root`` to ``out``; returns the number of events."""
    import h5py

    streams = run_streams(Path(root), expt, run, include_inprogress)
    if not streams:
        raise FileNotFoundError(f"no files of run {run} of {expt} under "
                                f"{Path(root) / expt / 'xtc'}")
    decoders: dict[int, Decoder] = {}
    epics: dict[str, float] = {}
    scan: dict[str, float] = {}
    n = 0
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["experiment"] = expt
        f.attrs["run"] = run
        cols = _Columns(f)
        for stream, dg in merged(streams):
            service = dg.service
            if service == TransitionId.Configure:
                decoders[stream] = Decoder(NamesLookup.from_configure(dg))
                continue
            dec = decoders.get(stream)
            if dec is None:
                continue
            if service != TransitionId.L1Accept:
                for item in dec.decode(dg).items:
                    if item.names.det_type == "epics":
                        epics.update({k: float(v) for k, v in item.values.items()})
                    elif item.det_name == "scan" and service == TransitionId.BeginStep:
                        scan = {k: float(v) for k, v in item.values.items()}
                continue
            if max_events is not None and n >= max_events:
                break
            ev = dec.decode(dg)
            row: dict[str, Any] = {"timestamp": np.uint64(dg.timestamp),
                                   "seconds": np.uint32(dg.seconds),
                                   "nanoseconds": np.uint32(dg.nanoseconds),
                                   "damage": np.uint16(dg.damage),
                                   "stream": np.int16(stream)}
            segs: dict[str, set[int]] = {}
            for item in ev.items:
                segs.setdefault(item.det_name, set()).add(item.segment)
            for item in ev.items:
                name = item.det_name
                if name in _SKIP or item.names.det_type in _SKIP:
                    continue
                base = name if len(segs[name]) == 1 else f"{name}/seg{item.segment}"
                row[f"{name}/present"] = np.uint8(1)
                for k, v in item.values.items():
                    if isinstance(v, str):
                        continue
                    row[f"{base}/{k}"] = v
            t = ev.get("timing", "fiducial")
            row["fiducials"] = np.int64(INT_FILL if t is None else int(t))
            p = ev.get("timing", "pulse_id")
            row["pulse_id"] = np.int64(INT_FILL if p is None else int(p))
            for k, v in epics.items():
                row[f"epics/{k}"] = np.float64(v)
            for k, v in scan.items():
                row[f"scan/{k}"] = np.float64(v)
            cols.add(row)
            n += 1
        cols.flush()
    tmp.replace(out)
    return n


def run_translate(args: argparse.Namespace) -> int:
    out = Path(args.output or f"{args.exp}_r{args.run:04d}.h5")
    t0 = time.perf_counter()
    try:
        n = translate(args.dir, args.exp, args.run, out, max_events=args.max_events,
                      include_inprogress=args.inprogress)
    except (FileNotFoundError, ValueError) as exc:
        print(f"daq translate: error: {exc}", file=sys.stderr)
        return 1
    dt = time.perf_counter() - t0
    print(f"wrote {out}: {n} events in {dt:.1f} s")
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="a recorded run to one HDF5 file (every field)")
    p.add_argument("--exp", required=True, help="experiment name")
    p.add_argument("--run", type=int, required=True, help="run number")
    p.add_argument("--dir", default="data", help="data root (default %(default)s)")
    p.add_argument("-o", "--output", default=None, help="HDF5 file (default <exp>_r<run>.h5)")
    p.add_argument("-n", "--max-events", type=int, default=None, help="stop after N events")
    p.add_argument("--inprogress", action="store_true",
                   help="also read .inprogress files (a run still being written)")
    p.set_defaults(func=run_translate)
