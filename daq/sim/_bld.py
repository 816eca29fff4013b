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

All values are hashed normals of (seed, name, pulse id), computed by one numba kernel per kind
that fills rows of a float64 table: ``read(shot)`` runs it on one shot (a few us), ``read_batch``
on a whole batch (well under 1 us per shot), with identical results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numba import njit

from daq.timing import EPICS_EPOCH_OFFSET, FLAG_BEAM, Shot

from ._base import Detector, FieldSpec, Params, batch_columns, shot_columns
from ._beam import BeamModel, beam_row
from ._draws import normals_into, stream

__all__ = ["Ebeam", "Encoder", "Gasdet", "Ipm", "Phasecav", "ScalarDetector"]

_F8 = np.dtype("<f8")
_NBEAM = 7  # len(BEAM_COLUMNS)
_TWO_PI = 2.0 * math.pi


# -- kernels: row i of ``out`` is shot i (pulse ids ``pids``, wire flags ``flags``) ------------
# Arguments: beam key and constants (BeamModel.kernel_args), the detector's key, its float64
# constants, then the shots. Each is the one implementation of its kind: read() calls it on a
# batch of one.


@njit(cache=True, nogil=True)
def _gasdet_rows(bkey, bp, key, calib, pids, flags, out):
    b = np.empty(_NBEAM)
    z = np.empty(6)
    for i in range(pids.size):
        beam_row(bkey, bp, pids[i], flags[i], b)
        e = b[3]
        normals_into(stream(key, pids[i]), z)
        for c in range(4):
            pz = z[4 + c // 2]  # channel pairs 11/12 and 21/22 share a detector term
            out[i, c] = e * calib[c] * (1.0 + 0.03 * pz + 0.02 * z[c]) + 0.002 * z[c]


@njit(cache=True, nogil=True)
def _ebeam_rows(bkey, bp, key, consts, pids, flags, out):
    b = np.empty(_NBEAM)
    z = np.empty(4)
    charge_nominal = bp[2]
    for i in range(pids.size):
        if not flags[i] & FLAG_BEAM:
            out[i, :] = 0.0
            continue
        beam_row(bkey, bp, pids[i], flags[i], b)
        normals_into(stream(key, pids[i]), z)
        out[i, 0] = b[0] * (1.0 + 0.002 * z[0])
        out[i, 1] = b[1] + 0.5 * z[1]
        out[i, 2] = b[2] + 0.5 * z[2]
        out[i, 3] = b[5] * 0.2
        out[i, 4] = b[6] * 0.2
        out[i, 5] = 3000.0 * b[0] / charge_nominal * (1.0 + 0.05 * z[3])


@njit(cache=True, nogil=True)
def _ipm_rows(bkey, bp, key, consts, pids, flags, out):
    response, scale, diode_noise = consts[0], consts[1], consts[2]
    b = np.empty(_NBEAM)
    z = np.empty(4)
    for i in range(pids.size):
        beam_row(bkey, bp, pids[i], flags[i], b)
        normals_into(stream(key, pids[i]), z)
        q = b[3] * response / 4.0
        x = b[5] / scale
        y = b[6] / scale
        top = q * (1.0 + y) + diode_noise * z[0]
        right = q * (1.0 + x) + diode_noise * z[1]
        bottom = q * (1.0 - y) + diode_noise * z[2]
        left = q * (1.0 - x) + diode_noise * z[3]
        lr = right + left
        tb = top + bottom
        out[i, 0] = top
        out[i, 1] = right
        out[i, 2] = bottom
        out[i, 3] = left
        out[i, 4] = lr + tb
        out[i, 5] = scale * (right - left) / lr if lr > 0 else 0.0
        out[i, 6] = scale * (top - bottom) / tb if tb > 0 else 0.0


@njit(cache=True, nogil=True)
def _phasecav_rows(bkey, bp, key, consts, pids, flags, out):
    jitter, noise = consts[0], consts[1]
    b = np.empty(_NBEAM)
    z = np.empty(5)
    for i in range(pids.size):
        if not flags[i] & FLAG_BEAM:
            out[i, :] = 0.0
            continue
        beam_row(bkey, bp, pids[i], flags[i], b)
        normals_into(stream(key, pids[i]), z)
        common = jitter * z[0]
        q_pc = b[0] * 1000.0
        out[i, 0] = 0.25 + common + noise * z[1]
        out[i, 1] = -0.10 + common + noise * z[2]
        out[i, 2] = q_pc * (1.0 + 0.003 * z[3])
        out[i, 3] = q_pc * 0.98 * (1.0 + 0.003 * z[4])


@njit(cache=True, nogil=True)
def _encoder_rows(key, consts, pids, seconds, nanoseconds, value, position):
    center, amplitude, period = consts[0], consts[1], consts[2]
    resolution, noise, phase = consts[3], consts[4], consts[5]
    n = value.shape[1]
    z = np.empty(n)
    for i in range(pids.size):
        normals_into(stream(key, pids[i]), z)
        t = np.float64(np.int64(seconds[i]) + EPICS_EPOCH_OFFSET) + nanoseconds[i] * 1e-9
        for c in range(n):
            drift = amplitude * math.sin(_TWO_PI * t / period + phase + c)
            counts = np.rint((center + drift + noise * z[c]) / resolution)
            counts = min(max(counts, 0.0), 4294967295.0)
            value[i, c] = np.uint32(counts)
            position[i, c] = counts * resolution


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
    """A detector of float64 values named by ``names``, computed by a row kernel.

    Subclasses set ``names`` and ``kernel`` (a numba function filling ``out[i, :]`` for shot i,
    see the kernels above) and may override ``_consts`` (the kernel's float64 constants).
    Fields other than plain scalars override ``_make_fields`` and ``_columns``.
    """

    params_class: ClassVar[type[Params]] = BldParams
    params: BldParams
    names: ClassVar[tuple[str, ...]]
    kernel: ClassVar[Any]

    def __init__(self, name: str, params: Params | None = None, **kwargs: Any) -> None:
        super().__init__(name, params, **kwargs)
        self.beam = BeamModel(
            seed=self.params.beam_seed, pulse_energy_mj=self.params.pulse_energy_mj
        )
        self._fields = self._make_fields()
        consts = np.asarray(self._consts(), dtype=np.float64)
        consts.flags.writeable = False
        self._kernel_args = (*self.beam.kernel_args, np.uint64(self._key), consts)
        self._width = sum(int(np.prod(f.shape, dtype=np.int64)) for f in self._fields)

    def _make_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(FieldSpec(n, _F8) for n in self.names)

    def _consts(self) -> tuple[float, ...]:
        return ()

    def _columns(self) -> list[tuple[str, int | slice]]:
        """Which table column(s) hold each field."""
        return [(n, j) for j, n in enumerate(self.names)]

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return self._fields

    def table(self, pulse_ids: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """Every value of N shots (uint64 pulse ids, uint8 wire flags): float64 (N, width)."""
        out = np.empty((pulse_ids.size, self._width))
        self.kernel(*self._kernel_args, pulse_ids, flags, out)
        return out

    def values(self, shot: Shot) -> list[float]:
        """The values of ``shot`` in table order."""
        return self.table(*shot_columns(shot))[0].tolist()

    def read(self, shot: Shot, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        return dict(zip(self.names, self.table(*shot_columns(shot))[0], strict=False))

    def read_batch(self, shots: np.ndarray, out: dict[str, np.ndarray]) -> None:
        self._check_batch(shots, out)
        rows = self.table(*batch_columns(shots))
        for name, col in self._columns():
            out[name][...] = rows[:, col]


class Gasdet(ScalarDetector):
    kind = "gasdet"
    names = ("f_11_ENRC", "f_12_ENRC", "f_21_ENRC", "f_22_ENRC")
    kernel = staticmethod(_gasdet_rows)
    _calib = (1.0, 1.02, 0.97, 0.99)

    def _consts(self) -> tuple[float, ...]:
        return self._calib

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
    kernel = staticmethod(_ebeam_rows)

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
    kernel = staticmethod(_ipm_rows)

    def _make_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("channel", _F8, (4,)), *super()._make_fields())

    def _consts(self) -> tuple[float, ...]:
        p = self.params
        return (p.response, p.scale, p.diode_noise)

    def _columns(self) -> list[tuple[str, int | slice]]:
        return [("channel", slice(0, 4)), ("sum", 4), ("xpos", 5), ("ypos", 6)]

    def read(self, shot: Shot, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        row = self.table(*shot_columns(shot))[0]
        ch = self._buffer(out, self.fields[0])
        ch[:] = row[:4]
        return {"channel": ch, "sum": row[4], "xpos": row[5], "ypos": row[6]}

    def values(self, shot: Shot) -> list[float]:
        """``sum``, ``xpos``, ``ypos`` of ``shot``."""
        return super().values(shot)[4:]

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
    """Motor encoders: counts (uint32, rounded half to even, clipped to the uint32 range) and
    the position they stand for, following a slow sine of the shot's timestamp."""

    kind = "encoder"
    params_class = EncoderParams
    params: EncoderParams

    def __init__(self, name: str, params: EncoderParams | None = None, **kwargs: Any) -> None:
        super().__init__(name, params, **kwargs)
        p = self.params
        n = p.channels
        self._fields = (FieldSpec("value", np.dtype("<u4"), (n,)), FieldSpec("position", _F8, (n,)))
        self._phase = (self._key & 0xFFFF) / 0xFFFF * 2.0 * math.pi
        consts = np.array(
            [p.center, p.amplitude, p.period, p.resolution, p.noise, self._phase], np.float64
        )
        consts.flags.writeable = False
        self._kernel_args = (np.uint64(self._key), consts)

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return self._fields

    def _compute(self, pids: np.ndarray, seconds: np.ndarray, nanoseconds: np.ndarray,
                 value: np.ndarray, position: np.ndarray) -> None:  # fmt: skip
        _encoder_rows(*self._kernel_args, pids, seconds, nanoseconds, value, position)

    def read(self, shot: Shot, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        value = self._buffer(out, self.fields[0])
        position = self._buffer(out, self.fields[1])
        self._compute(
            np.array((shot.pulse_id,), np.uint64),
            np.array((shot.seconds,), np.uint32),
            np.array((shot.nanoseconds,), np.uint32),
            value.reshape(1, -1),
            position.reshape(1, -1),
        )
        return {"value": value, "position": position}

    def read_batch(self, shots: np.ndarray, out: dict[str, np.ndarray]) -> None:
        self._check_batch(shots, out)
        n = (shots.size, self.params.channels)
        value, position = np.empty(n, np.uint32), np.empty(n, np.float64)
        self._compute(
            np.ascontiguousarray(shots["pulse_id"], dtype=np.uint64),
            np.ascontiguousarray(shots["seconds"], dtype=np.uint32),
            np.ascontiguousarray(shots["nanoseconds"], dtype=np.uint32),
            value,
            position,
        )
        out["value"][...] = value
        out["position"][...] = position


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
    kernel = staticmethod(_phasecav_rows)

    def _consts(self) -> tuple[float, ...]:
        return (self.params.jitter, self.params.noise)
