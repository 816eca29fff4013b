"""Beam-line data: scalar detectors that follow the shared ``BeamModel``.

- ``gasdet``: FEE gas detector, 4 channels ``f_11_ENRC .. f_22_ENRC`` in mJ. Channel pairs share a
  detector noise term, so 11/12 and 21/22 correlate more than across pairs; ~0 on x-ray off.
- ``ebeam``: electron beam, psana names (``ebeamCharge`` nC, ``ebeamL3Energy`` MeV,
  ``ebeamPhotonEnergy`` eV, ``ebeamLTUPosX``/``Y`` mm, ``ebeamPkCurrBC2`` A); zeros with no beam.
- ``ipm``: intensity-position monitor, 4 diodes (``channel``: top, right, bottom, left, in V) that
  see pulse energy x ``response`` and the beam position; ``sum``, ``xpos``, ``ypos`` (mm).
- ``encoder``: motor encoders, ``value`` (counts, uint32) and ``position`` (mm): a slow sine drift.
- ``phasecav``: phase cavities, ``fitTime1``/``2`` (ps, common arrival jitter) and
  ``charge1``/``2`` (pC, the bunch charge).

All values are hashed normals of (seed, name, pulse id): a few microseconds per shot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from daq.timing import Shot

from ._base import Detector, FieldSpec, Params
from ._beam import BeamModel, hash_normals

__all__ = ["Ebeam", "Encoder", "Gasdet", "Ipm", "Phasecav", "ScalarDetector"]

_F8 = np.dtype("<f8")


@dataclass(frozen=True)
class BldParams(Params):
    """Parameters shared by the BLD detectors: ``beam_seed`` picks the shared beam."""

    beam_seed: int = 0
    pulse_energy_mj: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_int("beam_seed", 0, (1 << 64) - 1)
        self.check_float("pulse_energy_mj", 0.0, open_lo=True)


class ScalarDetector(Detector):
    """A detector of float64 scalars named by ``names``; subclasses implement ``values``."""

    params_class: ClassVar[type[Params]] = BldParams
    params: BldParams
    names: ClassVar[tuple[str, ...]]

    def __init__(self, name: str, params: Params | None = None, **kwargs: Any) -> None:
        super().__init__(name, params, **kwargs)
        self.beam = BeamModel(
            seed=self.params.beam_seed, pulse_energy_mj=self.params.pulse_energy_mj
        )
        self._fields = self._make_fields()

    def _make_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(FieldSpec(n, _F8) for n in self.names)

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return self._fields

    def values(self, shot: Shot) -> list[float]:
        raise NotImplementedError

    def read(self, shot: Shot, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        return {n: np.float64(v) for n, v in zip(self.names, self.values(shot), strict=True)}


class Gasdet(ScalarDetector):
    kind = "gasdet"
    names = ("f_11_ENRC", "f_12_ENRC", "f_21_ENRC", "f_22_ENRC")
    _calib = (1.0, 1.02, 0.97, 0.99)

    def values(self, shot: Shot) -> list[float]:
        e = self.beam.state(shot).pulse_energy_mj
        z = hash_normals(self._key, shot.pulse_id, 6)
        pair = (z[4], z[4], z[5], z[5])
        return [
            e * c * (1.0 + 0.03 * pz + 0.02 * zi) + 0.002 * zi
            for c, pz, zi in zip(self._calib, pair, z[:4], strict=True)
        ]

    def truth_event(self, shot: Shot) -> dict[str, Any]:
        return {"pulse_energy_mj": self.beam.state(shot).pulse_energy_mj}


class Ebeam(ScalarDetector):
    kind = "ebeam"
    names = (
        "ebeamCharge",
        "ebeamL3Energy",
        "ebeamPhotonEnergy",
        "ebeamLTUPosX",
        "ebeamLTUPosY",
        "ebeamPkCurrBC2",
    )

    def values(self, shot: Shot) -> list[float]:
        b = self.beam.state(shot)
        if not b.beam_present:
            return [0.0] * len(self.names)
        z = hash_normals(self._key, shot.pulse_id, 4)
        peak_current = 3000.0 * b.charge_nc / self.beam.charge_nc * (1.0 + 0.05 * z[3])
        return [
            b.charge_nc * (1.0 + 0.002 * z[0]),
            b.l3_energy_mev + 0.5 * z[1],
            b.photon_energy_ev + 0.5 * z[2],
            b.pos_x_mm * 0.2,
            b.pos_y_mm * 0.2,
            peak_current,
        ]

    def truth_event(self, shot: Shot) -> dict[str, Any]:
        b = self.beam.state(shot)
        return {"charge_nc": b.charge_nc, "photon_energy_ev": b.photon_energy_ev}


@dataclass(frozen=True)
class IpmParams(BldParams):
    """``response`` V per mJ on the diode sum; ``scale`` mm of the position formula."""

    response: float = 1.0
    scale: float = 1.0
    diode_noise: float = 0.005

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_float("response", 0.0, open_lo=True)
        self.check_float("scale", 0.0, open_lo=True)
        self.check_float("diode_noise", 0.0)


class Ipm(ScalarDetector):
    kind = "ipm"
    params_class = IpmParams
    params: IpmParams
    names = ("sum", "xpos", "ypos")

    def _make_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("channel", _F8, (4,)), *super()._make_fields())

    def read(self, shot: Shot, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        p = self.params
        b = self.beam.state(shot)
        z = hash_normals(self._key, shot.pulse_id, 4)
        q = b.pulse_energy_mj * p.response / 4.0
        x, y = b.pos_x_mm / p.scale, b.pos_y_mm / p.scale
        shares = (1.0 + y, 1.0 + x, 1.0 - y, 1.0 - x)
        ch = self._buffer(out, self.fields[0])
        ch[:] = [q * s + p.diode_noise * zi for s, zi in zip(shares, z, strict=True)]
        top, right, bottom, left = (float(v) for v in ch)
        lr, tb = right + left, top + bottom
        xpos = p.scale * (right - left) / lr if lr > 0 else 0.0
        ypos = p.scale * (top - bottom) / tb if tb > 0 else 0.0
        return {
            "channel": ch,
            "sum": np.float64(lr + tb),
            "xpos": np.float64(xpos),
            "ypos": np.float64(ypos),
        }

    def values(self, shot: Shot) -> list[float]:
        r = self.read(shot)
        return [float(r[n]) for n in self.names]

    def truth_event(self, shot: Shot) -> dict[str, Any]:
        b = self.beam.state(shot)
        return {"pulse_energy_mj": b.pulse_energy_mj, "x_mm": b.pos_x_mm, "y_mm": b.pos_y_mm}


@dataclass(frozen=True)
class EncoderParams(Params):
    """``channels`` encoders at ``center`` mm, drifting ``amplitude`` mm with ``period`` s."""

    channels: int = 1
    center: float = 10.0
    amplitude: float = 0.01
    period: float = 600.0
    resolution: float = 1e-4
    noise: float = 2e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_int("channels", 1, 16)
        self.check_float("center", 0.0)
        self.check_float("amplitude", 0.0)
        self.check_float("period", 0.0, open_lo=True)
        self.check_float("resolution", 0.0, open_lo=True)
        self.check_float("noise", 0.0)


class Encoder(Detector):
    kind = "encoder"
    params_class = EncoderParams
    params: EncoderParams

    def __init__(self, name: str, params: EncoderParams | None = None, **kwargs: Any) -> None:
        super().__init__(name, params, **kwargs)
        n = self.params.channels
        self._fields = (FieldSpec("value", np.dtype("<u4"), (n,)), FieldSpec("position", _F8, (n,)))
        self._phase = (self._key & 0xFFFF) / 0xFFFF * 2.0 * math.pi

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return self._fields

    def read(self, shot: Shot, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        p = self.params
        value = self._buffer(out, self.fields[0])
        position = self._buffer(out, self.fields[1])
        z = hash_normals(self._key, shot.pulse_id, p.channels)
        phase = self._phase
        t = shot.posix_time
        for c in range(p.channels):
            drift = p.amplitude * math.sin(2.0 * math.pi * t / p.period + phase + c)
            counts = round((p.center + drift + p.noise * z[c]) / p.resolution)
            value[c] = max(counts, 0)
            position[c] = value[c] * p.resolution
        return {"value": value, "position": position}


@dataclass(frozen=True)
class PhasecavParams(BldParams):
    """``jitter`` ps of the common arrival time, ``noise`` ps per cavity."""

    jitter: float = 0.05
    noise: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_float("jitter", 0.0)
        self.check_float("noise", 0.0)


class Phasecav(ScalarDetector):
    kind = "phasecav"
    params_class = PhasecavParams
    params: PhasecavParams
    names = ("fitTime1", "fitTime2", "charge1", "charge2")

    def values(self, shot: Shot) -> list[float]:
        b = self.beam.state(shot)
        if not b.beam_present:
            return [0.0] * 4
        p = self.params
        z = hash_normals(self._key, shot.pulse_id, 5)
        common = p.jitter * z[0]
        q_pc = b.charge_nc * 1000.0
        return [
            0.25 + common + p.noise * z[1],
            -0.10 + common + p.noise * z[2],
            q_pc * (1.0 + 0.003 * z[3]),
            q_pc * 0.98 * (1.0 + 0.003 * z[4]),
        ]
