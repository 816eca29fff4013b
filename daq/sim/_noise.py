"""The shared bank of standard-normal noise, and where each event reads from it.

Generating millions of fresh normals per event is too slow, so a bank of L standard normals
(L prime, at least 2**22 and at least the detector's pixel count) is made once per (seed, L) and
shared by every detector of the process. Event ``pulse_id`` of a stream reads ``L``-periodic
positions ``start + pixel``, where ``start = (c + pulse_id * G) mod L`` (a Weyl sequence: ``c``
hashed from the detector's seed and name, ``G`` ~ L x golden ratio). Because L is prime, a pixel
reads a different bank entry in every one of L consecutive pulse ids, so each pixel's noise over
events is a set of distinct, independent draws: mean 0, rms 1, no correlation between events.
The bank is stored twice in a row so that a read never wraps.
"""

from __future__ import annotations

import threading

import numpy as np

from daq.timing import mix_key

from ._kernels import NOISE_SCALE

__all__ = ["MIN_BANK_LENGTH", "NoiseStream", "bank_length", "noise_bank"]

MIN_BANK_LENGTH = 1 << 22
_GOLDEN_FRACTION = 0.6180339887498949
_lock = threading.Lock()
_banks: dict[tuple[int, int], np.ndarray] = {}


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    f = 3
    while f * f <= n:
        if n % f == 0:
            return False
        f += 2
    return True


def bank_length(npix: int) -> int:
    """The bank length for a detector of ``npix`` values: the first prime >= max(2**22, npix)."""
    n = max(MIN_BANK_LENGTH, npix)
    while not _is_prime(n):
        n += 1
    return n


def noise_bank(seed: int, length: int) -> np.ndarray:
    """The cached int16 bank (2 x ``length`` values, units of ``NOISE_SCALE``) for ``seed``.

    The normals are shifted and scaled to mean 0 and rms 1 exactly before quantisation.
    """
    key = (seed, length)
    with _lock:
        bank = _banks.get(key)
        if bank is None:
            rng = np.random.Generator(np.random.PCG64(mix_key(seed, "sim.noise_bank", length)))
            z = rng.standard_normal(length)
            z -= z.mean()
            z /= z.std()
            bank = np.empty(2 * length, dtype=np.int16)
            np.clip(np.round(z / NOISE_SCALE), -32767, 32767, out=z)
            bank[:length] = z
            bank[length:] = bank[:length]
            bank.flags.writeable = False
            _banks[key] = bank
        return bank


class NoiseStream:
    """Where one detector's events read the bank: ``start(pulse_id)``, ``values(pulse_id, n)``."""

    def __init__(self, key: int, npix: int, bank_seed: int = 0) -> None:
        self.npix = npix
        self.length = bank_length(npix)
        self.bank_seed = bank_seed
        self._offset = key % self.length
        self._step = max(1, round(self.length * _GOLDEN_FRACTION)) % self.length
        self._bank: np.ndarray | None = None

    @property
    def bank(self) -> np.ndarray:
        """The int16 bank (made on first use)."""
        if self._bank is None:
            self._bank = noise_bank(self.bank_seed, self.length)
        return self._bank

    def start(self, pulse_id: int) -> int:
        """The bank position of flat value 0 for this pulse id."""
        return (self._offset + pulse_id * self._step) % self.length

    def values(self, pulse_id: int, n: int | None = None) -> np.ndarray:
        """Standard normals (float64) for flat values 0..n-1 of this pulse id."""
        n = self.npix if n is None else n
        s = self.start(pulse_id)
        return self.bank[s : s + n].astype(np.float64) * NOISE_SCALE
