"""Dark-run statistics: per-pixel mean and variance from exact integer sums.

Users run the same pedestal command serially or under MPI and expect identical constants. A
floating-point sum depends on its order; an integer sum does not. So a dark run is reduced to
three integers per pixel, the event count n, S1 = sum(x) and S2 = sum(x^2) of the raw values x
(integers of at most 16 bits), accumulated without any rounding (:mod:`calib._darksums`).
Partial results of any split of the events, merged in any order, add up to the same integers,
and the mean and variance are computed once from them at the end, in float64:

    c = floor(S1 / n),  T1 = S1 - n c  (0 <= T1 < n),  T2 = S2 - 2 c S1 + n c^2 = sum((x - c)^2)
    mean = c + T1 / n,  var = (T2 - T1 (T1 / n)) / n

T1 and T2 are exact integers, so the only roundings are those of these few final operations
(relative error ~1e-16, nothing accumulates over events) and there is no cancellation between
large sums: this is more stable than Welford's update, which rounds at every event. The int64
sums hold any run of fewer than 2^31 events.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _darksums as ds
from ._errors import CalibError
from ._status import StatusBit

STATE_VERSION = 2
BATCH_BYTES = 64 << 20  # frames buffered by add() before the kernel runs (at most this much)
MAX_EVENTS = (1 << 31) - 1
_MASK_14 = 0x3FFF  # Jungfrau: 14 data bits under the 2 gain bits
GAIN_CODES = (0, 1, 3)  # Jungfrau gain bits of G0, G1, G2


@dataclass(frozen=True)
class DarkStats:
    """Result of a dark run: event count, per-pixel mean and (population) variance; for a
    gain-switching detector also ``off_stage``, per pixel the number of events whose gain bits
    were not those of the run's stage."""

    n: int
    mean: np.ndarray
    var: np.ndarray
    off_stage: np.ndarray | None = None

    @property
    def rms(self) -> np.ndarray:
        return np.sqrt(self.var)


class _Ranges:
    """Sorted, disjoint half-open ranges of event numbers (which events were accumulated)."""

    def __init__(self, items: list[list[int]] | None = None) -> None:
        self.starts: list[int] = []
        self.stops: list[int] = []
        for a, b in items or []:
            self.add_range(int(a), int(b))

    def add_range(self, a: int, b: int) -> None:
        j = bisect.bisect_right(self.starts, a)
        if (j and self.stops[j - 1] > a) or (j < len(self.starts) and self.starts[j] < b):
            raise CalibError(f"events {a}..{b - 1} overlap events accumulated before: an "
                             "event was accumulated twice")
        if j and self.stops[j - 1] == a:  # join the range before
            j -= 1
            a = self.starts[j]
            del self.starts[j], self.stops[j]
        if j < len(self.starts) and self.starts[j] == b:  # and the one after
            b = self.stops[j]
            del self.starts[j], self.stops[j]
        self.starts.insert(j, a)
        self.stops.insert(j, b)

    def items(self) -> list[list[int]]:
        return [[a, b] for a, b in zip(self.starts, self.stops, strict=True)]

    def copy(self) -> _Ranges:
        out = _Ranges()
        out.starts, out.stops = self.starts.copy(), self.stops.copy()
        return out


