"""The timing system: shots as pure functions of the triggered-shot counter.

Pulse ids count base-clock ticks (360 Hz or 928.571 kHz). Shot ``counter`` n has pulse id
``first + n * divisor``, where ``first`` is the first multiple of the divisor at or after the
start, so beam shots sit on fixed timeslots (120 Hz shots on fiducials divisible by 3). Its
time is ``start + (pulse_id - pulse_id_at_start) / base_rate`` in exact integer nanoseconds, on
the EPICS epoch. Nothing here sleeps or keeps per-shot state: ``shot(n)`` can be called in any
order, in any process, and gives the same answer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import numpy as np

from ._config import TimingConfig
from ._constants import (
    EPICS_EPOCH_OFFSET,
    FIDUCIAL_PERIOD,
    PULSE_ID_MAX,
    RATE_MARKERS,
    TimingMode,
)
from ._hash import mix_key, uniform, uniform_array
from ._shot import FLAG_BEAM, FLAG_LASER, FLAG_XRAY, SHOT_DTYPE, SHOT_VERSION, Shot

__all__ = ["Clock", "TimingSystem", "pace"]

Clock = Callable[[], float | int]
_NS = 1_000_000_000
_EPOCH_NS = EPICS_EPOCH_OFFSET * _NS
# base period in ns as an exact fraction NUM / DEN
_PERIOD = {TimingMode.LCLS1: (25_000_000, 9), TimingMode.LCLS2: (14_000, 13)}
# LCLS-II: 360 Hz tick of a pulse id = pid * 360 / base_rate = pid * 63 / 162500
_TICK_NUM, _TICK_DEN = 63, 162_500
_RATE_CYCLE = 720  # lcm of the 360 Hz marker periods
_GROUP_TABLE_MAX = 4096  # readout-group masks are tabulated when their period is this short


def _clock_ns(value: float | int) -> int:
    """POSIX nanoseconds from a clock reading: ints are nanoseconds, floats are seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"the clock returned {value!r}; expected POSIX seconds or ns")
    if isinstance(value, int):
        return value
    return round(value * _NS)


