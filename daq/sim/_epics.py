"""Slow EPICS process variables: temperatures, pressures, motor readbacks with a slow drift.

Each PV is sampled at ``rate_hz`` (default 1 Hz): between samples the value holds. A sample is
``base + sum of slow sines + noise``, all pure functions of (seed, PV name, sample number), so
``read(t)`` gives the same value for any ``t`` in the same sample period, in any process.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from daq.timing import Shot, mix_key

from ._base import Detector, FieldSpec, ParamError, Params
from ._beam import hash_normals, hash_uniforms

__all__ = ["Epics", "EpicsParams", "PvSpec", "default_pvs"]

_PV_RE = re.compile(r"^[0-9A-Za-z_.:]+$")


@dataclass(frozen=True)
class PvSpec:
    """A PV: ``base`` value, slow ``drift`` amplitude over ``period`` s, sample ``noise`` rms."""

    name: str
    base: float
    drift: float = 0.0
    period: float = 3600.0
    noise: float = 0.0


def default_pvs(hutch: str = "XPP") -> tuple[PvSpec, ...]:
    """A hutch's usual slow values: temperatures (C), pressures (Torr), motor readbacks (mm)."""
    return (
        PvSpec(f"{hutch}:MON:TEMP:01", 22.0, 0.3, 5400.0, 0.01),
        PvSpec(f"{hutch}:MON:TEMP:02", 23.5, 0.5, 7200.0, 0.01),
        PvSpec(f"{hutch}:GAUGE:PRESS:01", 2.0e-8, 0.5e-8, 3000.0, 1e-10),
        PvSpec(f"{hutch}:GAUGE:PRESS:02", 7.5e-7, 1.0e-7, 4000.0, 1e-9),
        PvSpec(f"{hutch}:MOT:SAMPLE:X.RBV", 1.25, 0.002, 900.0, 0.0005),
        PvSpec(f"{hutch}:MOT:SAMPLE:Y.RBV", -0.40, 0.002, 1100.0, 0.0005),
        PvSpec(f"{hutch}:LAS:DELAY:RBV", 0.0, 0.0, 3600.0, 1e-4),
    )


@dataclass(frozen=True)
class EpicsParams(Params):
    """``pvs``: PvSpec or (name, base[, drift, period, noise]) tuples, or ``{name: base}``;
    ``None`` = ``default_pvs(hutch)``. ``rate_hz``: samples per second."""

    hutch: str = "XPP"
    pvs: Any = None
    rate_hz: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_float("rate_hz", 0.0, 1e6, open_lo=True)
        if not re.match(r"^[0-9A-Za-z_]+$", str(self.hutch)):
            raise ParamError(f"parameter 'hutch': {self.hutch!r} must match [0-9A-Za-z_]+")
        pvs = self.pvs
        if pvs is None:
            specs = default_pvs(self.hutch)
        elif isinstance(pvs, Mapping):
            specs = tuple(PvSpec(str(k), float(v)) for k, v in pvs.items())
        else:
            try:
                specs = tuple(p if isinstance(p, PvSpec) else PvSpec(*p) for p in pvs)
            except TypeError:
                raise ParamError(f"parameter 'pvs': cannot read {pvs!r}") from None
        names = [s.name for s in specs]
        for s in specs:
            if not _PV_RE.match(s.name):
                raise ParamError(f"parameter 'pvs': PV name {s.name!r} must match [0-9A-Za-z_.:]+")
            if not s.period > 0:
                raise ParamError(f"parameter 'pvs': {s.name} period must be > 0")
        if len(set(names)) != len(names) or not names:
            raise ParamError("parameter 'pvs': PV names must be unique and at least one")
        object.__setattr__(self, "pvs", specs)


class Epics(Detector):
    """Slow values; ``read(t)`` takes a Shot or POSIX seconds. Fields: one float64 per PV."""

    kind = "epics"
    params_class = EpicsParams
    params: EpicsParams

    def __init__(self, name: str, params: EpicsParams | None = None, **kwargs: Any) -> None:
        super().__init__(name, params, **kwargs)
        self.pvs: tuple[PvSpec, ...] = self.params.pvs
        self._keys = [mix_key(self._key, pv.name) for pv in self.pvs]
        self._phases = [hash_uniforms(key, 0, 2) for key in self._keys]
        self._fields = tuple(FieldSpec(pv.name, np.dtype("<f8")) for pv in self.pvs)

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return self._fields

    @property
    def rate_hz(self) -> float:
        return float(self.params.rate_hz)

    def sample_index(self, t: Shot | float) -> int:
        """The number of the sample in force at ``t`` (POSIX seconds or a Shot)."""
        secs = t.posix_time if isinstance(t, Shot) else float(t)
        return math.floor(secs * self.params.rate_hz)

    def is_new_sample(self, t_prev: Shot | float, t: Shot | float) -> bool:
        """Whether a new sample was taken after ``t_prev`` and up to ``t`` (a SlowUpdate is due)."""
        return self.sample_index(t) != self.sample_index(t_prev)

    def value(self, pv: int, sample: int) -> float:
        """Sample number ``sample`` of PV number ``pv``."""
        spec, key = self.pvs[pv], self._keys[pv]
        ts = sample / self.params.rate_hz
        ph = self._phases[pv]
        drift = spec.drift * (
            0.7 * math.sin(2 * math.pi * (ts / spec.period + ph[0]))
            + 0.3 * math.sin(2 * math.pi * (ts / (spec.period * 2.71828) + ph[1]))
        )
        return spec.base + drift + spec.noise * hash_normals(key, sample, 1)[0]

    def read(self, t: Shot | float, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """``{pv name: float64}`` at ``t`` (POSIX seconds or a Shot)."""
        k = self.sample_index(t)
        return {pv.name: np.float64(self.value(i, k)) for i, pv in enumerate(self.pvs)}
