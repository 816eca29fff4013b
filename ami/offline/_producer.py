"""The smalldata producer: a Python config in the smalldata_tools style -> HDF5, and cubes.

A config is a Python file defining any of (each function takes the run number)::

    detectors = ["epix", "acqiris"]          # processed detectors (default: those configured)
    default_detectors = None                  # scalar detectors to copy (None: all inlined)
    epicsPV = ["XPP:MON:TEMP:01"]             # PVs written per event as epics/<pv>
    gather_interval = 100
    def getROIs(run): return {"epix": [{"ROI": [[0, 100], [0, 200]], "name": "ROI_0",
                                        "writeArea": False, "thresADU": None, "proj_ax": 0}]}
    def get_droplet(run): return {"epix": {"threshold": 5, "thresholdLow": 3, "thresADU": 0,
                                           "useRms": True, "nData": 0}}
    def get_droplet2photon(run): return {"epix": {"droplet": {"threshold": 5, "thresholdLow": 3,
                                                  "useRms": True}, "d2p": {"aduspphot": 9.5},
                                         "nData": None, "get_photon_img": False}}
    def get_photons(run): return {"epix": {"ADU_per_photon": 9.5}}
    def get_azav(run): return {"epix": {"eBeam": 9.5, "center": [x_um, y_um],
                                        "dis_to_sam": 100.0, "qbin": 0.01}}
    def get_wf_integrate(run): return {"acqiris": {"sig_roi": [90, 130], "bkg_roi": [0, 50],
                                                   "negative_signal": True}}
    def get_wf_hitfinder(run): return {"acqiris": {"delay": 3, "fraction": 0.5,
                                                   "threshold": 100, "nmax_hits": 8}}
    def get_sum_algos(run): return {"epix": ["calib", "calib_square", "calib_max",
                                             "calib_thresADU5"]}
    def funcs(run): return {"epix": [ROIFunc(...).add(ProjectionFunc(0))]}   # anything else
    def event_filter(run): return ThresholdFilter("gasdet", "f_11_ENRC", 0.5)  # small data only
    def cube(run): return CubeSpec(bin_on="step", screener=CompositeFilter([...]),
                                   fields=["epix/ROI_0_sum", "epix/image"])

Output ``<exp>_Run<run:04d>.h5`` (smalldata layout, see ``_h5``) and, with ``cube``,
``cube_<exp>_r<run:04d>.h5``.
"""

from __future__ import annotations

import os
import runpy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calib import CalibStore, Geometry, default_geometry

from . import _mpi
from ._datasource import DataSource
from ._detector import AreaDetector, Detector
from ._errors import OfflineError
from ._event import OfflineEvent
from ._filters import AllEvents, Filter
from ._funcs import (
    AzimuthalFunc,
    CFDHits,
    DetContext,
    DetPlan,
    Droplet2Photons,
    DropletFunc,
    PhotonFunc,
    ProjectionFunc,
    ROIFunc,
    SparsifyFunc,
    WfIntegration,
    join_key,
)
from ._h5 import _h5py, cfg_value
from ._run import Run
from ._smalldata import SmallData

_TAG_CFG = 41


@dataclass
class CubeSpec:
    """Binned sums of per-event results: by scan step (``bin_on="step"``) or by a row value
    (``bin_on="gasdet/f_11_ENRC"`` with bin ``edges``), one cube per screener label.
    ``fields`` are row keys (``epix/ROI_0_sum``) or whole frames (``epix/image``,
    ``epix/calib``)."""

    fields: Sequence[str]
    bin_on: str = "step"
    edges: Sequence[float] | None = None
    screener: Filter | None = None


@dataclass
class ProducerConfig:
    plans: dict[str, DetPlan] = field(default_factory=dict)
    default_detectors: list[str] | None = None
    epics_pvs: list[str] = field(default_factory=list)
    event_filter: Filter | None = None
    cube: CubeSpec | None = None
    gather_interval: int = 100


def _call(ns: Mapping[str, Any], name: str, run: int) -> Any:
    fn = ns.get(name)
    return fn(run) if callable(fn) else (fn if fn is not None else {})


