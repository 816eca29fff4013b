"""Signal models of the area detectors: sparse lists of (flat pixel, keV) per event.

Positions live in a simple layout image: segments tiled in a grid, ``tile_cols`` per row, with
no gaps or rotations (the real geometry belongs to the calibration package). Every model scales
with the shot's relative pulse energy and is absent on x-ray-off shots:

- single photons: Poisson(photon_rate x pixels) photons at uniform random pixels;
- Bragg spots (a hit at ``hit_rate``): Poisson(spots_per_hit) Gaussian spots of exponential
  total intensity, Poisson photon counts per pixel;
- powder rings: Gaussian rings around the beam centre, a smooth mean intensity (no shot noise);
- a beam blob (cameras): a Gaussian spot with pointing jitter, smooth mean intensity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["EventSignal", "Layout", "SignalModel", "render_signal", "ring_template"]

_BLOB_CUTOFF = 0.02  # photons per pixel below which the blob's tail is left out
_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0, dtype=np.float64)


@dataclass(frozen=True)
class Layout:
    """Segments of ``rows x cols`` pixels tiled ``tile_cols`` per row in a layout image."""

    nseg: int
    rows: int
    cols: int
    tile_cols: int = 1

    @property
    def image_shape(self) -> tuple[int, int]:
        tile_rows = -(-self.nseg // self.tile_cols)
        return tile_rows * self.rows, self.tile_cols * self.cols

    @property
    def npix(self) -> int:
        return self.nseg * self.rows * self.cols

    def to_flat(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat pixel indices of integer layout coordinates, and which of them are on a pixel."""
        tr, yr = np.divmod(y, self.rows)
        tc, xc = np.divmod(x, self.cols)
        seg = tr * self.tile_cols + tc
        valid = (y >= 0) & (x >= 0) & (tc < self.tile_cols) & (seg < self.nseg)
        return (seg * self.rows + yr) * self.cols + xc, valid

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Layout (row, col) of every pixel, shape (nseg, rows, cols) each, float32."""
        seg = np.arange(self.nseg)
        y0 = (seg // self.tile_cols) * self.rows
        x0 = (seg % self.tile_cols) * self.cols
        y = y0[:, None, None] + np.arange(self.rows, dtype=np.float32)[None, :, None]
        x = x0[:, None, None] + np.arange(self.cols, dtype=np.float32)[None, None, :]
        shape = (self.nseg, self.rows, self.cols)
        return np.broadcast_to(y, shape).astype(np.float32), np.broadcast_to(x, shape).astype(
            np.float32
        )


@dataclass(frozen=True)
class SignalModel:
    """What signal an area detector sees (photons are at the mean pulse energy)."""

    photon_energy_kev: float
    photon_rate: float = 0.0
    hit_rate: float = 0.0
    spots_per_hit: float = 0.0
    spot_photons: float = 0.0
    spot_sigma: float = 0.8
    ring_radii: tuple[float, ...] = ()
    ring_width: float = 3.0
    ring_photons: float = 0.0
    blob_photons: float = 0.0
    blob_sigma: float = 30.0
    blob_jitter: float = 5.0
    beam_center: tuple[float, float] = (0.0, 0.0)


@dataclass
class EventSignal:
    """The noiseless signal of one event (``idx``/``kev`` may repeat a pixel: sum them)."""

    relative_energy: float
    hit: bool = False
    idx: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    kev: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    photon_index: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    spot_pos: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    spot_photons: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    blob_center: tuple[float, float] | None = None


def ring_template(layout: Layout, model: SignalModel) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixels of the powder rings and their mean photons (at mean pulse energy)."""
    if not model.ring_radii or model.ring_photons <= 0:
        return _EMPTY_I, _EMPTY_F
    y, x = layout.coords()
    cy, cx = model.beam_center
    r = np.hypot(y.ravel() + 0.5 - cy, x.ravel() + 0.5 - cx)
    t = np.zeros_like(r)
    for radius in model.ring_radii:
        t += np.exp(-0.5 * ((r - radius) / model.ring_width) ** 2)
    keep = np.flatnonzero(t > 1e-3)
    return keep.astype(np.int64), t[keep].astype(np.float64) * model.ring_photons


