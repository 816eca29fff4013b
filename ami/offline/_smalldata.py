"""``SmallData``: per-event results to HDF5, serially or gathered from MPI workers.

```python
smd = ds.smalldata("out.h5", gather_interval=100)
for run in ds.runs():
    for evt in run.events():
        smd.event(evt, {"epix": {"ROI_0_sum": s}})
        smd.sum(evt, "epix_calib", calib)
smd.done()
```

Rows are buffered and written every ``gather_interval`` events: to this process's part file, or
sent to the writer rank that serves this worker. ``done()`` closes the parts and, on rank 0 (or
serially), joins them into ``out.h5`` (VirtualDatasets, rows in time order), with ``Sums/`` from
:meth:`sum` / :meth:`max` and ``UserDataCfg/`` from :meth:`save_config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _mpi
from ._event import OfflineEvent
from ._h5 import PartWriter, columns, flatten, join

if TYPE_CHECKING:
    from ._datasource import DataSource

SUMS = "Sums/"


def part_path(out: Path, k: int) -> Path:
    return out.with_name(f"{out.stem}_part{k}{out.suffix or '.h5'}")


class SmallData:
    """See the module docstring. Construction does no I/O (a writer rank serves its workers
    here, under MPI, until they are done)."""

    def __init__(self, ds: DataSource, filename: Path, *, gather_interval: int = 100) -> None:
        self.ds = ds
        self.filename = filename
        self.gather_interval = max(1, int(gather_interval))
        self.config: dict[str, Any] = {}
        self.attrs: dict[str, Any] = {}
        self.sums: dict[str, np.ndarray] = {}  #: rank 0 / serial, after done()
        self._rows: list[dict[str, Any]] = []
        self._events: list[int] = []
        self._part: PartWriter | None = None
        self._last = -1
        self._done = False
        roles = ds.roles
        if roles is None:
            self._part = PartWriter(part_path(filename, 0))
        elif ds.role == "worker" and roles.writer_of(roles.rank) == roles.rank:
            self._part = PartWriter(part_path(filename, roles.part_of(roles.rank)))
        elif ds.role == "writer":
            self._serve()

    @property
    def writes(self) -> bool:
        """Whether this process produces rows (serial or an MPI worker)."""
        return self.ds.role in ("serial", "worker")

    # -- per event ----------------------------------------------------------------------------
    def event(self, evt: OfflineEvent, data: Mapping[str, Any] | None = None,
              **more: Any) -> None:
        """Add values for an event (nested dicts flattened with '/'); calls for one event merge.
        ``timestamp``, ``fiducials`` and ``pulse_id`` are added."""
        row = flatten({**(data or {}), **more})
        if evt.index == self._last and self._rows:
            self._rows[-1].update(row)
            return
        if evt.index < self._last:
            raise ValueError("events must be given in time order")
        fid, pid = evt.fiducial, evt.pulse_id
        row = {"timestamp": np.int64(evt.timestamp),
               "fiducials": np.int64(-99999 if fid is None else fid),
               "pulse_id": np.int64(-99999 if pid is None else pid), **row}
        if len(self._rows) >= self.gather_interval:
            self._flush()
        self._rows.append(row)
        self._events.append(evt.index)
        self._last = evt.index

    def sum(self, evt: OfflineEvent, name: str, value: Any) -> None:
        """Add ``value`` to the run sum ``Sums/<name>`` (the same bits serially or with MPI)."""
        self.ds.sums.add(evt.batch, SUMS + name, value)

    def max(self, evt: OfflineEvent, name: str, value: Any) -> None:
        self.ds.sums.add(evt.batch, SUMS + name, value, op="max")

    def save_config(self, config: Mapping[str, Any]) -> None:
        """Parameters to write once under ``UserDataCfg/`` (nested dicts -> paths)."""
        self.config.update(flatten(config))

    # -- writing ----------------------------------------------------------------------------
    def _flush(self) -> None:
        if not self._rows:
            return
        fixed, var = columns(self._rows)
        events = np.asarray(self._events, np.int64)
        self._rows, self._events = [], []
        if self._part is not None:
            self._part.append(events, fixed, var)
            return
        roles = self.ds.roles
        assert roles is not None
        names = list(fixed)
        vnames = [(g, list(d)) for g, (_l, d) in var.items()]
        arrays = [events, *fixed.values()]
        for _g, (lens, d) in var.items():
            arrays.append(lens)
            arrays.extend(d.values())
        _mpi.send(self.ds.comm, roles.writer_of(roles.rank), _mpi.TAG_ROWS,
                  {"kind": "rows", "fixed": names, "var": vnames}, arrays)

    def _serve(self) -> None:
        """Writer rank: append the blocks of its workers until each says done."""
        ds, roles = self.ds, self.ds.roles
        assert roles is not None
        part = PartWriter(part_path(self.filename, roles.part_of(roles.rank)))
        clients = set(roles.clients_of(roles.rank))
        from ._datasource import _any_source

        while clients:
            src, header, arrays = _mpi.recv(ds.comm, _any_source(), _mpi.TAG_ROWS)
            if header["kind"] == "done":
                clients.discard(src)
                continue
            it = iter(arrays)
            events = next(it)
            fixed = {n: next(it) for n in header["fixed"]}
            var = {}
            for g, fnames in header["var"]:
                lens = next(it)
                var[g] = (lens, {fn: next(it) for fn in fnames})
            part.append(events, fixed, var)
        part.close()
        _mpi.send(ds.comm, 0, _mpi.TAG_PART, {"path": str(part.path)})
        self._done = True

    def done(self) -> None:
        """Write what is buffered, close the parts; rank 0 (or a serial run) joins them."""
        if self._done:
            return
        self._done = True
        ds, roles = self.ds, self.ds.roles
        if self.writes:
            self._flush()
        if self._part is not None:
            self._part.close()
            if roles is not None:
                _mpi.send(ds.comm, 0, _mpi.TAG_PART, {"path": str(self._part.path)})
        elif roles is not None and ds.role == "worker":
            _mpi.send(ds.comm, roles.writer_of(roles.rank), _mpi.TAG_ROWS, {"kind": "done"})
        if ds.role in ("serial", "smd0"):
            parts = [part_path(self.filename, k) for k in
                     range(1 if roles is None else roles.n_parts)]
            if roles is not None:
                for _ in range(roles.n_parts):
                    _mpi.recv(ds.comm, _mpi_source_any(), _mpi.TAG_PART)
            totals = ds.sums.run_sums()
            self.sums = {k[len(SUMS):]: v for k, v in totals.items() if k.startswith(SUMS)}
            join(self.filename, parts, sums=self.sums, config=self.config, attrs=self.attrs)


def _mpi_source_any() -> int:
    from ._datasource import _any_source

    return _any_source()
