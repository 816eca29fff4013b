"""Dark-run sums as exact integers: the numba kernels and their NumPy references.

Per pixel a dark run reduces to three integers: the event count n, S1 = sum(x) and
S2 = sum(x^2), x the raw value (at most 16 bits, optionally masked, e.g. Jungfrau's 14 data
bits). Integer sums have no rounding, so they do not depend on the order of the events: any
split of a run between processes, merged in any order, gives the same integers and hence the
same constants (see :mod:`calib._dark`).

The kernels keep the sums as int64 deviations from a reference frame ``ref`` (the first
event): s1 = sum(x - ref), s2 = sum((x - ref)^2). Speed comes from doing most additions in
32 bits: frames are taken in chunks of :data:`CHUNK` pixels and in groups of four events, and a
chunk's partial sums (int32 of d, uint32 of d^2) live in L1 until they are folded into the int64
sums. The uint32 sum of squares is exact while the true value stays below 2^32, which the
kernel proves with a bound (the sum over groups of 4 x the group's largest d^2); a group that
would break it is undone (modular arithmetic: subtracting restores the bits), the partial sums
are folded, and the group is added again (or, if one group alone could reach 2^32, in int64).
The int32 sum of d cannot overflow: |d| < 2^16 and a call takes fewer than 2^15 events.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

CHUNK = 4096  # pixels: a chunk's partial sums (32 KiB) and four frames' slices fit in L1/L2
MAX_EVENTS_PER_CALL = 32767  # keeps the int32 partial sum of d exact (|d| < 2^16)
_LIMIT = np.int64(1) << np.int64(32)


@njit(cache=True, nogil=True, inline="always")
def _add4(f0, f1, f2, f3, r, b1, b2, n, mask):
    """b1 += sum of d, b2 += sum of d^2 (mod 2^32) over four frames; returns the largest d^2.

    ``mask`` -1 means no mask (a separate loop: a loop-invariant test inside would stop LLVM
    from vectorising); indices are uint64 so that numba adds no wrap-around test."""
    m = np.uint32(0)
    if mask == -1:
        for i in range(np.uint64(n)):
            ri = r[i]
            d0 = np.int32(np.int32(f0[i]) - ri)
            d1 = np.int32(np.int32(f1[i]) - ri)
            d2 = np.int32(np.int32(f2[i]) - ri)
            d3 = np.int32(np.int32(f3[i]) - ri)
            q0 = np.uint32(np.uint32(d0) * np.uint32(d0))
            q1 = np.uint32(np.uint32(d1) * np.uint32(d1))
            q2 = np.uint32(np.uint32(d2) * np.uint32(d2))
            q3 = np.uint32(np.uint32(d3) * np.uint32(d3))
            m = max(m, max(max(q0, q1), max(q2, q3)))
            b1[i] = np.int32(b1[i] + np.int32(np.int32(d0 + d1) + np.int32(d2 + d3)))
            b2[i] = np.uint32(b2[i] + np.uint32(np.uint32(q0 + q1) + np.uint32(q2 + q3)))
    else:
        for i in range(np.uint64(n)):
            ri = r[i]
            d0 = np.int32(np.int32(np.int32(f0[i]) & mask) - ri)
            d1 = np.int32(np.int32(np.int32(f1[i]) & mask) - ri)
            d2 = np.int32(np.int32(np.int32(f2[i]) & mask) - ri)
            d3 = np.int32(np.int32(np.int32(f3[i]) & mask) - ri)
            q0 = np.uint32(np.uint32(d0) * np.uint32(d0))
            q1 = np.uint32(np.uint32(d1) * np.uint32(d1))
            q2 = np.uint32(np.uint32(d2) * np.uint32(d2))
            q3 = np.uint32(np.uint32(d3) * np.uint32(d3))
            m = max(m, max(max(q0, q1), max(q2, q3)))
            b1[i] = np.int32(b1[i] + np.int32(np.int32(d0 + d1) + np.int32(d2 + d3)))
            b2[i] = np.uint32(b2[i] + np.uint32(np.uint32(q0 + q1) + np.uint32(q2 + q3)))
    return m


@njit(cache=True, nogil=True, inline="always")
def _sub4(f0, f1, f2, f3, r, b1, b2, n, mask):
    """Undo :func:`_add4` exactly (the partial sums wrap modulo 2^32 both ways)."""
    for i in range(np.uint64(n)):
        ri = r[i]
        d0 = np.int32(np.int32(np.int32(f0[i]) & mask) - ri)
        d1 = np.int32(np.int32(np.int32(f1[i]) & mask) - ri)
        d2 = np.int32(np.int32(np.int32(f2[i]) & mask) - ri)
        d3 = np.int32(np.int32(np.int32(f3[i]) & mask) - ri)
        q0 = np.uint32(np.uint32(d0) * np.uint32(d0))
        q1 = np.uint32(np.uint32(d1) * np.uint32(d1))
        q2 = np.uint32(np.uint32(d2) * np.uint32(d2))
        q3 = np.uint32(np.uint32(d3) * np.uint32(d3))
        b1[i] = np.int32(b1[i] - np.int32(np.int32(d0 + d1) + np.int32(d2 + d3)))
        b2[i] = np.uint32(b2[i] - np.uint32(np.uint32(q0 + q1) + np.uint32(q2 + q3)))


@njit(cache=True, nogil=True, inline="always")
def _add1_wide(f, r, t1, t2, n, mask):
    """One frame straight into the int64 sums (rare: single events, huge deviations)."""
    for i in range(np.uint64(n)):
        d = np.int64(np.int32(f[i]) & mask) - r[i]
        t1[i] += d
        t2[i] += d * d


@njit(cache=True, nogil=True, inline="always")
def _fold(b1, b2, t1, t2, n):
    """Move the 32-bit partial sums into the int64 sums and clear them."""
    for i in range(np.uint64(n)):
        t1[i] += np.int64(b1[i])
        t2[i] += np.int64(b2[i])
        b1[i] = 0
        b2[i] = 0


@njit(cache=True, nogil=True)
def dark_sums_chunks(data, offsets, mask, ref, s1, s2, b1, b2, c0, c1):
    """:func:`dark_sums` on pixel chunks c0 .. c1 only (the unit the threads share out)."""
    npix = ref.size
    nev = offsets.size
    n4 = nev - nev % 4
    for c in range(c0, c1):
        p0 = c * CHUNK
        n = min(CHUNK, npix - p0)
        q1, q2 = b1[:n], b2[:n]
        q1[:] = 0
        q2[:] = 0
        r, t1, t2 = ref[p0:p0 + n], s1[p0:p0 + n], s2[p0:p0 + n]
        bound = np.int64(0)  # >= the largest partial sum of squares in the chunk
        for k in range(0, n4, 4):
            f0 = data[offsets[k] + p0:offsets[k] + p0 + n]
            f1 = data[offsets[k + 1] + p0:offsets[k + 1] + p0 + n]
            f2 = data[offsets[k + 2] + p0:offsets[k + 2] + p0 + n]
            f3 = data[offsets[k + 3] + p0:offsets[k + 3] + p0 + n]
            g = 4 * np.int64(_add4(f0, f1, f2, f3, r, q1, q2, n, mask))
            if bound + g < _LIMIT:
                bound += g
                continue
            _sub4(f0, f1, f2, f3, r, q1, q2, n, mask)
            _fold(q1, q2, t1, t2, n)
            bound = np.int64(0)
            if g < _LIMIT:
                _add4(f0, f1, f2, f3, r, q1, q2, n, mask)
                bound = g
            else:
                _add1_wide(f0, r, t1, t2, n, mask)
                _add1_wide(f1, r, t1, t2, n, mask)
                _add1_wide(f2, r, t1, t2, n, mask)
                _add1_wide(f3, r, t1, t2, n, mask)
        for k in range(n4, nev):
            _add1_wide(data[offsets[k] + p0:offsets[k] + p0 + n], r, t1, t2, n, mask)
        _fold(q1, q2, t1, t2, n)


@njit(cache=True, nogil=True)
def dark_sums(data, offsets, mask, ref, s1, s2, b1, b2):
    """Add frames ``data[offsets[k]:offsets[k] + npix]`` to the exact sums of d = x - ref.

    data: 1-D integer array of at most 16 bits (a frame buffer, or a whole file mapped in
    memory); offsets: int64 element offsets of the frames (at most
    :data:`MAX_EVENTS_PER_CALL`); mask: int32, -1 for none (x = raw & mask); ref: int32 (npix,);
    s1, s2: int64 (npix,) sums updated in place; b1 int32, b2 uint32: scratch of :data:`CHUNK`.
    """
    dark_sums_chunks(data, offsets, mask, ref, s1, s2, b1, b2, 0,
                     (ref.size + CHUNK - 1) // CHUNK)


@njit(cache=True, parallel=True)
def dark_sums_parallel(data, offsets, mask, ref, s1, s2, b1s, b2s):
    """:func:`dark_sums` with the pixel chunks split in ``len(b1s)`` contiguous parts run by
    numba's threads (b1s, b2s: one scratch row per part). Integer sums: identical results."""
    nch = (ref.size + CHUNK - 1) // CHUNK
    parts = b1s.shape[0]
    for p in prange(parts):
        dark_sums_chunks(data, offsets, mask, ref, s1, s2, b1s[p], b2s[p], p * nch // parts,
                         (p + 1) * nch // parts)


def dark_sums_ref(data: np.ndarray, offsets: np.ndarray, mask: int, ref: np.ndarray,
                  s1: np.ndarray, s2: np.ndarray) -> None:
    """NumPy reference of :func:`dark_sums` (int64 throughout)."""
    npix = ref.size
    for off in offsets:
        d = (data[off:off + npix].astype(np.int64) & mask) - ref
        s1 += d
        s2 += d * d


@njit(cache=True, nogil=True)
def gain_mismatch(data, offsets, code, counts):
    """counts[i] += 1 for each frame whose Jungfrau gain bits (15..14) of pixel i are not
    ``code`` (0 for G0, 1 for G1, 3 for G2): pixels that left the run's gain stage."""
    npix = counts.size
    for k in range(offsets.size):
        f = data[offsets[k]:offsets[k] + npix]
        for i in range(np.uint64(npix)):
            counts[i] += np.int32(((np.int32(f[i]) >> 14) & 3) != code)


def gain_mismatch_ref(data: np.ndarray, offsets: np.ndarray, code: int,
                      counts: np.ndarray) -> None:
    """NumPy reference of :func:`gain_mismatch`."""
    npix = counts.size
    for off in offsets:
        counts += ((data[off:off + npix].astype(np.int64) >> 14) & 3) != code


@njit(cache=True, nogil=True)
def dark_moments(n, ref, s1, s2, mean, var):
    """Per-pixel mean and variance (float64, into ``mean``, ``var``) of ``n`` events from the
    exact sums of d = x - ref (see :mod:`calib._dark` for the formulas)."""
    for i in range(np.uint64(ref.size)):
        r = np.int64(ref[i])
        t1 = s1[i] + n * r  # sum of x
        t2 = s2[i] + (2 * s1[i] + n * r) * r  # sum of x^2
        c = t1 // n
        u1 = t1 - n * c  # sum of (x - c), 0 <= u1 < n
        u2 = t2 - (2 * t1 - n * c) * c  # sum of (x - c)^2
        mean[i] = c + u1 / n
        v = (u2 - u1 * (u1 / n)) / n
        var[i] = v if v > 0.0 else 0.0


def dark_moments_ref(n: int, ref: np.ndarray, s1: np.ndarray, s2: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of :func:`dark_moments`: (mean, var)."""
    r = ref.astype(np.int64)
    t1 = s1 + n * r
    t2 = s2 + (2 * s1 + n * r) * r
    c = np.floor_divide(t1, n)
    u1 = t1 - n * c
    u2 = t2 - (2 * t1 - n * c) * c
    v = (u2 - u1 * (u1 / n)) / n
    return c + u1 / n, np.where(v > 0.0, v, 0.0)




@njit(cache=True, nogil=True, inline="always")
def _flip(v):
    """Order-preserving key of float32 bits ``v`` (int64 in [0, 2^32)): negative numbers have
    all bits flipped, others the sign bit. The same map applied to a key gives the bits back
    when its top bit is read the other way round (see :func:`median_keys`)."""
    return v ^ ((v >> 31) * 0x7FFFFFFF + 0x80000000)


@njit(cache=True, nogil=True)
def median_keys(bits, kl, kh, hist):
    """Keys (see :func:`_flip`) of the order statistics kl <= kh = kl or kl + 1 of the
    float32 values whose bits are ``bits`` (uint32, no NaN): a radix selection, one
    histogram of the top 16 key bits, then one of the low 16 bits inside the bin found (two
    passes over the data instead of the ~6 of np.median's introselect). hist: int64[65536]."""
    n = bits.size
    hist[:] = 0
    for i in range(n):
        hist[_flip(np.int64(bits[i])) >> 16] += 1
    bl = bh = -1
    c = 0
    for j in range(65536):
        if bl < 0 and c + hist[j] > kl:
            bl, cl = j, c
        if c + hist[j] > kh:
            bh = j
            break
        c += hist[j]
    if bl != bh:  # adjacent ranks in two bins: the largest of one, the smallest of the next
        lo, hi = np.int64(-1), np.int64(1) << 32
        for i in range(n):
            key = _flip(np.int64(bits[i]))
            if key >> 16 == bl:
                lo = max(lo, key)
            elif key >> 16 == bh:
                hi = min(hi, key)
        return lo, hi
    hist[:] = 0
    for i in range(n):
        key = _flip(np.int64(bits[i]))
        if key >> 16 == bl:
            hist[key & 0xFFFF] += 1
    out = np.empty(2, np.int64)
    c = cl
    m = 0
    for j in range(65536):
        while m < 2 and c + hist[j] > (kl if m == 0 else kh):
            out[m] = (bl << 16) | j
            m += 1
        c += hist[j]
    return out[0], out[1]


def median_f32(values: np.ndarray, hist: np.ndarray | None = None) -> float:
    """The median of float32 ``values`` (no NaN) exactly as np.median of them in float64,
    ~4x faster on large arrays (dark-run thresholds: three medians of every pixel)."""
    a = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if a.size == 0:
        raise ValueError("median of an empty array")
    h = np.empty(65536, np.int64) if hist is None else hist
    keys = median_keys(a.view(np.uint32), (a.size - 1) // 2, a.size // 2, h)
    k = np.array(keys, np.int64)
    bits = (k ^ ((1 - (k >> 31)) * 0x7FFFFFFF + 0x80000000)).astype(np.uint32)
    lo, hi = bits.view(np.float32).astype(np.float64)
    return float((lo + hi) * 0.5)
