"""Photon reductions of area-detector frames: droplets, droplet2Photons, photons, sparsify.

Pure functions on numpy arrays (smalldata_tools' ``dropletFunc``, ``droplet2Photons``,
``photonFunc`` and ``sparsifyFunc``). Frames are 2-D or tiled 3-D (tile, row, col); droplets
never cross tiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._kernels import droplet_label_kernel, droplet_stats_kernel, greedy_photons_kernel


def _tiled(img: npt.ArrayLike) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"expected a 2-D or tiled 3-D frame, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float64)


def _per_pixel(value: npt.ArrayLike, shape: tuple[int, ...], name: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.size == 1:
        return a.reshape(1)
    if a.size != int(np.prod(shape)):
        raise ValueError(f"{name} has {a.size} values for a frame of {int(np.prod(shape))}")
    return np.ascontiguousarray(a).reshape(-1)


@dataclass(frozen=True)
class Droplets:
    """Droplets kept (ADU sum >= thresADU), in label order: ``adu``, ``npix``, intensity-
    weighted ``row``/``col`` in the tile, ``tile``; ``n_all`` counts them before the ADU cut.
    ``labels`` (tiles, rows, cols; 0 = none) and ``image`` (the frame, tiled, float64) feed
    :func:`droplet_photons`; label k is droplet ``index[k - 1]`` or dropped (-1)."""

    adu: np.ndarray
    npix: np.ndarray
    row: np.ndarray
    col: np.ndarray
    tile: np.ndarray
    n_all: int
    labels: np.ndarray
    image: np.ndarray
    kept: np.ndarray  #: label k kept? (bool, index k - 1)

    def __len__(self) -> int:
        return int(self.adu.size)


def droplets(frame: npt.ArrayLike, threshold: npt.ArrayLike, threshold_low: npt.ArrayLike | None
             = None, *, mask: npt.ArrayLike | None = None, thres_adu: float = -np.inf,
             pixmax: float | None = None) -> Droplets:
    """Droplets of a frame (smalldata ``dropletFunc``).

    Pixels >= ``threshold`` (a value or one per pixel, e.g. ``5 * rms``) seed droplets; with
    ``threshold_low`` < threshold, good pixels >= it that touch a seed join it once (one-pixel
    growth; droplets that then touch merge). Members are 4-connected within a tile. ``mask``
    True = good; pixels above ``pixmax`` are ignored. Droplets whose ADU sum is below
    ``thres_adu`` are dropped (``n_all`` counts them).
    """
    img = _tiled(frame)
    thr = _per_pixel(threshold, img.shape, "threshold")
    low = thr if threshold_low is None else _per_pixel(threshold_low, img.shape, "threshold_low")
    good = (np.ones(img.shape, np.bool_) if mask is None
            else np.asarray(mask, dtype=bool).reshape(img.shape))
    good = good & np.isfinite(img)
    if pixmax is not None:
        good = good & (img <= pixmax)
    labels = np.empty(img.shape, np.int32)
    parent = np.empty(img.size, np.int64)
    n = int(droplet_label_kernel(img, thr, low, good, labels, parent))
    adu = np.empty(n)
    npix = np.empty(n, np.int64)
    row = np.empty(n)
    col = np.empty(n)
    tile = np.zeros(n, np.int64)
    droplet_stats_kernel(img, labels, n, adu, npix, row, col, tile)
    kept = adu >= thres_adu
    return Droplets(adu[kept], npix[kept], row[kept], col[kept], tile[kept], n, labels, img,
                    kept)


def photon_counts(adu: npt.ArrayLike, aduspphot: float) -> np.ndarray:
    """Photons per droplet: 0 below 0.5 photon, else digitize on photon boundaries
    (``arange(n) * aduspphot - aduspphot / 2``), i.e. round(adu / aduspphot)."""
    a = np.asarray(adu, dtype=np.float64) / aduspphot
    return np.where(a < 0.5, 0, np.floor(a + 0.5)).astype(np.int64)


@dataclass(frozen=True)
class Photons:
    """Photon positions (tile, row, col: floats, pixel centres at whole numbers) and the
    number of photons of each droplet."""

    tile: np.ndarray
    row: np.ndarray
    col: np.ndarray
    per_droplet: np.ndarray

    def __len__(self) -> int:
        return int(self.row.size)


def droplet_photons(drops: Droplets, aduspphot: float) -> Photons:
    """droplet2Photons: photon positions of every kept droplet by the greedy guess."""
    if not aduspphot > 0:
        raise ValueError(f"aduspphot ({aduspphot}) must be positive")
    n_all = drops.kept.size
    nph_all = np.zeros(n_all, np.int64)
    adu_all = np.zeros(n_all)
    tile_all = np.zeros(n_all, np.int64)
    row_all = np.zeros(n_all)
    col_all = np.zeros(n_all)
    nph_all[drops.kept] = photon_counts(drops.adu, aduspphot)
    adu_all[drops.kept] = drops.adu
    tile_all[drops.kept] = drops.tile
    row_all[drops.kept] = drops.row
    col_all[drops.kept] = drops.col
    total = int(nph_all.sum())
    out_t = np.empty(total, np.int64)
    out_r = np.empty(total)
    out_c = np.empty(total)
    m = greedy_photons_kernel(drops.image, drops.labels, n_all, adu_all, nph_all, tile_all,
                              row_all, col_all, float(aduspphot), out_t, out_r, out_c)
    return Photons(out_t[:m], out_r[:m], out_c[:m], nph_all[drops.kept])


def photons(frame: npt.ArrayLike, adu_per_photon: float, thr_fraction: float = 0.9
            ) -> np.ndarray:
    """psana ``photons`` ("Chuck's" algorithm): photons per pixel (int32, the frame's shape).

    The whole part of value/adu_per_photon counts as photons. A fractional remainder that is a
    local maximum (over its 4 neighbours) and >= 0.5 is merged with its largest neighbouring
    remainder; if the two reach ``thr_fraction`` the pixel gets one more photon (and the
    neighbour's remainder is used up).
    """
    if not adu_per_photon > 0:
        raise ValueError(f"adu_per_photon ({adu_per_photon}) must be positive")
    a = np.asarray(frame, dtype=np.float64)
    t = _tiled(a) / adu_per_photon
    t = np.where(np.isfinite(t), np.maximum(t, 0.0), 0.0)
    whole = np.floor(t)
    rem = t - whole
    pad = np.pad(rem, ((0, 0), (1, 1), (1, 1)))
    nb = np.stack([pad[:, :-2, 1:-1], pad[:, 2:, 1:-1], pad[:, 1:-1, :-2], pad[:, 1:-1, 2:]])
    peak = (rem >= 0.5) & (rem >= nb.max(axis=0))
    best = nb.max(axis=0)
    extra = peak & (rem + best >= thr_fraction)
    counts = (whole + extra).astype(np.int32)
    return counts.reshape(a.shape)


def sparsify(row: npt.ArrayLike, col: npt.ArrayLike, tile: npt.ArrayLike | None = None,
             data: npt.ArrayLike | None = None, n_data: int | None = None
             ) -> dict[str, np.ndarray]:
    """A sparse list ``{"row", "col", "tile", "data"}`` (smalldata ``sparsifyFunc``).

    ``n_data=None``: variable length (store under a ``var_`` name); an int: truncated or
    zero-padded to that length."""
    r = np.asarray(row, dtype=np.float64).ravel()
    out = {"row": r, "col": np.asarray(col, dtype=np.float64).ravel(),
           "tile": (np.zeros(r.size, np.int64) if tile is None
                    else np.asarray(tile, dtype=np.int64).ravel()),
           "data": (np.ones(r.size) if data is None
                    else np.asarray(data, dtype=np.float64).ravel())}
    if n_data is None:
        return out
    fixed = {}
    for k, v in out.items():
        a = np.zeros(n_data, v.dtype)
        a[: min(n_data, v.size)] = v[:n_data]
        fixed[k] = a
    return fixed


def unsparsify(sparse: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """The dense frame of a sparse list (values of one pixel add up); rows/cols rounded."""
    img = np.zeros(shape)
    tiled = img if img.ndim == 3 else img[None]
    r = np.rint(sparse["row"]).astype(np.int64)
    c = np.rint(sparse["col"]).astype(np.int64)
    t = np.asarray(sparse["tile"], np.int64)
    ok = (r >= 0) & (r < tiled.shape[1]) & (c >= 0) & (c < tiled.shape[2])
    np.add.at(tiled, (t[ok], r[ok], c[ok]), np.asarray(sparse["data"])[ok])
    return img
