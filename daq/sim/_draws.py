"""Counter-based random draws compiled with numba: the per-shot randomness of the light detectors.

A stream is a 64-bit word ``h = splitmix64(key ^ index)`` (``index`` a pulse id); its k-th
uniform is ``(splitmix64(h + k * golden) >> 11) * 2**-53``, exactly ``hash_uniforms`` of
``daq.sim._beam``. Normals are Box-Muller pairs on consecutive uniforms, as ``hash_normals``.
Poisson and gamma variates read their own sub-streams, so a draw never depends on how many
uniforms another draw consumed.

These functions are the single implementation behind both ``read(shot)`` and ``read_batch``: a
shot's values do not depend on which path computed them. They are compiled without fast-math
(no reassociation, no FMA contraction), and their libm calls (log, cos, exp) are not vectorised
(numba does not use SVML here; ``tests/sim/test_sim_batch.py`` checks single == batch).

numba's on-disk cache (``cache=True``) does not notice when a callee in another module changes:
after editing this module or ``beam_row``, delete ``daq/sim/__pycache__/*.nb[ic]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "gamma",
    "normal",
    "normals_into",
    "poisson",
    "splitmix64",
    "stream",
    "substream",
    "uniform",
]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TO_UNIT = 2.0**-53
_TWO_PI = 2.0 * math.pi
#: Poisson means above this are drawn as sums of chunks (exp(-mean) stays far from underflow)
_POISSON_CHUNK = 64.0


@njit(cache=True, nogil=True, inline="always")
def splitmix64(x: np.uint64) -> np.uint64:
    """The splitmix64 finaliser (same as ``daq.timing.splitmix64``) on a uint64."""
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _MUL1
    z = (z ^ (z >> _S27)) * _MUL2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True, inline="always")
def stream(key: np.uint64, index: np.uint64) -> np.uint64:
    """The stream word of ``index`` (a pulse id) under ``key``."""
    return splitmix64(key ^ index)


@njit(cache=True, nogil=True, inline="always")
def uniform(h: np.uint64, k: int) -> float:
    """Uniform number ``k`` of stream ``h``, in [0, 1)."""
    return np.float64(splitmix64(h + np.uint64(k) * _GOLDEN) >> _S11) * _TO_UNIT


@njit(cache=True, nogil=True)
def normals_into(h: np.uint64, out: np.ndarray) -> None:
    """Standard normals 0..n-1 of stream ``h`` into ``out`` (Box-Muller on uniform pairs)."""
    n = out.size
    for k in range(0, n, 2):
        r = math.sqrt(-2.0 * math.log(1.0 - uniform(h, k)))
        a = _TWO_PI * uniform(h, k + 1)
        out[k] = r * math.cos(a)
        if k + 1 < n:
            out[k + 1] = r * math.sin(a)


@njit(cache=True, nogil=True)
def normal(h: np.uint64, k: int) -> float:
    """One standard normal from uniforms ``k`` and ``k + 1`` of stream ``h``."""
    r = math.sqrt(-2.0 * math.log(1.0 - uniform(h, k)))
    return r * math.cos(_TWO_PI * uniform(h, k + 1))


@njit(cache=True, nogil=True)
def poisson(h: np.uint64, mean: float) -> int:
    """A Poisson(``mean``) count from stream ``h`` (inversion, one uniform per chunk of 64)."""
    total = 0
    left = mean
    k = 0
    while left > 0.0:
        lam = min(left, _POISSON_CHUNK)
        left -= lam
        u = uniform(h, k)
        k += 1
        n = 0
        p = math.exp(-lam)
        s = p
        while u > s:
            n += 1
            p *= lam / n
            s += p
            if n > lam and p <= 1e-17 * s:  # the rest of the tail is below rounding
                break
        total += n
    return total


@njit(cache=True, nogil=True)
def gamma(h: np.uint64, shape: float, scale: float) -> float:
    """A Gamma(``shape``, ``scale``) variate from stream ``h`` (Marsaglia-Tsang, boosted
    for ``shape < 1``); each try reads 3 uniforms."""
    a = shape if shape >= 1.0 else shape + 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    k = 0
    while True:
        x = normal(h, k)
        u = 1.0 - uniform(h, k + 2)
        k += 3
        t = 1.0 + c * x
        if t <= 0.0:
            continue
        v = t * t * t
        if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
            g = d * v
            break
    if shape < 1.0:
        g *= (1.0 - uniform(h, k)) ** (1.0 / shape)
    return g * scale


@njit(cache=True, nogil=True, inline="always")
def substream(h: np.uint64, k: int) -> np.uint64:
    """Sub-stream ``k`` of stream ``h`` (the 64-bit word behind its uniform ``k``)."""
    return splitmix64(h + np.uint64(k) * _GOLDEN)
