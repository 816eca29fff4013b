"""Exact median of float32 groups, fast: the selection behind common mode.

A common-mode group (a bank row of 194 pixels for CSPAD) is too small for a sort to pay and there
are too many of them (11,840 per CSPAD event) for a branchy quickselect (~3 us each here). The
median is found instead with a few passes that LLVM vectorises:

1. counting passes (#values below a pivot) move a pivot from about the mean by the secant method
   on the empirical distribution until it has exactly the right number of values below it: then
   one more pass takes the values on either side of the pivot (on integer keys: the float bits
   made order-preserving, whose min/max vectorise where float ones do not without fastmath),
   which are the middle order statistics (small groups, <= 256 values);
2. if that takes too long (ties, odd distributions), small groups step from value to
   neighbouring value instead; large groups (banks) copy a narrow window of values and narrow it
   again.

Ineligible pixels are stored as +inf, so gathering a group needs no compaction. The result is
exactly ``np.median`` (the mean of the two middle values for an even count) whatever the
estimates; Wirth's selection is the fallback when a window guess misses twice.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _wirth(buf, n, k):
    """k-th smallest of buf[:n], leaving buf[:k] <= buf[k] (Wirth's selection)."""
    lo, hi = 0, n - 1
    while lo < hi:
        x = buf[k]
        i, j = lo, hi
        while True:
            while buf[i] < x:
                i += 1
            while x < buf[j]:
                j -= 1
            if i <= j:
                buf[i], buf[j] = buf[j], buf[i]
                i += 1
                j -= 1
            if i > j:
                break
        if j < k:
            lo = i
        if k < i:
            hi = j
    return buf[k]


@njit(cache=True, inline="always")
def _count_lt_le(src, n, x):
    """#(v < x) and #(v <= x) over src[:n]; int32 sums vectorise 8 wide (int64 ones 2.4x slower)."""
    lt = np.int32(0)
    le = np.int32(0)
    for i in range(n):
        v = src[i]
        lt = np.int32(lt + np.int32(v < x))
        le = np.int32(le + np.int32(v <= x))
    return np.int64(lt), np.int64(le)


@njit(cache=True, inline="always")
def _rank_pick(src, n, kl, kh):
    """Order statistics kl, kh of a few values by counting ranks (no data-dependent branches
    in the inner loop, unlike a sort)."""
    lo = src[0]
    hi = src[0]
    for i in range(n):
        x = src[i]
        lt, le = _count_lt_le(src, n, x)
        if lt <= kl < le:
            lo = x
        if lt <= kh < le:
            hi = x
    return lo, hi


@njit(cache=True, inline="always")
def _window(src, n, a, b, dst):
    """Count of src[:n] below a; the values in [a, b] copied to dst. Returns (below, copied)."""
    below = 0
    m = np.uint64(0)
    for i in range(n):
        v = src[i]
        below += v < a
        dst[m] = v
        m += np.uint64((v >= a) & (v <= b))
    return below, np.int64(m)


@njit(cache=True, inline="always")
def _select_pair(buf, n, kl, kh, a, b, tmp):
    """Order statistics kl, kh (= kl or kl + 1) of buf[:n], which may be reordered.

    [a, b] is a guess of an interval holding both. Windows narrow the values (by interpolation)
    until at most 24 remain, which are ranked by counting. A guess that misses is stretched
    towards the missed side (twice at most), then Wirth's selection takes over.
    """
    src = buf
    dst = tmp
    misses = 0
    while n > 24:
        below, m = _window(src, n, a, b, dst)
        if below <= kl and below + m > kh and m < n:
            src, dst = dst, src
            n = m
            kl -= below
            kh -= below
            width = np.float64(b) - np.float64(a)
            c = np.float64(a) + width * (kl + 0.5) / n
            h = width * (1.25 * np.sqrt(n) + 2.0) / n
            a = np.float32(c - h)
            b = np.float32(c + h)
            continue
        if misses < 2 and m < n:
            misses += 1
            width = 4.0 * (np.float64(b) - np.float64(a)) + 1e-30
            if below > kl:
                a = np.float32(np.float64(a) - width)
            else:
                b = np.float32(np.float64(b) + width)
            continue
        hi = _wirth(src, n, kh)  # plain selection
        lo = hi
        if kl < kh:
            lo = src[0]
            for i in range(1, kh):
                lo = max(lo, src[i])
        return lo, hi
    return _rank_pick(src, n, kl, kh)


@njit(cache=True, inline="always")
def _key(b):
    """Order-preserving int32 key of float32 bits ``b`` (sign-magnitude to two's complement;
    -0.0 and +0.0 share key 0, as they compare equal). The map is its own inverse on keys."""
    k = b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF))
    return np.int32(k + np.int32(k == np.int32(-1)))


