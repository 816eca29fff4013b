"""Waveform digitizers (Acqiris, HSD): baseline + noise + pulses at known, jittered times.

Each channel has nominal arrival times (``peak_times``, samples: e.g. ion species of a
time-of-flight spectrometer). On every x-ray shot each nominal time yields Poisson(``hits`` x
relative pulse energy) pulses, jittered by ``time_jitter`` samples, with gamma-distributed
heights. The pulse shape is a Gaussian rise (``rise_sigma``) joined at its peak to an exponential
decay (``decay_tau``), the usual look of an MCP pulse. The truth ``time`` of a pulse is where
its leading edge crosses 50 % of its height: ``peak - rise_sigma * sqrt(2 ln 2)``.

The counts, jitters and heights are counter-based draws (``_draws``) of (seed, name, pulse id);
the noise comes from the shared bank. One numba kernel renders a batch of shots: ``read(shot)``
runs it on a batch of one, ``read_batch`` on the whole batch, with identical results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numba import njit

from daq.timing import Shot, mix_key

from ._base import Detector, FieldSpec, ParamError, Params, batch_columns, shot_columns
from ._beam import BeamModel, beam_row
from ._draws import gamma, normal, poisson, stream, substream
from ._kernels import NOISE_SCALE
from ._noise import NoiseStream

__all__ = ["Acqiris", "AcqirisParams", "Hsd", "HsdParams", "WaveformDetector", "WaveformParams"]

_HALF_EDGE = math.sqrt(2.0 * math.log(2.0))
# indices into the kernels' float64 constants (WaveformDetector._kernel_args)
_BASELINE, _NOISE, _POLARITY, _HITS, _JITTER, _AMPLITUDE, _SHAPE, _RISE, _DECAY = range(9)


@njit(cache=True, nogil=True)
def _pulse_list(ekey, pid, rel, channels, nominal, wp):
    """The pulses of one shot in draw order: (channel, peak sample, amplitude) arrays.

    Counts, jitters and heights read three sub-streams of the shot's stream, so every pulse's
    draws are fixed by its position alone.
    """
    h = stream(ekey, pid)
    hc, hj, ha = substream(h, 0), substream(h, 1), substream(h, 2)
    npk = nominal.size
    mean = wp[_HITS] * rel
    counts = np.zeros(channels * npk, np.int64)
    if mean > 0.0:
        for j in range(counts.size):
            counts[j] = poisson(substream(hc, j), mean)
    total = counts.sum()
    channel = np.empty(total, np.int64)
    peak = np.empty(total)
    amp = np.empty(total)
    shape = wp[_SHAPE]
    scale = wp[_AMPLITUDE] / shape
    m = 0
    for j in range(counts.size):
        for _ in range(counts[j]):
            channel[m] = j // npk
            peak[m] = nominal[j % npk] + wp[_JITTER] * normal(hj, 2 * m)
            amp[m] = gamma(substream(ha, m), shape, scale)
            m += 1
    return channel, peak, amp


@njit(cache=True, nogil=True, boundscheck=False)
def _add_pulse(v, base, samples, peak, a, rise, decay, wlo, whi):
    """Add ``a`` x the pulse shape at ``peak`` to samples ``v[base : base + samples]``.

    Samples ``floor(peak) + w`` for w in ``[wlo, whi)``: ``exp(-dt**2 / (2 rise**2))`` up to the
    peak, ``exp(-dt / decay)`` after it. Both are running products from the peak outwards (two
    exps per side instead of one per sample; the relative error stays below 1e-13).
    """
    t0 = np.int64(math.floor(peak))
    # rise, w = 0, -1, ...: g(d - h) = g(d) * q(d) with q(d) = exp(d h - h**2 / 2) and
    # q(d - h) = q(d) * exp(-h**2), where d = dt / rise and h = 1 / rise
    h = 1.0 / rise
    d = (np.float64(t0) - peak) * h
    g = math.exp(-0.5 * d * d)
    q = math.exp(d * h - 0.5 * h * h)
    c = math.exp(-h * h)
    for w in range(0, wlo - 1, -1):
        t = t0 + w
        if t < 0:
            break
        if t < samples:
            v[base + t] += a * g
        g *= q
        q *= c
    # decay, w = 1, 2, ...: f(dt + 1) = f(dt) * exp(-1 / decay)
    f = math.exp(-(np.float64(t0 + 1) - peak) / decay)
    r = math.exp(-1.0 / decay)
    for w in range(1, whi):
        t = t0 + w
        if t >= samples:
            break
        if t >= 0:
            v[base + t] += a * f
        f *= r


@njit(cache=True, nogil=True, boundscheck=False)
def _waveform_rows(bkey, bp, ekey, wp, iw, nominal, noise_pos, bank, pids, flags, out):
    """Waveforms of N shots into ``out`` (N, channels, samples), C-contiguous.

    ``iw`` = (window lo, window hi, ADC lo, ADC hi); ``noise_pos`` = (offset, step, length) of
    the shot's bank position ``(offset + pulse_id * step) mod length``.
    """
    n, channels, samples = out.shape
    baseline, noise, polarity = wp[_BASELINE], wp[_NOISE], wp[_POLARITY]
    rise, decay = wp[_RISE], wp[_DECAY]
    wlo, whi = iw[0], iw[1]
    lo, hi = np.float64(iw[2]), np.float64(iw[3])
    off, step, length = noise_pos[0], noise_pos[1], noise_pos[2]
    size = channels * samples
    b = np.empty(7)
    v = np.empty(size)
    for i in range(n):
        start = np.int64((off + (pids[i] % length) * step) % length)
        z = bank[start : start + size]
        for k in range(size):
            v[k] = baseline + noise * (np.float64(z[k]) * NOISE_SCALE)
        beam_row(bkey, bp, pids[i], flags[i], b)
        rel = b[4]
        if rel > 0.0 and wp[_HITS] > 0.0 and nominal.size > 0:
            ch, peak, amp = _pulse_list(ekey, pids[i], rel, channels, nominal, wp)
            for m in range(peak.size):
                _add_pulse(v, ch[m] * samples, samples, peak[m], polarity * amp[m], rise, decay,
                           wlo, whi)  # fmt: skip
        o = out[i]
        for c in range(channels):
            vc = v[c * samples : (c + 1) * samples]
            oc = o[c]
            for t in range(samples):  # np.floor vectorises, math.floor does not
                oc[t] = min(max(np.floor(vc[t] + 0.5), lo), hi)


@njit(cache=True, nogil=True)
def _render(channel, peak, amp, channels, samples, wp, iw):
    """The noiseless signal (positive) of a pulse list, (channels, samples) float64."""
    v = np.zeros(channels * samples)
    rise, decay = wp[_RISE], wp[_DECAY]
    for m in range(peak.size):
        _add_pulse(v, channel[m] * samples, samples, peak[m], amp[m], rise, decay, iw[0], iw[1])
    return v.reshape(channels, samples)


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
        self._fields = (FieldSpec("waveforms", np.dtype(self.dtype), self.shape),)
        wp = np.zeros(9)
        wp[[_BASELINE, _NOISE, _POLARITY, _HITS, _JITTER, _AMPLITUDE, _SHAPE, _RISE, _DECAY]] = (
            p.baseline, p.noise, p.polarity, p.hits, p.time_jitter, p.amplitude,
            p.amplitude_shape, p.rise_sigma, p.decay_tau)  # fmt: skip
        iw = np.array([lo, hi, *self.adc_range], np.int64)
        nominal = np.asarray(p.peak_times, dtype=np.float64)
        # the bank position of pulse id p is (start(0) + p * step) mod length: NoiseStream.start
        length = self._noise.length
        s0 = self._noise.start(0)
        noise_pos = np.array([s0, (self._noise.start(1) - s0) % length, length], np.uint64)
        for a in (wp, iw, nominal, noise_pos):
            a.flags.writeable = False
        bkey, bp = self.beam.kernel_args
        self._kernel_args = (bkey, bp, np.uint64(self._event_key), wp, iw, nominal, noise_pos)

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return self._fields

    def prepare(self) -> None:
        _ = self._noise.bank

    def _render_into(self, pids: np.ndarray, flags: np.ndarray, out: np.ndarray) -> None:
        """The one implementation: waveforms of N shots into C-contiguous ``out``."""
        _waveform_rows(*self._kernel_args, self._noise.bank, pids, flags, out)

    def _pulses(self, shot: Shot) -> dict[str, np.ndarray]:
        p = self.params
        rel = self.beam.relative_energy(shot)
        if rel <= 0 or not p.peak_times or p.hits == 0:
            empty = np.zeros(0)
            return {"channel": empty.astype(np.int64), "peak": empty, "amplitude": empty}
        ekey, wp, nominal = self._kernel_args[2], self._kernel_args[3], self._kernel_args[5]
        channel, peak, amp = _pulse_list(ekey, np.uint64(shot.pulse_id), rel, p.channels,
                                         nominal, wp)  # fmt: skip
        order = np.lexsort((peak, channel))
        return {"channel": channel[order], "peak": peak[order], "amplitude": amp[order]}

    def signal(self, shot: Shot) -> np.ndarray:
        """The noiseless pulses (ADU, positive, before polarity), shape (channels, samples)."""
        p = self.params
        pulses = self._pulses(shot)
        wp, iw = self._kernel_args[3], self._kernel_args[4]
        return _render(pulses["channel"], pulses["peak"], pulses["amplitude"], p.channels,
                       p.samples, wp, iw)  # fmt: skip

    def read(self, shot: Shot, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """``{"waveforms": (channels, samples)}`` for ``shot``."""
        buf = self._buffer(out, self.fields[0])
        self._render_into(*shot_columns(shot), buf.reshape(1, *self.shape))
        return {"waveforms": buf}

    def read_batch(self, shots: np.ndarray, out: dict[str, np.ndarray]) -> None:
        self._check_batch(shots, out)
        dst = out["waveforms"]
        pids, flags = batch_columns(shots)
        if dst.flags.c_contiguous and dst.flags.aligned and dst.flags.writeable:
            self._render_into(pids, flags, dst)
        else:
            tmp = np.empty(dst.shape, dst.dtype)
            self._render_into(pids, flags, tmp)
            dst[...] = tmp

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
