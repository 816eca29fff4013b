"""A small fake detector with known constants, made with numpy for the calib tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FakeDetector:
    """Truth of a synthetic detector: what the calibration should find."""

    shape: tuple[int, int, int]
    banks: tuple[int, int]
    pedestal: np.ndarray  # float64, ADU
    noise: np.ndarray  # per-pixel rms, ADU
    gain: np.ndarray  # multiplicative factor applied by the calibration
    dead: np.ndarray  # bool masks of the bad pixels by kind
    hot: np.ndarray
    noisy: np.ndarray
    cold: np.ndarray

    @property
    def bad(self) -> np.ndarray:
        return self.dead | self.hot | self.noisy | self.cold

    def frame(
        self, rng: np.random.Generator, bank_sigma: float = 0.0, row_sigma: float = 0.0,
        signal: np.ndarray | None = None,
    ) -> np.ndarray:
        """One raw int16 frame: pedestal + noise + common-mode offsets per bank and per bank
        row (+ signal in ADU); dead pixels are stuck at their pedestal."""
        s, r, c = self.shape
        br, bc = self.banks
        v = self.pedestal + self.noise * rng.standard_normal(self.shape)
        if bank_sigma:
            off = rng.normal(0.0, bank_sigma, (s, r // br, c // bc))
            v += np.repeat(np.repeat(off, br, axis=1), bc, axis=2)
        if row_sigma:
            off = rng.normal(0.0, row_sigma, (s, r, c // bc))
            v += np.repeat(off, bc, axis=2)
        if signal is not None:
            v += signal
        v[self.dead] = self.pedestal[self.dead]
        return np.rint(v).astype(np.int16)


def fake_detector(
    rng: np.random.Generator, shape: tuple[int, int, int] = (2, 64, 128),
    banks: tuple[int, int] = (32, 64), bad_fraction: float = 0.005,
) -> FakeDetector:
    """Pedestals ~ 1000 +- 30 ADU, noise 2.5-4 ADU, gains 0.9-1.1, and a fraction of dead
    (stuck), hot (+2000 ADU), noisy (x10 noise) and cold (-800 ADU) pixels."""
    ped = rng.normal(1000.0, 30.0, shape)
    noise = rng.uniform(2.5, 4.0, shape)
    kind = rng.random(shape)
    f = bad_fraction
    dead, hot = kind < f, (kind >= f) & (kind < 2 * f)
    noisy, cold = (kind >= 2 * f) & (kind < 3 * f), (kind >= 3 * f) & (kind < 4 * f)
    ped[hot] += 2000.0
    ped[cold] -= 800.0
    noise[noisy] *= 10.0
    gain = rng.uniform(0.9, 1.1, shape)
    return FakeDetector(shape, banks, ped, noise, gain, dead, hot, noisy, cold)
