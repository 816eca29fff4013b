"""psana-style detector handles: ``run.Detector(name)`` for area, waveform, scalar, EPICS and scan.

``det.raw(evt)``, ``det.calib(evt)`` and ``det.image(evt)`` for area detectors (calibration from
the run's constants store, as ``calib.derived_sources`` builds it); ``det.<field>(evt)`` or
``det.values(evt)`` for any detector; ``det(evt)`` for an EPICS PV (value in effect at the event)
or a scan variable (value of the event's step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from calib import DETECTORS, CalibSources, CalibStore

from ._errors import OfflineError
from ._event import OfflineEvent

if TYPE_CHECKING:
    from ._run import Run


class Detector:
    """Any recorded detector: fields by name, damage."""

    def __init__(self, run: Run, name: str, det_type: str, fields: list[str]) -> None:
        self.run = run
        self.name = name
        self.type = det_type
        self.fields = fields

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.type}): {', '.join(self.fields)}>"

    def values(self, evt: OfflineEvent) -> dict[str, Any]:
        """Every field of the detector in this event ({} when absent)."""
        return evt.values(self.name)

    def raw(self, evt: OfflineEvent) -> Any:
        """The ``raw`` field, the only field, or a dict of all fields."""
        if "raw" in self.fields:
            return evt.get(self.name, "raw")
        if len(self.fields) == 1:
            return evt.get(self.name, self.fields[0])
        return self.values(evt) or None

    def damage(self, evt: OfflineEvent) -> int:
        return evt.detector_damage(self.name)

    def __getattr__(self, field: str) -> Callable[[OfflineEvent], Any]:
        if field.startswith("_") or field not in self.__dict__.get("fields", ()):
            raise AttributeError(f"detector {self.__dict__.get('name')!r} has no field {field!r}")
        name = self.name
        return lambda evt: evt.get(name, field)


class AreaDetector(Detector):
    """An area detector of a type the calibration knows: raw, calib and image."""

    def __init__(self, run: Run, name: str, det_type: str, fields: list[str]) -> None:
        super().__init__(run, name, det_type, fields)
        self._fns: dict[str, Any] | None = None
        self._problem = ""

    def _derived(self) -> dict[str, Any]:
        if self._fns is None:
            store = CalibStore(self.run.calib_dir)
            srcs = CalibSources(store)
            derived = srcs.for_run({self.name: self.type}, self.run.runnum)
            self._fns = {k.split(":", 1)[1]: d.fn for k, d in derived.items()}
            self._problem = srcs.problems.get(self.name, "")
        return self._fns

    def _apply(self, kind: str, evt: OfflineEvent) -> np.ndarray | None:
        fn = self._derived().get(kind)
        if fn is None:
            raise OfflineError(self._problem or f"{self.name}: no {kind} (no geometry)")
        raw = evt.get(self.name, "raw")
        return None if raw is None else fn(raw)

    def calib(self, evt: OfflineEvent) -> np.ndarray | None:
        """Calibrated frame (float32, raw shape; keV when gains are deployed), None if absent."""
        return self._apply("calib", evt)

    def image(self, evt: OfflineEvent) -> np.ndarray | None:
        """The calibrated frame placed by the geometry (2-D), None if absent."""
        return self._apply("image", evt)

    @property
    def calibrated(self) -> bool:
        """Whether constants exist for this run (else :attr:`problem` says why)."""
        return "calib" in self._derived()

    @property
    def problem(self) -> str:
        self._derived()
        return self._problem

    def constants(self, ctype: str) -> np.ndarray | None:
        """A constant (pedestals, pixel_rms, pixel_gain, pixel_status, ...) for this run."""
        return CalibStore(self.run.calib_dir).load(self.type, self.name, ctype, self.run.runnum)


class EpicsPV:
    """An EPICS PV recorded in SlowUpdates: ``pv(evt)`` is the value in effect at the event."""

    type = "epics"

    def __init__(self, run: Run, name: str) -> None:
        self.run = run
        self.name = name

    def __call__(self, evt: OfflineEvent) -> float | None:
        v = evt.epics.get(self.name)
        return None if v is None else float(v)

    def __repr__(self) -> str:
        return f"<EpicsPV {self.name}>"


class ScanVariable:
    """A scan variable recorded at each BeginStep: ``var(evt)`` is the value of its step."""

    type = "scan"

    def __init__(self, run: Run, name: str) -> None:
        self.run = run
        self.name = name

    def __call__(self, evt: OfflineEvent) -> float | None:
        if evt.step is None or self.name not in evt.step.scan:
            return None
        return float(evt.step.scan[self.name])

    def __repr__(self) -> str:
        return f"<ScanVariable {self.name}>"


def make_detector(run: Run, name: str) -> Detector | EpicsPV | ScanVariable:
    dets = run.detnames
    if name in dets:
        fields = run.fields(name)
        if dets[name] in DETECTORS and "raw" in fields:
            return AreaDetector(run, name, dets[name], fields)
        return Detector(run, name, dets[name], fields)
    if name in run.epics_names:
        return EpicsPV(run, name)
    if name in run.scan_names:
        return ScanVariable(run, name)
    have = sorted([*dets, *run.epics_names, *run.scan_names])
    raise OfflineError(f"no detector, PV or scan variable {name!r} in run {run.runnum} "
                       f"(have: {', '.join(have) or 'none'})")