@njit(cache=True, inline="always")
def _count_keys(keys, n, y):
    """#(k < y) and #(k <= y) over keys[:n]."""
    lt = np.int32(0)
    le = np.int32(0)
    for i in range(n):
        k = keys[i]
        lt = np.int32(lt + np.int32(k < y))
        le = np.int32(le + np.int32(k <= y))
    return np.int64(lt), np.int64(le)


@njit(cache=True, inline="always")
def _key_above(keys, n, y):
    best = np.int32(0x7FFFFFFF)
    for i in range(n):
        k = keys[i]
        best = min(best, k if k > y else np.int32(0x7FFFFFFF))
    return best


@njit(cache=True, inline="always")
def _key_below(keys, n, y):
    best = np.int32(-0x80000000)
    for i in range(n):
        k = keys[i]
        best = max(best, k if k < y else np.int32(-0x80000000))
    return best


@njit(cache=True, inline="always")
def _walk(buf, n, kl, kh, x, tmp):
    """Order statistics kl and kh = kl or kl + 1 of buf[:n], stepping from value to
    neighbouring value from ``x``, on integer keys in ``tmp`` (size >= n + 1)."""
    keys = tmp.view(np.int32)
    bits = buf.view(np.int32)
    for i in range(n):
        keys[i] = _key(bits[i])
    tmp[n] = x
    y = _key(keys[n])
    lt, le = _count_keys(keys, n, y)
    while kl < lt:
        y = _key_below(keys, n, y)
        le = lt
        lt = _count_keys(keys, n, y)[0]
    while kl >= le:
        y = _key_above(keys, n, y)
        lt = le
        le = _count_keys(keys, n, y)[1]
    z = y if kh < le else _key_above(keys, n, y)
    keys[n] = _key(z)
    hi = tmp[n]
    keys[n] = _key(y)
    return tmp[n], hi


@njit(cache=True, inline="always")
def _count_lt(src, n, x):
    """#(v < x) over src[:n]."""
    lt = np.int32(0)
    for i in range(n):
        lt = np.int32(lt + np.int32(src[i] < x))
    return np.int64(lt)


@njit(cache=True, inline="always")
def _neighbours(bits, n, y):
    """The largest key below y and the smallest key at or above y over the float bits
    bits[:n] (keys made on the fly; selects written as bit masks, which vectorise)."""
    lowest = np.int32(-0x80000000)
    highest = np.int32(0x7FFFFFFF)
    below = lowest
    above = highest
    for i in range(np.uint64(n)):
        k = _key(bits[i])
        c = np.int32(-np.int32(k < y))  # all ones where k < y
        below = max(below, np.int32((k & c) | (lowest & ~c)))
        above = min(above, np.int32((k & ~c) | (highest & c)))
    return below, above


