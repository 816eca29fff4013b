"""Enumerations and fixed numbers of the XTC2 format (spec sections 1-3)."""

from __future__ import annotations

from enum import IntEnum, IntFlag

import numpy as np

DGRAM_HEADER_SIZE = 24  #: time (8) + env (4) + root xtc header (12)
XTC_HEADER_SIZE = 12
NAME_STR_SIZE = 256
NAMEINFO_SIZE = 4 + 3 * NAME_STR_SIZE + NAME_STR_SIZE + 4 + 4  #: 1036
NAME_SIZE = NAME_STR_SIZE + 4 + NAME_STR_SIZE + 4 + 4  #: 524
SHAPE_SIZE = 20  #: five u32 dimensions per array field
MAX_RANK = 5
EPICS_EPOCH_OFFSET = 631152000  #: POSIX seconds at 1990-01-01 00:00:00 UTC


class TransitionId(IntEnum):
    """The service of a dgram (env bits 27..24). Begin transitions are even; end = begin + 1."""

    ClearReadout = 0
    Reset = 1
    Configure = 2
    Unconfigure = 3
    BeginRun = 4
    EndRun = 5
    BeginStep = 6
    EndStep = 7
    Enable = 8
    Disable = 9
    SlowUpdate = 10
    Unused_11 = 11
    L1Accept = 12

    @classmethod
    def name_of(cls, value: int) -> str:
        """The reference reader's name for a service value, ``-Invalid-`` when out of range."""
        try:
            return cls(value).name
        except ValueError:
            return "-Invalid-"


#: Begin transitions and the end that closes each, outermost first.
BEGIN_END_PAIRS: tuple[tuple[TransitionId, TransitionId], ...] = (
    (TransitionId.Configure, TransitionId.Unconfigure),
    (TransitionId.BeginRun, TransitionId.EndRun),
    (TransitionId.BeginStep, TransitionId.EndStep),
    (TransitionId.Enable, TransitionId.Disable),
)


class DgramType(IntEnum):
    """Dgram type (env bits 29..28)."""

    Event = 0
    Occurrence = 1
    Marker = 2


class TypeId(IntEnum):
    """What an xtc container holds (``contains`` bits 11..0)."""

    Parent = 0
    ShapesData = 1
    Shapes = 2
    Data = 3
    Names = 4


class Level(IntEnum):
    """The level of a ``src`` (bits 31..28): a readout segment or a built event."""

    Segment = 0
    Event = 1


class Damage(IntFlag):
    """Damage bits (bits 11..0 of the damage field); user bits are 15..12."""

    NONE = 0
    Truncated = 1 << 0
    OutOfOrder = 1 << 1
    OutOfSynch = 1 << 2
    Corrupted = 1 << 3
    DroppedContribution = 1 << 4
    MissingData = 1 << 5
    TimedOut = 1 << 6
    UserDefined = 1 << 12


class DataType(IntEnum):
    """Field types of a Names block, with their element sizes in ``ELEMENT_SIZE``."""

    UINT8 = 0
    UINT16 = 1
    UINT32 = 2
    UINT64 = 3
    INT8 = 4
    INT16 = 5
    INT32 = 6
    INT64 = 7
    FLOAT = 8
    DOUBLE = 9
    CHARSTR = 10
    ENUMVAL = 11
    ENUMDICT = 12


#: numpy dtype (little-endian) of one element of each field type
NUMPY_DTYPE: dict[DataType, np.dtype] = {
    DataType.UINT8: np.dtype("<u1"),
    DataType.UINT16: np.dtype("<u2"),
    DataType.UINT32: np.dtype("<u4"),
    DataType.UINT64: np.dtype("<u8"),
    DataType.INT8: np.dtype("<i1"),
    DataType.INT16: np.dtype("<i2"),
    DataType.INT32: np.dtype("<i4"),
    DataType.INT64: np.dtype("<i8"),
    DataType.FLOAT: np.dtype("<f4"),
    DataType.DOUBLE: np.dtype("<f8"),
    DataType.CHARSTR: np.dtype("u1"),
    DataType.ENUMVAL: np.dtype("<i4"),
    DataType.ENUMDICT: np.dtype("<i4"),
}
ELEMENT_SIZE: dict[DataType, int] = {t: d.itemsize for t, d in NUMPY_DTYPE.items()}

_FROM_NUMPY: dict[str, DataType] = {
    "u1": DataType.UINT8,
    "u2": DataType.UINT16,
    "u4": DataType.UINT32,
    "u8": DataType.UINT64,
    "i1": DataType.INT8,
    "i2": DataType.INT16,
    "i4": DataType.INT32,
    "i8": DataType.INT64,
    "f4": DataType.FLOAT,
    "f8": DataType.DOUBLE,
    "b1": DataType.UINT8,
}


def datatype_of(dtype: np.dtype | type | str) -> DataType:
    """The XTC2 field type that stores a numpy dtype (``bool`` is stored as UINT8)."""
    dt = np.dtype(dtype)
    key = f"{dt.kind}{dt.itemsize}"
    try:
        return _FROM_NUMPY[key]
    except KeyError:
        raise ValueError(f"numpy dtype {dt} has no XTC2 field type") from None


# Reserved namesIds (low 8 bits of a NamesId).
NAMES_ID_CHUNKINFO = 252
NAMES_ID_STEPINFO = 253
NAMES_ID_SMDINFO = 254
NAMES_ID_RUNINFO = 255
#: node id the small-data writer uses for its smdinfo Names (as the reference smdwriter does)
SMD_NODE_ID = 512


def names_id(node_id: int, index: int) -> int:
    """Pack a (node id, names index) pair into the NamesId stored as the src of Names/ShapesData."""
    if not 0 <= node_id <= 0xFFF:
        raise ValueError(f"node id {node_id} does not fit in 12 bits")
    if not 0 <= index <= 0xFF:
        raise ValueError(f"names index {index} does not fit in 8 bits")
    return (node_id << 8) | index


def make_src(value: int, level: Level = Level.Segment) -> int:
    """A src word: level in bits 31..28, value in bits 27..0."""
    if not 0 <= value < (1 << 28):
        raise ValueError(f"src value {value:#x} does not fit in 28 bits")
    return (int(level) << 28) | value


def src_level(src: int) -> int:
    return (src >> 28) & 0xF


def src_value(src: int) -> int:
    return src & 0x0FFFFFFF


def make_env(
    transition: TransitionId | int,
    readout_groups: int = 0,
    dgram_type: DgramType | int = DgramType.Event,
    trigger_bits: int = 0,
) -> int:
    """Pack the env word of a dgram header."""
    return (
        ((int(dgram_type) & 0x3) << 28)
        | ((int(transition) & 0xF) << 24)
        | ((trigger_bits & 0xFF) << 16)
        | (readout_groups & 0xFFFF)
    )


def env_transition(env: int) -> int:
    return (env >> 24) & 0xF


def env_readout_groups(env: int) -> int:
    return env & 0xFFFF


def timestamp(seconds: int, nanoseconds: int) -> int:
    """The 64-bit key ``seconds << 32 | nanoseconds`` that orders and identifies events."""
    return (seconds << 32) | nanoseconds


def split_timestamp(ts: int) -> tuple[int, int]:
    return ts >> 32, ts & 0xFFFFFFFF


def epics_to_posix(seconds: int, nanoseconds: int = 0) -> float:
    return seconds + EPICS_EPOCH_OFFSET + nanoseconds * 1e-9