def pace(
    shot: Shot,
    clock: Clock = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Sleep until ``shot`` is due by ``clock``; returns how late it already was (s, >= 0)."""
    now = _clock_ns(clock()) / _NS
    wait = shot.posix_time - now
    if wait > 0:
        sleep(wait)
        return 0.0
    return -wait


class TimingSystem:
    """Generates ``Shot``s from a ``TimingConfig``; random access, no I/O, no sleeping.

    ``clock`` (POSIX seconds as float, or ns as int) is read once, by ``start()`` (called
    implicitly by the first shot), unless the config pins ``start_time``. ``sleep`` is only used
    by ``pace()``.
    """

    def __init__(
        self,
        config: TimingConfig | None = None,
        *,
        clock: Clock = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        cfg = config if config is not None else TimingConfig()
        self.config = cfg
        self._clock = clock
        self._sleep = sleep
        self._mode = TimingMode(cfg.mode)
        self._div = cfg.divisor
        self._num, self._den = _PERIOD[self._mode]
        self._laser = cfg.laser_cycle
        self._key_drop = mix_key(cfg.seed, "timing.drop")
        self._key_xray = mix_key(cfg.seed, "timing.xray_off")
        codes = cfg.codes
        self._beam_bit = 1 << codes.beam
        self._xoff_bit = 1 << codes.xray_off
        self._lon_bit = 1 << codes.laser_on
        self._loff_bit = 1 << codes.laser_off
        self._rate_bits = [0] * _RATE_CYCLE
        for attr, period in RATE_MARKERS:
            bit = 1 << getattr(codes, attr)
            for t in range(0, _RATE_CYCLE, period):
                self._rate_bits[t] |= bit
        self._rate_table = np.array(
            [list(b.to_bytes(32, "little")) for b in self._rate_bits], dtype=np.uint8
        )
        self._groups = cfg.groups
        period = math.lcm(*(p for _, p in self._groups))
        self._group_table: list[int] | None = None
        if period <= _GROUP_TABLE_MAX:
            self._group_table = [self._group_mask(n) for n in range(period)]
        self._start_ns: int | None = None  # EPICS ns at the start
        self._pid0 = 0
        self._first = 0

    # -- start ---------------------------------------------------------------------------------
    def start(self, start_time: float | int | None = None) -> TimingSystem:
        """Fix the time origin: ``start_time``, else the config's, else the clock's reading."""
        st = start_time if start_time is not None else self.config.start_time
        posix_ns = _clock_ns(st if st is not None else self._clock())
        start_ns = posix_ns - _EPOCH_NS
        if start_ns < 0:
            raise ValueError(
                f"start time {posix_ns} ns is before the EPICS epoch (1990); "
                "clocks return POSIX seconds as float or nanoseconds as int"
            )
        pid0 = self.config.pulse_id_start
        if pid0 is None:
            pid0 = start_ns * self._den // self._num
        self._start_ns = start_ns
        self._pid0 = pid0
        self._first = -(-pid0 // self._div) * self._div
        return self

    def _ensure_started(self) -> int:
        if self._start_ns is None:
            self.start()
        assert self._start_ns is not None
        return self._start_ns

    @property
    def started(self) -> bool:
        return self._start_ns is not None

    @property
    def first_pulse_id(self) -> int:
        """The pulse id of counter 0."""
        self._ensure_started()
        return self._first

    @property
    def start_posix(self) -> float:
        """The start time in POSIX seconds."""
        return (self._ensure_started() + _EPOCH_NS) / _NS

    @property
    def base_rate(self) -> float:
        return self.config.base_rate

    @property
    def divisor(self) -> int:
        return self._div

    @property
    def beam_rate(self) -> float:
        """Triggered shots per second (base rate / divisor)."""
        return self.config.base_rate / self._div

    @property
    def unpaced(self) -> bool:
        return self.config.unpaced

    # -- one shot ------------------------------------------------------------------------------
    def _group_mask(self, counter: int) -> int:
        mask = 0
        for g, prescale in self._groups:
            if counter % prescale == 0:
                mask |= 1 << g
        return mask

    def pulse_id(self, counter: int) -> int:
        """The pulse id of triggered shot ``counter``."""
        self._ensure_started()
        return self._first + counter * self._div

    def counter_of(self, pulse_id: int) -> int | None:
        """The counter of the triggered shot with ``pulse_id``, or None if it is not one."""
        self._ensure_started()
        n, rem = divmod(pulse_id - self._first, self._div)
        return n if rem == 0 and n >= 0 else None

    def shot(self, counter: int) -> Shot:
        """Triggered shot number ``counter`` (0, 1, 2, ...): a pure function of it."""
        start_ns = self._start_ns if self._start_ns is not None else self._ensure_started()
        if counter < 0:
            raise ValueError(f"shot counter {counter} is negative")
        cfg = self.config
        pid = self._first + counter * self._div
        if pid > PULSE_ID_MAX:
            raise ValueError(f"pulse id {pid} of counter {counter} exceeds 56 bits")
        if self._mode is TimingMode.LCLS1:
            tick = pid
            first_in_tick = True
        else:
            tick = pid * _TICK_NUM // _TICK_DEN
            first_in_tick = tick != (pid - self._div) * _TICK_NUM // _TICK_DEN
        q, r = divmod(pid - self._pid0, self._den)
        sec, ns = divmod(start_ns + q * self._num + r * self._num // self._den, _NS)

        beam = cfg.drop_fraction == 0.0 or uniform(self._key_drop, pid) >= cfg.drop_fraction
        xray = beam
        if xray and cfg.xray_off_every and counter % cfg.xray_off_every == cfg.xray_off_every - 1:
            xray = False
        if xray and cfg.xray_off_fraction and uniform(self._key_xray, pid) < cfg.xray_off_fraction:
            xray = False
        laser = self._laser[counter % len(self._laser)]

        bits = self._rate_bits[tick % _RATE_CYCLE] if first_in_tick else 0
        if beam:
            bits |= self._beam_bit if xray else self._beam_bit | self._xoff_bit
        bits |= self._lon_bit if laser else self._loff_bit
        for code, every, phase in cfg.extra_codes:
            if counter % every == phase:
                bits |= 1 << code
        table = self._group_table
        groups = table[counter % len(table)] if table is not None else self._group_mask(counter)
        return Shot(pid, tick % FIDUCIAL_PERIOD, sec, ns, counter, bits, groups, laser, xray, beam)

    def __iter__(self) -> Iterator[Shot]:
        return self.iter_shots()

    def iter_shots(self, start: int = 0, stop: int | None = None) -> Iterator[Shot]:
        """Shots ``start, start + 1, ...`` up to ``stop`` (exclusive; None = forever)."""
        n = start
        while stop is None or n < stop:
            yield self.shot(n)
            n += 1

    # -- batches -------------------------------------------------------------------------------
    def shots(self, counter_start: int, n: int) -> np.ndarray:
        """Shots ``counter_start .. counter_start + n - 1`` as a ``SHOT_DTYPE`` array.

        Record i holds the same values as ``shot(counter_start + i)``, and its bytes are that
        shot's wire encoding.
        """
        start_ns = self._ensure_started()
        if counter_start < 0 or n < 0:
            raise ValueError(f"bad batch: counter_start {counter_start}, n {n}")
        cfg = self.config
        counter = np.arange(counter_start, counter_start + n, dtype=np.int64)
        pid = self._first + counter * self._div
        if n and int(pid[-1]) > PULSE_ID_MAX:
            raise ValueError("pulse ids of this batch exceed 56 bits")
        if self._mode is TimingMode.LCLS1:
            tick = pid
            first_in_tick = np.ones(n, dtype=bool)
        else:
            tick = pid * _TICK_NUM // _TICK_DEN
            first_in_tick = tick != (pid - self._div) * _TICK_NUM // _TICK_DEN
        q, r = np.divmod(pid - self._pid0, self._den)
        sec, ns = np.divmod(start_ns + q * self._num + r * self._num // self._den, _NS)

        beam = np.ones(n, dtype=bool)
        if cfg.drop_fraction:
            beam = uniform_array(self._key_drop, pid) >= cfg.drop_fraction
        xray = beam.copy()
        if cfg.xray_off_every:
            xray &= counter % cfg.xray_off_every != cfg.xray_off_every - 1
        if cfg.xray_off_fraction:
            xray &= uniform_array(self._key_xray, pid) >= cfg.xray_off_fraction
        laser = np.asarray(self._laser, dtype=bool)[counter % len(self._laser)]

        out = np.zeros(n, dtype=SHOT_DTYPE)
        out["version"] = SHOT_VERSION
        out["flags"] = beam * FLAG_BEAM + xray * FLAG_XRAY + laser * FLAG_LASER
        out["fiducial"] = tick % FIDUCIAL_PERIOD
        out["pulse_id"] = pid
        out["counter"] = counter
        out["seconds"] = sec
        out["nanoseconds"] = ns
        codes = self._rate_table[tick % _RATE_CYCLE]
        codes[~first_in_tick] = 0
        extra = [(c, counter % e == p) for c, e, p in cfg.extra_codes]
        for code, present in (
            (cfg.codes.beam, beam),
            (cfg.codes.xray_off, beam & ~xray),
            (cfg.codes.laser_on, laser),
            (cfg.codes.laser_off, ~laser),
            *extra,
        ):
            codes[:, code // 8] |= present.astype(np.uint8) << np.uint8(code % 8)
        out["event_codes"] = codes
        if self._group_table is not None:
            table = np.asarray(self._group_table, dtype=np.uint16)
            out["readout_groups"] = table[counter % len(table)]
        else:
            mask = np.zeros(n, dtype=np.uint16)
            for g, prescale in self._groups:
                mask |= (counter % prescale == 0).astype(np.uint16) << np.uint16(g)
            out["readout_groups"] = mask
        return out

    # -- pacing --------------------------------------------------------------------------------
    def deadline(self, shot: Shot) -> float:
        """When ``shot`` is due, in POSIX seconds (its timestamp)."""
        return shot.posix_time

    def pace(self, shot: Shot) -> float:
        """Sleep until ``shot`` is due (no-op when unpaced); returns its lateness in seconds."""
        if self.config.unpaced:
            return 0.0
        return pace(shot, self._clock, self._sleep)