@njit(cache=True, inline="always")
def _pivot_search(buf, n, kl, kh, mu, slope, tmp):
    """(found, lo, hi, slope): order statistics kl and kh = kl or kl + 1 of buf[:n], from a
    pivot with kh <= #(values below it) <= kl + 1 and the values either side of it.

    Each secant step aims at the middle of the acceptable ranks; ``slope`` (values per unit)
    is refined on the way. Gives up (found False) after 10 counting passes."""
    lo_ok, hi_ok = kh, kl + 1
    target = 0.5 * (lo_ok + hi_ok) - 0.5  # as a continuous rank: #below - 0.5
    x = np.float32(mu)
    lt = _count_lt(buf, n, x)
    for _ in range(10):
        if lo_ok <= lt <= hi_ok:
            slot = tmp[n:n + 1]  # float <-> key through one scratch word
            slot[0] = x
            below, above = _neighbours(buf.view(np.int32), n, _key(slot.view(np.int32)[0]))
            slot.view(np.int32)[0] = _key(below if lt > kl else above)
            lo = slot[0]
            slot.view(np.int32)[0] = _key(above if lt <= kh else below)
            return True, lo, slot[0], slope
        x2 = np.float32(np.float64(x) + (target - (lt - 0.5)) / slope)
        if x2 == x:
            break
        lt2 = _count_lt(buf, n, x2)
        if lt2 != lt:
            slope = max((lt2 - lt) / (np.float64(x2) - np.float64(x)), 1e-3 * slope)
        x, lt = x2, lt2
    return False, np.float32(0.0), np.float32(0.0), slope


@njit(cache=True, inline="always")
def _median(buf, n, nok, mu, tmp, state):
    """Median of the ``nok`` finite values of buf[:n] (the rest are +inf); reorders buf.

    ``mu`` (about the mean) and ``state[0]`` (a spread estimate kept between groups, NaN at
    first) only steer the search: the result is exact whatever they are.
    """
    sig = state[0]
    if not sig > 0.0:  # no estimate yet: measure this group
        q = 0.0
        for i in range(n):
            v = buf[i]
            if v < np.inf:
                q += (v - mu) * (v - mu)
        sig = max(np.sqrt(q / nok), 1e-6 * (abs(mu) + 1.0))
    kl = (nok - 1) // 2
    kh = nok // 2
    if n <= 256:
        found, lo, hi, slope = _pivot_search(buf, n, kl, kh, mu, 0.4 * nok / sig, tmp)
        if found:
            state[0] = 0.9 * sig + 0.1 * min(max(0.4 * nok / slope, 0.5 * sig), 2.0 * sig)
            return np.float32((np.float64(lo) + np.float64(hi)) * 0.5)
    target = 0.5 * (kl + kh) + 0.5
    slope = 0.4 * nok / sig  # values per unit near the centre of a Gaussian
    x = np.float32(mu)
    lt, le = _count_lt_le(buf, n, x)
    for _ in range(4):
        r = 0.5 * (lt + le)
        if abs(r - target) <= 2.0 or (lt <= kl and kh < le):
            break
        x2 = np.float32(np.float64(x) + (target - r) / slope)
        if x2 == x:
            break
        lt2, le2 = _count_lt_le(buf, n, x2)
        r2 = 0.5 * (lt2 + le2)
        if r2 != r:
            slope = max((r2 - r) / (np.float64(x2) - np.float64(x)), 1e-3 * slope)
        x, lt, le = x2, lt2, le2
    state[0] = 0.9 * sig + 0.1 * min(max(0.4 * nok / slope, 0.5 * sig), 2.0 * sig)
    if n <= 256:
        lo, hi = _walk(buf, n, kl, kh, x, tmp)
    else:
        d = (1.5 * abs(0.5 * (lt + le) - target) + 4.0) / slope
        lo, hi = _select_pair(buf, n, kl, kh, np.float32(np.float64(x) - d),
                              np.float32(np.float64(x) + d), tmp)
    return np.float32((np.float64(lo) + np.float64(hi)) * 0.5)


def median_ref(values: np.ndarray) -> np.float32:
    """NumPy reference of :func:`_median` (tested through the common-mode kernel)."""
    return np.float32(np.median(np.asarray(values, np.float32)))
