"""Step scans: N steps of M events, with one value per step for each scan variable."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from daq.timing import ConfigError

from ._base import FieldSpec

__all__ = ["StepScan"]

_NAME_RE = re.compile(r"^[0-9A-Za-z_.:]+$")


class StepScan:
    """A step scan: ``values`` maps each scan variable (e.g. a motor PV) to its per-step values.

    Event ``i`` of the run (0-based, counting only scan events) belongs to step
    ``i // events_per_step``.
    """

    def __init__(
        self, values: Mapping[str, Sequence[float] | np.ndarray], events_per_step: int
    ) -> None:
        if not values:
            raise ConfigError("scan: at least one scan variable is needed")
        if isinstance(events_per_step, bool) or not isinstance(events_per_step, int):
            raise ConfigError(f"scan: 'events_per_step' must be an int, got {events_per_step!r}")
        if events_per_step < 1:
            raise ConfigError(f"scan: 'events_per_step' must be >= 1, got {events_per_step}")
        arrays: dict[str, np.ndarray] = {}
        for name, seq in values.items():
            if not _NAME_RE.match(name):
                raise ConfigError(f"scan: variable name {name!r} must match [0-9A-Za-z_.:]+")
            arr = np.asarray(seq, dtype=np.float64).ravel()
            if arr.size == 0 or not np.all(np.isfinite(arr)):
                raise ConfigError(f"scan: variable {name!r} needs finite values, got {seq!r}")
            arrays[name] = arr
        sizes = {a.size for a in arrays.values()}
        if len(sizes) != 1:
            raise ConfigError(f"scan: every variable needs the same number of steps, got {sizes}")
        self.values = arrays
        self.events_per_step = events_per_step
        self.nsteps = sizes.pop()

    @classmethod
    def linspace(
        cls, name: str, start: float, stop: float, nsteps: int, events_per_step: int
    ) -> StepScan:
        """A one-variable scan of ``nsteps`` evenly spaced values from start to stop."""
        if nsteps < 1:
            raise ConfigError(f"scan: 'nsteps' must be >= 1, got {nsteps}")
        return cls({name: np.linspace(start, stop, nsteps)}, events_per_step)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.values)

    @property
    def total_events(self) -> int:
        return self.nsteps * self.events_per_step

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        """One float64 scalar per scan variable (for the BeginStep record)."""
        return tuple(FieldSpec(n, np.dtype("<f8")) for n in self.values)

    def step_values(self, step: int) -> dict[str, float]:
        """``{variable: value}`` of step ``step`` (0-based)."""
        if not 0 <= step < self.nsteps:
            raise IndexError(f"scan step {step} outside 0..{self.nsteps - 1}")
        return {n: float(a[step]) for n, a in self.values.items()}

    def step_of(self, event: int) -> int:
        """The step that scan event ``event`` belongs to."""
        if not 0 <= event < self.total_events:
            raise IndexError(f"scan event {event} outside 0..{self.total_events - 1}")
        return event // self.events_per_step

    def __repr__(self) -> str:
        return f"StepScan({', '.join(self.names)}: {self.nsteps} x {self.events_per_step})"
