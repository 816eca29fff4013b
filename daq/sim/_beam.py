"""The accelerator seen by every detector: per-shot electron and x-ray beam properties.

One ``BeamModel`` (by default seed 0) drives the gas detector, the e-beam BLD, the intensity
monitors and the signal strength of every area detector and digitizer, so their correlations
are those a scientist expects: a hit's photon count scales with the gas-detector energy, and
nothing arrives on x-ray-off shots. Values are pure functions of (beam seed, pulse id) plus the
shot's beam and x-ray flags, computed with hashed normals by one numba kernel for a single shot
(``state``, a few us) or a batch (``states``, ~0.2 us per shot), with identical results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit

from daq.timing import FLAG_BEAM, FLAG_XRAY, Shot, mix_key, splitmix64

from ._draws import normals_into, stream

__all__ = ["BEAM_COLUMNS", "BeamModel", "BeamState", "event_rng", "hash_normals", "hash_uniforms"]

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


#: the columns of ``BeamModel.states`` (the float fields of ``BeamState``, in order)
BEAM_COLUMNS = (
    "charge_nc",
    "l3_energy_mev",
    "photon_energy_ev",
    "pulse_energy_mj",
    "relative_energy",
    "pos_x_mm",
    "pos_y_mm",
)


@njit(cache=True, nogil=True)
def beam_row(key: np.uint64, bp: np.ndarray, pid: np.uint64, flags: np.uint8,
             row: np.ndarray) -> None:  # fmt: skip
    """The beam of one shot into ``row`` (``BEAM_COLUMNS``); ``key, bp`` are
    ``BeamModel.kernel_args``. The one implementation of the beam: ``BeamModel.state`` and every
    batch kernel call it."""
    if not flags & FLAG_BEAM:
        row[:] = 0.0
        return
    pulse_energy, sase_rms, charge, charge_rms = bp[0], bp[1], bp[2], bp[3]
    l3_nom, l3_rms, eph_nom, pointing = bp[4], bp[5], bp[6], bp[7]
    z = np.empty(6)
    normals_into(stream(key, pid), z)
    q = charge * (1.0 + charge_rms * z[0])
    l3 = l3_nom * (1.0 + l3_rms * z[1])
    eph = eph_nom * (l3 / l3_nom) ** 2
    rel = 0.0
    if flags & FLAG_XRAY:
        sase = math.exp(sase_rms * z[2] - 0.5 * sase_rms * sase_rms)
        rel = max(q / charge, 0.0) ** 1.5 * sase
    row[0] = q
    row[1] = l3
    row[2] = eph
    row[3] = pulse_energy * rel
    row[4] = rel
    row[5] = pointing * z[3]
    row[6] = pointing * z[4]


@njit(cache=True, nogil=True)
def _beam_rows(key: np.uint64, bp: np.ndarray, pids: np.ndarray, flags: np.ndarray,
               out: np.ndarray) -> None:  # fmt: skip
    for i in range(pids.size):
        beam_row(key, bp, pids[i], flags[i], out[i])


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

    @cached_property
    def kernel_args(self) -> tuple[np.uint64, np.ndarray]:
        """``(key, consts)``: the first two arguments of ``beam_row`` (for other kernels)."""
        bp = np.array(
            [
                self.pulse_energy_mj,
                self.sase_rms,
                self.charge_nc,
                self.charge_rms,
                self.l3_energy_mev,
                self.l3_rms,
                self.photon_energy_ev,
                self.pointing_mm,
            ],
            dtype=np.float64,
        )
        bp.flags.writeable = False
        return np.uint64(self._key), bp

    def states(self, pulse_ids: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """The beam on N shots (pulse ids, wire flags): float64 (N, 7), ``BEAM_COLUMNS``."""
        pids = np.ascontiguousarray(pulse_ids, dtype=np.uint64)
        fl = np.ascontiguousarray(flags, dtype=np.uint8)
        out = np.empty((pids.size, len(BEAM_COLUMNS)))
        _beam_rows(*self.kernel_args, pids, fl, out)
        return out

    def state(self, shot: Shot) -> BeamState:
        """The beam on ``shot`` (pure; the same numbers as ``states`` for that shot)."""
        if not shot.beam_present:
            return BeamState(False, False, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        row = np.empty((1, len(BEAM_COLUMNS)))
        flags = np.array((FLAG_BEAM | FLAG_XRAY if shot.xray_on else FLAG_BEAM,), np.uint8)
        _beam_rows(*self.kernel_args, np.array((shot.pulse_id,), np.uint64), flags, row)
        return BeamState(True, shot.xray_on, *row[0].tolist())

    def relative_energy(self, shot: Shot) -> float:
        """Pulse energy / mean on ``shot``: scales every detector's signal."""
        return self.state(shot).relative_energy
