"""``DataSource``: the psana-style entry point to recorded (or recording) runs.

```python
ds = DataSource(exp="xpp01", run=12, dir="data")          # or files=[...]; live=True
for run in ds.runs():
    det = run.Detector("epix")
    for step in run.steps():
        for evt in step.events():
            img = det.image(evt)
```

Serially the runs' small data are merged in this process; under ``mpiexec -n N`` rank 0 reads
them and the other ranks get the events (see ``_mpi``), so the same script runs either way.
Construction does no I/O.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from daq.xtc import TransitionId
from daq.xtc._files import INPROGRESS, parse_name, smd_path_for_big, xtc_dir

from . import _mpi
from ._errors import OfflineError
from ._event import BigReader, OfflineEvent
from ._run import Feed, Run
from ._stream import Record, SmdStream, merge, smd_paths
from ._sums import BatchSums, pack_partial


@dataclass
class RunSpec:
    expt: str
    run: int
    smd: dict[int, Path] = field(default_factory=dict)  #: stream -> small-data file
    big_dir: Path = Path()


class DataSource:
    """Runs of an experiment (``exp``, ``run`` (int or list), ``dir`` = data root) or of
    ``files`` (small-data files, or big-data chunks whose small data sit in ``smalldata/``).

    ``filter(evt) -> bool`` sees each event with its small data only; events it rejects are
    skipped and their big data never read. ``live`` follows files being written (waiting
    ``poll`` s at the end of the data, ending after ``timeout`` s without any, with a warning).
    ``batch_size`` events make a batch (the unit handed to an MPI worker); ``max_events`` stops
    early; ``mpi`` is "auto" (MPI under mpiexec), "on" or "off"; ``writers`` dedicated writer
    ranks (0: each worker writes its own part file). ``calib_dir`` defaults to
    ``<dir>/<exp>/calib``.
    """

    def __init__(self, exp: str | None = None, run: int | Sequence[int] | None = None,
                 dir: str | os.PathLike[str] | None = None,
                 files: Sequence[str | os.PathLike[str]] | None = None, *,
                 live: bool = False, timeout: float = 10.0, poll: float = 0.05,
                 filter: Callable[[OfflineEvent], bool] | None = None,
                 calib_dir: str | os.PathLike[str] | None = None, batch_size: int = 10,
                 max_events: int | None = None, mpi: str = "auto", writers: int = 0) -> None:
        if files is None and (exp is None or run is None):
            raise OfflineError("give exp= and run= (and dir=), or files=")
        if batch_size < 1:
            raise OfflineError(f"batch_size must be >= 1, not {batch_size}")
        self.exp = exp
        self.run_numbers = ([] if run is None else [int(run)] if isinstance(run, int)
                            else [int(r) for r in run])
        self.dir = Path(dir) if dir is not None else Path(os.environ.get("DAQ_DATA", "data"))
        self.files = [Path(f) for f in files] if files is not None else None
        self.live = live
        self.timeout = timeout
        self.poll = poll
        self.filter = filter
        self.calib_dir = Path(calib_dir) if calib_dir is not None else None
        self.batch_size = batch_size
        self.max_events = max_events
        self.comm = _mpi.world(mpi)
        self.roles = (_mpi.Roles.of(self.comm.Get_rank(), self.comm.Get_size(), writers)
                      if self.comm is not None else None)
        self.sums = BatchSums()
        self._next_batch = 0
        self._next_event = 0

    # -- roles ------------------------------------------------------------------------------
    @property
    def role(self) -> str:
        """"serial", or under MPI "smd0" (rank 0), "worker" or "writer"."""
        return "serial" if self.roles is None else self.roles.role

    @property
    def rank(self) -> int:
        return 0 if self.roles is None else self.roles.rank

    def calib_dir_for(self, expt: str) -> Path:
        if self.calib_dir is not None:
            return self.calib_dir
        if self.files is not None:  # <root>/<expt>/xtc/<file>
            return self.files[0].resolve().parent.parent / "calib" \
                if self.files[0].parent.name == "xtc" else \
                self.files[0].resolve().parent.parent.parent / "calib"
        return self.dir / expt / "calib"

    # -- runs -------------------------------------------------------------------------------
    def specs(self) -> list[RunSpec]:
        """The runs to read and their streams' small-data files."""
        if self.files is None:
            assert self.exp is not None
            out = []
            for r in self.run_numbers:
                paths = smd_paths(self.dir, self.exp, r, self.live)
                if not paths and self.live:
                    paths = self._wait_for_files(r)
                if not paths:
                    where = xtc_dir(self.dir, self.exp) / "smalldata"
                    hint = "" if self.live else " (live=True reads runs still being written)"
                    raise OfflineError(f"no small-data files of run {r} of {self.exp} in "
                                       f"{where}{hint}")
                out.append(RunSpec(self.exp, r, paths, xtc_dir(self.dir, self.exp)))
            return out
        specs: dict[tuple[str, int], RunSpec] = {}
        for f in self.files:
            info = parse_name(f)
            if info is None:
                raise OfflineError(f"{f} is not named like a run file "
                                   "(<expt>-r<run>-s<stream>-c<chunk>[.smd].xtc2)")
            smd = Path(str(f)[: -len(INPROGRESS)]) if info.inprogress else f
            if not info.smd:
                smd = smd_path_for_big(smd)
            spec = specs.setdefault((info.expt, info.run), RunSpec(info.expt, info.run))
            spec.smd[info.stream] = smd
            spec.big_dir = smd.parent.parent
        for spec in specs.values():
            for s, p in spec.smd.items():
                if not self.live and not p.exists():
                    raise OfflineError(f"no small-data file {p} for stream {s} "
                                       "(write it with 'daq xtc smd')")
        return [specs[k] for k in sorted(specs)]

    def _wait_for_files(self, run: int) -> dict[int, Path]:
        assert self.exp is not None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            paths = smd_paths(self.dir, self.exp, run, True)
            if paths:
                return paths
            time.sleep(self.poll)
        return {}

    def runs(self) -> Iterator[Run]:
        """The runs, in run order. Under MPI rank 0 and writer ranks get none (rank 0 spends
        the loop handing out events)."""
        if self.roles is None:
            for spec in self.specs():
                yield self._serial_run(spec)
        elif self.role == "smd0":
            self._smd0()
        elif self.role == "worker":
            yield from self._worker_runs()

    def _streams(self, spec: RunSpec) -> list[SmdStream]:
        return [SmdStream(s, p, spec.big_dir, live=self.live) for s, p in spec.smd.items()]

    def _records(self, spec: RunSpec) -> tuple[Iterator[Record], list[SmdStream]]:
        streams = self._streams(spec)
        known = set(spec.smd)

        def rescan() -> list[SmdStream]:
            new = {s: p for s, p in smd_paths(self.dir, spec.expt, spec.run, True).items()
                   if s not in known}
            known.update(new)
            return [SmdStream(s, p, spec.big_dir, live=True) for s, p in new.items()]

        rec = merge(streams, live=self.live, timeout=self.timeout, poll=self.poll,
                    rescan=rescan if self.live and self.files is None else None)
        return rec, streams

    def _number(self, records: Iterator[Record], sums: bool) -> Feed:
        """(record, batch, index): events numbered in order, cut into batches of
        ``batch_size`` events not interrupted by a transition. With ``sums`` the batches are
        opened and folded here (serial)."""
        k = 0
        in_batch = 0
        batch = self._next_batch - 1
        try:
            for rec in records:
                if not rec.is_event:
                    in_batch = 0
                    yield rec, -1, -1
                    continue
                if self.max_events is not None and self._next_event + k >= self.max_events:
                    break
                if in_batch == 0 or in_batch >= self.batch_size:
                    batch += 1
                    in_batch = 0
                    if sums:
                        self._close_batch()
                        self.sums.open(batch)
                in_batch += 1
                yield rec, batch, self._next_event + k
                k += 1
        finally:
            if sums:
                self._close_batch()
            self._next_event += k
            self._next_batch = batch + 1

    def _close_batch(self) -> None:
        if self.sums.batch >= 0:
            self.sums.combine(*self.sums.take())

    def _serial_run(self, spec: RunSpec) -> Run:
        records, streams = self._records(spec)
        first = next(records, None)
        if first is None or first.service != TransitionId.Configure:
            raise OfflineError(f"run {spec.run} of {spec.expt}: the small data do not start "
                               "with a Configure")
        configures = {s.stream: s.configure for s in streams if s.configure is not None}
        big = self._big_reader(streams)

        def feed() -> Feed:
            yield first, -1, -1
            yield from self._number(records, sums=True)

        return Run(self, spec.expt, spec.run, feed(), configures, big, dict(spec.smd),
                   on_end=big.close)

    def _big_reader(self, streams: list[SmdStream]) -> BigReader:
        return BigReader({s.stream: s.big_path for s in streams}, live=self.live,
                         timeout=self.timeout, poll=self.poll)

    # -- MPI: rank 0 ------------------------------------------------------------------------
    def _smd0(self) -> None:
        roles, comm = self.roles, self.comm
        assert roles is not None
        workers = roles.workers

        parked: list[int] = []  # workers that asked after their end of run: the next run's

        def request() -> int:
            if parked:
                return parked.pop(0)
            src, header, arrays = _mpi.recv(comm, _any_source(), _mpi.TAG_REQ)
            if header["batch"] >= 0:
                partial = {(n, b): a for (n, b, _d, _s), a in
                           zip(header["sums"], arrays, strict=True)}
                self.sums.combine(header["batch"], partial, header["ops"])
            return src

        for spec in self.specs():
            records, streams = self._records(spec)
            first = next(records, None)
            if first is None:
                raise OfflineError(f"run {spec.run} of {spec.expt}: no small data")
            start = {"kind": "run", "expt": spec.expt, "run": spec.run,
                     "smd": {s: str(p) for s, p in spec.smd.items()},
                     "big_dir": str(spec.big_dir),
                     "configures": [s.stream for s in streams if s.configure is not None]}
            conf = [s.configure.memoryview() for s in streams if s.configure is not None]
            conf_arrays = [np.frombuffer(c, np.uint8) for c in conf]
            started: set[int] = set()
            pending: dict[int, list[tuple[Record, int, int]]] = {w: [] for w in workers}

            def dispatch(batch: list[tuple[Record, int, int]],
                         started: set[int] = started,
                         pending: dict[int, list[tuple[Record, int, int]]] = pending,
                         start: dict[str, Any] = start,
                         conf_arrays: list[np.ndarray] = conf_arrays) -> None:
                while True:
                    w = request()
                    if w not in started:
                        _mpi.send(comm, w, _mpi.TAG_REP, start, conf_arrays)
                        started.add(w)
                        continue
                    meta, data = _mpi.pack_records(pending[w] + batch)
                    pending[w] = []
                    _mpi.send(comm, w, _mpi.TAG_REP, {"kind": "batch", "records": meta,
                                                      "batch": batch[0][1]}, [data])
                    return

            for w in workers:
                pending[w].append((first, -1, -1))
            current: list[tuple[Record, int, int]] = []
            for item in self._number(records, sums=False):
                rec, b, _i = item
                if rec.is_event:
                    if current and current[0][1] != b:
                        dispatch(current)
                        current = []
                    current.append(item)
                    continue
                if current:
                    dispatch(current)
                    current = []
                for w in workers:
                    pending[w].append(item)
            if current:
                dispatch(current)
            ended: set[int] = set()
            later: list[int] = []
            while len(ended) < len(workers):
                w = request()
                if w in ended:
                    later.append(w)
                    continue
                if w not in started:
                    _mpi.send(comm, w, _mpi.TAG_REP, start, conf_arrays)
                    started.add(w)
                    continue
                meta, data = _mpi.pack_records(pending[w])
                pending[w] = []
                _mpi.send(comm, w, _mpi.TAG_REP, {"kind": "endrun", "records": meta}, [data])
                ended.add(w)
            parked.extend(later)
        for _ in workers:
            w = request()
            _mpi.send(comm, w, _mpi.TAG_REP, {"kind": "end"})
        self.sums.skip_to(self._next_batch)

    # -- MPI: workers -----------------------------------------------------------------------
    def _request(self) -> tuple[dict[str, Any], list[Any]]:
        batch, partial = self.sums.take() if self.sums.batch >= 0 else (-1, {})
        header, arrays = pack_partial(partial)
        _mpi.send(self.comm, 0, _mpi.TAG_REQ,
                  {"batch": batch, "sums": header, "ops": dict(self.sums.ops)}, arrays)
        _src, reply, arrays = _mpi.recv(self.comm, 0, _mpi.TAG_REP)
        return reply, arrays

    def _worker_runs(self) -> Iterator[Run]:
        while True:
            reply, arrays = self._request()
            if reply["kind"] == "end":
                return
            if reply["kind"] != "run":
                raise RuntimeError(f"rank 0 sent {reply['kind']!r} outside a run")
            from daq.xtc import Dgram

            configures = {s: Dgram(a, 0) for s, a in
                          zip(reply["configures"], arrays, strict=True)}
            smd = {int(s): Path(p) for s, p in reply["smd"].items()}
            streams = [SmdStream(s, p, Path(reply["big_dir"]), live=self.live)
                       for s, p in smd.items()]
            big = self._big_reader(streams)
            run = Run(self, reply["expt"], int(reply["run"]), self._worker_feed(), configures,
                      big, smd, on_end=big.close)
            yield run
            for _ in run.events():  # keep in step with rank 0 if the caller stopped early
                pass

    def _worker_feed(self) -> Feed:
        while True:
            reply, arrays = self._request()
            kind = reply["kind"]
            items = _mpi.unpack_records(reply["records"], arrays[0])
            if kind == "batch":
                self.sums.open(int(reply["batch"]))
                yield from items
            elif kind == "endrun":
                yield from items
                return
            else:
                raise RuntimeError(f"rank 0 sent {kind!r} inside a run")

    # -- output -----------------------------------------------------------------------------
    def smalldata(self, filename: str | os.PathLike[str], *, gather_interval: int = 100,
                  ) -> Any:
        """A :class:`SmallData` writer for per-event results (see ``_smalldata``)."""
        from ._smalldata import SmallData

        return SmallData(self, Path(filename), gather_interval=gather_interval)


def _any_source() -> int:
    from mpi4py import MPI

    return int(MPI.ANY_SOURCE)