def build_config(ns: Mapping[str, Any], run: int) -> ProducerConfig:
    """A :class:`ProducerConfig` from a config namespace (see the module docstring)."""
    plans: dict[str, DetPlan] = {}

    def plan(det: str) -> DetPlan:
        return plans.setdefault(det, DetPlan(det))

    for det in ns.get("detectors", []) or []:
        plan(det)
    for det, rois in (_call(ns, "getROIs", run) or {}).items():
        for k, r in enumerate(rois if isinstance(rois, list) else [rois]):
            if not isinstance(r, Mapping):
                r = {"ROI": r}
            f = ROIFunc(r["ROI"], name=r.get("name", f"ROI_{k}"),
                        writeArea=r.get("writeArea", False), thresADU=r.get("thresADU"))
            axes = r.get("pj", [r["proj_ax"]] if r.get("proj_ax") is not None else [])
            for ax in axes:
                f.add(ProjectionFunc(axis=int(ax), thresADU=r.get("proj_thresADU")))
            plan(det).funcs.append(f)
    for det, p in (_call(ns, "get_droplet", run) or {}).items():
        p = dict(p)
        plan(det).funcs.append(DropletFunc(**p))
    for det, p in (_call(ns, "get_droplet2photon", run) or {}).items():
        d = DropletFunc(name="droplet2phot", **dict(p.get("droplet", {})))
        d2p = Droplet2Photons(get_photon_img=bool(p.get("get_photon_img", False)),
                              **dict(p.get("d2p", {})))
        d2p.add(SparsifyFunc(nData=p.get("nData")))
        d.add(d2p)
        plan(det).funcs.append(d)
    for det, p in (_call(ns, "get_photons", run) or {}).items():
        plan(det).funcs.append(PhotonFunc(**dict(p)))
    for det, p in (_call(ns, "get_azav", run) or {}).items():
        p = dict(p)
        plan(det).funcs.append(AzimuthalFunc(
            center=p["center"], dis_to_sam=p["dis_to_sam"], eBeam=p["eBeam"],
            qbin=p.get("qbin"), nbins=p.get("nbins", 100), unit=p.get("unit", "q"),
            qrange=p.get("qrange"), polarization=p.get("Pplane"),
            solid_angle=p.get("geomCorr", True), name=p.get("name", "azav")))
    for det, p in (_call(ns, "get_wf_integrate", run) or {}).items():
        plan(det).funcs.append(WfIntegration(**dict(p)))
    for det, p in (_call(ns, "get_wf_hitfinder", run) or {}).items():
        plan(det).funcs.append(CFDHits(**dict(p)))
    for det, funcs in (_call(ns, "funcs", run) or {}).items():
        plan(det).funcs.extend(funcs)
    sums = _call(ns, "get_sum_algos", run) or {}
    for det, algos in sums.items():
        targets = list(plans) if det == "all" else [det]
        for t in targets:
            plan(t).sums.extend(a for a in algos if a not in plan(t).sums)
    for det, mode in (ns.get("data_source", {}) or {}).items():
        plan(det).data = mode
    cube = _call(ns, "cube", run) or None
    if isinstance(cube, Mapping):
        cube = CubeSpec(**cube)
    filt = _call(ns, "event_filter", run) or None
    return ProducerConfig(plans, ns.get("default_detectors"), list(ns.get("epicsPV", []) or []),
                          filt, cube, int(ns.get("gather_interval", 100)))


def load_config(path: str | os.PathLike[str], run: int) -> ProducerConfig:
    """Run a config file and build its :class:`ProducerConfig` for ``run``."""
    p = Path(path)
    if not p.is_file():
        raise OfflineError(f"no config file {p}")
    ns = runpy.run_path(str(p))
    return build_config(ns, run)


