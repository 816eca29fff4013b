"""Calibrated sources for the monitor and offline reading: ``DET:calib`` and ``DET:image``.

When constants exist for a run, each known area detector ``DET`` with a ``DET:raw`` field gains
two derived sources: ``DET:calib`` (pedestal, common mode, gain, mask; the raw shape, float32)
and ``DET:image`` (the calibrated frame placed by the deployed geometry, or the detector's
default one). Detectors without constants keep only their raw source; :attr:`CalibSources.problems`
says why, in one line each. The functions hold one Calibrator each: one instance per thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._calibrator import Calibrator
from ._default_geometry import default_geometry
from ._detectors import DETECTORS
from ._errors import CalibError
from ._image import ImageAssembler
from ._run import RunIndex, RunReader
from ._store import CalibStore


@dataclass(frozen=True)
class DerivedSource:
    """A source computed from another: ``fn(values[raw])`` gives its value for an event."""

    name: str  # e.g. "cspad:calib"
    type: str  # port type: "image" (2-D) or "array"
    raw: str  # the source it is computed from, e.g. "cspad:raw"
    fn: Callable[[np.ndarray], np.ndarray]


class _Pipeline:
    """One detector's calibration and image, computing the calibration once per event."""

    def __init__(self, cal: Calibrator, asm: ImageAssembler | None) -> None:
        self.cal, self.asm = cal, asm
        self._last: tuple[Any, np.ndarray] | None = None

    def calib(self, raw: np.ndarray) -> np.ndarray:
        if self._last is not None and self._last[0] is raw:
            return self._last[1]
        out = self.cal.calib(raw)
        self._last = (raw, out)  # holding raw keeps ``is`` meaningful
        return out

    def image(self, raw: np.ndarray) -> np.ndarray:
        assert self.asm is not None
        return self.asm.assemble(self.calib(raw))


class CalibSources:
    """Derived sources of a run from a constants store (construction does no I/O)."""

    def __init__(self, store: CalibStore | str | os.PathLike[str], raw_field: str = "raw") -> None:
        self.store = store if isinstance(store, CalibStore) else CalibStore(store)
        self.raw_field = raw_field
        self.problems: dict[str, str] = {}

    def for_run(self, detectors: Mapping[str, str], run: int) -> dict[str, DerivedSource]:
        """``{"DET:calib": ..., "DET:image": ...}`` for each ``{det_name: det_type}`` of a
        known type with pedestals for ``run``; reasons for the others go to ``problems``."""
        self.problems = {}
        out: dict[str, DerivedSource] = {}
        for name, det_type in detectors.items():
            if det_type not in DETECTORS:
                continue
            try:
                pipe = self._pipeline(det_type, name, run)
            except CalibError as exc:
                self.problems[name] = f"{name}: raw data only ({exc})"
                continue
            raw = f"{name}:{self.raw_field}"
            kind = "image" if len(pipe.cal.shape) == 2 else "array"
            out[f"{name}:calib"] = DerivedSource(f"{name}:calib", kind, raw, pipe.calib)
            if pipe.asm is not None:
                out[f"{name}:image"] = DerivedSource(f"{name}:image", "image", raw, pipe.image)
        return out

    def _pipeline(self, det_type: str, name: str, run: int) -> _Pipeline:
        segments = store_segments(self.store, det_type, name, run)
        cal = Calibrator.from_store(self.store, det_type, name, run, segments=segments)
        geo = self.store.geometry(det_type, name, run)
        if geo is None:
            try:
                geo = default_geometry(det_type, segments if det_type == "jungfrau" else None)
            except CalibError:
                geo = None
        asm = None
        if geo is not None:
            asm = ImageAssembler.from_geometry(geo)
            if asm.shape and int(np.prod(asm.shape)) != int(np.prod(cal.shape)):
                raise CalibError(f"geometry of {name} has {int(np.prod(asm.shape))} pixels, "
                                 f"the constants {int(np.prod(cal.shape))}")
        return _Pipeline(cal, asm)


def store_segments(store: CalibStore, det_type: str, det_name: str, run: int) -> int | None:
    """Module count of a Jungfrau from its deployed pedestals (3, modules, 512, 1024); None
    for detectors whose segment count is fixed."""
    if not DETECTORS[det_type].gain_switching:
        return None
    ped = store.load(det_type, det_name, "pedestals", run)
    return None if ped is None or ped.ndim < 4 else int(ped.shape[1])


def derived_sources(store: CalibStore | str | os.PathLike[str], detectors: Mapping[str, str],
                    run: int) -> dict[str, DerivedSource]:
    """``CalibSources(store).for_run(detectors, run)``: the adapter for the AMI worker."""
    return CalibSources(store).for_run(detectors, run)


def calibrated_events(
    index: RunIndex, store: CalibStore | str | os.PathLike[str], run: int | None = None,
    detectors: Mapping[str, str] | None = None, *, problems: list[str] | None = None,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Offline reading: (event number, ``{"DET:raw", "DET:calib", "DET:image": array}``) for
    every event of a run; raw only where constants are missing (reasons appended to
    ``problems``). ``run`` defaults to the number recorded in the run's BeginRun."""
    if run is None:
        info = index.run_info()
        if info is None:
            raise CalibError("the files record no run number: give run=")
        run = info[1]
    dets = dict(index.detectors() if detectors is None else detectors)
    srcs = CalibSources(store)
    derived = srcs.for_run(dets, run)
    if problems is not None:
        problems.extend(srcs.problems.values())
    with RunReader(index) as reader:
        for i in range(len(index)):
            values: dict[str, np.ndarray] = {}
            event = reader.event(i)
            for name, det_type in dets.items():
                if det_type not in DETECTORS:
                    continue
                raw = event.get(name, srcs.raw_field)
                if raw is not None:
                    values[f"{name}:{srcs.raw_field}"] = raw
            for d in derived.values():
                if d.raw in values:
                    values[d.name] = d.fn(values[d.raw])
            yield i, values
