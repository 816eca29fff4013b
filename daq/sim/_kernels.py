"""The area-detector kernels (numba), each with the NumPy reference it must agree with exactly.

A raw pixel is ``round((ped + cm) + rms * z + gain * signal)``, clipped to the ADC range, with
the gain-stage bits on top for gain-switching detectors. ``z`` comes from the shared noise bank
at ``start + flat pixel index``; ``cm`` is the common-mode offset of the pixel's (row, bank
column). Both implementations compute in float64 in the same order, so they agree bit for bit.

- ``compose_dense``: every pixel without signal (gain stage 0), into a reused output buffer.
- ``apply_signal``: recompute the pixels that carry signal (keV, duplicates summed), choosing
  the gain stage from the summed signal.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "NOISE_SCALE",
    "apply_signal",
    "apply_signal_reference",
    "compose_dense",
    "compose_dense_reference",
]

#: the noise bank stores standard normals as int16 in units of 1/2048
NOISE_SCALE = 1.0 / 2048.0


@njit(cache=True, nogil=True, boundscheck=False)
def compose_dense(out, ped, rms, bank, start, cmrow, bank_w, lo, hi, tmpl, amp):
    """Raw values of every pixel in stage 0, into flat ``out`` (``ped``, ``rms`` float32 flat).

    Flat pixel ``(r * nbanks + b) * bank_w + k`` is pixel k of bank column b of row r, with
    common mode ``cmrow[r, b]`` (float64, shape (rows, nbanks)). ``bank`` (int16) has at least
    ``start + out.size`` values; ``lo``/``hi`` is the ADC range. ``amp * tmpl`` (float32 ADU,
    empty for none) is a dense signal added to every pixel.
    """
    # Slices keep every index provably non-negative, which lets LLVM vectorise the inner loops.
    nrows, nbanks = cmrow.shape
    noise = bank[start : start + out.size]
    flo = np.float64(lo)
    fhi = np.float64(hi)
    dense = tmpl.size > 0
    for r in range(nrows):
        for b in range(nbanks):
            cm = cmrow[r, b]
            i0 = (r * nbanks + b) * bank_w
            o = out[i0 : i0 + bank_w]
            p = ped[i0 : i0 + bank_w]
            s = rms[i0 : i0 + bank_w]
            z = noise[i0 : i0 + bank_w]
            if dense:
                t = tmpl[i0 : i0 + bank_w]
                for k in range(bank_w):
                    v = (np.float64(p[k]) + cm) + np.float64(s[k]) * (
                        np.float64(z[k]) * NOISE_SCALE
                    )
                    v = v + amp * np.float64(t[k])
                    o[k] = min(max(np.floor(v + 0.5), flo), fhi)
            else:
                for k in range(bank_w):
                    v = (np.float64(p[k]) + cm) + np.float64(s[k]) * (
                        np.float64(z[k]) * NOISE_SCALE
                    )
                    o[k] = min(max(np.floor(v + 0.5), flo), fhi)
    return out


def compose_dense_reference(
    out: np.ndarray,
    ped: np.ndarray,
    rms: np.ndarray,
    bank: np.ndarray,
    start: int,
    cmrow: np.ndarray,
    bank_w: int,
    lo: int,
    hi: int,
    tmpl: np.ndarray,
    amp: float,
) -> np.ndarray:
    """NumPy twin of ``compose_dense``."""
    z = bank[start : start + out.size].astype(np.float64) * NOISE_SCALE
    cm = np.repeat(cmrow.ravel(), bank_w)
    v = (ped.astype(np.float64) + cm) + rms.astype(np.float64) * z
    if tmpl.size:
        v = v + amp * tmpl.astype(np.float64)
    out[...] = np.clip(np.floor(v + 0.5), lo, hi).astype(out.dtype)
    return out


@njit(cache=True, nogil=True, boundscheck=False)
def apply_signal(
    out,
    idx,
    kev,
    scratch,
    ped,
    rms,
    gain,
    bank,
    start,
    cmrow,
    ncols,
    bank_w,
    thresholds,
    gain_bits,
    bit_shift,
    lo,
    hi,
    tmpl,
    amp,
):
    """Recompute the signal pixels of flat ``out``.

    ``idx`` (int64) and ``kev`` (float64) list signal deposits, duplicates allowed; ``scratch``
    is a float64 array of out.size zeros (left zero on return). ``ped``, ``rms``, ``gain`` are
    (stages, npix) float32; stage g is used when ``thresholds[g - 1] <= signal <
    thresholds[g]``, and its ``gain_bits[g]`` go to bit ``bit_shift`` and up. ``amp * tmpl``
    is ``compose_dense``'s dense signal (ADU; only with a single stage).
    """
    n = idx.size
    nthr = thresholds.size
    dense = tmpl.size > 0
    inv_ncols = 1.0 / ncols
    inv_bank_w = 1.0 / bank_w
    flo = np.float64(lo)
    fhi = np.float64(hi)
    for j in range(n):
        scratch[idx[j]] += kev[j]
    for j in range(n):
        i = idx[j]
        s = scratch[i]
        if s == 0.0:
            continue
        scratch[i] = 0.0
        g = 0
        while g < nthr and s >= thresholds[g]:
            g += 1
        # i // ncols and c // bank_w without integer division (slow), corrected to be exact
        r = np.int64(np.float64(i) * inv_ncols)
        c = i - r * ncols
        if c < 0:
            r -= 1
            c += ncols
        elif c >= ncols:
            r += 1
            c -= ncols
        b = np.int64(np.float64(c) * inv_bank_w)
        if b * bank_w > c:
            b -= 1
        elif (b + 1) * bank_w <= c:
            b += 1
        cm = cmrow[r, b]
        z = np.float64(bank[start + i]) * NOISE_SCALE
        v = (np.float64(ped[g, i]) + cm) + np.float64(rms[g, i]) * z
        if dense:
            v = v + amp * np.float64(tmpl[i])
        v = v + np.float64(gain[g, i]) * s
        v = min(max(np.floor(v + 0.5), flo), fhi)
        out[i] = np.int64(v) | (np.int64(gain_bits[g]) << bit_shift)
    return out


def apply_signal_reference(
    out: np.ndarray,
    idx: np.ndarray,
    kev: np.ndarray,
    scratch: np.ndarray,
    ped: np.ndarray,
    rms: np.ndarray,
    gain: np.ndarray,
    bank: np.ndarray,
    start: int,
    cmrow: np.ndarray,
    ncols: int,
    bank_w: int,
    thresholds: np.ndarray,
    gain_bits: np.ndarray,
    bit_shift: int,
    lo: int,
    hi: int,
    tmpl: np.ndarray,
    amp: float,
) -> np.ndarray:
    """NumPy twin of ``apply_signal`` (``scratch`` is unused, kept for the same signature)."""
    if idx.size == 0:
        return out
    pix, inverse = np.unique(idx, return_inverse=True)
    s = np.bincount(inverse, weights=kev)
    keep = s != 0.0
    pix, s = pix[keep], s[keep]
    g = np.searchsorted(thresholds, s, side="right")
    cm = cmrow[pix // ncols, (pix % ncols) // bank_w]
    z = bank[start + pix].astype(np.float64) * NOISE_SCALE
    v = (ped[g, pix].astype(np.float64) + cm) + rms[g, pix].astype(np.float64) * z
    if tmpl.size:
        v = v + amp * tmpl[pix].astype(np.float64)
    v = v + gain[g, pix].astype(np.float64) * s
    v = np.clip(np.floor(v + 0.5), lo, hi).astype(np.int64)
    out[pix] = (v | (gain_bits[g].astype(np.int64) << bit_shift)).astype(out.dtype)
    return out
