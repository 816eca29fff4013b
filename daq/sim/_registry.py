"""``make_detector(kind, name, **params)``: every simulated detector by its kind name."""

from __future__ import annotations

from typing import Any

from daq.timing import ConfigError

from ._area_kinds import Cspad, Epix100, Jungfrau, Opal
from ._base import Detector
from ._bld import Ebeam, Encoder, Gasdet, Ipm, Phasecav
from ._epics import Epics
from ._timingdet import TimingDetector
from ._waveform import Acqiris, Hsd

__all__ = ["DETECTOR_KINDS", "make_detector"]

#: kind name -> detector class
DETECTOR_KINDS: dict[str, type[Detector]] = {
    cls.kind: cls
    for cls in (
        Cspad,
        Epix100,
        Jungfrau,
        Opal,
        Acqiris,
        Hsd,
        Gasdet,
        Ebeam,
        Ipm,
        Encoder,
        Phasecav,
        Epics,
        TimingDetector,
    )
}


def make_detector(kind: str, name: str, **params: Any) -> Detector:
    """A detector of ``kind`` named ``name``; unknown kinds or parameters raise ConfigError."""
    cls = DETECTOR_KINDS.get(kind)
    if cls is None:
        raise ConfigError(f"unknown detector kind {kind!r}; known: {', '.join(DETECTOR_KINDS)}")
    return cls(name, **params)
