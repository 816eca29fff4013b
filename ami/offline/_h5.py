"""HDF5 output in the smalldata layout: per-event rows in part files, joined by VirtualDatasets.

Rows are ``{path: value}`` dicts (paths like ``epix/ROI_0_sum``). A block of rows becomes
columns: one ``(rows, *shape)`` array per path, with missing values filled (NaN for floats,
-99999 for integers stored as int64, 0 for other integers). Paths with a ``var_`` component
(``epix/var_photons/row``) hold variable-length data: their arrays are concatenated over events
and ``epix/var_photons_len`` gives each event's length.

Each writer appends blocks to its part file ``<stem>_part<k>.h5``, together with ``_event``, the
number of each row's event in time order. :func:`join` writes ``<stem>.h5`` whose datasets are
VirtualDatasets over the parts, rows in event order, so the file reads the same whatever the
number of writers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import OfflineError

if TYPE_CHECKING:
    import h5py


def _h5py() -> Any:
    """h5py, imported when HDF5 is written (reading runs does not need it)."""
    try:
        import h5py
    except ImportError:
        raise OfflineError("HDF5 output needs h5py ('pip install h5py')") from None
    return h5py

INT_FILL = -99999
Columns = dict[str, np.ndarray]
VarColumns = dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to ``{"a/b/c": value}``."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def var_group(path: str) -> tuple[str, str] | None:
    """``("epix/var_photons", "row")`` for ``epix/var_photons/row``; None for fixed paths."""
    parts = path.split("/")
    for i, p in enumerate(parts[:-1]):
        if p.startswith("var_"):
            return "/".join(parts[: i + 1]), "/".join(parts[i + 1 :])
    return None


def normalise(value: Any) -> np.ndarray:
    """A value as stored: Python/NumPy scalars -> int64 or float64 0-d arrays; bools -> int64."""
    a = np.asarray(value)
    if a.ndim == 0:
        if a.dtype.kind in "biu":
            return a.astype(np.int64)
        if a.dtype.kind == "f":
            return a.astype(np.float64)
    elif a.dtype.kind == "b":
        return a.astype(np.uint8)
    if a.dtype.kind not in "biuf":
        raise OfflineError(f"cannot store a value of type {a.dtype} in HDF5 small data")
    return a


def fill_value(dtype: np.dtype) -> Any:
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "i" and dtype.itemsize >= 4:
        return INT_FILL
    return 0


def columns(rows: list[dict[str, Any]]) -> tuple[Columns, VarColumns]:
    """Fixed columns and variable-length groups of a block of rows."""
    fixed: dict[str, list[tuple[int, np.ndarray]]] = {}
    var: dict[str, dict[str, list[tuple[int, np.ndarray]]]] = {}
    for i, row in enumerate(rows):
        for path, value in row.items():
            vg = var_group(path)
            a = normalise(value)
            if vg is None:
                fixed.setdefault(path, []).append((i, a))
            else:
                var.setdefault(vg[0], {}).setdefault(vg[1], []).append((i, np.atleast_1d(a)))
    n = len(rows)
    out: Columns = {}
    for path, items in fixed.items():
        first = items[0][1]
        col = np.full((n, *first.shape), fill_value(first.dtype), dtype=first.dtype)
        for i, a in items:
            if a.shape != first.shape:
                raise OfflineError(f"{path}: shape {a.shape} differs from the earlier "
                                   f"{first.shape}; use a var_ name for variable lengths")
            col[i] = a
        out[path] = col
    vout: VarColumns = {}
    for group, fields in var.items():
        lens = np.zeros(n, np.int64)
        data: dict[str, np.ndarray] = {}
        for fname, items in fields.items():
            flens = np.zeros(n, np.int64)
            for i, a in items:
                flens[i] = a.shape[0]
            if lens.any() and not np.array_equal(lens, flens):
                raise OfflineError(f"{group}: fields have different lengths in one event")
            lens = flens
            data[fname] = np.concatenate([a for _i, a in items])
        vout[group] = (lens, data)
    return out, vout


def _append(f: h5py.File, path: str, values: np.ndarray, start: int) -> None:
    """Write ``values`` at rows ``start..`` of a resizable dataset (created on first use)."""
    ds = f.get(path)
    if ds is None:
        ds = f.create_dataset(path, shape=(0, *values.shape[1:]), maxshape=(None,
                              *values.shape[1:]), dtype=values.dtype,
                              chunks=(max(1, min(1024, (1 << 20) // max(1, values[0:1].nbytes))),
                                      *values.shape[1:]),
                              fillvalue=fill_value(values.dtype))
    elif ds.shape[1:] != values.shape[1:]:
        raise OfflineError(f"{path}: shape {values.shape[1:]} differs from the earlier "
                           f"{ds.shape[1:]}")
    end = start + values.shape[0]
    if ds.shape[0] < end:
        ds.resize(end, axis=0)
    ds[start:end] = values


class PartWriter:
    """Appends blocks of rows to one part file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._var_len: dict[str, int] = {}
        self._f: h5py.File | None = None

    def open(self) -> None:
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = _h5py().File(self.path, "w")
            self._f.create_dataset("_event", shape=(0,), maxshape=(None,), dtype=np.int64,
                                   chunks=(4096,))

    def append(self, events: np.ndarray, fixed: Columns, var: VarColumns) -> None:
        self.open()
        f = self._f
        assert f is not None
        start, n = self.rows, int(events.size)
        _append(f, "_event", np.asarray(events, np.int64), start)
        for path, col in fixed.items():
            _append(f, path, col, start)
        for group, (lens, data) in var.items():
            _append(f, f"{group}_len", lens, start)
            at = self._var_len.get(group, 0)
            for fname, values in data.items():
                _append(f, f"{group}/{fname}", values, at)
            self._var_len[group] = at + int(lens.sum())
        self.rows = start + n
        for name, ds in _datasets(f):  # every per-event dataset spans every row
            if not _is_var_data(name) and ds.shape[0] < self.rows:
                ds.resize(self.rows, axis=0)

    def close(self) -> None:
        self.open()  # an empty part is still a part
        assert self._f is not None
        self._f.close()
        self._f = None


