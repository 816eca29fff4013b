"""The ``calib`` sub-commands (the parser lives in :mod:`calib.cli`)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from daq.xtc._files import parse_name

from ._calibrator import Calibrator
from ._dark import DarkThresholds
from ._darks import pick_detector, process_dark, process_dark_stages
from ._detectors import DETECTORS, DetectorSpec
from ._diff import diff_constants
from ._errors import CalibError
from ._geometry import Geometry
from ._mpi import world
from ._run import RunIndex
from ._sources import store_segments
from ._status import StatusBit
from ._store import CTYPES, CalibStore, RunRange, read_constants
from ._truth import deploy_truth

DARK_CTYPES = ("pedestals", "pixel_rms", "pixel_status")


class CliError(Exception):
    """A command line that cannot work (missing or conflicting options)."""


# -- shared helpers ----------------------------------------------------------------------------
def store_of(args: argparse.Namespace) -> CalibStore:
    if getattr(args, "calib_dir", None):
        return CalibStore(args.calib_dir)
    if getattr(args, "exp", None):
        return CalibStore(Path(args.dir) / args.exp / "calib")
    raise CliError("give --calib-dir, or --exp (the store is then DIR/EXP/calib)")


def run_indexes(args: argparse.Namespace) -> list[tuple[str, RunIndex]]:
    """(label, index) of each run given: ``--exp`` with one or more ``--run``, or ``--files``
    (grouped by the run number in their names when they hold several runs)."""
    if args.files:
        if args.exp:
            raise CliError("give --files or --exp/--run, not both")
        runs: dict[int | None, list[str]] = {}
        for f in args.files:
            info = parse_name(f)
            runs.setdefault(None if info is None else info.run, []).append(f)
        if len(runs) == 1 or None in runs:
            return [(" ".join(args.files), RunIndex.from_files(args.files))]
        return [(f"run {r}", RunIndex.from_files(fs)) for r, fs in sorted(runs.items())]
    if not args.exp or not args.run:
        raise CliError("give --exp and --run (with --dir), or --files")
    if len(set(args.run)) != len(args.run):
        raise CliError(f"--run lists a run twice: {' '.join(map(str, args.run))}")
    return [(f"run {r}", RunIndex.from_run(args.dir, args.exp, r,
                                           include_inprogress=args.inprogress))
            for r in args.run]


def det_type_of(store: CalibStore, det: str, given: str | None) -> str:
    """The type given, or the only type under which the store holds ``det``."""
    if given:
        return given
    types = sorted({e.det_type for e in store.list(det_name=det)})
    if len(types) == 1:
        return types[0]
    if not types:
        have = sorted({e.det_name for e in store.list()})
        raise CalibError(f"no constants for detector {det!r} in {store.root}"
                         + (f" (detectors: {', '.join(have)})" if have else " (store empty)"))
    raise CliError(f"{det} has constants under several types ({', '.join(types)}): give --type")


def check_shape(spec: DetectorSpec, ctype: str, arr: np.ndarray, source: str) -> None:
    """Refuse arrays that cannot be this detector's constants (a clear message naming both)."""
    if ctype == "common_mode":
        if arr.ndim > 1 or not 2 <= arr.size <= 8:
            raise CalibError(f"{source}: common_mode must be a few numbers "
                             f"(alg, mode, cormax, npixmin), not shape {arr.shape}")
        return
    n = arr.shape[-3] if spec.gain_switching and arr.ndim >= 3 else None
    allowed = {spec.data_shape(n), spec.constants_shape(n)}
    if arr.shape not in allowed:
        want = " or ".join(str(s) for s in sorted(allowed))
        raise CalibError(f"{source}: {ctype} of shape {arr.shape} does not fit a {spec.name} "
                         f"(expected {want}); refused")


def _stats_line(arr: np.ndarray) -> str:
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8:  # status
        bad = int(np.count_nonzero(arr))
        bits = {b.name: int(np.count_nonzero(arr & np.uint64(b))) for b in StatusBit}
        return (f"{bad} bad of {arr.size} ("
                + ", ".join(f"{k} {v}" for k, v in bits.items() if v) + ")")
    if arr.size <= 8:
        return "values " + " ".join(f"{v:g}" for v in arr.ravel().tolist())
    return (f"median {np.median(arr):.4g}, min {arr.min():.4g}, max {arr.max():.4g}")


