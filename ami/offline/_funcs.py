"""Reduction functions in the smalldata_tools style, built on the AMI operations.

Each function has a ``name``, parameters (written once under ``UserDataCfg/<det>/<name>__<par>``)
and ``process(data) -> {key: value}``; a function's children process what it hands them (a
ROI's area, a droplet function's droplets) and their results are merged as ``<child>_<key>``.
Keys of variable-length results are ``var/<field>`` and become ``var_<func>.../<field>`` (one
``_len`` per event, see ``_h5``). Per-detector context (pixel rms, mask, pixel coordinates)
comes from :meth:`Func.setup`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ami.ops import AzimuthalIntegrator, ConstantFraction, project, roi_stats

from ._reduce import droplet_photons, droplets, photons, sparsify


@dataclass
class DetContext:
    """What functions may need about their detector: per-pixel rms and good-pixel mask in the
    units of the data, pixel coordinates (um, raw shape), the data shape."""

    name: str
    shape: tuple[int, ...] = ()
    rms: np.ndarray | None = None
    mask: np.ndarray | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None


def join_key(prefix: str, key: str) -> str:
    """``prefix_key``; a variable-length key keeps ``var_`` in front: ``var_prefix.../field``."""
    if key.startswith("var/"):
        return f"var_{prefix}/{key[4:]}"
    if key.startswith("var_"):
        return f"var_{prefix}_{key[4:]}"
    return f"{prefix}_{key}"


class Func:
    """Base of the reduction functions (smalldata ``DetObjectFunc``)."""

    name = "func"

    def __init__(self) -> None:
        self.children: list[Func] = []
        self.ctx = DetContext("")

    def add(self, child: Func) -> Func:
        """Attach a child (returns self, so chains read ``roi.add(ProjectionFunc(...))``)."""
        self.children.append(child)
        return self

    def setup(self, ctx: DetContext) -> None:
        self.ctx = ctx
        for c in self.children:
            c.setup(self.child_context(ctx))

    def child_context(self, ctx: DetContext) -> DetContext:
        return ctx

    def params(self) -> dict[str, Any]:
        """Public parameters for ``UserDataCfg``."""
        out = {}
        for k, v in vars(self).items():
            if k.startswith("_") or k in ("children", "ctx", "name"):
                continue
            if v is None or isinstance(v, int | float | str | bool | tuple | list | np.ndarray):
                out[k] = v
        return out

    def config(self) -> dict[str, Any]:
        """``{"<name>__<par>": value}`` for this function and its children."""
        out = {f"{self.name}__{k}": v for k, v in self.params().items() if v is not None}
        for c in self.children:
            out.update({join_key(self.name, k): v for k, v in c.config().items()})
        return out

    def process(self, data: Any) -> dict[str, Any]:
        raise NotImplementedError

    def run_children(self, data: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self.children:
            for k, v in c.process(data).items():
                out[join_key(c.name, k)] = v
        return out


def _threshold(a: np.ndarray, thres: Any) -> np.ndarray:
    if thres is None:
        return a
    a = np.array(a, dtype=np.float64)
    if np.ndim(thres) == 0:
        a[a < thres] = 0
    else:
        lo, hi = thres
        a[(a < lo) | (a > hi)] = 0
    return a


class ROIFunc(Func):
    """A region of interest: ``ROI`` = [lo, hi] (1-D), [[r0, r1], [c0, c1]] or with a tile
    range first [[t0, t1], [r0, r1], [c0, c1]]; bounds clipped. Results ``sum``, ``mean``,
    ``max``, ``com`` (over good pixels, via ``ami.ops.roi_stats``) and, with ``writeArea``,
    ``area``. ``thresADU`` zeroes values below it (or outside [lo, hi]). Children get the area."""

    def __init__(self, ROI: Any, name: str = "ROI", writeArea: bool = False,
                 calcPars: bool = True, thresADU: Any = None) -> None:
        super().__init__()
        self.ROI: list[Any] = ([[int(v) for v in b] for b in ROI] if np.ndim(ROI) == 2
                               else [int(v) for v in ROI])
        self.name = name
        self.writeArea = writeArea
        self.calcPars = calcPars
        self.thresADU = thresADU

    def _slices(self, ndim: int) -> tuple[slice, ...]:
        bounds = [self.ROI] if np.ndim(self.ROI) == 1 else self.ROI
        if len(bounds) != ndim:
            raise ValueError(f"ROI {self.ROI} has {len(bounds)} ranges for {ndim}-D data")
        return tuple(slice(max(0, lo), max(0, hi)) for lo, hi in bounds)

    def child_context(self, ctx: DetContext) -> DetContext:
        if not ctx.shape:
            return ctx
        sl = self._slices(len(ctx.shape))

        def crop(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.asarray(a)[sl]

        shape = tuple(len(range(*s.indices(n))) for s, n in zip(sl, ctx.shape, strict=True))
        return DetContext(ctx.name, shape, crop(ctx.rms), crop(ctx.mask), crop(ctx.x),
                          crop(ctx.y))

    def process(self, data: Any) -> dict[str, Any]:
        a = np.asarray(data)
        sl = self._slices(a.ndim)
        area = _threshold(a[sl], self.thresADU)
        mask = None if self.ctx.mask is None else np.asarray(self.ctx.mask)[sl]
        out: dict[str, Any] = {}
        if self.calcPars:
            flat = area.reshape(-1, area.shape[-1]) if area.ndim > 2 else area
            fm = None if mask is None else mask.reshape(flat.shape)
            st = roi_stats(flat, mask=fm)
            out.update(sum=st.sum, mean=st.mean, max=st.max)
            if area.ndim == 2:
                origin = (sl[0].start, sl[1].start)
                out["com"] = np.asarray(st.com) + np.asarray(origin)
        if self.writeArea:
            out["area"] = area
        if mask is not None:
            area = np.where(mask, area, 0)
        out.update(self.run_children(area))
        return out


class ProjectionFunc(Func):
    """Sum (or mean) along ``axis`` (``ami.ops.project``; NaN and masked pixels skipped) after
    zeroing values below ``thresADU``; ``singlePhoton`` counts pixels > 0 as 1. Result ``data``."""

    def __init__(self, axis: int = 0, mean: bool = False, thresADU: float | None = None,
                 singlePhoton: bool = False, name: str | None = None) -> None:
        super().__init__()
        self.axis = axis
        self.mean = mean
        self.thresADU = thresADU
        self.singlePhoton = singlePhoton
        self.name = name or f"pj_ax_{abs(axis)}"

    def process(self, data: Any) -> dict[str, Any]:
        a = _threshold(np.asarray(data), self.thresADU)
        if self.singlePhoton:
            a = (a > 0).astype(np.float64)
        return {"data": project(a, self.axis, mean=self.mean)}


class DropletFunc(Func):
    """Droplets (``_reduce.droplets``): ``threshold`` and ``thresholdLow`` in units of the
    pixel rms (``useRms``) or of the data; droplets below ``thresADU`` (data units) are dropped.
    Results ``nDroplets``, ``nDroplets_all`` and, if ``nData`` is not 0, the droplets' ``adu``,
    ``npix``, ``row``, ``col``, ``tile`` (``var/`` lists for ``nData=None``). Children
    (:class:`Droplet2Photons`) get the droplets."""

    def __init__(self, threshold: float = 5.0, thresholdLow: float | None = None,
                 thresADU: float = 0.0, useRms: bool = True, pixmax: float | None = None,
                 nData: int | None = 0, name: str = "droplet") -> None:
        super().__init__()
        self.threshold = threshold
        self.thresholdLow = threshold if thresholdLow is None else thresholdLow
        self.thresADU = thresADU
        self.useRms = useRms
        self.pixmax = pixmax
        self.nData = nData
        self.name = name

    def process(self, data: Any) -> dict[str, Any]:
        rms = self.ctx.rms if self.useRms else None
        if self.useRms and rms is None:
            raise ValueError(f"{self.ctx.name}: useRms needs pixel_rms constants")
        scale = 1.0 if rms is None else rms
        d = droplets(data, self.threshold * scale, self.thresholdLow * scale,
                     mask=self.ctx.mask, thres_adu=self.thresADU, pixmax=self.pixmax)
        out: dict[str, Any] = {"nDroplets": len(d), "nDroplets_all": d.n_all}
        if self.nData != 0:
            fields = {"adu": d.adu, "npix": d.npix, "row": d.row, "col": d.col, "tile": d.tile}
            if self.nData is None:
                out.update({f"var/{k}": v for k, v in fields.items()})
            else:
                for k, v in fields.items():
                    a = np.zeros(self.nData, v.dtype)
                    a[: min(v.size, self.nData)] = v[: self.nData]
                    out[k] = a
        out.update(self.run_children(d))
        return out


class Droplet2Photons(Func):
    """droplet2Photons: photons of each droplet by the greedy guess, ``aduspphot`` data units
    per photon. Results ``nPhotons``; children (:class:`SparsifyFunc`) get the photon list
    ``{"row", "col", "tile", "data"}``; ``get_photon_img`` adds the photon-count image."""

    def __init__(self, aduspphot: float, get_photon_img: bool = False, name: str = "photon"
                 ) -> None:
        super().__init__()
        self.aduspphot = aduspphot
        self.get_photon_img = get_photon_img
        self.name = name

    def process(self, data: Any) -> dict[str, Any]:
        ph = droplet_photons(data, self.aduspphot)
        out: dict[str, Any] = {"nPhotons": len(ph)}
        if self.get_photon_img:
            shape = self.ctx.shape or data.image.shape
            img = np.zeros(data.image.shape, np.int32)
            r = np.clip(np.rint(ph.row).astype(np.int64), 0, img.shape[1] - 1)
            c = np.clip(np.rint(ph.col).astype(np.int64), 0, img.shape[2] - 1)
            np.add.at(img, (ph.tile, r, c), 1)
            out["img"] = img.reshape(shape)
        sparse = {"row": ph.row, "col": ph.col, "tile": ph.tile, "data": np.ones(len(ph))}
        out.update(self.run_children(sparse))
        return out


class SparsifyFunc(Func):
    """A sparse list from a photon list (or from a dense frame: its non-zero pixels).
    ``nData=None``: variable length (``var_`` arrays with ``_len``); an int: fixed length."""

    def __init__(self, nData: int | None = None, name: str = "sparse") -> None:
        super().__init__()
        self.nData = nData
        self.name = name

    def process(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            sp = sparsify(data["row"], data["col"], data.get("tile"), data.get("data"),
                          self.nData)
        else:
            a = np.asarray(data)
            a3 = a if a.ndim == 3 else a[None]
            t, r, c = np.nonzero(a3)
            sp = sparsify(r, c, t, a3[t, r, c], self.nData)
        if self.nData is None:
            return {f"var/{k}": v for k, v in sp.items()}
        return sp


class PhotonFunc(Func):
    """psana ``photons`` (Chuck's algorithm): photon count image and ``nPhotons``."""

    def __init__(self, ADU_per_photon: float, thr_fraction: float = 0.9,
                 writeImage: bool = False, name: str = "photons") -> None:
        super().__init__()
        self.ADU_per_photon = ADU_per_photon
        self.thr_fraction = thr_fraction
        self.writeImage = writeImage
        self.name = name

    def process(self, data: Any) -> dict[str, Any]:
        a = np.asarray(data, dtype=np.float64)
        if self.ctx.mask is not None:
            a = np.where(self.ctx.mask, a, 0.0)
        counts = photons(a, self.ADU_per_photon, self.thr_fraction)
        out: dict[str, Any] = {"nPhotons": int(counts.sum())}
        if self.writeImage:
            out["img"] = counts
        out.update(self.run_children(counts))
        return out


class AzimuthalFunc(Func):
    """Azimuthal average (``ami.ops.AzimuthalIntegrator``) with smalldata's parameters:
    ``center`` (x, y) um in the geometry's frame, ``dis_to_sam`` mm, ``eBeam`` keV, ``qbin``
    (1/A) or ``nbins``; pixel positions from the detector geometry. Result ``azav`` (mean
    corrected intensity per bin, NaN for empty bins); ``q`` goes to UserDataCfg."""

    def __init__(self, center: tuple[float, float], dis_to_sam: float, eBeam: float,
                 qbin: float | None = None, nbins: int = 100, unit: str = "q",
                 qrange: tuple[float, float] | None = None, polarization: float | None = None,
                 solid_angle: bool = True, name: str = "azav") -> None:
        super().__init__()
        self.center = tuple(center)
        self.dis_to_sam = dis_to_sam
        self.eBeam = eBeam
        self.qbin = qbin
        self.nbins = nbins
        self.unit = unit
        self.qrange = qrange
        self.polarization = polarization
        self.solid_angle = solid_angle
        self.name = name
        self._ai: AzimuthalIntegrator | None = None
        self.q: np.ndarray | None = None

    def setup(self, ctx: DetContext) -> None:
        super().setup(ctx)
        if ctx.x is None or ctx.y is None:
            raise ValueError(f"{ctx.name}: azimuthal integration needs pixel coordinates")
        x, y = np.asarray(ctx.x) / 1000.0, np.asarray(ctx.y) / 1000.0
        nbins, rng = self.nbins, self.qrange
        kw: dict[str, Any] = dict(distance=self.dis_to_sam, photon_energy=self.eBeam,
                                  center=(self.center[0] / 1000.0, self.center[1] / 1000.0),
                                  unit=self.unit, mask=ctx.mask,
                                  polarization=self.polarization, solid_angle=self.solid_angle)
        if self.qbin is not None:
            probe = AzimuthalIntegrator(x, y, nbins=1, **kw)
            lo, hi = probe.edges[0], probe.edges[-1]
            if rng is not None:
                lo, hi = rng
            nbins = max(1, int(np.ceil((hi - lo) / self.qbin)))
            rng = (lo, lo + nbins * self.qbin)
        self._ai = AzimuthalIntegrator(x, y, nbins=nbins, range=rng, **kw)
        self.q = self._ai.centers

    def process(self, data: Any) -> dict[str, Any]:
        assert self._ai is not None, "setup() first"
        return {"azav": self._ai(np.asarray(data, dtype=np.float64)).intensity}


class WfIntegration(Func):
    """Waveform integration (smalldata ``WfIntegration``): per channel, subtract the median
    over ``bkg_roi`` [start, stop), flip if ``negative_signal``, sum over ``sig_roi``.
    Result ``wfintegrate`` (one value per channel)."""

    def __init__(self, sig_roi: tuple[int, int], bkg_roi: tuple[int, int] | None = None,
                 negative_signal: bool = False, name: str = "wfintegrate") -> None:
        super().__init__()
        self.sig_roi = tuple(sig_roi)
        self.bkg_roi = None if bkg_roi is None else tuple(bkg_roi)
        self.negative_signal = negative_signal
        self.name = name

    def process(self, data: Any) -> dict[str, Any]:
        wf = np.atleast_2d(np.asarray(data, dtype=np.float64))
        if self.bkg_roi is not None:
            wf = wf - np.median(wf[:, slice(*self.bkg_roi)], axis=1, keepdims=True)
        if self.negative_signal:
            wf = -wf
        return {"wfintegrate": wf[:, slice(*self.sig_roi)].sum(axis=1)}


class CFDHits(Func):
    """Hit times of each channel by the constant-fraction discriminator
    (``ami.ops.ConstantFraction``): ``nHits`` per channel and ``hitTimes`` (channels x
    ``nmax_hits``, NaN-padded), in samples."""

    def __init__(self, delay: int = 5, fraction: float = 0.5, threshold: float = 50.0,
                 offset: float = 0.0, walk: float = 0.0, nmax_hits: int = 10,
                 name: str = "cfd") -> None:
        super().__init__()
        self.delay = delay
        self.fraction = fraction
        self.threshold = threshold
        self.offset = offset
        self.walk = walk
        self.nmax_hits = nmax_hits
        self.name = name
        self._cfd = ConstantFraction(delay=delay, fraction=fraction, walk=walk,
                                     threshold=threshold, offset=offset, npkmax=nmax_hits)

    def process(self, data: Any) -> dict[str, Any]:
        wf = np.atleast_2d(np.asarray(data, dtype=np.float64))
        times = np.full((wf.shape[0], self.nmax_hits), np.nan)
        n = np.zeros(wf.shape[0], np.int64)
        for ch in range(wf.shape[0]):
            t = self._cfd(wf[ch])
            n[ch] = t.size
            times[ch, : t.size] = t
        return {"nHits": n, "hitTimes": times}


@dataclass
class DetPlan:
    """One detector's functions and run sums (``get_sum_algos`` tokens)."""

    name: str
    funcs: list[Func] = field(default_factory=list)
    sums: list[str] = field(default_factory=list)
    data: str = "calib"  #: calib, raw or image (area); raw for others