class DarkAccumulator:
    """Exact per-pixel sums of dark frames of ``shape`` (see the module docstring).

    ``add(frame, index)`` takes one event (copied into a batch buffer of up to ``batch``
    frames); ``add_frames(data, offsets, indices)`` takes frames in place in a 1-D array (a
    memory-mapped file: no copy). Event numbers may come in any order but only once.
    ``merge(other)`` adds another accumulator's sums; ``result()`` gives DarkStats;
    ``state()`` / ``from_state()`` carry partial results between processes.

    ``gain_code`` (Jungfrau: 0 G0, 1 G1, 3 G2) makes the statistics use the 14 data bits only
    and count, per pixel, the events in another gain stage. ``threads`` > 1 splits each batch
    between numba's threads (same integers).
    """

    def __init__(self, shape: tuple[int, ...], *, batch: int | None = None,
                 gain_code: int | None = None, threads: int = 1) -> None:
        if batch is not None and batch < 1:
            raise CalibError(f"batch must be >= 1, not {batch}")
        if gain_code is not None and gain_code not in GAIN_CODES:
            raise CalibError(f"gain_code must be one of {GAIN_CODES} (G0, G1, G2), "
                             f"not {gain_code}")
        if threads < 1:
            raise CalibError(f"threads must be >= 1, not {threads}")
        self.shape = tuple(int(d) for d in shape)
        self.gain_code = gain_code
        self.threads = threads
        self._batch_max = batch
        self._npix = int(np.prod(self.shape))
        self._mask = np.int32(-1 if gain_code is None else _MASK_14)
        self._events = _Ranges()
        self._n = 0  # events in _s1, _s2
        self._ref: np.ndarray | None = None  # int32 reference frame
        self._s1 = np.zeros(0, np.int64)
        self._s2 = np.zeros(0, np.int64)
        self._off = np.zeros(self._npix if gain_code is not None else 0, np.int32)
        self._dtype: np.dtype | None = None
        self._buf = np.zeros(0, np.int16)
        self._buf_n = 0
        self._scratch: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n_events(self) -> int:
        return self._n + self._buf_n

    # -- adding events ---------------------------------------------------------------------
    def _check_dtype(self, dtype: np.dtype, what: str) -> None:
        if dtype.kind not in "iu" or dtype.itemsize > 2:
            raise CalibError(f"dark statistics need integer raw data of at most 16 bits; {what} "
                             f"is {dtype}")
        if self._dtype is None:
            self._dtype = dtype
        elif dtype != self._dtype:
            raise CalibError(f"{what} is {dtype}, earlier events {self._dtype}")

    def _start(self, frame: np.ndarray) -> None:
        """Take the reference frame (any frame: it only keeps the 32-bit partial sums small)."""
        self._ref = (frame.reshape(-1).astype(np.int32) & self._mask).astype(np.int32)
        self._s1 = np.zeros(self._npix, np.int64)
        self._s2 = np.zeros(self._npix, np.int64)

    def add(self, frame: npt.ArrayLike, index: int | None = None) -> None:
        """Add one event; ``index`` (its event number) defaults to one after the last."""
        arr = np.asarray(frame)
        if arr.shape != self.shape:
            raise CalibError(f"frame shape {arr.shape} does not match the accumulator {self.shape}")
        self._check_dtype(arr.dtype, "the frame")
        i = (self._events.stops[-1] if self._events.stops else 0) if index is None else index
        self._events.add_range(int(i), int(i) + 1)
        if self._ref is None:
            self._start(arr)
        if self._buf.size == 0:
            cap = max(1, min(self._batch_max or 64, BATCH_BYTES // max(arr.nbytes, 1)))
            self._buf = np.empty(cap * self._npix, arr.dtype)
        k = self._buf_n
        self._buf[k * self._npix:(k + 1) * self._npix] = arr.reshape(-1)
        self._buf_n += 1
        if self._buf_n * self._npix == self._buf.size:
            self._flush()

    def add_frames(self, data: np.ndarray, offsets: npt.ArrayLike,
                   indices: list[int] | range) -> None:
        """Add the frames ``data[o:o + npix]`` (o in ``offsets``, element offsets into the 1-D
        integer array ``data``) as events ``indices``, without copying them."""
        offs = np.ascontiguousarray(offsets, dtype=np.int64)
        if data.ndim != 1 or len(indices) != offs.size:
            raise CalibError("add_frames needs a 1-D data array and one index per offset")
        if offs.size == 0:
            return
        if offs.min() < 0 or offs.max() + self._npix > data.size:
            raise CalibError("a frame offset lies outside the data array")
        self._check_dtype(data.dtype, "the data")
        events = self._events.copy()  # all or nothing
        for i in indices:
            events.add_range(int(i), int(i) + 1)
        if self._ref is None:
            self._start(data[offs[0]:offs[0] + self._npix])
        self._sums(data, offs)
        self._events = events

    def _flush(self) -> None:
        if self._buf_n:
            n, self._buf_n = self._buf_n, 0
            self._sums(self._buf, np.arange(n, dtype=np.int64) * self._npix)

    def _sums(self, data: np.ndarray, offs: np.ndarray) -> None:
        if self._n + offs.size > MAX_EVENTS:
            raise CalibError(f"a dark run of more than {MAX_EVENTS} events would overflow")
        assert self._ref is not None
        parts = min(self.threads, -(-self._npix // ds.CHUNK))
        if self._scratch is None or self._scratch[0].shape[0] != parts:
            self._scratch = (np.empty((parts, ds.CHUNK), np.int32),
                             np.empty((parts, ds.CHUNK), np.uint32))
        b1, b2 = self._scratch
        for k in range(0, offs.size, ds.MAX_EVENTS_PER_CALL):
            part = offs[k:k + ds.MAX_EVENTS_PER_CALL]
            if parts > 1:
                ds.dark_sums_parallel(data, part, self._mask, self._ref, self._s1, self._s2,
                                      b1, b2)
            else:
                ds.dark_sums(data, part, self._mask, self._ref, self._s1, self._s2, b1[0], b2[0])
            if self.gain_code is not None:
                ds.gain_mismatch(data, part, self.gain_code, self._off)
        self._n += offs.size

    # -- results and merging ---------------------------------------------------------------
    def sums(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(n, S1, S2): the event count and per-pixel int64 sums of x and x^2 (flat)."""
        self._flush()
        if self._ref is None:
            z = np.zeros(self._npix, np.int64)
            return 0, z, z.copy()
        ref = self._ref.astype(np.int64)
        s1 = self._s1 + self._n * ref
        s2 = self._s2 + (2 * self._s1 + self._n * ref) * ref
        return self._n, s1, s2

    def _rebase_add(self, n: int, s1: np.ndarray, s2: np.ndarray) -> None:
        """Add canonical sums (n, S1, S2) to our sums relative to the reference frame."""
        if n == 0:
            return
        if self._ref is None:  # adopt c = floor(S1 / n), close to the mean, as reference
            self._ref = np.floor_divide(s1, n).astype(np.int32)
            self._s1 = np.zeros(self._npix, np.int64)
            self._s2 = np.zeros(self._npix, np.int64)
        ref = self._ref.astype(np.int64)
        self._s1 += s1 - n * ref
        self._s2 += s2 - (2 * s1 - n * ref) * ref
        self._n += n

    def merge(self, other: DarkAccumulator) -> None:
        """Add the sums of ``other`` (unchanged); any merge order gives the same integers."""
        if other.shape != self.shape or other.gain_code != self.gain_code:
            raise CalibError(f"cannot merge accumulators of shape/gain code {other.shape}/"
                             f"{other.gain_code} into {self.shape}/{self.gain_code}")
        self._merge_parts(other._events.items(), *other.sums(), other._off, other._dtype)

    def _merge_parts(self, events: list[list[int]], n: int, s1: np.ndarray, s2: np.ndarray,
                     off: np.ndarray, dtype: np.dtype | None) -> None:
        for a, b in events:
            self._events.add_range(a, b)
        if dtype is not None:
            self._check_dtype(dtype, "the merged events")
        self._flush()
        self._rebase_add(n, s1, s2)
        if self.gain_code is not None:
            self._off += off.astype(np.int32)

    def result(self) -> DarkStats:
        """Mean and variance over all events so far, from the exact sums (module docstring)."""
        self._flush()
        if self._n == 0 or self._ref is None:
            raise CalibError("no events were accumulated")
        mean, var = np.empty(self._npix), np.empty(self._npix)
        ds.dark_moments(self._n, self._ref, self._s1, self._s2, mean, var)
        off = None if self.gain_code is None else self._off.reshape(self.shape).copy()
        return DarkStats(self._n, mean.reshape(self.shape), var.reshape(self.shape), off)

    def state(self) -> dict[str, Any]:
        """Partial results as a plain dict (for sending to another process)."""
        n, s1, s2 = self.sums()
        return {"version": STATE_VERSION, "shape": list(self.shape), "n": n,
                "events": self._events.items(), "gain_code": self.gain_code,
                "dtype": None if self._dtype is None else self._dtype.str,
                "sum": s1, "sumsq": s2, "off_stage": self._off}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DarkAccumulator:
        """Accumulator rebuilt from :meth:`state` (arrays may come as any buffer)."""
        if state.get("version") != STATE_VERSION:
            raise CalibError(f"unsupported dark state version {state.get('version')!r}")
        acc = cls(tuple(state["shape"]), gain_code=state["gain_code"])
        npix = acc._npix
        s1 = np.asarray(state["sum"], dtype=np.int64).reshape(-1)
        s2 = np.asarray(state["sumsq"], dtype=np.int64).reshape(-1)
        off = np.asarray(state["off_stage"], dtype=np.int32).reshape(-1)
        if s1.size != npix or s2.size != npix or off.size != acc._off.size:
            raise CalibError(f"dark state arrays do not match the shape {acc.shape}")
        dtype = None if state.get("dtype") is None else np.dtype(state["dtype"])
        acc._merge_parts(state["events"], int(state["n"]), s1, s2, off, dtype)
        return acc


@dataclass(frozen=True)
class DarkThresholds:
    """Bad-pixel criteria of :func:`dark_constants` (medians are over the detector, or over
    each segment with ``per_segment``)."""

    dead_rms: float = 0.1  # rms below this x median rms: DEAD (stuck, no noise)
    noisy_rms: float = 3.0  # rms above this x median rms: NOISY
    hot_sigma: float = 10.0  # pedestal above median + this x robust spread: HOT
    cold_sigma: float = 10.0  # pedestal below median - this x robust spread: COLD
    saturation: float | None = None  # pedestal at or above this ADU: SATURATED
    per_segment: bool = False
    off_stage: float = 0.01  # gain switching: in another stage in more than this fraction
    #                          of its stage's dark events: BAD_GAIN


def _median_over(a: np.ndarray, per_segment: bool) -> np.ndarray:
    """Median of float32 ``a`` over the detector, or per leading-axis segment (broadcastable);
    exactly np.median, by a radix selection (:func:`calib._darksums.median_f32`)."""
    hist = np.empty(65536, np.int64)
    if per_segment and a.ndim >= 3:
        meds = [ds.median_f32(seg, hist) for seg in a]
        return np.array(meds, np.float32).reshape((a.shape[0],) + (1,) * (a.ndim - 1))
    return np.asarray(ds.median_f32(a, hist), np.float32)


def dark_constants(
    stats: DarkStats, thresholds: DarkThresholds | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pedestals (float32), rms (float32) and pixel status (uint64, StatusBit) of a dark run.

    The pedestal spread is robust (1.4826 x MAD), floored at the median rms: a pedestal is not
    judged more precisely than its own noise.
    """
    t = thresholds or DarkThresholds()
    ped, rms = stats.mean.astype(np.float32), stats.rms.astype(np.float32)
    med_rms = _median_over(rms, t.per_segment)
    med_ped = _median_over(ped, t.per_segment)
    spread = np.maximum(1.4826 * _median_over(np.abs(ped - med_ped), t.per_segment), med_rms)
    status = np.zeros(ped.shape, np.uint64)

    def flag(cond: np.ndarray, bit: StatusBit) -> None:
        status[cond] |= np.uint64(bit)

    flag(rms < t.dead_rms * med_rms, StatusBit.DEAD)
    flag(rms > t.noisy_rms * med_rms, StatusBit.NOISY)
    flag(ped > med_ped + t.hot_sigma * spread, StatusBit.HOT)
    flag(ped < med_ped - t.cold_sigma * spread, StatusBit.COLD)
    if t.saturation is not None:
        flag(ped >= t.saturation, StatusBit.SATURATED)
    if stats.off_stage is not None:
        flag(stats.off_stage > t.off_stage * stats.n, StatusBit.BAD_GAIN)
    return ped, rms, status