# -- darks -------------------------------------------------------------------------------------
def cmd_darks(args: argparse.Namespace) -> int:
    comm = world(args.mpi)
    rank = 0 if comm is None else comm.Get_rank()
    runs_given = run_indexes(args)
    labels = [label for label, _ in runs_given]
    indexes = [index for _, index in runs_given]
    store = store_of(args) if args.deploy else None
    runs = _deploy_runs(args, indexes) if args.deploy else None
    th = DarkThresholds(dead_rms=args.dead_rms, noisy_rms=args.noisy_rms,
                        hot_sigma=args.hot_sigma, cold_sigma=args.cold_sigma,
                        saturation=args.saturation, per_segment=args.per_segment,
                        off_stage=args.off_stage)
    if args.block_size < 1:
        raise CliError("--block-size must be >= 1")
    if args.threads < 0:
        raise CliError("--threads must be >= 0 (0: one per core)")
    threads = args.threads or _cores_per_rank(comm)
    opts: dict[str, Any] = dict(thresholds=th, max_events=args.max_events,
                                block_size=args.block_size, comm=comm, threads=threads)
    name, det_type = pick_detector(indexes[0], args.det)
    if det_type in DETECTORS and DETECTORS[det_type].gain_switching:
        result = process_dark_stages(indexes, args.det, labels=labels, **opts)
    elif len(indexes) != 1:
        raise CliError(f"{name} ({det_type}) takes one dark run, not {len(indexes)} (only "
                       "gain-switching detectors take one per gain stage)")
    else:
        result = process_dark(indexes[0], args.det, **opts)
    if rank != 0 or result is None:
        return 0
    ranks = "" if comm is None else f" on {comm.Get_size()} MPI ranks"
    for label, index in runs_given:
        print(f"dark {label}: {len(index)} events in {len(index.streams)} stream(s){ranks}")
    print(result.summary())
    if args.out:
        arrays: dict[str, Any] = {"det_name": result.det_name, "det_type": result.det_type,
                                  "n_events": result.n_events, **result.constants()}
        np.savez(args.out, **arrays)
        print(f"saved {args.out}")
    if store is not None and runs is not None:
        source = f"calib darks of {_describe(args)} ({result.n_events} events)"
        for ctype, value in result.constants().items():
            path = store.deploy(result.det_type, result.det_name, ctype, value, runs=runs,
                                fmt=args.fmt, source=source)
            print(f"deployed {path}")
    return 0