# -- per-event work ---------------------------------------------------------------------------
def default_data(evt: OfflineEvent, run: Run, cfg: ProducerConfig) -> dict[str, dict[str, Any]]:
    """Scalar detectors (those inlined in the small data, or ``default_detectors``), light
    status, scan values and EPICS PVs of an event: reads no big data unless a listed default
    detector is not inlined."""
    out: dict[str, dict[str, Any]] = {}
    wanted = cfg.default_detectors
    for item in evt.smd.items:
        name = item.det_name
        if name == "smdinfo" or (wanted is not None and name not in wanted):
            continue
        out.setdefault(name, {}).update(item.values)
    for name in wanted or []:
        if name not in out and name in run.detnames:
            vals = evt.values(name)
            if vals:
                out[name] = dict(vals)
    timing = out.get("timing") or {}
    if "xray_on" in timing or "laser_on" in timing:
        out["lightStatus"] = {"xray": int(timing.get("xray_on", -1)),
                              "laser": int(timing.get("laser_on", -1))}
    if run.scan_names:
        scan = evt.step.scan if evt.step is not None else {}
        out["scan"] = {v: float(scan.get(v, np.nan)) for v in run.scan_names}
        out["scan"]["step"] = int(scan.get("step", -1))
    if cfg.epics_pvs:
        out["epics"] = {pv: float(evt.epics.get(pv, np.nan)) for pv in cfg.epics_pvs}
    return out


class Producer:
    """Runs a :class:`ProducerConfig` over a data source (serially or as one MPI rank)."""

    def __init__(self, cfg: ProducerConfig, ds: DataSource, out_dir: Path) -> None:
        self.cfg = cfg
        self.ds = ds
        self.out_dir = out_dir
        self._ready: dict[str, tuple[Detector | AreaDetector, DetPlan]] = {}

    def setup(self, run: Run) -> dict[str, Any]:
        """Detector handles and function contexts for a run; the UserDataCfg dict."""
        config: dict[str, Any] = {}
        self._ready = {}
        for name, plan in self.cfg.plans.items():
            det = run.Detector(name)
            if not isinstance(det, Detector):
                raise OfflineError(f"{name} is not a detector")
            ctx = detector_context(run, det, plan)
            for f in plan.funcs:
                f.setup(ctx)
                config.update({f"{name}/{k}": v for k, v in f.config().items()})
                if isinstance(f, AzimuthalFunc) and f.q is not None:
                    config[f"{name}/{f.name}__q"] = f.q
            self._ready[name] = (det, plan)
        return config

    def frame(self, det: Detector | AreaDetector, plan: DetPlan, evt: OfflineEvent) -> Any:
        if isinstance(det, AreaDetector) and plan.data in ("calib", "image"):
            return det.calib(evt) if plan.data == "calib" else det.image(evt)
        return det.raw(evt)

    def process(self, evt: OfflineEvent, run: Run, smd: SmallData) -> dict[str, Any]:
        row: dict[str, Any] = {f"{d}/{k}": v for d, vals in
                               default_data(evt, run, self.cfg).items() for k, v in vals.items()}
        frames: dict[str, Any] = {}
        for name, (det, plan) in self._ready.items():
            data = self.frame(det, plan, evt)
            if data is None:
                continue
            frames[name] = data
            for f in plan.funcs:
                for k, v in f.process(data).items():
                    row[f"{name}/{join_key(f.name, k)}"] = v
            for algo in plan.sums:
                add_sum(smd, evt, name, algo, np.asarray(data, dtype=np.float64))
        smd.event(evt, row)
        if self.cfg.cube is not None:
            self.cube_event(evt, row, frames)
        return row

    def cube_event(self, evt: OfflineEvent, row: dict[str, Any], frames: dict[str, Any]) -> None:
        spec = self.cfg.cube
        assert spec is not None
        ok, label = (spec.screener or AllEvents()).apply(row)
        if not ok:
            return
        if spec.bin_on == "step":
            b = evt.step.index if evt.step is not None else 0
        else:
            v = row.get(spec.bin_on)
            if v is None or spec.edges is None or not np.isfinite(float(v)):
                return
            b = int(np.searchsorted(np.asarray(spec.edges, float), float(v), side="right")) - 1
            if not 0 <= b < len(spec.edges) - 1:
                return
        sums = self.ds.sums
        for f in spec.fields:
            det, _, key = f.partition("/")
            if key in ("image", "calib", "raw") and det in self._ready:
                d, _plan = self._ready[det]
                if isinstance(d, AreaDetector) and key != "raw":
                    value = d.image(evt) if key == "image" else d.calib(evt)
                else:
                    value = d.raw(evt)
            else:
                value = row.get(f)
            if value is None:
                continue
            sums.add(evt.batch, f"cube/{label}/{f}", np.asarray(value, dtype=np.float64), bin=b)
        sums.add(evt.batch, f"cube/{label}/count", 1, bin=b)
        if spec.bin_on == "step" and evt.step is not None:
            for k, v in evt.step.scan.items():
                sums.add(evt.batch, f"cubebins/{k}", float(v), bin=b, op="max")


