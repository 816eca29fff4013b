"""Waveform digitizers (Acqiris, HSD): baseline + noise + pulses at known, jittered times.

Each channel has nominal arrival times (``peak_times``, samples: e.g. ion species of a
time-of-flight spectrometer). On every x-ray shot each nominal time yields Poisson(``hits`` x
relative pulse energy) pulses, jittered by ``time_jitter`` samples, with gamma-distributed
heights. The pulse shape is a Gaussian rise (``rise_sigma``) joined at its peak to an exponential
decay (``decay_tau``), the usual look of an MCP pulse. The truth ``time`` of a pulse is where
its leading edge crosses 50 % of its height: ``peak - rise_sigma * sqrt(2 ln 2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from daq.timing import Shot, mix_key

from ._base import Detector, FieldSpec, ParamError, Params
from ._beam import BeamModel, event_rng
from ._noise import NoiseStream

__all__ = ["Acqiris", "AcqirisParams", "Hsd", "HsdParams", "WaveformDetector", "WaveformParams"]

_HALF_EDGE = math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class WaveformParams(Params):
    """Digitizer parameters (times in samples, levels in ADU; kinds override the defaults)."""

    channels: int = 4
    samples: int = 1000
    sample_interval: float = 1e-9
    baseline: float = 0.0
    noise: float = 8.0
    polarity: int = -1
    peak_times: tuple[float, ...] = (150.0, 400.0, 650.0)
    hits: float = 1.0
    time_jitter: float = 10.0
    amplitude: float = 2000.0
    amplitude_shape: float = 4.0
    rise_sigma: float = 1.5
    decay_tau: float = 4.0
    beam_seed: int = 0
    noise_bank_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_int("channels", 1, 64)
        self.check_int("samples", 16, 1 << 20)
        for key in ("sample_interval", "rise_sigma", "decay_tau", "amplitude_shape"):
            self.check_float(key, 0.0, open_lo=True)
        for key in ("noise", "hits", "time_jitter", "amplitude"):
            self.check_float(key, 0.0)
        self.check_float("baseline", -1e9)
        if self.polarity not in (-1, 1):
            raise ParamError(f"parameter 'polarity': expected -1 or +1, got {self.polarity!r}")
        try:
            times = tuple(float(t) for t in self.peak_times)
        except (TypeError, ValueError):
            raise ParamError(
                f"parameter 'peak_times': expected numbers, got {self.peak_times!r}"
            ) from None
        object.__setattr__(self, "peak_times", times)
        self.check_int("beam_seed", 0, (1 << 64) - 1)
        self.check_int("noise_bank_seed", 0, (1 << 64) - 1)


class WaveformDetector(Detector):
    """Channels x samples of digitized waveforms; subclasses fix dtype and ADC range."""

    params_class: ClassVar[type[Params]] = WaveformParams
    params: WaveformParams
    dtype: ClassVar[str]
    adc_range: ClassVar[tuple[int, int]]

    def __init__(self, name: str, params: WaveformParams | None = None, **kwargs: Any) -> None:
        super().__init__(name, params, **kwargs)
        p = self.params
        self.shape = (p.channels, p.samples)
        self.beam = BeamModel(seed=p.beam_seed)
        self._event_key = mix_key(self._key, "event")
        self._noise = NoiseStream(mix_key(self._key, "noise"), p.channels * p.samples,
                                  p.noise_bank_seed)  # fmt: skip
        lo = -math.ceil(6 * p.rise_sigma) - 1
        hi = math.ceil(12 * p.decay_tau) + 2
        self._window = np.arange(lo, hi)
        self._fields = (FieldSpec("waveforms", np.dtype(self.dtype), self.shape),)

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return self._fields

    def prepare(self) -> None:
        _ = self._noise.bank

    def _pulses(self, shot: Shot) -> dict[str, np.ndarray]:
        p = self.params
        rel = self.beam.relative_energy(shot)
        empty = np.zeros(0)
        if rel <= 0 or not p.peak_times or p.hits == 0:
            return {"channel": empty.astype(np.int64), "peak": empty, "amplitude": empty}
        rng = event_rng(self._event_key, shot.pulse_id)
        nominal = np.asarray(p.peak_times)
        counts = rng.poisson(p.hits * rel, (p.channels, nominal.size))
        channel = np.repeat(np.repeat(np.arange(p.channels), nominal.size), counts.ravel())
        peak = np.repeat(np.tile(nominal, p.channels), counts.ravel())
        peak = peak + p.time_jitter * rng.standard_normal(peak.size)
        amp = rng.gamma(p.amplitude_shape, p.amplitude / p.amplitude_shape, peak.size)
        order = np.lexsort((peak, channel))
        return {"channel": channel[order], "peak": peak[order], "amplitude": amp[order]}

    def signal(self, shot: Shot) -> np.ndarray:
        """The noiseless pulses (ADU, positive, before polarity), shape (channels, samples)."""
        p = self.params
        pulses = self._pulses(shot)
        sig = np.zeros(p.channels * p.samples)
        if pulses["peak"].size:
            peak = pulses["peak"]
            t = np.floor(peak).astype(np.int64)[:, None] + self._window[None, :]
            dt = t - peak[:, None]
            rise = np.exp(-0.5 * (np.minimum(dt, 0.0) / p.rise_sigma) ** 2)
            fall = np.exp(-np.maximum(dt, 0.0) / p.decay_tau)
            vals = pulses["amplitude"][:, None] * rise * fall
            ok = (t >= 0) & (t < p.samples)
            flat = pulses["channel"][:, None] * p.samples + t
            sig += np.bincount(flat[ok], weights=vals[ok], minlength=sig.size)
        return sig.reshape(self.shape)

    def read(self, shot: Shot, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """``{"waveforms": (channels, samples)}`` for ``shot``."""
        p = self.params
        buf = self._buffer(out, self.fields[0])
        v = p.baseline + p.noise * self._noise.values(shot.pulse_id).reshape(self.shape)
        v += p.polarity * self.signal(shot)
        lo, hi = self.adc_range
        np.clip(np.floor(v + 0.5), lo, hi, out=v)
        buf[...] = v
        return {"waveforms": buf}

    def truth(self) -> dict[str, np.ndarray]:
        """Digitizer constants: sample interval (s), baseline, noise rms, polarity, pulse shape."""
        p = self.params
        return {
            "sample_interval": np.asarray(p.sample_interval),
            "baseline": np.asarray(p.baseline),
            "noise_rms": np.asarray(p.noise),
            "polarity": np.asarray(p.polarity),
            "rise_sigma": np.asarray(p.rise_sigma),
            "decay_tau": np.asarray(p.decay_tau),
            "edge_to_peak": np.asarray(p.rise_sigma * _HALF_EDGE),
        }

    def truth_event(self, shot: Shot) -> dict[str, Any]:
        """Every pulse: ``channel``, ``time_samples`` (50 % leading edge), ``time`` (s),
        ``peak_samples`` (sample of the maximum of the shape) and ``amplitude`` (ADU > 0)."""
        pulses = self._pulses(shot)
        edge = pulses["peak"] - self.params.rise_sigma * _HALF_EDGE
        return {
            "xray_on": bool(shot.xray_on),
            "channel": pulses["channel"],
            "time_samples": edge,
            "time": edge * self.params.sample_interval,
            "peak_samples": pulses["peak"],
            "amplitude": pulses["amplitude"],
        }


@dataclass(frozen=True)
class AcqirisParams(WaveformParams):
    """Acqiris DC282-like: 4 x 1000 samples at 1 GS/s, negative MCP pulses, int16."""


class Acqiris(WaveformDetector):
    kind = "acqiris"
    params_class = AcqirisParams
    dtype = "<i2"
    adc_range = (-32768, 32767)


@dataclass(frozen=True)
class HsdParams(WaveformParams):
    """LCLS-II high-speed digitizer: 12-bit, 6.4 GS/s, positive pulses over a baseline."""

    channels: int = 2
    samples: int = 2000
    sample_interval: float = 1.0 / 6.4e9
    baseline: float = 200.0
    noise: float = 3.0
    polarity: int = 1
    peak_times: tuple[float, ...] = (300.0, 800.0, 1400.0)
    amplitude: float = 1200.0
    rise_sigma: float = 2.0
    decay_tau: float = 6.0


class Hsd(WaveformDetector):
    kind = "hsd"
    params_class = HsdParams
    dtype = "<u2"
    adc_range = (0, 4095)
