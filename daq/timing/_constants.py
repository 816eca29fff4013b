"""Timing constants: base rates, fiducial range, the EPICS epoch and the default event codes.

Event codes (``EventCodes``; every number is configurable). They follow the LCLS-I EVR numbering
that users know from psana and smalldata_tools:

====  ==========================================================================================
code  present on a shot when
====  ==========================================================================================
40    the shot opens a 360 Hz tick that is a 120 Hz tick (tick % 3 == 0)
41    ... a 60 Hz tick (tick % 6 == 0)
42    ... a 30 Hz tick (tick % 12 == 0)
43    ... a 10 Hz tick (tick % 36 == 0)
44    ... a 5 Hz tick (tick % 72 == 0)
45    ... a 1 Hz tick (tick % 360 == 0)
46    ... a 0.5 Hz tick (tick % 720 == 0)
140   the electron beam is present (LCLS-I used 140 for "beam and 120 Hz"; here it means beam)
162   BYKIK: beam present but the x-rays are kicked off (x-ray off reference shot)
90    pump laser on
91    pump laser off (exactly one of 90 and 91 is present on every shot)
====  ==========================================================================================

So ``xray_on = 140 present and 162 absent`` and ``laser_on = 90 present``, the same decoding as
smalldata_tools' light status (x-ray off = 162, laser off = 91).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum

from daq.xtc import EPICS_EPOCH_OFFSET

__all__ = [
    "EPICS_EPOCH_OFFSET",
    "FIDUCIAL_ERROR",
    "FIDUCIAL_MAX",
    "FIDUCIAL_PERIOD",
    "LCLS1_BASE_RATE",
    "LCLS2_BASE_RATE",
    "PULSE_ID_BITS",
    "PULSE_ID_MAX",
    "EventCodes",
    "TimingMode",
]

LCLS1_BASE_RATE = 360.0  #: Hz, the LCLS-I timing clock (AC line x 6)
LCLS2_BASE_RATE = 1300e6 / 1400  #: Hz, 928571.43: the LCLS-II base rate (1300 MHz / 1400)

#: Largest valid fiducial; after it the count returns to 0 (the spec's rule: period 131041)
FIDUCIAL_MAX = (1 << 17) - 32
FIDUCIAL_PERIOD = FIDUCIAL_MAX + 1
FIDUCIAL_ERROR = (1 << 17) - 1  #: 0x1ffff: "no valid fiducial"

PULSE_ID_BITS = 56
PULSE_ID_MAX = (1 << PULSE_ID_BITS) - 1


class TimingMode(StrEnum):
    """LCLS-I (360 Hz clock, fiducial per tick) or LCLS-II (929 kHz clock, fiducial derived)."""

    LCLS1 = "lcls1"
    LCLS2 = "lcls2"


#: (code attribute, 360 Hz ticks per period) of the fixed-rate markers 40..46
RATE_MARKERS: tuple[tuple[str, int], ...] = (
    ("rate_120hz", 3),
    ("rate_60hz", 6),
    ("rate_30hz", 12),
    ("rate_10hz", 36),
    ("rate_5hz", 72),
    ("rate_1hz", 360),
    ("rate_0p5hz", 720),
)


@dataclass(frozen=True)
class EventCodes:
    """Which event code (0..255) marks each condition; the module docstring lists the meaning."""

    rate_120hz: int = 40
    rate_60hz: int = 41
    rate_30hz: int = 42
    rate_10hz: int = 43
    rate_5hz: int = 44
    rate_1hz: int = 45
    rate_0p5hz: int = 46
    beam: int = 140
    xray_off: int = 162
    laser_on: int = 90
    laser_off: int = 91

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for f in fields(self):
            code = getattr(self, f.name)
            if not isinstance(code, int) or not 0 <= code <= 255:
                raise ValueError(f"codes.{f.name}: event code {code!r} is not an int in 0..255")
            if code in seen:
                raise ValueError(f"codes.{f.name}: event code {code} is also codes.{seen[code]}")
            seen[code] = f.name
