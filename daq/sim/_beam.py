"""The accelerator seen by every detector: per-shot electron and x-ray beam properties.

One ``BeamModel`` (by default seed 0) drives the gas detector, the e-beam BLD, the intensity
monitors and the signal strength of every area detector and digitizer, so their correlations
are those a scientist expects: a hit's photon count scales with the gas-detector energy, and
nothing arrives on x-ray-off shots. Values are pure functions of (beam seed, pulse id) plus the
shot's beam and x-ray flags, computed with hashed normals (a few microseconds per shot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from daq.timing import Shot, mix_key, splitmix64

__all__ = ["BeamModel", "BeamState", "event_rng", "hash_normals", "hash_uniforms"]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_TO_UNIT = 2.0**-53


def hash_uniforms(key: int, index: int, n: int) -> list[float]:
    """``n`` uniforms in [0, 1) that depend only on (key, index): a splitmix64 stream."""
    h = splitmix64(key ^ (index & _MASK))
    return [(splitmix64((h + k * _GOLDEN) & _MASK) >> 11) * _TO_UNIT for k in range(n)]


def hash_normals(key: int, index: int, n: int) -> list[float]:
    """``n`` standard normals that depend only on (key, index) (Box-Muller on hashed uniforms)."""
    u = hash_uniforms(key, index, 2 * ((n + 1) // 2))
    out: list[float] = []
    for k in range(0, len(u), 2):
        r = math.sqrt(-2.0 * math.log(1.0 - u[k]))
        out.append(r * math.cos(2.0 * math.pi * u[k + 1]))
        out.append(r * math.sin(2.0 * math.pi * u[k + 1]))
    return out[:n]


def event_rng(key: int, index: int) -> np.random.Generator:
    """A fresh generator for the many draws of one event (~15 us to create)."""
    return np.random.Generator(np.random.PCG64(splitmix64(key ^ (index & _MASK))))


@dataclass(frozen=True)
class BeamState:
    """The beam on one shot. ``relative_energy`` = pulse energy / mean (0 when x-rays off)."""

    beam_present: bool
    xray_on: bool
    charge_nc: float
    l3_energy_mev: float
    photon_energy_ev: float
    pulse_energy_mj: float
    relative_energy: float
    pos_x_mm: float
    pos_y_mm: float


@dataclass(frozen=True)
class BeamModel:
    """Nominal beam and its shot-to-shot jitter (relative rms unless stated).

    The pulse energy is ``mean x (charge / nominal)^1.5 x SASE``, the SASE factor log-normal
    with ``sase_rms``; the photon energy follows ``(L3 energy / nominal)^2``.
    """

    seed: int = 0
    pulse_energy_mj: float = 2.0
    sase_rms: float = 0.15
    charge_nc: float = 0.25
    charge_rms: float = 0.02
    l3_energy_mev: float = 13640.0
    l3_rms: float = 5e-4
    photon_energy_ev: float = 9500.0
    pointing_mm: float = 0.05

    @cached_property
    def _key(self) -> int:
        return mix_key(self.seed, "sim.beam")

    def state(self, shot: Shot) -> BeamState:
        """The beam on ``shot`` (pure)."""
        if not shot.beam_present:
            return BeamState(False, False, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        z = hash_normals(self._key, shot.pulse_id, 6)
        q = self.charge_nc * (1.0 + self.charge_rms * z[0])
        l3 = self.l3_energy_mev * (1.0 + self.l3_rms * z[1])
        eph = self.photon_energy_ev * (l3 / self.l3_energy_mev) ** 2
        rel = 0.0
        if shot.xray_on:
            s = self.sase_rms
            sase = math.exp(s * z[2] - 0.5 * s * s)
            rel = max(q / self.charge_nc, 0.0) ** 1.5 * sase
        return BeamState(
            True,
            shot.xray_on,
            q,
            l3,
            eph,
            self.pulse_energy_mj * rel,
            rel,
            self.pointing_mm * z[3],
            self.pointing_mm * z[4],
        )

    def relative_energy(self, shot: Shot) -> float:
        """Pulse energy / mean on ``shot``: scales every detector's signal."""
        return self.state(shot).relative_energy