def _spots(
    rng: np.random.Generator, layout: Layout, model: SignalModel, rel: float, sig: EventSignal
) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.poisson(model.spots_per_hit))
    seg = rng.integers(0, layout.nseg, n)
    r = rng.uniform(0, layout.rows, n)
    c = rng.uniform(0, layout.cols, n)
    total = rng.exponential(model.spot_photons, n) * rel
    sig.spot_pos = np.stack([seg, r, c], axis=1).astype(np.float64)
    sig.spot_photons = total
    if n == 0:
        return _EMPTY_I, _EMPTY_F
    half = int(np.ceil(3 * model.spot_sigma))
    off = np.arange(-half, half + 1)
    rr = np.floor(r).astype(np.int64)[:, None, None] + off[None, :, None]
    cc = np.floor(c).astype(np.int64)[:, None, None] + off[None, None, :]
    d2 = (rr + 0.5 - r[:, None, None]) ** 2 + (cc + 0.5 - c[:, None, None]) ** 2
    w = np.exp(-0.5 * d2 / model.spot_sigma**2)
    w /= w.sum(axis=(1, 2), keepdims=True)
    counts = rng.poisson(total[:, None, None] * w)
    rr, cc = np.broadcast_arrays(rr, cc)
    ok = (rr >= 0) & (rr < layout.rows) & (cc >= 0) & (cc < layout.cols) & (counts > 0)
    flat = (seg[:, None, None] * layout.rows + rr) * layout.cols + cc
    return flat[ok], counts[ok].astype(np.float64) * model.photon_energy_kev


def _blob(
    rng: np.random.Generator, layout: Layout, model: SignalModel, rel: float, sig: EventSignal
) -> tuple[np.ndarray, np.ndarray]:
    cy = model.beam_center[0] + model.blob_jitter * rng.standard_normal()
    cx = model.beam_center[1] + model.blob_jitter * rng.standard_normal()
    sig.blob_center = (float(cy), float(cx))
    half = int(np.ceil(4 * model.blob_sigma))
    ys = np.arange(int(cy) - half, int(cy) + half + 1)
    xs = np.arange(int(cx) - half, int(cx) + half + 1)
    norm = model.blob_photons * rel / (2 * np.pi * model.blob_sigma**2)
    wy = np.exp(-0.5 * ((ys + 0.5 - cy) / model.blob_sigma) ** 2) * norm
    wx = np.exp(-0.5 * ((xs + 0.5 - cx) / model.blob_sigma) ** 2)
    flat, ok = layout.to_flat(ys[:, None], xs[None, :])
    vals = wy[:, None] * wx[None, :]
    ok &= vals > _BLOB_CUTOFF
    return flat[ok], vals[ok] * model.photon_energy_kev


def render_signal(
    rng: np.random.Generator,
    layout: Layout,
    model: SignalModel,
    rel: float,
    ring: tuple[np.ndarray, np.ndarray],
) -> EventSignal:
    """Draw one event's signal from ``rng`` (fixed draw order) at relative pulse energy ``rel``."""
    sig = EventSignal(rel)
    if rel <= 0.0:
        return sig
    e = model.photon_energy_kev
    parts_i: list[np.ndarray] = []
    parts_k: list[np.ndarray] = []
    if ring[0].size:
        parts_i.append(ring[0])
        parts_k.append(ring[1] * (rel * e))
    if model.photon_rate > 0:
        k = int(rng.poisson(model.photon_rate * layout.npix * rel))
        sig.photon_index = rng.integers(0, layout.npix, k, dtype=np.int64)
        parts_i.append(sig.photon_index)
        parts_k.append(np.full(k, e))
    if model.hit_rate > 0 and rng.random() < model.hit_rate:
        sig.hit = True
        i, v = _spots(rng, layout, model, rel, sig)
        parts_i.append(i)
        parts_k.append(v)
    if model.blob_photons > 0:
        i, v = _blob(rng, layout, model, rel, sig)
        parts_i.append(i)
        parts_k.append(v)
    if parts_i:
        sig.idx = np.concatenate(parts_i).astype(np.int64, copy=False)
        sig.kev = np.concatenate(parts_k).astype(np.float64, copy=False)
    return sig
