"""numba kernels of the offline reductions (droplets, greedy photon guess), with NumPy references.

The kernels write into outputs the caller allocates. The ``*_reference`` functions compute the
same thing a different, obviously correct way (breadth-first flood fill; a plain Python greedy
loop); tests compare the two on random inputs.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numba import njit

# --------------------------------------------------------------------------------------------
# Droplets: threshold, 4-connected labels within a tile, one-pixel growth at a lower threshold


@njit(cache=True)
def _find(parent, i):  # pragma: no cover - compiled
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@njit(cache=True)
def droplet_label_kernel(img, thr, low, good, labels, parent):  # pragma: no cover - compiled
    """Label droplets of ``img`` (tiles, rows, cols) in ``labels`` (same shape, int32).

    Seeds are good pixels >= ``thr``; a good pixel >= ``low`` that is a 4-neighbour of a seed
    joins too (one growth step). Members are 4-connected within a tile. ``thr``, ``low`` hold one
    value or one per pixel (flat). Labels are 1..n in raster order of each droplet's first
    pixel; 0 elsewhere. Returns n. ``parent`` is int64 scratch of the image's size.
    """
    nt, nr, nc = img.shape
    per_thr = thr.size > 1
    per_low = low.size > 1
    npix = nt * nr * nc
    seed = np.zeros(npix, np.bool_)
    member = np.zeros(npix, np.bool_)
    for t in range(nt):
        for r in range(nr):
            for c in range(nc):
                i = (t * nr + r) * nc + c
                if good[t, r, c] and img[t, r, c] >= thr[i if per_thr else 0]:
                    seed[i] = True
                    member[i] = True
    for t in range(nt):
        for r in range(nr):
            for c in range(nc):
                i = (t * nr + r) * nc + c
                if member[i] or not good[t, r, c] or img[t, r, c] < low[i if per_low else 0]:
                    continue
                if ((r > 0 and seed[i - nc]) or (r + 1 < nr and seed[i + nc])
                        or (c > 0 and seed[i - 1]) or (c + 1 < nc and seed[i + 1])):
                    member[i] = True
    for i in range(npix):
        parent[i] = i
    for t in range(nt):
        for r in range(nr):
            for c in range(nc):
                i = (t * nr + r) * nc + c
                if not member[i]:
                    continue
                if c > 0 and member[i - 1]:
                    a, b = _find(parent, i), _find(parent, i - 1)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
                if r > 0 and member[i - nc]:
                    a, b = _find(parent, i), _find(parent, i - nc)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    n = 0
    flat = labels.reshape(-1)
    for i in range(npix):
        if not member[i]:
            flat[i] = 0
            continue
        root = _find(parent, i)
        if root == i:
            n += 1
            flat[i] = n
        else:
            flat[i] = flat[root]
    return n


def droplet_label_reference(img, thr, low, good):
    """Breadth-first flood fill version of :func:`droplet_label_kernel`."""
    nt, nr, nc = img.shape
    thr_a = np.broadcast_to(np.asarray(thr, dtype=np.float64).reshape(-1) if np.size(thr) > 1
                            else np.asarray(thr, dtype=np.float64).reshape(()), (nt * nr * nc,))
    low_a = np.broadcast_to(np.asarray(low, dtype=np.float64).reshape(-1) if np.size(low) > 1
                            else np.asarray(low, dtype=np.float64).reshape(()), (nt * nr * nc,))
    thr3, low3 = thr_a.reshape(img.shape), low_a.reshape(img.shape)
    seed = good & (img >= thr3)
    grow = np.zeros_like(seed)
    grow[:, 1:, :] |= seed[:, :-1, :]
    grow[:, :-1, :] |= seed[:, 1:, :]
    grow[:, :, 1:] |= seed[:, :, :-1]
    grow[:, :, :-1] |= seed[:, :, 1:]
    member = seed | (grow & good & (img >= low3))
    labels = np.zeros(img.shape, np.int32)
    n = 0
    for t, r, c in zip(*np.nonzero(member), strict=True):
        if labels[t, r, c]:
            continue
        n += 1
        labels[t, r, c] = n
        queue = deque([(r, c)])
        while queue:
            y, x = queue.popleft()
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < nr and 0 <= xx < nc and member[t, yy, xx] and not labels[t, yy, xx]:
                    labels[t, yy, xx] = n
                    queue.append((yy, xx))
    return labels, n


@njit(cache=True)
def droplet_stats_kernel(img, labels, n, adu, npix, row, col, tile):  # pragma: no cover
    """Per droplet (label k -> index k-1): ADU sum, pixel count, intensity-weighted row/col
    (in the tile) and tile."""
    nt, nr, nc = img.shape
    for k in range(n):
        adu[k] = 0.0
        npix[k] = 0
        row[k] = 0.0
        col[k] = 0.0
    for t in range(nt):
        for r in range(nr):
            for c in range(nc):
                lab = labels[t, r, c]
                if lab == 0:
                    continue
                k = lab - 1
                v = img[t, r, c]
                adu[k] += v
                npix[k] += 1
                row[k] += v * r
                col[k] += v * c
                tile[k] = t
    for k in range(n):
        if adu[k] != 0:
            row[k] /= adu[k]
            col[k] /= adu[k]


# --------------------------------------------------------------------------------------------
# droplet2Photons: the greedy guess for droplets of several photons


@njit(cache=True)
def greedy_photons_kernel(img, labels, n, adu, nph, tile, rowc, colc, aduspphot,
                          out_t, out_r, out_c):  # pragma: no cover - compiled
    """Place ``nph[k]`` photons of each droplet k; returns how many were placed.

    One photon: at the droplet's centre of mass. A one-pixel droplet: all at that pixel.
    Otherwise on the droplet's sub-image (its pixels only): floor(value/aduspphot) photons at
    each pixel centre; each further photon goes to the pixel with the largest remainder t
    (then t = 0 there), shifted by s = 1 - t toward its largest-remainder 4-neighbour (tests in
    the order up, down, left, right), whose remainder drops by s (not below 0).
    """
    nt, nr, nc = img.shape
    # bounding boxes
    r0 = np.full(n, nr, np.int64)
    r1 = np.full(n, -1, np.int64)
    c0 = np.full(n, nc, np.int64)
    c1 = np.full(n, -1, np.int64)
    cnt = np.zeros(n, np.int64)
    for t in range(nt):
        for r in range(nr):
            for c in range(nc):
                lab = labels[t, r, c]
                if lab == 0:
                    continue
                k = lab - 1
                cnt[k] += 1
                r0[k] = min(r0[k], r)
                r1[k] = max(r1[k], r)
                c0[k] = min(c0[k], c)
                c1[k] = max(c1[k], c)
    m = 0
    for k in range(n):
        p = nph[k]
        if p <= 0:
            continue
        t = tile[k]
        if p == 1:
            out_t[m] = t
            out_r[m] = rowc[k]
            out_c[m] = colc[k]
            m += 1
            continue
        if cnt[k] == 1:
            for _ in range(p):
                out_t[m] = t
                out_r[m] = r0[k]
                out_c[m] = c0[k]
                m += 1
            continue
        h = r1[k] - r0[k] + 3
        w = c1[k] - c0[k] + 3
        rem = np.zeros((h, w))
        placed = 0
        for r in range(r0[k], r1[k] + 1):
            for c in range(c0[k], c1[k] + 1):
                if labels[t, r, c] != k + 1:
                    continue
                f = img[t, r, c] / aduspphot
                if f < 0:
                    f = 0.0
                whole = int(np.floor(f))
                for _ in range(whole):
                    if placed < p:
                        out_t[m] = t
                        out_r[m] = r
                        out_c[m] = c
                        m += 1
                        placed += 1
                rem[r - r0[k] + 1, c - c0[k] + 1] = f - whole
        while placed < p:
            best = -1.0
            bi = 0
            bj = 0
            for i in range(h):
                for j in range(w):
                    if rem[i, j] > best:
                        best = rem[i, j]
                        bi = i
                        bj = j
            s = 1.0 - best
            rem[bi, bj] = 0.0
            nb = -1.0
            di = 0
            dj = 0
            for d in range(4):
                ii = bi + (-1, 1, 0, 0)[d]
                jj = bj + (0, 0, -1, 1)[d]
                if rem[ii, jj] > nb:
                    nb = rem[ii, jj]
                    di = (-1, 1, 0, 0)[d]
                    dj = (0, 0, -1, 1)[d]
            rem[bi + di, bj + dj] = max(0.0, nb - s)
            out_t[m] = t
            out_r[m] = r0[k] + bi - 1 + s * di
            out_c[m] = c0[k] + bj - 1 + s * dj
            m += 1
            placed += 1
    return m


def greedy_photons_reference(img, labels, adu, nph, tile, rowc, colc, aduspphot):
    """Plain Python version of :func:`greedy_photons_kernel`: (tile, row, col) arrays."""
    out: list[tuple[float, float, float]] = []
    for k in range(len(nph)):
        p = int(nph[k])
        if p <= 0:
            continue
        t = int(tile[k])
        if p == 1:
            out.append((t, rowc[k], colc[k]))
            continue
        rr, cc = np.nonzero(labels[t] == k + 1)
        if rr.size == 1:
            out.extend([(t, rr[0], cc[0])] * p)
            continue
        r0, c0 = rr.min(), cc.min()
        rem = np.zeros((rr.max() - r0 + 3, cc.max() - c0 + 3))
        placed = 0
        for r, c in sorted(zip(rr.tolist(), cc.tolist(), strict=True)):
            f = max(0.0, float(img[t, r, c]) / aduspphot)
            whole = int(np.floor(f))
            take = min(whole, p - placed)
            out.extend([(t, r, c)] * take)
            placed += take
            rem[r - r0 + 1, c - c0 + 1] = f - whole
        while placed < p:
            bi, bj = np.unravel_index(int(np.argmax(rem)), rem.shape)
            s = 1.0 - rem[bi, bj]
            rem[bi, bj] = 0.0
            best, di, dj = -1.0, 0, 0
            for ddi, ddj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                if rem[bi + ddi, bj + ddj] > best:
                    best, di, dj = rem[bi + ddi, bj + ddj], ddi, ddj
            rem[bi + di, bj + dj] = max(0.0, best - s)
            out.append((t, r0 + bi - 1 + s * di, c0 + bj - 1 + s * dj))
            placed += 1
    a = np.array(out, dtype=np.float64).reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2]
