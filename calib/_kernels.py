"""numba kernels of the calibration package, each with its NumPy reference beside it.

The kernels work on flat or (segment, row, column) arrays allocated by the caller (``out=``) and
are compiled once and cached on disk (``cache=True``). The ``*_ref`` functions are plain NumPy
versions of the same computation: slower, obviously right, and what the tests compare against.

Common-mode arguments (``mode``, ``cormax``, ``npixmin``, ``thr``, ``use_mean``) follow psana's
``cmpars=(alg, mode, cormax, npixmin)``: ``mode & 4`` per bank, ``& 1`` per row within a bank,
``& 2`` per column within a bank, applied in that order; only eligible pixels (``cmok``, at or
below the photon threshold ``thr``, and gain G0 for gain-switching detectors) enter the
statistic; the correction is skipped with ``npixmin`` or fewer pixels or when ``|cm| >= cormax``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._select import _median

# numba's on-disk cache is keyed on the text of this file alone, not on the modules it inlines:
# bump this after editing calib/_select.py so that cached kernels are compiled again.
SELECT_REVISION = 2

MODE_ROWS, MODE_COLS, MODE_BANKS = 1, 2, 4
JUNGFRAU_DATA_MASK = 0x3FFF


# -- common mode and calibration ------------------------------------------------------------------
@njit(cache=True, inline="always")
def _gain_index(v):
    """Jungfrau gain from the top two bits: 00 -> 0, 01 -> 1, 11 -> 2, 10 -> -1 (invalid)."""
    b = (np.int64(v) >> 14) & 3
    return b if b < 2 else (2 if b == 3 else -1)


# Hot loops index flat arrays with uint64: numba adds a negative-index wrap-around test to every
# signed index it cannot prove non-negative, which stops LLVM from vectorising (4x slower here).
@njit(cache=True, inline="always")
def _g0(raw, i, switching):
    return (not switching) or ((np.int64(raw[i]) >> 14) == 0)


@njit(cache=True, inline="always")
def _gather(out, raw, cmok, start, nrow, rstride, ncol, thr, switching, buf):
    """Group values into buf (+inf where not eligible); returns (count, eligible, ~mean).

    The mean only steers the median search: it is summed as integers of value x 16, which
    vectorises where a float sum would not (no fastmath here: +inf marks the gaps)."""
    nok = np.int32(0)
    s16 = np.int64(0)
    k = np.uint64(0)
    for a in range(nrow):
        base = start + np.uint64(a) * rstride
        if switching:  # two loops: a loop-invariant test inside would stop vectorisation
            for j in range(ncol):
                i = base + j
                v = out[i]
                ok = (cmok[i] != 0) & (v <= thr) & ((np.int64(raw[i]) >> 14) == 0)
                buf[k + j] = v if ok else np.float32(np.inf)
                nok = np.int32(nok + np.int32(ok))
                s16 += np.int64(np.int32(v * np.float32(16.0)) if ok else np.int32(0))
        else:
            for j in range(ncol):
                i = base + j
                v = out[i]
                ok = (cmok[i] != 0) & (v <= thr)
                buf[k + j] = v if ok else np.float32(np.inf)
                nok = np.int32(nok + np.int32(ok))
                s16 += np.int64(np.int32(v * np.float32(16.0)) if ok else np.int32(0))
        k += ncol
    return np.int64(k), np.int64(nok), (s16 / 16.0) / (nok if nok > 0 else 1)


@njit(cache=True, inline="always")
def _group_cm(out, raw, cmok, start, nrow, rstride, ncol, cormax, npixmin, thr, use_mean,
              switching, buf, tmp, state):
    """Common mode of one group, or 0 when it is skipped (too few pixels, or |cm| >= cormax)."""
    n, nok, mu = _gather(out, raw, cmok, start, nrow, rstride, ncol, thr, switching, buf)
    if nok <= npixmin:
        return np.float32(0.0)
    if use_mean:
        acc = 0.0
        for i in range(n):
            if buf[i] < np.inf:
                acc += buf[i]
        cm = np.float32(acc / nok)
    else:
        cm = _median(buf, n, nok, mu, tmp, state)
    return cm if abs(cm) < cormax else np.float32(0.0)


@njit(cache=True, inline="always")
def _shift(out, raw, start, nrow, rstride, ncol, cm, switching):
    if cm == 0:
        return
    for a in range(nrow):
        base = start + np.uint64(a) * rstride
        for j in range(ncol):
            if _g0(raw, base + j, switching):
                out[base + j] -= cm


@njit(cache=True, inline="always")
def _finish(out, raw, gm, start, nrow, rstride, ncol, cm, switching, npix):
    """out = (out - cm) * gm[gain] over a group; the invalid Jungfrau gain gives 0."""
    for a in range(nrow):
        base = start + np.uint64(a) * rstride
        if switching:
            for j in range(ncol):
                i = base + j
                g = _gain_index(raw[i])
                if g < 0:
                    out[i] = 0.0
                elif g == 0:
                    out[i] = (out[i] - cm) * gm[i]
                else:
                    out[i] *= gm[np.uint64(g) * npix + i]
        else:
            for j in range(ncol):
                out[base + j] = (out[base + j] - cm) * gm[base + j]


@njit(cache=True)
def common_mode_bank(out, bits, cmok, gm, start, br, bc, C, mode, cormax, npixmin, thr,
                     use_mean, switching, buf, tmp, state, finish, npix):
    """Banks -> rows -> columns on one bank; with ``finish`` also multiply by gm.

    Compiled once (the large part of the calibration), called per bank by :func:`calibrate`
    and, for common mode alone, from Python. ``bits`` (uint16) holds the Jungfrau gain bits when
    ``switching`` and is a dummy otherwise. Index arguments (start, br, bc, C, npix) are uint64;
    flags are plain bools (literal constants would compile another copy).
    """
    one = np.uint64(1)
    rows_last = finish and (mode & MODE_ROWS) != 0 and (mode & MODE_COLS) == 0
    for stage in range(3):
        if stage == 0:  # the whole bank
            bit, groups, nrow, ncol, step = MODE_BANKS, one, br, bc, np.uint64(0)
        elif stage == 1:  # each row of the bank
            bit, groups, nrow, ncol, step = MODE_ROWS, br, one, bc, C
        else:  # each column of the bank
            bit, groups, nrow, ncol, step = MODE_COLS, bc, br, one, one
        if not mode & bit:
            continue
        for g in range(groups):
            st = start + g * step
            cm = _group_cm(out, bits, cmok, st, nrow, C, ncol, cormax, npixmin, thr, use_mean,
                           switching, buf, tmp, state)
            if rows_last and stage == 1:  # fuse the gain while the row is in cache
                _finish(out, bits, gm, st, nrow, C, ncol, cm, switching, npix)
            else:
                _shift(out, bits, st, nrow, C, ncol, cm, switching)
    if finish and not rows_last:
        _finish(out, bits, gm, start, br, C, bc, np.float32(0.0), switching, npix)


@njit(cache=True, inline="always")
def _calibrate_rows(raw, ped, gm, cmok, out, bits, s, r0, nrows, R, C, bc, mode, cormax,
                    npixmin, thr, use_mean, switching, buf, tmp, state, finish, npix):
    """Rows r0 .. r0 + nrows of segment s, bank column by bank column: pedestals, then the
    common mode and gain of :func:`common_mode_bank`."""
    for c0 in range(np.uint64(0), C, bc):
        start = (s * R + r0) * C + c0
        for r in range(nrows):
            base = start + r * C
            if switching:
                for j in range(bc):
                    i = base + j
                    g = _gain_index(bits[i])
                    d = np.float32(np.int64(bits[i]) & JUNGFRAU_DATA_MASK)
                    out[i] = 0.0 if g < 0 else d - ped[np.uint64(g) * npix + i]
            else:
                for j in range(bc):
                    out[base + j] = np.float32(raw[base + j]) - ped[base + j]
        common_mode_bank(out, bits, cmok, gm, start, nrows, bc, C, mode, cormax, npixmin, thr,
                         use_mean, switching, buf, tmp, state, finish, npix)


@njit(cache=True)
def _row_statistic(buf, n, nok, s16, npixmin, cormax, use_mean, tmp, state):
    """Common mode of one gathered row (see :func:`_group_cm`): 0 when skipped. Compiled once
    and called (not inlined): the median is large code and inlining it twice more tripled the
    compile time for no speed."""
    if nok <= npixmin:
        return np.float32(0.0)
    if use_mean:
        acc = 0.0
        for i in range(n):
            if buf[i] < np.inf:
                acc += buf[i]
        cm = np.float32(acc / nok)
    else:
        cm = _median(buf, n, nok, (s16 / 16.0) / nok, tmp, state)
    return cm if abs(cm) < cormax else np.float32(0.0)


@njit(cache=True, inline="always")
def _fused_row(raw, ped, gm, cmok, out, start, n, rows, cormax, npixmin, thr, use_mean, buf,
               tmp, state):
    """One bank row of a detector without gain switching, each pixel read once from memory.

    Pass 1 writes ``raw - ped`` to the row of ``out`` and gathers the eligible values (the
    rest +inf) into ``buf``; the row's statistic follows; pass 2 applies ``(v - cm) * gm``
    while the row is still in L1. Same arithmetic as :func:`_gather`, :func:`_group_cm` and
    :func:`_finish`, so the same bits.
    """
    end = start + n
    r, p, g, o = raw[start:end], ped[start:end], gm[start:end], out[start:end]
    if rows:
        ok = cmok[start:end]
        nok = np.int32(0)
        s16 = np.int32(0)  # 16 x the sum, only to steer the median: wrapping is harmless
        for j in range(n):
            v = np.float32(r[j]) - p[j]
            o[j] = v
            e = (ok[j] != 0) & (v <= thr)
            buf[j] = v if e else np.float32(np.inf)
            nok = np.int32(nok + np.int32(e))
            s16 = np.int32(s16 + (np.int32(v * np.float32(16.0)) if e else np.int32(0)))
        cm = _row_statistic(buf, np.int64(n), np.int64(nok), np.int64(s16), npixmin, cormax,
                            use_mean, tmp, state)
        for j in range(n):
            o[j] = (o[j] - cm) * g[j]
    else:  # no common mode: one pass
        for j in range(n):
            o[j] = (np.float32(r[j]) - p[j]) * g[j]


@njit(cache=True, inline="always")
def _fused_row_switching(bits, ped, gm, cmok, out, start, n, npix, rows, cormax, npixmin, thr,
                         use_mean, buf, tmp, state):
    """:func:`_fused_row` for Jungfrau raw data: pedestal and gain of each pixel's gain range,
    common mode from and on G0 pixels only, 0 for the invalid gain code."""
    end = start + n
    b, o, ok = bits[start:end], out[start:end], cmok[start:end]
    p0, p1, p2 = ped[start:end], ped[npix + start:npix + end], ped[2 * npix + start:2 * npix + end]
    nok = np.int32(0)
    s16 = np.int32(0)  # 16 x the sum, only to steer the median: wrapping is harmless
    for j in range(n):
        gi = _gain_index(b[j])
        d = np.float32(np.int64(b[j]) & JUNGFRAU_DATA_MASK)
        pj = p0[j] if gi == 0 else (p1[j] if gi == 1 else p2[j])
        v = np.float32(0.0) if gi < 0 else d - pj
        o[j] = v
        e = (ok[j] != 0) & (v <= thr) & (gi == 0)
        buf[j] = v if e else np.float32(np.inf)
        nok = np.int32(nok + np.int32(e))
        s16 = np.int32(s16 + (np.int32(v * np.float32(16.0)) if e else np.int32(0)))
    cm = np.float32(0.0)
    if rows:
        cm = _row_statistic(buf, np.int64(n), np.int64(nok), np.int64(s16), npixmin, cormax,
                            use_mean, tmp, state)
    g0, g1, g2 = gm[start:end], gm[npix + start:npix + end], gm[2 * npix + start:2 * npix + end]
    for j in range(n):
        gi = _gain_index(b[j])
        if gi < 0:
            o[j] = 0.0
        elif gi == 0:
            o[j] = (o[j] - cm) * g0[j]
        else:
            o[j] *= g1[j] if gi == 1 else g2[j]


@njit(cache=True)
def _calibrate_units(raw, ped, gm, cmok, out, shape, banks, mode, cormax, npixmin, thr,
                     use_mean, switching, buf, tmp, state, u0, u1):
    """Work units u0 .. u1 of :func:`calibrate`: unit u is bank row ``u % (R / br)`` of
    segment ``u // (R / br)`` (units are independent: they share no group)."""
    R, C = np.uint64(shape[1]), np.uint64(shape[2])
    br, bc = np.uint64(banks[0]), np.uint64(banks[1])
    npix = np.uint64(shape[0]) * R * C
    nb = R // br
    bits = raw.view(np.uint16) if switching else np.zeros(1, np.uint16)
    finish = mode >= 0  # a plain bool, not a literal: one compiled common_mode_bank for all
    fused = (mode & (MODE_BANKS | MODE_COLS)) == 0  # rows only, or none: row by row
    rows = (mode & MODE_ROWS) != 0
    for u in range(np.uint64(u0), np.uint64(u1)):
        if fused:
            first = (u // nb * R + (u % nb) * br) * C
            for r in range(br):
                for c0 in range(np.uint64(0), C, bc):
                    start = first + r * C + c0
                    if switching:
                        _fused_row_switching(bits, ped, gm, cmok, out, start, bc, npix, rows,
                                             cormax, npixmin, thr, use_mean, buf, tmp, state)
                    else:
                        _fused_row(raw, ped, gm, cmok, out, start, bc, rows, cormax, npixmin,
                                   thr, use_mean, buf, tmp, state)
        else:  # bank or column stages: bank by bank
            _calibrate_rows(raw, ped, gm, cmok, out, bits, u // nb, (u % nb) * br, br, R, C,
                            bc, mode, cormax, npixmin, thr, use_mean, switching, buf, tmp, state,
                            finish, npix)


@njit(cache=True)
def calibrate(raw, ped, gm, cmok, out, shape, banks, mode, cormax, npixmin, thr, use_mean,
              switching, buf, tmp, state):
    """Full calibration ``out = (raw - ped[g]) -> common mode -> * gm[g]``.

    Common mode per row only (or none) goes row by row, each pixel read once from memory
    (:func:`_fused_row`); bank or column stages go bank by bank (:func:`common_mode_bank`).

    Flat arrays: raw, cmok, out (N,); ped, gm (G * N,) float32, G = 1, or 3 when ``switching``
    (Jungfrau: raw is uint16 with the gain bits; data = raw & 0x3FFF; the invalid gain gives 0).
    ``gm`` is gain x mask. ``shape`` = (S, R, C), ``banks`` = (bank rows, bank columns).
    buf, tmp: float32 scratch of one bank + 8 each; state: float64[1] that steers the median
    search (NaN at first). ``thr`` and ``cormax`` are float32.
    """
    units = shape[0] * (shape[1] // banks[0])
    _calibrate_units(raw, ped, gm, cmok, out, shape, banks, mode, cormax, npixmin, thr,
                     use_mean, switching, buf, tmp, state, 0, units)


@njit(cache=True, parallel=True)
def calibrate_parallel(raw, ped, gm, cmok, out, shape, banks, mode, cormax, npixmin, thr,
                       use_mean, switching, bufs, tmps, states):
    """:func:`calibrate` with the bank rows of all segments split in ``len(bufs)`` contiguous
    parts run by numba's threads; bufs, tmps (parts, bank + 8) and states (parts,) hold each
    part's scratch. The result is identical to :func:`calibrate` (no group spans two parts)."""
    units = shape[0] * (shape[1] // banks[0])
    parts = bufs.shape[0]
    for c in prange(parts):
        _calibrate_units(raw, ped, gm, cmok, out, shape, banks, mode, cormax, npixmin, thr,
                         use_mean, switching, bufs[c], tmps[c], states[c:c + 1],
                         c * units // parts, (c + 1) * units // parts)


def gain_index_ref(raw: np.ndarray) -> np.ndarray:
    """Jungfrau gain index per pixel (int8): 0, 1, 2, or -1 for the invalid code 10."""
    bits = (raw.astype(np.uint16) >> 14) & 3
    return np.array([0, 1, -1, 2], dtype=np.int8)[bits]


def _cm_block_ref(
    view: np.ndarray, ok: np.ndarray, apply: np.ndarray, cormax: float, npixmin: int,
    thr: float, use_mean: bool,
) -> None:
    vals = view[ok & (view <= thr)]
    if vals.size <= npixmin:
        return
    cm = np.float32(vals.astype(np.float64).mean() if use_mean else np.median(vals))
    if abs(cm) < cormax:
        view[apply] -= cm


def common_mode_ref(
    data: np.ndarray, ok: np.ndarray, apply: np.ndarray, banks: tuple[int, int], mode: int,
    cormax: float, npixmin: int, thr: float, use_mean: bool,
) -> None:
    """Reference common mode on (S, R, C) float32 ``data`` in place; ``apply``: pixels corrected."""
    S, R, C = data.shape
    br, bc = banks
    args = (cormax, npixmin, thr, use_mean)
    for s in range(S):
        for r0 in range(0, R, br):
            for c0 in range(0, C, bc):
                sl = (s, slice(r0, r0 + br), slice(c0, c0 + bc))
                bank, bok, bap = data[sl], ok[sl], apply[sl]
                if mode & MODE_BANKS:
                    _cm_block_ref(bank, bok, bap, *args)
                if mode & MODE_ROWS:
                    for r in range(br):
                        _cm_block_ref(bank[r], bok[r], bap[r], *args)
                if mode & MODE_COLS:
                    for c in range(bc):
                        _cm_block_ref(bank[:, c], bok[:, c], bap[:, c], *args)


def calibrate_ref(
    raw: np.ndarray, ped: np.ndarray, gm: np.ndarray, cmok: np.ndarray, banks: tuple[int, int],
    mode: int, cormax: float, npixmin: int, thr: float, use_mean: bool, switching: bool,
) -> np.ndarray:
    """NumPy reference of :func:`calibrate`; returns a new float32 array."""
    if switching:
        gi = gain_index_ref(raw)
        g = np.where(gi < 0, 0, gi)[None]
        data = (raw.astype(np.int64) & JUNGFRAU_DATA_MASK).astype(np.float32)
        out = data - np.take_along_axis(ped, g, 0)[0]
        apply = gi == 0
        gsel = np.take_along_axis(gm, g, 0)[0]
    else:
        gi = np.zeros(raw.shape, np.int8)
        out = raw.astype(np.float32) - ped[0]
        apply = np.ones(raw.shape, bool)
        gsel = gm[0]
    out = out.astype(np.float32)
    if mode:
        common_mode_ref(out, cmok.astype(bool) & apply, apply, banks, mode, cormax, npixmin,
                        thr, use_mean)
    out *= gsel
    out[gi < 0] = 0.0
    return out


# -- image assembly --------------------------------------------------------------------------------
@njit(cache=True)
def scatter(data, idx, empty, out):
    """``out[idx] = data`` on flat arrays (last write wins), zeroing the cells ``empty`` first."""
    for j in range(empty.size):
        out[empty[j]] = 0
    for i in range(data.size):
        out[idx[i]] = data[i]


@njit(cache=True)
def scatter_tiles(data, tiles, empty, out):
    """``scatter`` for maps made of affine tiles, without an index per pixel.

    Each tile row of ``tiles`` (int64) is (source start, source row stride, rows, columns,
    image start, image step per row, image step per column). The loop that is contiguous in the
    image runs innermost, so rotated tiles become cache-friendly transposes. Steps may be
    negative: index arithmetic wraps in uint64 and lands on the right cell.
    """
    for j in range(empty.size):
        out[empty[j]] = 0
    for t in range(tiles.shape[0]):
        sb, ss, nr, nc = tiles[t, 0], tiles[t, 1], tiles[t, 2], tiles[t, 3]
        db = np.uint64(tiles[t, 4])
        dr, dc = np.uint64(tiles[t, 5]), np.uint64(tiles[t, 6])
        if abs(tiles[t, 6]) == 1:  # image rows follow tile rows
            for r in range(nr):
                src = np.uint64(sb + r * ss)
                dst = db + np.uint64(r) * dr
                for c in range(np.uint64(nc)):
                    out[dst + c * dc] = data[src + c]
        else:  # rotated: walk the tile column by column
            for c in range(nc):
                src = np.uint64(sb + c)
                dst = db + np.uint64(c) * dc
                for r in range(np.uint64(nr)):
                    out[dst + r * dr] = data[src + r * np.uint64(ss)]


def scatter_ref(data: np.ndarray, idx: np.ndarray, out: np.ndarray) -> None:
    out[:] = 0
    out[idx] = data


@njit(cache=True)
def scatter_mean(data, idx, inv_count, out):
    """Average of the pixels falling in each cell: ``out = bincount(idx, data) * inv_count``."""
    out[:] = 0
    for i in range(data.size):
        out[idx[i]] += data[i]
    for j in range(out.size):
        out[j] *= inv_count[j]


def scatter_mean_ref(data: np.ndarray, idx: np.ndarray, inv_count: np.ndarray) -> np.ndarray:
    sums = np.bincount(idx, weights=data.astype(np.float64), minlength=inv_count.size)
    return sums * inv_count