def _cores_per_rank(comm: Any) -> int:
    """CPU cores this process may use, divided among the MPI ranks (assumed on one node)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // (1 if comm is None else comm.Get_size()))


def _describe(args: argparse.Namespace) -> str:
    if not args.exp:
        return " ".join(args.files)
    return f"{args.exp} run{'s' if len(args.run) > 1 else ''} {' '.join(map(str, args.run))}"


def _deploy_runs(args: argparse.Namespace, indexes: list[RunIndex]) -> RunRange:
    """``--runs``, else from the first dark run on (the lowest run number)."""
    if args.runs:
        return RunRange.parse(args.runs)
    numbers: list[int] = list(args.run or [])
    if not numbers:
        for index in indexes:
            info = index.run_info()
            if info is None:
                raise CliError("the files record no run number: give --runs B-E")
            numbers.append(info[1])
    return RunRange(min(numbers), None)


# -- deploy ------------------------------------------------------------------------------------
def cmd_deploy(args: argparse.Namespace) -> int:
    store = store_of(args)
    runs = RunRange.parse(args.runs)
    path = Path(args.file)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            det = args.det or str(npz["det_name"])
            det_type = args.det_type or str(npz["det_type"])
            values = {c: npz[c] for c in DARK_CTYPES if c in npz.files}
        if args.ctype:
            values = {args.ctype: values[args.ctype]} if args.ctype in values else {}
            if not values:
                raise CliError(f"{path} holds no {args.ctype}")
    else:
        if not (args.det and args.det_type and args.ctype):
            raise CliError("give --det, --type and --ctype (only a darks .npz names them)")
        det, det_type = args.det, args.det_type
        values = {args.ctype: read_constants(path, args.ctype)}
    spec = DETECTORS.get(det_type)
    for ctype, value in values.items():
        if ctype not in CTYPES:
            raise CalibError(f"unknown constant type {ctype!r} (known: {', '.join(CTYPES)})")
        if ctype == "geometry":
            geo = Geometry.parse(value, str(path))  # GeometryError names the line
            if spec is not None:
                _check_geometry(geo, spec, str(path))
        elif spec is not None:
            check_shape(spec, ctype, np.asarray(value), str(path))
    for ctype, value in values.items():
        fmt = args.fmt or ("npy" if path.suffix in (".npy", ".npz") else "data")
        if ctype == "geometry":
            fmt = "data"
        out = store.deploy(det_type, det, ctype, value, runs=runs, fmt=fmt, source=str(path))
        print(f"deployed {out}")
    return 0


def _check_geometry(geo: Geometry, spec: DetectorSpec, source: str) -> None:
    segs, rows, cols = geo.shape
    if (rows, cols) != spec.segment_shape or (spec.segments and not spec.gain_switching
                                             and segs != spec.segments):
        raise CalibError(f"{source}: geometry describes {segs} x {rows} x {cols} pixels, "
                         f"not a {spec.name} ({spec.data_shape()})")


# -- show --------------------------------------------------------------------------------------
def cmd_show(args: argparse.Namespace) -> int:
    store = store_of(args)
    det_type = det_type_of(store, args.det, args.det_type)
    print(f"{args.det} ({det_type}) run {args.run} in {store.root}")
    for ctype in CTYPES:
        entries = store.entries(det_type, args.det, ctype)
        if not entries:
            continue
        path = store.find(det_type, args.det, ctype, args.run)
        ranges = ", ".join(str(e.runs) for e in entries)
        if path is None:
            print(f"  {ctype:13s} none for this run (files cover {ranges})")
            continue
        value = read_constants(path, ctype)
        if ctype == "geometry":
            geo = Geometry.parse(value, str(path))
            desc = f"{geo.shape[0]} x {geo.segment.name} -> image " \
                   f"{geo.image_indexes()[0].max() + 1} x {geo.image_indexes()[1].max() + 1}"
        else:
            desc = f"{value.shape} {value.dtype}: {_stats_line(value)}"
        print(f"  {ctype:13s} {path.name:12s} {desc}")
    if det_type in DETECTORS:
        try:
            segments = store_segments(store, det_type, args.det, args.run)
            cal = Calibrator.from_store(store, det_type, args.det, args.run, segments=segments)
        except CalibError as exc:
            print(f"  calibration: not available, raw data only: {exc}")
        else:
            cm = cal.common_mode.pars() if cal.common_mode else "off"
            print(f"  calibration: ready ({int(cal.good.sum())} good pixels, common mode {cm})")
    return 0


# -- diff --------------------------------------------------------------------------------------
def cmd_diff(args: argparse.Namespace) -> int:
    ctypes = args.ctype or list(DARK_CTYPES)
    if args.files:
        if args.runs or args.det:
            raise CliError("give DET --runs OLD NEW, or --files OLD NEW")
        ctype = ctypes[0] if args.ctype else ""
        old, new = (read_constants(f, ctype) for f in args.files)
        print(f"{args.files[0]} -> {args.files[1]}: "
              f"{diff_constants(old, new, atol=args.atol).summary()}")
        return 0
    if not (args.det and args.runs):
        raise CliError("give DET --runs OLD NEW, or --files OLD NEW")
    store = store_of(args)
    det_type = det_type_of(store, args.det, args.det_type)
    a, b = args.runs
    for ctype in ctypes:
        pa, pb = (store.find(det_type, args.det, ctype, r) for r in (a, b))
        if pa is None or pb is None:
            missing = a if pa is None else b
            print(f"{ctype}: none for run {missing}")
            continue
        if pa == pb:
            print(f"{ctype}: runs {a} and {b} use the same file {pa.name}")
            continue
        d = diff_constants(read_constants(pa, ctype), read_constants(pb, ctype), atol=args.atol)
        print(f"{ctype}: {pa.name} -> {pb.name}: {d.summary()}")
    return 0


# -- truth -------------------------------------------------------------------------------------
def cmd_truth(args: argparse.Namespace) -> int:
    kind, params = args.kind, {}
    if args.config:
        from daq.config import load_partition  # only this option needs the DAQ configuration

        cfg = load_partition(args.config)
        found = [d for n in cfg.nodes for d in n.detectors if d.name == args.det]
        if not found:
            raise CliError(f"{args.config} has no detector named {args.det!r}")
        kind, params = kind or found[0].kind, dict(found[0].params)
        if not args.exp and not args.calib_dir:
            args.exp, args.dir = cfg.experiment, args.dir if args.dir != "data" else cfg.data_root
    kind = kind or args.det
    for item in args.param:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise CliError(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(text)
        except json.JSONDecodeError:
            params[key] = text
    if kind not in DETECTORS:
        raise CliError(f"no calibration for kind {kind!r} (known: {', '.join(DETECTORS)}); "
                       "give --kind")
    store = store_of(args)
    for path in deploy_truth(store, kind, args.det, RunRange.parse(args.runs), params, args.fmt):
        print(f"deployed {path}")
    return 0


# -- geometry ----------------------------------------------------------------------------------
def cmd_geometry(args: argparse.Namespace) -> int:
    geo = Geometry.read(args.file)
    if args.det_type:
        if args.det_type not in DETECTORS:
            raise CliError(f"unknown detector type {args.det_type!r}")
        _check_geometry(geo, DETECTORS[args.det_type], args.file)
    rows, cols = geo.image_indexes()
    print(f"{args.file}: {geo.shape[0]} segments of {geo.shape[1]} x {geo.shape[2]} "
          f"({geo.segment.name}), image {int(rows.max()) + 1} x {int(cols.max()) + 1}, "
          f"pixel {geo.pixel_scale_size:g} um")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "darks": cmd_darks,
    "deploy": cmd_deploy,
    "show": cmd_show,
    "diff": cmd_diff,
    "truth": cmd_truth,
    "geometry": cmd_geometry,
}
