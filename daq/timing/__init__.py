"""The timing model: base clock, pulse ids, fiducials, timestamps, event codes, readout groups.

Pure computation: ``TimingSystem(config).shot(counter)`` is a function of the counter, so readout
nodes, event builders and tests can all regenerate any shot. Shots travel as 64-byte records
(``Shot.encode`` / ``decode_shot``). The process that drives the timing paces itself with
``pace``; nothing here sleeps on its own.
"""

from ._config import ConfigError, TimingConfig
from ._constants import (
    EPICS_EPOCH_OFFSET,
    FIDUCIAL_ERROR,
    FIDUCIAL_MAX,
    FIDUCIAL_PERIOD,
    LCLS1_BASE_RATE,
    LCLS2_BASE_RATE,
    PULSE_ID_BITS,
    PULSE_ID_MAX,
    EventCodes,
    TimingMode,
)
from ._hash import mix_key, splitmix64, splitmix64_array, uniform, uniform_array
from ._shot import (
    FLAG_BEAM,
    FLAG_LASER,
    FLAG_XRAY,
    SHOT_DTYPE,
    SHOT_SIZE,
    SHOT_VERSION,
    Shot,
    decode_shot,
    decode_shots,
    encode_shot,
)
from ._system import Clock, TimingSystem, pace

__all__ = [
    "EPICS_EPOCH_OFFSET",
    "FIDUCIAL_ERROR",
    "FIDUCIAL_MAX",
    "FIDUCIAL_PERIOD",
    "FLAG_BEAM",
    "FLAG_LASER",
    "FLAG_XRAY",
    "LCLS1_BASE_RATE",
    "LCLS2_BASE_RATE",
    "PULSE_ID_BITS",
    "PULSE_ID_MAX",
    "SHOT_DTYPE",
    "SHOT_SIZE",
    "SHOT_VERSION",
    "Clock",
    "ConfigError",
    "EventCodes",
    "Shot",
    "TimingConfig",
    "TimingMode",
    "TimingSystem",
    "decode_shot",
    "decode_shots",
    "encode_shot",
    "mix_key",
    "pace",
    "splitmix64",
    "splitmix64_array",
    "uniform",
    "uniform_array",
]
