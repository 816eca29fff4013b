"""Simulated detectors: deterministic, cheap at rate, with ground truth for tests.

Every detector is a pure function of (seed, name, segment, shot): ``det.read(shot)`` regenerates
any event anywhere. ``make_detector(kind, name, **params)`` builds one by kind: area detectors
(``cspad``, ``epix100``, ``jungfrau``, ``opal``), digitizers (``acqiris``, ``hsd``), beam-line
data (``gasdet``, ``ebeam``, ``ipm``, ``encoder``, ``phasecav``), slow ``epics`` values and the
``timing`` detector. ``StepScan`` describes step scans. A shared ``BeamModel`` correlates them.
"""

from daq.timing import ConfigError

from ._area import STATUS_DEAD, STATUS_HOT, STATUS_NOISY, AreaDetector, AreaModel, AreaParams
from ._area_kinds import (
    Cspad,
    CspadParams,
    Epix100,
    Epix100Params,
    Jungfrau,
    JungfrauParams,
    Opal,
    OpalParams,
)
from ._base import Detector, FieldSpec, Params
from ._beam import BeamModel, BeamState
from ._bld import Ebeam, Encoder, Gasdet, Ipm, Phasecav, ScalarDetector
from ._epics import Epics, EpicsParams, PvSpec, default_pvs
from ._registry import DETECTOR_KINDS, make_detector
from ._scan import StepScan
from ._timingdet import TimingDetector
from ._waveform import Acqiris, AcqirisParams, Hsd, HsdParams, WaveformDetector, WaveformParams

__all__ = [
    "DETECTOR_KINDS",
    "STATUS_DEAD",
    "STATUS_HOT",
    "STATUS_NOISY",
    "Acqiris",
    "AcqirisParams",
    "AreaDetector",
    "AreaModel",
    "AreaParams",
    "BeamModel",
    "BeamState",
    "ConfigError",
    "Cspad",
    "CspadParams",
    "Detector",
    "Ebeam",
    "Encoder",
    "Epics",
    "EpicsParams",
    "Epix100",
    "Epix100Params",
    "FieldSpec",
    "Gasdet",
    "Hsd",
    "HsdParams",
    "Ipm",
    "Jungfrau",
    "JungfrauParams",
    "Opal",
    "OpalParams",
    "Params",
    "Phasecav",
    "PvSpec",
    "ScalarDetector",
    "StepScan",
    "TimingDetector",
    "WaveformDetector",
    "WaveformParams",
    "default_pvs",
    "make_detector",
]