def add_sum(smd: SmallData, evt: OfflineEvent, det: str, algo: str, data: np.ndarray) -> None:
    """One ``get_sum_algos`` token: calib, calib_square, calib_max, calib_thresADU<x>."""
    base, _, rest = algo.partition("_")
    name = f"{det}_{algo}"
    if rest == "":
        smd.sum(evt, name, data)
    elif rest == "square":
        smd.sum(evt, name, data * data)
    elif rest == "max":
        smd.max(evt, name, data)
    elif rest.startswith("thresADU"):
        thr = float(rest[len("thresADU"):])
        smd.sum(evt, name, np.where(data > thr, data, 0.0))
    elif rest.startswith("nhits"):
        thr = float(rest[len("nhits"):] or 0)
        smd.sum(evt, name, (data > thr).astype(np.int64))
    else:
        raise OfflineError(f"unknown sum algorithm {algo!r} (calib, calib_square, calib_max, "
                           "calib_thresADU<x>, calib_nhits<x>)")
    del base


def detector_context(run: Run, det: Detector | AreaDetector, plan: DetPlan) -> DetContext:
    """Pixel rms (data units: keV with gains), good-pixel mask and coordinates of a detector."""
    if not isinstance(det, AreaDetector) or plan.data == "raw":
        return DetContext(det.name)
    if plan.data == "image":
        return DetContext(det.name)
    if not det.calibrated:
        raise OfflineError(det.problem or f"{det.name}: no calibration constants")
    rms = det.constants("pixel_rms")
    gain = det.constants("pixel_gain")
    if rms is not None and gain is not None and gain.shape == rms.shape:
        rms = np.divide(rms, gain, out=np.zeros(rms.shape), where=gain != 0)
    status = det.constants("pixel_status")
    mask = None if status is None else status == 0
    user = det.constants("pixel_mask")
    if user is not None and mask is not None and user.shape == mask.shape:
        mask = mask & (user != 0)
    store = CalibStore(run.calib_dir)
    geo: Geometry | None = store.geometry(det.type, det.name, run.runnum)
    x = y = None
    shape = tuple(rms.shape) if rms is not None else ()
    try:
        geo = geo or default_geometry(det.type)
        gx, gy, _ = geo.pixel_coords()
        if shape and gx.size == int(np.prod(shape)):
            x, y = gx.reshape(shape), gy.reshape(shape)
    except Exception:  # no geometry: functions needing coordinates say so
        x = y = None
    return DetContext(det.name, shape, rms, mask, x, y)


# -- driving it -----------------------------------------------------------------------------
def smalldata_name(exp: str, run: int) -> str:
    return f"{exp}_Run{run:04d}.h5"


def cube_name(exp: str, run: int) -> str:
    return f"cube_{exp}_r{run:04d}.h5"


