"""Area detectors: raw = pedestal + common mode + gain x signal + noise, with bad pixels.

Per pixel and event: ``raw = round(ped + cm + rms * z + gain * signal)`` clipped to the ADC
range, where ``cm`` is a per-event offset per bank plus, optionally, per row within a bank (the
structure calibration removes), ``z`` comes from the shared noise bank (see ``_noise``), and
``signal`` (keV) from ``_signal``. Gain-switching detectors (Jungfrau) pick the gain stage from
the pixel's signal and put its bits on top of the 14-bit value. Dead pixels are stuck at
``dead_value``; hot pixels have a pedestal ``hot_offset`` to 2 x ``hot_offset`` higher; noisy
pixels have ``noisy_factor`` x the rms. ``truth()`` exports all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from daq.timing import ConfigError, Shot, mix_key

from ._base import Detector, FieldSpec, ParamError, Params
from ._beam import BeamModel, event_rng
from ._kernels import apply_signal, apply_signal_reference, compose_dense, compose_dense_reference
from ._noise import NoiseStream
from ._signal import EventSignal, Layout, SignalModel, render_signal, ring_template

__all__ = ["STATUS_DEAD", "STATUS_HOT", "STATUS_NOISY", "AreaDetector", "AreaModel", "AreaParams"]

STATUS_DEAD = 1  #: pixel_status bit 0
STATUS_HOT = 2  #: pixel_status bit 1
STATUS_NOISY = 4  #: pixel_status bit 2


@dataclass(frozen=True)
class AreaModel:
    """The fixed hardware description of one kind of area detector."""

    segment_type: str
    seg_shape: tuple[int, int]
    nseg: int
    dtype: str
    bank_shape: tuple[int, int]
    adc_bits: int
    tile_cols: int = 1
    squeeze: bool = False  # the raw field has no segment axis (single-segment kinds)
    per_module: bool = False  # the number of segments is the ``modules`` parameter
    gain_bits: tuple[int, ...] = (0,)
    gain_bit_shift: int = 0


@dataclass(frozen=True)
class AreaParams(Params):
    """Area-detector parameters (the kind classes override the defaults).

    ADU values are raw ADC units; ``gain`` is ADU per keV in the highest gain; signal rates are
    at the mean pulse energy and scale with each shot's energy.
    """

    modules: int = 1
    photon_energy_kev: float = 9.5
    pedestal: float = 1000.0
    pedestal_spread: float = 100.0
    noise: float = 4.0
    noise_spread: float = 0.1
    gain: float = 4.3
    gain_spread: float = 0.03
    cm_bank_rms: float = 5.0
    cm_row_rms: float = 0.0
    dead_fraction: float = 1e-4
    hot_fraction: float = 1e-4
    noisy_fraction: float = 5e-4
    dead_value: int = 0
    hot_offset: float = 2000.0
    noisy_factor: float = 8.0
    photon_rate: float = 0.0
    hit_rate: float = 0.0
    spots_per_hit: float = 20.0
    spot_photons: float = 300.0
    spot_sigma: float = 0.8
    ring_radii: tuple[float, ...] = ()
    ring_width: float = 3.0
    ring_photons: float = 0.0
    blob_photons: float = 0.0
    blob_sigma: float = 30.0
    blob_jitter: float = 5.0
    beam_center: tuple[float, float] | None = None
    beam_seed: int = 0
    noise_bank_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_int("modules", 1, 64)
        for key in ("photon_energy_kev", "gain", "noise", "spot_sigma", "ring_width", "blob_sigma"):
            self.check_float(key, 0.0, open_lo=True)
        for key in ("pedestal", "pedestal_spread", "noise_spread", "gain_spread", "cm_bank_rms",
                    "cm_row_rms", "hot_offset", "photon_rate", "spots_per_hit", "spot_photons",
                    "ring_photons", "blob_photons", "blob_jitter"):  # fmt: skip
            self.check_float(key, 0.0)
        self.check_float("noisy_factor", 1.0)
        for key in ("dead_fraction", "hot_fraction", "noisy_fraction", "hit_rate"):
            self.check_fraction(key)
        if self.dead_fraction + self.hot_fraction + self.noisy_fraction > 1.0:
            raise ParamError("parameters dead/hot/noisy_fraction add up to more than 1")
        self.check_int("dead_value", 0, 65535)
        self.check_int("beam_seed", 0, (1 << 64) - 1)
        self.check_int("noise_bank_seed", 0, (1 << 64) - 1)
        try:
            radii = tuple(float(r) for r in self.ring_radii)
        except (TypeError, ValueError):
            raise ParamError(
                f"parameter 'ring_radii': expected numbers, got {self.ring_radii!r}"
            ) from None
        object.__setattr__(self, "ring_radii", radii)
        if self.beam_center is not None:
            bc = tuple(float(v) for v in self.beam_center)
            if len(bc) != 2:
                raise ParamError(f"parameter 'beam_center': expected (row, col), got {bc!r}")
            object.__setattr__(self, "beam_center", bc)

    def stages(self) -> list[tuple[float, float, float]]:
        """(pedestal, rms, gain) means of each gain stage, highest gain first."""
        return [(self.pedestal, self.noise, self.gain)]

    def switch_kev(self) -> tuple[float, ...]:
        """Signal (keV) at which the pixel switches to the next gain stage."""
        return ()


@dataclass
class _Maps:
    ped: np.ndarray  # (stages, npix) float32
    rms: np.ndarray
    gain: np.ndarray
    status: np.ndarray  # (npix,) uint8
    dead_idx: np.ndarray
    noise: NoiseStream
    ring: tuple[np.ndarray, np.ndarray]  # powder rings: flat pixels, photons at mean energy
    ring_adu: np.ndarray  # the rings as a dense float32 ADU map (single-stage kinds), else empty
    thresholds: np.ndarray
    gain_bits: np.ndarray
    scratch: np.ndarray | None = None


class AreaDetector(Detector):
    """A pixel-array detector; subclasses give ``kind``, ``model`` and default params.

    One instance serves one thread at a time (it keeps a scratch buffer); the kernels release
    the GIL, so separate instances can read in parallel threads.
    """

    model: ClassVar[AreaModel]
    params_class: ClassVar[type[Params]] = AreaParams
    params: AreaParams

    def __init__(self, name: str, params: AreaParams | None = None, **kwargs: Any) -> None:
        super().__init__(name, params, **kwargs)
        m, p = self.model, self.params
        if not m.per_module and p.modules != 1:
            raise ConfigError(f"{self.kind} {name!r}: parameter 'modules' is Jungfrau-only")
        rows, cols = m.seg_shape
        nseg = p.modules if m.per_module else m.nseg
        self.layout = Layout(nseg, rows, cols, m.tile_cols)
        self.shape: tuple[int, ...] = (rows, cols) if m.squeeze else (nseg, rows, cols)
        self.segment_type = m.segment_type
        self.adc_max = (1 << m.adc_bits) - 1
        self.dtype = np.dtype(m.dtype)
        if p.dead_value > self.adc_max:
            raise ConfigError(
                f"{self.kind} {name!r}: parameter 'dead_value' is above the ADC range"
            )
        self.beam = BeamModel(seed=p.beam_seed)
        h, w = self.layout.image_shape
        center = p.beam_center if p.beam_center is not None else (h / 2.0, w / 2.0)
        self.signal_model = SignalModel(
            photon_energy_kev=p.photon_energy_kev,
            photon_rate=p.photon_rate,
            hit_rate=p.hit_rate,
            spots_per_hit=p.spots_per_hit,
            spot_photons=p.spot_photons,
            spot_sigma=p.spot_sigma,
            ring_radii=p.ring_radii,
            ring_width=p.ring_width,
            ring_photons=p.ring_photons,
            blob_photons=p.blob_photons,
            blob_sigma=p.blob_sigma,
            blob_jitter=p.blob_jitter,
            beam_center=center,
        )
        self._event_key = mix_key(self._key, "event")
        self._maps: _Maps | None = None
        self._fields = (FieldSpec("raw", self.dtype, self.shape),)

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return self._fields

    @property
    def npix(self) -> int:
        return self.layout.npix

    # -- precomputation ------------------------------------------------------------------------
    def prepare(self) -> None:
        self._prepare()

    def _prepare(self) -> _Maps:
        if self._maps is not None:
            return self._maps
        p, n = self.params, self.npix
        rng = np.random.Generator(np.random.PCG64(mix_key(self._key, "maps")))
        stages = p.stages()
        ped = np.empty((len(stages), n), dtype=np.float32)
        rms = np.empty_like(ped)
        gain = np.empty_like(ped)
        for s, (ped_mean, rms_mean, gain_mean) in enumerate(stages):
            ped[s] = ped_mean + p.pedestal_spread * rng.standard_normal(n, dtype=np.float32)
            rms[s] = rms_mean * np.exp(p.noise_spread * rng.standard_normal(n, dtype=np.float32))
            gain[s] = gain_mean * (1 + p.gain_spread * rng.standard_normal(n, dtype=np.float32))
        counts = [round(f * n) for f in (p.dead_fraction, p.hot_fraction, p.noisy_fraction)]
        bad = rng.choice(n, sum(counts), replace=False).astype(np.int64)
        dead, hot, noisy = np.split(bad, np.cumsum(counts)[:2])
        ped[:, hot] += np.float32(p.hot_offset) * (1 + rng.random(hot.size, dtype=np.float32))
        rms[:, noisy] *= np.float32(p.noisy_factor)
        np.clip(ped, 0, self.adc_max, out=ped)
        gain = np.maximum(gain, np.float32(1e-6))
        ring = ring_template(self.layout, self.signal_model)
        ring_adu = np.zeros(0, dtype=np.float32)
        if ring[0].size and len(stages) == 1:
            ring_adu = np.zeros(n, dtype=np.float32)
            ring_adu[ring[0]] = ring[1] * p.photon_energy_kev * gain[0, ring[0]]
        status = np.zeros(n, dtype=np.uint8)
        status[dead] |= STATUS_DEAD
        status[hot] |= STATUS_HOT
        status[noisy] |= STATUS_NOISY
        self._maps = _Maps(
            ped=ped,
            rms=rms,
            gain=gain,
            status=status,
            dead_idx=np.sort(dead),
            noise=NoiseStream(mix_key(self._key, "noise"), n, p.noise_bank_seed),
            ring=ring,
            ring_adu=ring_adu,
            thresholds=np.asarray(p.switch_kev(), dtype=np.float64),
            gain_bits=np.asarray(self.model.gain_bits, dtype=np.int64),
        )
        _ = self._maps.noise.bank  # build (or fetch) the shared bank now
        return self._maps

    # -- events --------------------------------------------------------------------------------
    def _event(self, shot: Shot) -> tuple[np.ndarray, np.ndarray, np.ndarray, EventSignal]:
        """(cm per row x bank column, cm per bank, cm per row, signal) of one event."""
        p, lay = self.params, self.layout
        bh, bw = self.model.bank_shape
        nbr, nbc = lay.rows // bh, lay.cols // bw
        rng = event_rng(self._event_key, shot.pulse_id)
        cm_bank = rng.normal(0.0, p.cm_bank_rms, (lay.nseg, nbr, nbc)) if p.cm_bank_rms else None
        cm_row = rng.normal(0.0, p.cm_row_rms, (lay.nseg, lay.rows, nbc)) if p.cm_row_rms else None
        if cm_bank is None:
            cm_bank = np.zeros((lay.nseg, nbr, nbc))
        if cm_row is None:
            cm_row = np.zeros((lay.nseg, lay.rows, nbc))
        cmrow = (np.repeat(cm_bank, bh, axis=1) + cm_row).reshape(lay.nseg * lay.rows, nbc)
        rel = self.beam.relative_energy(shot)
        maps = self._prepare()
        # single-stage kinds add the rings densely (compose_dense's template), not as a list
        ring = maps.ring if maps.ring_adu.size == 0 else (maps.ring[0][:0], maps.ring[1][:0])
        sig = render_signal(rng, lay, self.signal_model, rel, ring)
        return cmrow, cm_bank, cm_row, sig

    def read(self, shot: Shot, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """``{"raw": array}`` for ``shot``, written into ``out["raw"]`` when given."""
        return {"raw": self._compose(shot, out, reference=False)}

    def read_reference(self, shot: Shot) -> dict[str, Any]:
        """``read`` computed by the NumPy reference kernels (slow; for tests)."""
        return {"raw": self._compose(shot, None, reference=True)}

    def _compose(
        self, shot: Shot, out: dict[str, np.ndarray] | None, reference: bool
    ) -> np.ndarray:
        m = self._prepare()
        buf = self._buffer(out, self.fields[0])
        flat = buf.reshape(-1)
        cmrow, _, _, sig = self._event(shot)
        start = m.noise.start(shot.pulse_id)
        bank = m.noise.bank
        bw = self.model.bank_shape[1]
        amp = sig.relative_energy
        tmpl = m.ring_adu if amp > 0 else m.ring_adu[:0]
        dense = compose_dense_reference if reference else compose_dense
        dense(flat, m.ped[0], m.rms[0], bank, start, cmrow, bw, 0, self.adc_max, tmpl, amp)
        if sig.idx.size:
            if m.scratch is None:
                m.scratch = np.zeros(self.npix, dtype=np.float64)
            sparse = apply_signal_reference if reference else apply_signal
            sparse(flat, sig.idx, sig.kev, m.scratch, m.ped, m.rms, m.gain, bank, start, cmrow,
                   self.layout.cols, bw, m.thresholds, m.gain_bits, self.model.gain_bit_shift,
                   0, self.adc_max, tmpl, amp)  # fmt: skip
        if m.dead_idx.size:
            flat[m.dead_idx] = self.params.dead_value
        return buf

    # -- ground truth --------------------------------------------------------------------------
    def truth(self) -> dict[str, np.ndarray]:
        """Calibration ground truth.

        ``pedestals``, ``pixel_rms`` (ADU), ``pixel_gain`` (ADU/keV) and ``adu_per_photon`` have
        the raw shape, with a leading gain-stage axis for gain-switching kinds; ``pixel_status``
        (uint64: 1 dead, 2 hot, 4 noisy); ``cm_bank_shape`` (rows, cols of a common-mode bank),
        ``cm_bank_grid`` (bank rows, bank columns per segment);
        ``cm_rms`` (per-bank rms, per-row rms); scalars as 0-d arrays.
        """
        m, p = self._prepare(), self.params
        bh, bw = self.model.bank_shape
        stages = m.ped.shape[0]
        shape = self.shape if stages == 1 else (stages, *self.shape)
        out = {
            "pedestals": m.ped.reshape(shape).copy(),
            "pixel_rms": m.rms.reshape(shape).copy(),
            "pixel_gain": m.gain.reshape(shape).copy(),
            "adu_per_photon": (m.gain * np.float32(p.photon_energy_kev)).reshape(shape),
            "pixel_status": m.status.astype(np.uint64).reshape(self.shape),
            "photon_energy_kev": np.asarray(p.photon_energy_kev),
            "cm_bank_shape": np.asarray(self.model.bank_shape),
            "cm_bank_grid": np.asarray([self.layout.rows // bh, self.layout.cols // bw]),
            "cm_rms": np.asarray([p.cm_bank_rms, p.cm_row_rms]),
            "dead_value": np.asarray(p.dead_value),
            "saturation": np.asarray(self.adc_max),
        }
        if stages > 1:
            out["gain_bits"] = m.gain_bits.copy()
            out["switch_kev"] = m.thresholds.copy()
        return out

    def truth_event(self, shot: Shot) -> dict[str, Any]:
        """The event's noiseless signal and common mode.

        ``signal_index`` (flat pixels, sorted), ``signal_kev``, ``signal_photons`` and
        ``signal_stage`` (gain stage) describe every pixel with signal; ``photon_index`` lists
        the single photons; ``spot_pos`` (segment, row, col) and ``spot_photons`` the Bragg
        spots; ``cm_bank`` (segment, bank row, bank col) and ``cm_row`` (segment, row, bank col)
        the common-mode offsets in ADU.
        """
        m = self._prepare()
        _, cm_bank, cm_row, sig = self._event(shot)
        idx, kev = sig.idx, sig.kev
        if m.ring_adu.size and sig.relative_energy > 0:
            e = sig.relative_energy * self.params.photon_energy_kev
            idx = np.concatenate([m.ring[0], idx])
            kev = np.concatenate([m.ring[1] * e, kev])
        pix, inverse = np.unique(idx, return_inverse=True)
        kev = np.bincount(inverse, weights=kev, minlength=pix.size)
        return {
            "xray_on": bool(shot.xray_on),
            "relative_energy": sig.relative_energy,
            "hit": sig.hit,
            "signal_index": pix,
            "signal_kev": kev,
            "signal_photons": kev / self.params.photon_energy_kev,
            "signal_stage": np.searchsorted(m.thresholds, kev, side="right"),
            "photon_index": sig.photon_index,
            "spot_pos": sig.spot_pos,
            "spot_photons": sig.spot_photons,
            "blob_center": sig.blob_center,
            "cm_bank": cm_bank,
            "cm_row": cm_row,
        }

    def truth_signal(self, shot: Shot) -> np.ndarray:
        """The noiseless signal in keV per pixel, in the raw shape (float64)."""
        t = self.truth_event(shot)
        img = np.zeros(self.npix)
        img[t["signal_index"]] = t["signal_kev"]
        return img.reshape(self.shape)
