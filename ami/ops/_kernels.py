"""numba kernels of the operations library, each with a plain NumPy reference beside it.

Kernels hold the per-sample loops that NumPy cannot vectorise (edge walking, peak suppression,
binning with NaN skipping). They write into outputs the caller allocates and return how many
entries they wrote. The ``*_reference`` functions compute the same thing a different, obviously
correct way; tests compare the two on random inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

KERNEL_DTYPES = frozenset(np.dtype(t) for t in ("f8", "f4", "u1", "i1", "u2", "i2", "u4", "i4"))
"""Element types the array kernels take; other arrays go through the NumPy versions (numba
compiles, and caches, one version of a kernel per element type and memory layout)."""

# --------------------------------------------------------------------------------------------
# psalg-style constant-fraction edge finder


@njit(cache=True, error_model="numpy")
def _edge_position(y, level, start, peak_i, leading):  # pragma: no cover - compiled
    """Fractional sample index where ``y`` (positive-going) crosses ``level``; NaN if never."""
    n = y.shape[0]
    if leading:
        i = start
        while i < n and y[i] < level:
            i += 1
        if i == n:
            return np.nan
        if i == start:  # level lies below the threshold: walk back down the rising edge
            while i > 0 and y[i - 1] >= level:
                i -= 1
    else:
        i = peak_i
        while i < n and y[i] > level:
            i += 1
        if i == n:
            return np.nan
    if i == 0:
        return 0.0
    step = y[i] - y[i - 1]
    if step == 0.0:
        return float(i)
    return (i - 1) + (level - y[i - 1]) / step


@njit(cache=True, error_model="numpy")
def find_edges_kernel(
    wf, baseline, threshold, fraction, deadtime, leading, times, amplitudes
):  # pragma: no cover - compiled
    """Edges of pulses crossing ``threshold``; fills ``times``/``amplitudes``, returns the count."""
    n = wf.shape[0]
    capacity = times.shape[0]
    if n == 0 or capacity == 0:
        return 0
    sign = 1.0 if threshold > baseline else -1.0
    y = sign * wf
    thr = sign * threshold
    base = sign * baseline
    found = 0
    last = 0.0
    crossed = False
    start = 0
    peak_i = 0
    for k in range(n + 1):
        over = k < n and y[k] > thr
        if over and not crossed:
            crossed = True
            start = k
            peak_i = k
        elif over:
            if y[k] > y[peak_i]:
                peak_i = k
        elif crossed:
            crossed = False
            width = k - (start if leading else peak_i)
            if k < n and width <= deadtime:
                continue
            peak = y[peak_i]
            edge = _edge_position(y, base + fraction * (peak - base), start, peak_i, leading)
            if not np.isfinite(edge):
                continue
            if found > 0 and edge <= last + deadtime:
                continue
            times[found] = edge
            amplitudes[found] = sign * peak
            last = edge
            found += 1
            if found == capacity:
                break
    return found


def find_edges_reference(wf, baseline, threshold, fraction, deadtime, leading, npkmax):
    """NumPy version of :func:`find_edges_kernel`: runs found by ``np.diff``, no state machine."""
    wf = np.asarray(wf, dtype=np.float64)
    n = wf.size
    sign = 1.0 if threshold > baseline else -1.0
    y, thr, base = sign * wf, sign * threshold, sign * baseline
    over = (y > thr).astype(np.int8)
    steps = np.diff(over, prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(steps == 1), np.flatnonzero(steps == -1)
    times: list[float] = []
    amps: list[float] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if len(times) == npkmax:
            break
        p = s + int(np.argmax(y[s:e]))
        if e < n and e - (s if leading else p) <= deadtime:
            continue
        level = base + fraction * (y[p] - base)
        if leading:
            after = np.flatnonzero(~(y[s:] < level))
            if after.size == 0:
                continue
            i = s + int(after[0])
            if i == s:
                below = np.flatnonzero(~(y[:s] >= level))
                i = int(below[-1]) + 1 if below.size else 0
        else:
            after = np.flatnonzero(~(y[p:] > level))
            if after.size == 0:
                continue
            i = p + int(after[0])
        if i == 0:
            edge = 0.0
        elif y[i] == y[i - 1]:
            edge = float(i)
        else:
            edge = (i - 1) + (level - y[i - 1]) / (y[i] - y[i - 1])
        if not np.isfinite(edge) or (times and edge <= times[-1] + deadtime):
            continue
        times.append(edge)
        amps.append(sign * y[p])
    return np.array(times, dtype=np.float64), np.array(amps, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Foucar-style constant fraction discriminator


@njit(cache=True, error_model="numpy")
def _cubic_crossing(s_m1, s0, s1, s2, walk):  # pragma: no cover - compiled
    """Where in [0, 1] the cubic through (-1, 0, 1, 2) -> s values equals ``walk``.

    Linear between s0 and s1 when an outer point is NaN.
    """
    t = (walk - s0) / (s1 - s0)
    if not (np.isfinite(s_m1) and np.isfinite(s2)):
        return t
    d1 = s0 - s_m1
    d2 = (s1 - 2.0 * s0 + s_m1) / 2.0
    d3 = (s2 - 3.0 * s1 + 3.0 * s0 - s_m1) / 6.0
    # Newton from the linear estimate, kept inside the bracket [0, 1] by bisection.
    lo, hi = 0.0, 1.0
    rising = s1 > s0
    for _ in range(60):
        p = s_m1 + d1 * (t + 1.0) + d2 * (t + 1.0) * t + d3 * (t + 1.0) * t * (t - 1.0) - walk
        if p == 0.0:
            return t
        if (p < 0.0) == rising:
            lo = t
        else:
            hi = t
        dp = d1 + d2 * (2.0 * t + 1.0) + d3 * (3.0 * t * t - 1.0)
        nxt = t - p / dp if dp != 0.0 else 0.5 * (lo + hi)
        if not (lo <= nxt <= hi):
            nxt = 0.5 * (lo + hi)
        if abs(nxt - t) < 1e-9:
            return nxt
        t = nxt
    return t


@njit(cache=True, error_model="numpy")
def cfd_kernel(wf, offset, delay, fraction, walk, threshold, times):  # pragma: no cover
    """Crossings of s[i] = x[i - delay] - fraction * x[i] through ``walk``; returns the count."""
    n = wf.shape[0]
    capacity = times.shape[0]
    found = 0
    for i in range(delay + 1, n - 2):
        x0 = wf[i] - offset
        s0 = (wf[i - delay] - offset) - fraction * x0
        s1 = (wf[i + 1 - delay] - offset) - fraction * (wf[i + 1] - offset)
        if not ((s0 - walk) * (s1 - walk) <= 0.0) or not (abs(x0) > threshold):
            continue
        if s0 == s1 or (s1 == walk and s0 != walk):
            continue  # flat, or the next step starts on the walk level
        if (s0 > s1 and x0 > 0.0) or (s0 < s1 and x0 < 0.0):
            continue  # wrong polarity: the tail of a pulse, not its front
        s_m1 = (wf[i - 1 - delay] - offset) - fraction * (wf[i - 1] - offset)
        s2 = (wf[i + 2 - delay] - offset) - fraction * (wf[i + 2] - offset)
        times[found] = i + _cubic_crossing(s_m1, s0, s1, s2, walk)
        found += 1
        if found == capacity:
            break
    return found


def cfd_reference(wf, offset, delay, fraction, walk, threshold, npkmax):
    """NumPy version of :func:`cfd_kernel`: vectorised candidates, cubic roots by ``np.roots``."""
    x = np.asarray(wf, dtype=np.float64) - offset
    n = x.size
    if n < delay + 4:
        return np.empty(0)
    s = np.full(n, np.nan)
    s[delay:] = x[:-delay] - fraction * x[delay:]
    i = np.arange(delay + 1, n - 2)
    s0, s1, x0 = s[i], s[i + 1], x[i]
    ok = ((s0 - walk) * (s1 - walk) <= 0) & (np.abs(x0) > threshold)
    ok &= (s0 != s1) & ~((s1 == walk) & (s0 != walk))
    ok &= ~((s0 > s1) & (x0 > 0)) & ~((s0 < s1) & (x0 < 0))
    out: list[float] = []
    for k in i[ok][:npkmax]:
        if not np.isfinite(s[k - 1 : k + 3]).all():
            out.append(k + (walk - s[k]) / (s[k + 1] - s[k]))
            continue
        coeffs = np.polyfit(np.arange(-1.0, 3.0), s[k - 1 : k + 3], 3)
        coeffs[-1] -= walk
        roots = np.roots(coeffs)
        real = roots[np.abs(roots.imag) < 1e-7].real
        inside = real[(real >= -1e-9) & (real <= 1 + 1e-9)]
        out.append(k + float(np.clip(inside.min(), 0.0, 1.0)))
    return np.array(out, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# 1-D peak finding


@njit(cache=True)
def local_maxima_kernel(y, threshold, positions):  # pragma: no cover - compiled
    """Local maxima above ``threshold`` (middle of flat tops, ends excluded); returns the count."""
    n = y.shape[0]
    found = 0
    i = 1
    while i < n - 1:
        if y[i] > y[i - 1] and y[i] > threshold:
            j = i
            while j < n - 1 and y[j + 1] == y[i]:
                j += 1
            if j < n - 1 and y[j + 1] < y[i]:
                positions[found] = (i + j) // 2
                found += 1
            i = j + 1
        else:
            i += 1
    return found


def local_maxima_reference(y, threshold):
    """NumPy version of :func:`local_maxima_kernel`: collapse flat runs, then compare neighbours."""
    y = np.asarray(y, dtype=np.float64)
    if y.size < 3:
        return np.empty(0, dtype=np.int64)
    run_start = np.flatnonzero(np.concatenate(([True], y[1:] != y[:-1])))
    run_end = np.append(run_start[1:], y.size) - 1
    v = y[run_start]
    peak = np.zeros(v.size, dtype=bool)
    peak[1:-1] = (v[1:-1] > v[:-2]) & (v[1:-1] > v[2:]) & (v[1:-1] > threshold)
    return ((run_start[peak] + run_end[peak]) // 2).astype(np.int64)


@njit(cache=True)
def suppress_kernel(positions, heights, min_distance, keep):  # pragma: no cover - compiled
    """Drop peaks closer than ``min_distance`` to a higher kept one; ``keep`` gets the verdicts.

    ``positions`` must be sorted. Returns the number kept.
    """
    n = positions.shape[0]
    keep[:] = True
    order = np.argsort(-heights, kind="mergesort")
    for k in range(n):
        i = order[k]
        if not keep[i]:
            continue
        j = i - 1
        while j >= 0 and positions[i] - positions[j] < min_distance:
            keep[j] = False
            j -= 1
        j = i + 1
        while j < n and positions[j] - positions[i] < min_distance:
            keep[j] = False
            j += 1
    return int(keep.sum())


def suppress_reference(positions, heights, min_distance):
    """Python version of :func:`suppress_kernel`: keep a peak if no higher kept peak is near."""
    order = sorted(range(len(positions)), key=lambda k: -heights[k])
    kept: list[int] = []
    for k in order:
        if all(abs(positions[k] - positions[j]) >= min_distance for j in kept):
            kept.append(k)
    keep = np.zeros(len(positions), dtype=bool)
    keep[kept] = True
    return keep


# --------------------------------------------------------------------------------------------
# Binning with NaN skipping (azimuthal integration)


@njit(cache=True)
def bin_sum_kernel(index, values, weights, sums, counts):  # pragma: no cover - compiled
    """sums[b] += values*weights, counts[b] += 1 over pixels with bin b >= 0 and finite value."""
    sums[:] = 0.0
    counts[:] = 0
    for i in range(index.shape[0]):
        b = index[i]
        v = values[i]
        if b < 0 or not np.isfinite(v):
            continue
        sums[b] += v * weights[i]
        counts[b] += 1


def bin_sum_reference(index, values, weights, nbins):
    """NumPy version of :func:`bin_sum_kernel` with ``np.bincount``."""
    values = np.asarray(values, dtype=np.float64)
    ok = (index >= 0) & np.isfinite(values)
    sums = np.bincount(index[ok], weights=values[ok] * weights[ok], minlength=nbins)
    counts = np.bincount(index[ok], minlength=nbins)
    return sums.astype(np.float64), counts.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Normalised cross-correlation (template matching)


@njit(cache=True)
def ncc_kernel(w, tc, out):  # pragma: no cover - compiled
    """Pearson correlation of zero-mean template ``tc`` with each full window of ``w``.

    Windows that are flat (to rounding) score NaN; NaN samples make their windows NaN.
    """
    m = tc.shape[0]
    tnorm2 = 0.0
    for k in range(m):
        tnorm2 += tc[k] * tc[k]
    for lag in range(out.shape[0]):
        mean = 0.0
        for k in range(m):
            mean += w[lag + k]
        mean /= m
        cross = 0.0
        var = 0.0
        for k in range(m):
            x = w[lag + k] - mean
            cross += x * tc[k]
            var += x * x
        if var > 1e-24 * m * mean * mean and tnorm2 > 0.0:
            out[lag] = min(1.0, max(-1.0, cross / np.sqrt(var * tnorm2)))
        else:
            out[lag] = np.nan


def ncc_reference(w, template):
    """Per-window Pearson correlation with NumPy, for tests of :func:`ncc_kernel`."""
    w = np.asarray(w, dtype=np.float64)
    t = np.asarray(template, dtype=np.float64)
    m = t.size
    out = np.full(max(w.size - m + 1, 0), np.nan)
    tc = t - t.mean()
    for k in range(out.size):
        mean = w[k : k + m].mean()
        x = w[k : k + m] - mean
        if x @ x > 1e-24 * m * mean * mean and tc @ tc > 0:
            out[k] = np.clip((x @ tc) / np.sqrt((x @ x) * (tc @ tc)), -1.0, 1.0)
    return out


# --------------------------------------------------------------------------------------------
# Image kernels on rows: a 2-D array is passed as a 1-D array ``flat`` holding its ``n0`` rows of
# ``n1`` elements, row ``i`` starting at ``flat[i * rs]`` (see :func:`as_rows`). Each row is then
# contiguous, so the inner loops vectorise whatever the view's origin or alignment; with a 2-D
# strided ("A" layout) argument they would not. ``fastmath`` allows only re-association (sums in
# vector lanes): NaN and infinities keep their meaning.

ROI_SUM, ROI_NPIX, ROI_MAX, ROI_ROW_MOMENT, ROI_COL_MOMENT, ROI_COUNT = range(6)
"""Slots of the ``out`` array of :func:`roi_stats_kernel`."""


def as_rows(a: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """A 2-D array as ``(flat, n0, n1, rs)`` for the row kernels, without a copy where its rows
    are contiguous (any view of a C-ordered image, however offset or aligned)."""
    n0, n1 = a.shape
    if a.flags.c_contiguous:  # the cheap case: a plain reshape
        flat = a.reshape(-1)
        flat.flags.writeable = False  # as below: one compiled version of each kernel
        return flat, n0, n1, n1
    item = a.itemsize
    rows_ok = a.strides[1] == item or n1 <= 1
    if not (rows_ok and a.strides[0] >= 0 and a.strides[0] % item == 0):
        a = np.ascontiguousarray(a)
    rs = a.strides[0] // item if n0 > 1 else n1
    size = (n0 - 1) * rs + n1 if n0 and n1 else 0
    flat = np.lib.stride_tricks.as_strided(a, shape=(size,), strides=(item,), writeable=False)
    return flat, n0, n1, rs


@njit(cache=True, fastmath={"reassoc"})
def roi_stats_kernel(
    flat, n0, n1, rs, mask, mask_rs, row0, col0, threshold, want_com, want_count, want_max, out
):  # pragma: no cover - compiled
    """Statistics of the finite, unmasked pixels of a 2-D array given as rows (``mask``
    likewise, with row step ``mask_rs``), written to ``out`` (see the ``ROI_*`` slots): sum,
    valid pixels and row moment always; the column moment (coordinates ``row0 + i``,
    ``col0 + j``), the count above ``threshold`` and the max when asked for (else 0, 0, NaN).

    Each statistic has its own loop over a row (the row is in cache by then), so every loop
    vectorises and a statistic nobody reads costs nothing.
    """
    total = 0.0
    npix = 0
    row_moment = 0.0
    col_moment = 0.0
    count = 0
    best = -np.inf
    for i in range(n0):
        row = flat[i * rs : i * rs + n1]
        if mask is not None:
            mrow = mask[i * mask_rs : i * mask_rs + n1]
        row_sum = 0.0
        row_n = 0
        for j in range(n1):
            x = np.float64(row[j])
            ok = x - x == 0.0  # finite
            if mask is not None:
                ok = ok & mrow[j]
            row_sum += x if ok else 0.0
            row_n += ok
        total += row_sum
        npix += row_n
        row_moment += row_sum * (row0 + i)
        if want_com:
            c = np.float64(col0)
            for j in range(n1):
                x = np.float64(row[j])
                ok = x - x == 0.0
                if mask is not None:
                    ok = ok & mrow[j]
                col_moment += (x if ok else 0.0) * c
                c += 1.0
        if want_count:
            row_count = 0
            for j in range(n1):
                x = np.float64(row[j])
                ok = (x - x == 0.0) & (x > threshold)
                if mask is not None:
                    ok = ok & mrow[j]
                row_count += ok
            count += row_count
        if want_max:
            for j in range(n1):  # NaN never compares greater; infinities are settled below
                x = np.float64(row[j])
                if mask is not None:
                    best = x if (x > best) & mrow[j] else best
                else:
                    best = x if x > best else best
    if want_max and best == np.inf:  # rare: the max of the finite pixels, the slow way
        best = -np.inf
        for i in range(n0):
            for j in range(n1):
                x = np.float64(flat[i * rs + j])
                if x - x == 0.0 and x > best and (mask is None or mask[i * mask_rs + j]):
                    best = x
    out[0] = total
    out[1] = npix
    out[2] = best if want_max and npix > 0 else np.nan
    out[3] = row_moment
    out[4] = col_moment
    out[5] = count


def roi_stats_reference(a, mask, row0, col0, threshold):
    """NumPy version of :func:`roi_stats_kernel` on a 2-D ``a`` (``mask`` None for no mask),
    every statistic asked for."""
    a = np.asarray(a)
    valid = np.isfinite(a.astype(np.float64))
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    w = np.where(valid, a, 0).astype(np.float64)
    rows = np.arange(a.shape[0]) + row0
    cols = np.arange(a.shape[1]) + col0
    npix = int(valid.sum())
    best = float(a[valid].max()) if npix else np.nan
    count = int((valid & (a > threshold)).sum())
    return np.array([w.sum(), npix, best, w.sum(axis=1) @ rows, w.sum(axis=0) @ cols, count],
                    dtype=np.float64)


@njit(cache=True, fastmath={"reassoc"})
def project_kernel(
    flat, n0, n1, rs, mask, mask_rs, axis, sums, counts, want_counts
):  # pragma: no cover - compiled
    """Per line along ``axis`` of a 2-D array given as rows: the sum and (if ``want_counts``)
    the number of its finite, unmasked values (``mask`` as rows with row step ``mask_rs``)."""
    sums[:] = 0.0
    counts[:] = 0
    for i in range(n0):
        row = flat[i * rs : i * rs + n1]
        if mask is not None:
            mrow = mask[i * mask_rs : i * mask_rs + n1]
        if axis == 0:
            if mask is not None or want_counts:
                for j in range(n1):
                    x = np.float64(row[j])
                    ok = x - x == 0.0
                    if mask is not None:
                        ok = ok & mrow[j]
                    sums[j] += x if ok else 0.0
                    counts[j] += ok
            else:
                for j in range(n1):
                    x = np.float64(row[j])
                    sums[j] += x if x - x == 0.0 else 0.0
        else:
            s = 0.0
            c = 0
            for j in range(n1):
                x = np.float64(row[j])
                ok = x - x == 0.0
                if mask is not None:
                    ok = ok & mrow[j]
                s += x if ok else 0.0
                c += ok
            sums[i] = s
            counts[i] = c


def project_reference(d, mask, axis):
    """NumPy version of :func:`project_kernel` (``mask`` None for no mask): (sums, counts)."""
    d = np.asarray(d)
    valid = np.isfinite(d.astype(np.float64))
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    sums = np.where(valid, d, 0).sum(axis=axis, dtype=np.float64)
    return sums, valid.sum(axis=axis).astype(np.int64)


# --------------------------------------------------------------------------------------------
# 1-D histogram of a 2-D array given as rows


@njit(cache=True)
def histogram_kernel(flat, n0, n1, rs, edges, counts):  # pragma: no cover - compiled
    """Add one to ``counts[b]`` for each value in bin ``b`` of the equal-width ``edges`` (last
    bin closed, as ``numpy.histogram``); returns the (underflow, overflow, NaN) counts.

    The bin is found exactly as :func:`ami.ops._histogram.bin_index` finds it (scaled index,
    then settled against the edges), so both give the same bins to the last ulp.
    """
    nbins = edges.shape[0] - 1
    lo = edges[0]
    hi = edges[nbins]
    scale = nbins / (hi - lo)
    under = 0
    over = 0
    nan = 0
    for i in range(n0):
        row = flat[i * rs : i * rs + n1]
        for j in range(n1):
            v = np.float64(row[j])
            if v < lo:
                under += 1
            elif v > hi:
                over += 1
            elif v >= lo:
                b = int((v - lo) * scale)
                b = min(max(b, 0), nbins - 1)
                if v < edges[b]:
                    b -= 1
                elif b < nbins - 1 and v >= edges[b + 1]:
                    b += 1
                counts[b] += 1.0
            else:
                nan += 1
    return under, over, nan
