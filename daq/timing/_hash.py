"""Counter-based hashing: random-looking numbers that are pure functions of (seed, stream, index).

The timing model and the simulators never keep a stateful random generator across shots: every
per-shot decision is ``uniform(key(seed, stream), pulse_id)``, so any shot can be regenerated
alone, in any order, in any process. The scalar (Python int) and vector (numpy uint64) versions
give identical results; tests check it.
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MUL1 = 0xBF58476D1CE4E5B9
_MUL2 = 0x94D049BB133111EB
_TO_UNIT = 2.0**-53


def splitmix64(x: int) -> int:
    """The splitmix64 finaliser of ``x`` (a bijection of 64-bit integers with good avalanche)."""
    z = (x + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * _MUL1) & _MASK
    z = ((z ^ (z >> 27)) * _MUL2) & _MASK
    return z ^ (z >> 31)


def splitmix64_array(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """``splitmix64`` over a uint64 array (wrapping arithmetic, no warnings)."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MUL1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MUL2)
    return z ^ (z >> np.uint64(31))


def stream_id(name: str) -> int:
    """A stable 32-bit number for a stream name (CRC-32, the same in every process and run)."""
    return zlib.crc32(name.encode())


def mix_key(*words: int | str) -> int:
    """Fold integers and names into one 64-bit key: ``key = splitmix64(key ^ word)``."""
    h = 0x243F6A8885A308D3
    for w in words:
        v = stream_id(w) if isinstance(w, str) else w & _MASK
        h = splitmix64(h ^ v)
    return h


def hash_index(key: int, index: int) -> int:
    """The 64-bit hash of ``index`` (a pulse id, a counter) under ``key``."""
    return splitmix64(key ^ (index & _MASK))


def uniform(key: int, index: int) -> float:
    """A uniform number in [0, 1) that depends only on (key, index)."""
    return (hash_index(key, index) >> 11) * _TO_UNIT


def uniform_array(key: int, index: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``uniform`` over an array of indices."""
    idx = np.asarray(index).astype(np.uint64)
    h = splitmix64_array(idx ^ np.uint64(key))
    return (h >> np.uint64(11)).astype(np.float64) * _TO_UNIT