def produce(config: ProducerConfig | str | os.PathLike[str], exp: str, run: int, *,
            dir: str | os.PathLike[str] = "data", out_dir: str | os.PathLike[str] | None = None,
            nevents: int | None = None, gather_interval: int | None = None,
            calib_dir: str | os.PathLike[str] | None = None, live: bool = False,
            mpi: str = "auto", writers: int = 0, batch_size: int = 10,
            timeout: float = 10.0) -> dict[str, Any]:
    """Reduce run ``run`` of ``exp`` with a config; returns (on rank 0 or serially) the paths
    written and counts. Other MPI ranks return {}."""
    cfg = config if isinstance(config, ProducerConfig) else load_config(config, run)
    out = Path(out_dir) if out_dir is not None else Path(dir) / exp / "hdf5" / "smalldata"
    holder: dict[str, Any] = {}

    def smd_filter(evt: OfflineEvent) -> bool:
        assert cfg.event_filter is not None
        data = default_data(evt, holder["run"], cfg)
        return cfg.event_filter.apply(data)[0]

    ds = DataSource(exp=exp, run=run, dir=dir, calib_dir=calib_dir, live=live, mpi=mpi,
                    writers=writers, batch_size=batch_size, max_events=nevents,
                    timeout=timeout, filter=smd_filter if cfg.event_filter else None)
    path = out / smalldata_name(exp, run)
    if ds.role in ("serial", "smd0"):
        out.mkdir(parents=True, exist_ok=True)
    smd = ds.smalldata(path, gather_interval=gather_interval or cfg.gather_interval)
    prod = Producer(cfg, ds, out)
    nev = 0
    user_cfg: dict[str, Any] = {}
    for r in ds.runs():
        holder["run"] = r
        user_cfg = prod.setup(r)
        for evt in r.events():
            prod.process(evt, r, smd)
            nev += 1
    _share_config(ds, smd, user_cfg)
    smd.done()
    if ds.role not in ("serial", "smd0"):
        return {}
    result: dict[str, Any] = {"smalldata": path, "sums": smd.sums}
    if cfg.cube is not None:
        cpath = out / cube_name(exp, run)
        write_cube(cpath, ds, cfg.cube, smd.config)
        result["cube"] = cpath
    if ds.role == "serial":
        result["events"] = nev
    return result


def _share_config(ds: DataSource, smd: SmallData, config: dict[str, Any]) -> None:
    """UserDataCfg: computed where the runs are (serial, or the first worker -> rank 0)."""
    roles = ds.roles
    if roles is None:
        smd.save_config(config)
        return
    first = roles.workers[0]
    if roles.rank == first:
        names = list(config)
        arrays = [np.asarray(v) if not isinstance(v, str) else np.frombuffer(v.encode(),
                  np.uint8) for v in config.values()]
        kinds = ["s" if isinstance(v, str) else "a" for v in config.values()]
        _mpi.send(ds.comm, 0, _TAG_CFG, {"names": names, "kinds": kinds}, arrays)
    elif roles.rank == 0:
        _src, header, arrays = _mpi.recv(ds.comm, first, _TAG_CFG)
        smd.save_config({n: (a.tobytes().decode() if k == "s" else a)
                         for n, k, a in zip(header["names"], header["kinds"], arrays,
                                            strict=True)})


def write_cube(path: Path, ds: DataSource, spec: CubeSpec, config: Mapping[str, Any]) -> None:
    """``cube_<exp>_r<run>.h5``: ``/<label>/<field>[bin, ...]`` sums, ``/<label>/count[bin]``,
    and the bin variables at the top (scan values per step, or ``bins`` edges)."""
    cubes = ds.sums.binned("cube/")
    bins = ds.sums.binned("cubebins/")
    if spec.bin_on == "step":
        nbins = 1 + max([b for v in [*cubes.values(), *bins.values()] for b in v] or [0])
    else:
        assert spec.edges is not None
        nbins = len(spec.edges) - 1
    tmp = path.with_name(path.name + ".tmp")
    with _h5py().File(tmp, "w") as f:
        f.attrs["bin_on"] = spec.bin_on
        if spec.bin_on == "step":
            for var, by_bin in bins.items():
                a = np.full(nbins, np.nan)
                for b, v in by_bin.items():
                    a[b] = float(v)
                f.create_dataset(var if var != "step" else "step_value", data=a)
        else:
            edges = np.asarray(spec.edges, float)
            f.create_dataset("bins", data=edges)
            f.create_dataset("bin_centers", data=(edges[:-1] + edges[1:]) / 2)
        for name, by_bin in sorted(cubes.items()):
            first = next(iter(by_bin.values()))
            a = np.zeros((nbins, *np.shape(first)), dtype=np.asarray(first).dtype)
            for b, v in by_bin.items():
                a[b] = v
            f.create_dataset(name, data=a)
        for k, v in config.items():
            f.create_dataset(f"UserDataCfg/{k}", data=cfg_value(v))
    os.replace(tmp, path)
