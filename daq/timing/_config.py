"""The timing model's configuration: a validated frozen dataclass with errors that name the key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, cast

from ._constants import LCLS1_BASE_RATE, LCLS2_BASE_RATE, EventCodes, TimingMode

__all__ = ["ConfigError", "TimingConfig"]

_DEFAULT_LASER_OFF_EVERY = 4
_LCLS2_MAX_RATE = 1.0e6


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""


def _fail(key: str, msg: str) -> ConfigError:
    return ConfigError(f"timing config {key!r}: {msg}")


def _check_int(key: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, f"expected an int, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise _fail(key, f"{value} is outside {rng}")
    return value


def _check_fraction(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, f"expected a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise _fail(key, f"{value} is outside [0, 1]")
    return float(value)


@dataclass(frozen=True)
class TimingConfig:
    """What the timing system generates; ``TimingConfig.from_dict`` builds one from plain data.

    - ``mode``: ``"lcls1"`` (360 Hz base clock) or ``"lcls2"`` (928.571 kHz base clock).
    - ``beam_rate`` (Hz): base rate / integer. LCLS-I: exactly a divisor of 360 Hz (120, 60, 10,
      0.5, ...). LCLS-II: up to 1 MHz, rounded to the nearest base / integer. ``rate_divisor``
      gives the integer directly and overrides ``beam_rate``.
    - ``unpaced``: the driver should run as fast as it can (``pace`` then never sleeps).
    - ``seed``: seeds the hashed per-shot decisions (x-ray off, dropped beam).
    - ``start_time``: POSIX seconds (float) or nanoseconds (int) of the run start; ``None`` reads
      the clock in ``TimingSystem.start()``.
    - ``pulse_id_start``: the pulse id at ``start_time``; ``None`` = base ticks since the EPICS
      epoch, so pulse ids never repeat across runs.
    - ``laser_off_every`` N: laser off when ``counter % N == N - 1`` (0: always on; default 4);
      or ``laser_pattern``: a repeating tuple of on (true) / off (false) over the counter.
    - ``xray_off_fraction``: fraction of beam shots kicked off (BYKIK), hashed from the pulse id;
      ``xray_off_every`` N: also every Nth shot (``counter % N == N - 1``).
    - ``drop_fraction``: fraction of triggered shots with no beam at all, hashed from the pulse id.
    - ``readout_groups``: ``{group (0..15): prescale}``; group g reads a shot when
      ``counter % prescale == 0``.
    - ``codes``: the event code numbers; ``extra_codes``: ``(code, every, phase)`` triples, code
      present when ``counter % every == phase``.
    """

    mode: TimingMode | str = TimingMode.LCLS1
    beam_rate: float = 120.0
    rate_divisor: int | None = None
    unpaced: bool = False
    seed: int = 0
    start_time: float | int | None = None
    pulse_id_start: int | None = None
    laser_off_every: int | None = None
    laser_pattern: tuple[bool, ...] | None = None
    xray_off_fraction: float = 0.0
    xray_off_every: int = 0
    drop_fraction: float = 0.0
    readout_groups: Mapping[int, int] | tuple[tuple[int, int], ...] = ((0, 1),)
    codes: EventCodes = field(default_factory=EventCodes)
    extra_codes: tuple[tuple[int, int, int], ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            set_(self, "mode", TimingMode(self.mode))
        except ValueError:
            raise _fail("mode", f"{self.mode!r} is not one of 'lcls1', 'lcls2'") from None
        if self.rate_divisor is not None:
            _check_int("rate_divisor", self.rate_divisor, 1)
        else:
            self._divisor_from_rate()
        if not isinstance(self.unpaced, bool):
            raise _fail("unpaced", f"expected a bool, got {self.unpaced!r}")
        _check_int("seed", self.seed, 0, (1 << 64) - 1)
        self._check_start()
        if self.laser_pattern is not None:
            if self.laser_off_every is not None:
                raise _fail("laser_pattern", "give laser_pattern or laser_off_every, not both")
            pattern = tuple(bool(x) for x in self.laser_pattern)
            if not pattern:
                raise _fail("laser_pattern", "the pattern is empty")
            set_(self, "laser_pattern", pattern)
        elif self.laser_off_every is not None:
            _check_int("laser_off_every", self.laser_off_every, 0)
        set_(
            self, "xray_off_fraction", _check_fraction("xray_off_fraction", self.xray_off_fraction)
        )
        set_(self, "drop_fraction", _check_fraction("drop_fraction", self.drop_fraction))
        _check_int("xray_off_every", self.xray_off_every, 0)
        set_(self, "readout_groups", self._normalise_groups(self.readout_groups))
        if isinstance(self.codes, Mapping):
            try:
                set_(self, "codes", EventCodes(**self.codes))
            except TypeError as exc:
                raise _fail("codes", str(exc)) from None
            except ValueError as exc:
                raise ConfigError(f"timing config {exc}") from None
        elif not isinstance(self.codes, EventCodes):
            raise _fail("codes", f"expected EventCodes or a dict, got {self.codes!r}")
        extra = []
        for i, item in enumerate(self.extra_codes):
            key = f"extra_codes[{i}]"
            if len(item) != 3:
                raise _fail(key, f"expected (code, every, phase), got {item!r}")
            code, every, phase = (int(v) for v in item)
            _check_int(key + ".code", code, 0, 255)
            _check_int(key + ".every", every, 1)
            _check_int(key + ".phase", phase, 0, every - 1)
            extra.append((code, every, phase))
        set_(self, "extra_codes", tuple(extra))

    def _divisor_from_rate(self) -> None:
        rate = self.beam_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise _fail("beam_rate", f"expected a positive number of Hz, got {rate!r}")
        if self.mode is TimingMode.LCLS1:
            k = LCLS1_BASE_RATE / rate
            if abs(k - round(k)) > 1e-9 * k:
                good = ", ".join(f"{360 / d:g}" for d in (1, 2, 3, 4, 6, 12, 36, 72, 360, 720))
                raise _fail(
                    "beam_rate",
                    f"{rate} Hz is not 360 Hz / an integer in lcls1 mode (e.g. {good})",
                )
        elif rate > _LCLS2_MAX_RATE:
            raise _fail("beam_rate", f"{rate} Hz is above 1 MHz in lcls2 mode")

    def _check_start(self) -> None:
        st = self.start_time
        if st is not None and (isinstance(st, bool) or not isinstance(st, (int, float))):
            raise _fail("start_time", f"expected POSIX seconds (float) or ns (int), got {st!r}")
        if st is not None and not math.isfinite(st):
            raise _fail("start_time", f"{st!r} is not finite")
        if self.pulse_id_start is not None:
            _check_int("pulse_id_start", self.pulse_id_start, 0, (1 << 56) - 1)

    @staticmethod
    def _normalise_groups(groups: Any) -> tuple[tuple[int, int], ...]:
        items = groups.items() if isinstance(groups, Mapping) else groups
        try:
            pairs = [(g, p) for g, p in items]
        except (TypeError, ValueError):
            raise _fail("readout_groups", f"expected {{group: prescale}}, got {groups!r}") from None
        if not pairs:
            raise _fail("readout_groups", "at least one readout group is needed")
        out: dict[int, int] = {}
        for g, p in pairs:
            _check_int("readout_groups", g, 0, 15)
            if g in out:
                raise _fail("readout_groups", f"group {g} is given twice")
            out[g] = _check_int(f"readout_groups[{g}]", p, 1)
        return tuple(sorted(out.items()))

    # -- derived values ------------------------------------------------------------------------
    @property
    def base_rate(self) -> float:
        """The base clock in Hz (360 or 928571.43)."""
        return LCLS1_BASE_RATE if self.mode is TimingMode.LCLS1 else LCLS2_BASE_RATE

    @property
    def divisor(self) -> int:
        """Base ticks between triggered shots."""
        if self.rate_divisor is not None:
            return self.rate_divisor
        return max(1, round(self.base_rate / self.beam_rate))

    @property
    def actual_beam_rate(self) -> float:
        """The beam rate actually generated: base rate / divisor."""
        return self.base_rate / self.divisor

    @property
    def laser_cycle(self) -> tuple[bool, ...]:
        """The laser on/off pattern that repeats over the counter."""
        if self.laser_pattern is not None:
            return self.laser_pattern
        n = _DEFAULT_LASER_OFF_EVERY if self.laser_off_every is None else self.laser_off_every
        if n == 0:
            return (True,)
        return (True,) * (n - 1) + (False,)

    @property
    def groups(self) -> tuple[tuple[int, int], ...]:
        """The readout groups as sorted ``(group, prescale)`` pairs."""
        return cast(tuple[tuple[int, int], ...], self.readout_groups)

    @property
    def readout_group_mask(self) -> int:
        """The mask of all configured groups."""
        return sum(1 << g for g, _ in self.groups)

    def with_(self, **changes: Any) -> TimingConfig:
        """A copy with some keys changed (validated the same way)."""
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimingConfig:
        """Build from plain data (YAML, JSON, msgpack); unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise _fail(str(key), f"unknown key; known keys: {', '.join(sorted(known))}")
        values = dict(data)
        for key in ("laser_pattern",):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        if isinstance(values.get("codes"), Mapping):
            try:
                values["codes"] = EventCodes(**values["codes"])
            except TypeError as exc:
                raise _fail("codes", str(exc)) from None
            except ValueError as exc:
                raise ConfigError(f"timing config {exc}") from None
        if "extra_codes" in values:
            values["extra_codes"] = tuple(tuple(x) for x in values["extra_codes"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that ``from_dict`` reads back (for Configure dgrams and logs)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "mode":
                v = v.value
            elif f.name == "codes":
                v = {c.name: getattr(v, c.name) for c in fields(v)}
            elif f.name == "readout_groups":
                v = dict(self.groups)
            elif isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            out[f.name] = v
        return out
