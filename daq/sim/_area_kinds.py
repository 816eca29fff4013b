"""The four area detectors: CSPAD, ePix100, Jungfrau and the Opal camera, with LCLS-like defaults.

============  =====================  ======  =========================  ====================
kind          raw shape, dtype       ADC     common-mode banks          default signal
============  =====================  ======  =========================  ====================
``cspad``     (32, 185, 388) int16   14 bit  per ASIC, 185 x 194        hits + powder rings
``epix100``   (704, 768) uint16      14 bit  2 x 8 of 352 x 96, + rows  sparse photons
``jungfrau``  (N, 512, 1024) uint16  14 bit  2 x 16 of 256 x 64         photons + strong hits
``opal``      (1024, 1024) uint16    12 bit  none                       beam blob
============  =====================  ======  =========================  ====================

Jungfrau raw values carry the gain stage in bits 15..14 (00 G0, 01 G1, 11 G2) above 14 bits of
ADC; a pixel switches to G1 above ``switch_kev[0]`` and to G2 above ``switch_kev[1]``. Its gains
are positive in every stage (the real G1/G2 ADCs count down; calibration is sign-agnostic).
``gain_mode`` "fixed_g1" or "fixed_g2" holds every pixel in that stage instead (psana's
FixedGain1/2), which is how the G1 and G2 dark runs of a Jungfrau are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from daq.timing import Shot

from ._area import AreaDetector, AreaModel, AreaParams
from ._base import ParamError
from ._kernels import apply_signal, apply_signal_reference, compose_dense, compose_dense_reference

__all__ = [
    "Cspad",
    "CspadParams",
    "Epix100",
    "Epix100Params",
    "Jungfrau",
    "JungfrauParams",
    "Opal",
    "OpalParams",
]


@dataclass(frozen=True)
class CspadParams(AreaParams):
    pedestal: float = 1100.0
    pedestal_spread: float = 150.0
    noise: float = 4.0
    gain: float = 4.3
    cm_bank_rms: float = 6.0
    hot_offset: float = 2000.0
    hit_rate: float = 0.1
    spots_per_hit: float = 40.0
    spot_photons: float = 300.0
    ring_radii: tuple[float, ...] = (250.0, 480.0)
    ring_width: float = 4.0
    ring_photons: float = 0.3


class Cspad(AreaDetector):
    """CSPAD: 32 2x1 sensors of 185 x 388, common mode per ASIC (185 x 194)."""

    kind = "cspad"
    params_class = CspadParams
    model = AreaModel("SENS2X1:V1", (185, 388), 32, "<i2", (185, 194), 14, tile_cols=4)


@dataclass(frozen=True)
class Epix100Params(AreaParams):
    pedestal: float = 2500.0
    pedestal_spread: float = 200.0
    noise: float = 5.0
    gain: float = 16.3
    cm_bank_rms: float = 4.0
    cm_row_rms: float = 3.0
    hot_offset: float = 3000.0
    photon_rate: float = 0.003


class Epix100(AreaDetector):
    """ePix100a: 704 x 768, common mode per bank (2 x 8 of 352 x 96) and per row in a bank."""

    kind = "epix100"
    params_class = Epix100Params
    model = AreaModel("EPIX100A", (704, 768), 1, "<u2", (352, 96), 14, squeeze=True)


JUNGFRAU_GAIN_MODES = ("dynamic", "fixed_g1", "fixed_g2")


@dataclass(frozen=True)
class JungfrauParams(AreaParams):
    """Adds the G1/G2 stages: ``stage_pedestals``, ``gain_ratios`` (G0/G1, G1/G2),
    ``stage_noise`` (rms relative to G0), the ``switch_thresholds_kev``, and ``gain_mode``:
    "dynamic" (switching by signal) or "fixed_g1"/"fixed_g2" (every pixel in that stage)."""

    pedestal: float = 3000.0
    pedestal_spread: float = 300.0
    noise: float = 5.0
    gain: float = 40.0
    cm_bank_rms: float = 4.0
    hot_offset: float = 3000.0
    photon_rate: float = 0.001
    hit_rate: float = 0.05
    spots_per_hit: float = 20.0
    spot_photons: float = 2000.0
    spot_sigma: float = 0.7
    stage_pedestals: tuple[float, float] = (2000.0, 1500.0)
    gain_ratios: tuple[float, float] = (30.0, 13.0)
    stage_noise: tuple[float, float] = (0.6, 0.4)
    switch_thresholds_kev: tuple[float, float] = (300.0, 9000.0)
    gain_mode: str = "dynamic"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gain_mode not in JUNGFRAU_GAIN_MODES:
            raise ParamError(f"parameter 'gain_mode': expected one of "
                             f"{', '.join(JUNGFRAU_GAIN_MODES)}, got {self.gain_mode!r}")
        for key in ("stage_pedestals", "gain_ratios", "stage_noise", "switch_thresholds_kev"):
            v = tuple(float(x) for x in getattr(self, key))
            if len(v) != 2 or min(v) <= 0:
                raise ParamError(f"parameter {key!r}: expected two positive numbers, got {v!r}")
            object.__setattr__(self, key, v)
        lo, hi = self.switch_thresholds_kev
        if not lo < hi:
            raise ParamError("parameter 'switch_thresholds_kev': G1 threshold must be below G2's")

    def stages(self) -> list[tuple[float, float, float]]:
        g1 = self.gain / self.gain_ratios[0]
        return [
            (self.pedestal, self.noise, self.gain),
            (self.stage_pedestals[0], self.noise * self.stage_noise[0], g1),
            (self.stage_pedestals[1], self.noise * self.stage_noise[1], g1 / self.gain_ratios[1]),
        ]

    def switch_kev(self) -> tuple[float, ...]:
        return self.switch_thresholds_kev


class Jungfrau(AreaDetector):
    """Jungfrau: ``modules`` x 512 x 1024, 2 gain bits over 14-bit data, banks of 256 x 64."""

    kind = "jungfrau"
    params_class = JungfrauParams
    model = AreaModel(
        "JUNGFRAU:V2",
        (512, 1024),
        1,
        "<u2",
        (256, 64),
        14,
        per_module=True,
        gain_bits=(0, 1, 3),
        gain_bit_shift=14,
    )
    params: JungfrauParams

    @property
    def fixed_stage(self) -> int:
        """The gain stage every pixel is held in (1 or 2), or 0 when switching dynamically."""
        return JUNGFRAU_GAIN_MODES.index(self.params.gain_mode)

    def _compose(
        self, shot: Shot, out: dict[str, np.ndarray] | None, reference: bool
    ) -> np.ndarray:
        stage = self.fixed_stage
        if stage == 0:
            return super()._compose(shot, out, reference)
        m = self._prepare()
        buf = self._buffer(out, self.fields[0])
        flat = buf.reshape(-1)
        cmrow, _, _, sig = self._event(shot)
        start = m.noise.start(shot.pulse_id)
        bank = m.noise.bank
        bw = self.model.bank_shape[1]
        none = m.ring_adu[:0]  # no dense signal template with several stages
        dense = compose_dense_reference if reference else compose_dense
        dense(flat, m.ped[stage], m.rms[stage], bank, start, cmrow, bw, 0, self.adc_max, none,
              0.0)
        flat |= np.uint16(self.model.gain_bits[stage] << self.model.gain_bit_shift)
        if sig.idx.size:
            if m.scratch is None:
                m.scratch = np.zeros(self.npix, dtype=np.float64)
            one = slice(stage, stage + 1)  # the fixed stage only, never switching
            sparse = apply_signal_reference if reference else apply_signal
            sparse(flat, sig.idx, sig.kev, m.scratch, m.ped[one], m.rms[one], m.gain[one], bank,
                   start, cmrow, self.layout.cols, bw, m.thresholds[:0], m.gain_bits[one],
                   self.model.gain_bit_shift, 0, self.adc_max, none, 0.0)
        if m.dead_idx.size:
            flat[m.dead_idx] = self.params.dead_value
        return buf

    def truth_event(self, shot: Shot) -> dict[str, Any]:
        out = super().truth_event(shot)
        if self.fixed_stage:
            out["signal_stage"] = np.full_like(out["signal_stage"], self.fixed_stage)
        return out


@dataclass(frozen=True)
class OpalParams(AreaParams):
    """A 12-bit camera; signal units are 'photons' of 1 ADU (``photon_energy_kev`` 1, gain 1)."""

    photon_energy_kev: float = 1.0
    pedestal: float = 32.0
    pedestal_spread: float = 2.0
    noise: float = 1.5
    noise_spread: float = 0.05
    gain: float = 1.0
    gain_spread: float = 0.01
    cm_bank_rms: float = 0.0
    hot_offset: float = 1000.0
    blob_photons: float = 5.0e6
    blob_sigma: float = 30.0
    blob_jitter: float = 5.0


class Opal(AreaDetector):
    """Opal 1000 camera: 1024 x 1024, 12-bit, a beam blob whose brightness follows the beam."""

    kind = "opal"
    params_class = OpalParams
    model = AreaModel("CAMERA", (1024, 1024), 1, "<u2", (1024, 1024), 12, squeeze=True)