def _is_var_data(name: str) -> bool:
    vg = var_group(name)
    return vg is not None


def _datasets(f: h5py.Group) -> list[tuple[str, h5py.Dataset]]:
    out: list[tuple[str, h5py.Dataset]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, _h5py().Dataset):
            out.append((name, obj))

    f.visititems(visit)
    return out


def _runs(parts: list[np.ndarray]) -> tuple[int, list[tuple[int, int, int, int]]]:
    """Total rows and the copy runs (part, first row in part, rows, first row in the output)
    that put all parts' rows in event order."""
    if not parts:
        return 0, []
    ev = np.concatenate(parts)
    pid = np.concatenate([np.full(p.size, k, np.int64) for k, p in enumerate(parts)])
    row = np.concatenate([np.arange(p.size, dtype=np.int64) for p in parts])
    order = np.argsort(ev, kind="stable")
    pid, row = pid[order], row[order]
    if pid.size == 0:
        return 0, []
    brk = np.flatnonzero((np.diff(pid) != 0) | (np.diff(row) != 1)) + 1
    starts = np.concatenate([[0], brk])
    ends = np.concatenate([brk, [pid.size]])
    return int(pid.size), [(int(pid[s]), int(row[s]), int(e - s), int(s))
                           for s, e in zip(starts, ends, strict=True)]


def join(out: Path, parts: list[Path], *, sums: Mapping[str, np.ndarray] | None = None,
         config: Mapping[str, Any] | None = None, attrs: Mapping[str, Any] | None = None) -> None:
    """Write ``out``: every per-event dataset of the parts as a VirtualDataset in event order,
    ``Sums/<name>`` from ``sums`` and ``UserDataCfg/<path>`` from ``config``."""
    h5py = _h5py()
    handles = [h5py.File(p, "r") for p in parts]
    try:
        events = [np.asarray(h["_event"][:]) for h in handles]
        total, runs = _runs(events)
        meta: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        for h in handles:
            for name, ds in _datasets(h):
                if name != "_event":
                    meta.setdefault(name, (ds.dtype, ds.shape[1:]))
        tmp = out.with_name(out.name + ".tmp")
        with h5py.File(tmp, "w") as f:
            rel = [os.path.relpath(p, out.parent) for p in parts]
            lens_cum: dict[tuple[int, str], np.ndarray] = {}
            for name, (dtype, shape) in sorted(meta.items()):
                vg = var_group(name)
                if vg is not None:
                    continue
                _virtual(f, name, dtype, (total, *shape), [
                    (rel[p], name, handles[p][name].shape, (r0, r0 + n), (o0, o0 + n))
                    for p, r0, n, o0 in runs if name in handles[p]])
            for name, (dtype, shape) in sorted(meta.items()):
                vg = var_group(name)
                if vg is None:
                    continue
                group = vg[0]
                sources = []
                at = 0
                for p, r0, n, _o0 in runs:
                    key = (p, group)
                    if key not in lens_cum:
                        lens = (np.asarray(handles[p][f"{group}_len"][:])
                                if f"{group}_len" in handles[p] else np.zeros(0, np.int64))
                        lens_cum[key] = np.concatenate([[0], np.cumsum(lens)])
                    cum = lens_cum[key]
                    if cum.size <= r0 + n:
                        continue
                    a, b = int(cum[r0]), int(cum[r0 + n])
                    if b > a and name in handles[p]:
                        sources.append((rel[p], name, handles[p][name].shape, (a, b),
                                        (at, at + b - a)))
                    at += b - a
                _virtual(f, name, dtype, (at, *shape), sources)
            for name, value in (sums or {}).items():
                f.create_dataset(f"Sums/{name}", data=np.asarray(value))
            for name, value in flatten(config or {}).items():
                f.create_dataset(f"UserDataCfg/{name}", data=cfg_value(value))
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
        os.replace(tmp, out)
    finally:
        for h in handles:
            h.close()


def _virtual(f: h5py.File, name: str, dtype: np.dtype, shape: tuple[int, ...],
             sources: list[tuple[str, str, tuple[int, ...], tuple[int, int], tuple[int, int]]]
             ) -> None:
    h5py = _h5py()
    if shape[0] == 0:
        f.create_dataset(name, shape=shape, dtype=dtype)
        return
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    for path, src_name, src_shape, (a, b), (c, d) in sources:
        layout[c:d] = h5py.VirtualSource(path, src_name, shape=src_shape)[a:b]
    f.create_virtual_dataset(name, layout, fillvalue=fill_value(np.dtype(dtype)))


def cfg_value(value: Any) -> Any:
    if value is None:
        return np.nan
    if isinstance(value, str):
        return value
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):
        return str(value)
    if a.dtype.kind in "biuf":
        return a
    return str(value)
