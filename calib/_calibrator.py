"""Calibration of raw detector frames: pedestals, common mode, gain and mask in one pass."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from . import _kernels as k
from ._detectors import CommonMode, DetectorSpec, detector_spec
from ._errors import CalibError
from ._status import ALL_STATUS_BITS, good_pixels
from ._store import CalibStore

N_GAINS = 3  # Jungfrau gain ranges G0, G1, G2


def _segments_view(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(segments, rows, columns) of a frame shape: 2-D is one segment, leading dims merge."""
    if len(shape) < 2:
        raise CalibError(f"calibration needs frames of at least 2 dimensions, not {shape}")
    return (math.prod(shape[:-2]), shape[-2], shape[-1])


def _per_gain(
    name: str, value: npt.ArrayLike, shape: tuple[int, ...], ngain: int
) -> np.ndarray:
    """``value`` as (ngain, *shape): a per-pixel array (or a scalar) is shared by all gains."""
    arr = np.asarray(value)
    if arr.shape == shape or arr.ndim == 0:
        arr = np.broadcast_to(arr, (ngain, *shape))
    if arr.shape != (ngain, *shape):
        raise CalibError(f"{name} shape {arr.shape} does not match the detector {(ngain, *shape)}")
    return arr


class Calibrator:
    """Pedestals, common mode, gain and mask of one detector, precomputed for speed.

    ``calib(raw)`` returns ``(raw - pedestal) -> common mode -> * gain * mask`` as float32.
    Pixels are bad (output 0, excluded from common mode) where ``status & status_bits`` is set
    or ``mask`` is 0. ``gain`` is a multiplicative factor per pixel (ADU -> user unit).

    With ``gain_switching`` (Jungfrau), pedestals, gain (and optionally status, mask, offset)
    have a leading axis of 3 gain ranges; raw is uint16 with the gain in its top two bits (00 G0,
    01 G1, 11 G2, 10 invalid -> 0), data = raw & 0x3FFF, and common mode uses and corrects G0
    pixels only. ``banks`` is the common-mode bank (rows, columns) within a segment (default:
    the whole segment).

    ``threads`` > 1 splits each frame's bank rows into that many parts computed by numba's
    thread pool (same result; numba's pool is process-wide, so call from one thread at a time).
    Holds scratch buffers: use one instance per thread.
    """

    def __init__(
        self,
        pedestals: npt.ArrayLike,
        *,
        gain: npt.ArrayLike | None = None,
        status: npt.ArrayLike | None = None,
        mask: npt.ArrayLike | None = None,
        common_mode: CommonMode | None = None,
        banks: tuple[int, int] | None = None,
        gain_switching: bool = False,
        offset: npt.ArrayLike | None = None,
        status_bits: int = ALL_STATUS_BITS,
        threads: int = 1,
    ) -> None:
        ped = np.asarray(pedestals, dtype=np.float32)
        ngain = N_GAINS if gain_switching else 1
        if gain_switching and (ped.ndim < 3 or ped.shape[0] != N_GAINS):
            raise CalibError(f"gain-switching pedestals need shape (3, ...), not {ped.shape}")
        self.shape: tuple[int, ...] = ped.shape[1:] if gain_switching else ped.shape
        self._seg = _segments_view(self.shape)
        rows, cols = self._seg[1:]
        self.banks = banks or (rows, cols)
        if rows % self.banks[0] or cols % self.banks[1]:
            raise CalibError(f"banks {self.banks} do not tile segments of {rows} x {cols}")
        self.gain_switching = gain_switching
        self.common_mode = common_mode

        peds = _per_gain("pedestals", ped, self.shape, ngain).astype(np.float32)
        if offset is not None:
            peds = peds + _per_gain("offset", offset, self.shape, ngain).astype(np.float32)
        good = np.ones((ngain, *self.shape), bool)
        if status is not None:
            good &= good_pixels(_per_gain("status", status, self.shape, ngain), status_bits)
        if mask is not None:
            good &= _per_gain("mask", mask, self.shape, ngain) != 0
        gm = good.astype(np.float32)
        if gain is not None:
            gm *= _per_gain("gain", gain, self.shape, ngain)
        self._ped = np.ascontiguousarray(peds.reshape(-1))
        self._gm = np.ascontiguousarray(gm.reshape(-1), dtype=np.float32)
        self._cmok = np.ascontiguousarray(good[0].reshape(-1), dtype=np.uint8)
        self.good = good[0]  # pixels used (of gain G0 for gain-switching detectors)
        bank = self.banks[0] * self.banks[1]
        if threads < 1:
            raise CalibError(f"threads must be >= 1, not {threads}")
        units = self._seg[0] * (rows // self.banks[0])
        self.threads = min(threads, units)
        self._bufs = np.empty((self.threads, bank + 8), np.float32)
        self._tmps = np.empty((self.threads, bank + 8), np.float32)
        self._states = np.full(self.threads, np.nan)

    def calib(self, raw: npt.ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
        """Calibrated float32 frame; ``out`` (float32, C-contiguous, frame shape) is reused."""
        r = np.ascontiguousarray(raw)
        if r.shape != self.shape:
            raise CalibError(f"raw frame shape {r.shape} does not match the constants {self.shape}")
        if self.gain_switching and r.dtype not in (np.uint16, np.int16):
            raise CalibError(f"gain-switching raw data must be uint16, not {r.dtype}")
        if out is None:
            out = np.empty(self.shape, np.float32)
        elif out.shape != self.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise CalibError(f"out must be C-contiguous float32 of shape {self.shape}")
        cm = self.common_mode
        args = (
            r.reshape(-1), self._ped, self._gm, self._cmok, out.reshape(-1), self._seg,
            self.banks, cm.mode if cm else 0, np.float32(cm.cormax if cm else math.inf),
            cm.npixmin if cm else 0, np.float32(cm.threshold if cm else math.inf),
            bool(cm and cm.statistic == "mean"), self.gain_switching,
        )
        if self.threads == 1:
            k.calibrate(*args, self._bufs[0], self._tmps[0], self._states[:1])
        else:
            k.calibrate_parallel(*args, self._bufs, self._tmps, self._states)
        return out

    __call__ = calib

    @classmethod
    def for_detector(
        cls,
        spec: DetectorSpec | str,
        pedestals: npt.ArrayLike,
        *,
        gain: npt.ArrayLike | None = None,
        status: npt.ArrayLike | None = None,
        mask: npt.ArrayLike | None = None,
        common_mode: CommonMode | str | None = "default",
        offset: npt.ArrayLike | None = None,
        status_bits: int = ALL_STATUS_BITS,
        threads: int = 1,
    ) -> Calibrator:
        """A calibrator with the banks, gain switching and (by default) common mode of ``spec``
        (a DetectorSpec or a name in DETECTORS)."""
        s = detector_spec(spec) if isinstance(spec, str) else spec
        cm = s.common_mode if isinstance(common_mode, str) else common_mode
        return cls(
            pedestals, gain=gain, status=status, mask=mask, common_mode=cm, banks=s.banks,
            gain_switching=s.gain_switching, offset=offset, status_bits=status_bits,
            threads=threads,
        )

    @classmethod
    def from_store(
        cls,
        store: CalibStore,
        det_type: str,
        det_name: str,
        run: int,
        *,
        segments: int | None = None,
        common_mode: CommonMode | str | None = "store",
        status_bits: int = ALL_STATUS_BITS,
        threads: int = 1,
    ) -> Calibrator:
        """Constants valid for ``run`` from the store, for a detector type of DETECTORS.

        Pedestals are required; pixel_status, pixel_mask, pixel_gain, pixel_offset and
        common_mode are used when deployed. pixel_gain is in ADU/keV as in psana (LCLS-II): the
        factor applied is its inverse (0 where the gain is 0), so the output is in keV; without
        it the output stays in ADU. ``common_mode="store"`` takes the deployed parameters, else
        the detector default; pass a CommonMode or None to override.
        """
        spec = detector_spec(det_type)
        shape = spec.data_shape(segments)
        cshape = spec.constants_shape(segments)
        ped = store.require(det_type, det_name, "pedestals", run, expected_shape=cshape)

        def optional(ctype: str) -> np.ndarray | None:
            arr = store.load(det_type, det_name, ctype, run)
            if arr is not None and arr.shape not in (shape, cshape):
                raise CalibError(
                    f"{store.find(det_type, det_name, ctype, run)}: {ctype} shape {arr.shape} "
                    f"does not match the detector's expected shape {cshape}"
                )
            return arr

        gain = optional("pixel_gain")
        if gain is not None:
            gain = np.divide(1.0, gain, out=np.zeros(gain.shape), where=gain != 0)
        cm: CommonMode | str | None = common_mode
        if common_mode == "store":
            pars = store.load(det_type, det_name, "common_mode", run)
            cm = "default" if pars is None else CommonMode.from_pars(pars)
        return cls.for_detector(
            spec, ped, gain=gain, status=optional("pixel_status"), mask=optional("pixel_mask"),
            offset=optional("pixel_offset"), common_mode=cm, status_bits=status_bits,
            threads=threads,
        )


def split_gain(raw: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Jungfrau raw uint16 -> (gain range int8: 0, 1, 2, or -1 for the invalid 10; data)."""
    r = np.asarray(raw)
    return k.gain_index_ref(r), (r.astype(np.uint16) & k.JUNGFRAU_DATA_MASK)


def apply_common_mode(
    data: np.ndarray, good: npt.ArrayLike, common_mode: CommonMode,
    banks: tuple[int, int] | None = None,
) -> np.ndarray:
    """Common-mode correction of a pedestal-subtracted float32 frame, in place (returned).

    ``good``: pixels that may enter the statistic (bool, frame shape); ``banks`` as in
    :class:`Calibrator`. Every pixel of a group is corrected.
    """
    if data.dtype != np.float32 or not data.flags.c_contiguous:
        raise CalibError("apply_common_mode needs a C-contiguous float32 frame")
    seg = _segments_view(data.shape)
    b = banks or seg[1:]
    if seg[1] % b[0] or seg[2] % b[1]:
        raise CalibError(f"banks {b} do not tile segments of {seg[1]} x {seg[2]}")
    ok = np.ascontiguousarray(np.broadcast_to(good, data.shape), dtype=np.uint8).reshape(-1)
    size = b[0] * b[1] + 8
    scratch = (np.empty(size, np.float32), np.empty(size, np.float32), np.full(1, np.nan))
    flat = data.reshape(-1)
    S, R, C = seg
    u = np.uint64
    for s in range(S):
        for r0 in range(0, R, b[0]):
            for c0 in range(0, C, b[1]):
                k.common_mode_bank(
                    flat, np.zeros(1, np.uint16), ok, np.zeros(1, np.float32),
                    u((s * R + r0) * C + c0), u(b[0]), u(b[1]), u(C), common_mode.mode,
                    np.float32(common_mode.cormax), common_mode.npixmin,
                    np.float32(common_mode.threshold), common_mode.statistic == "mean", False,
                    *scratch, False, u(0),
                )
    return data
