"""XTC2, the event format of the LCLS-II data systems: read, write, validate, small data.

This package is the format foundation: it imports nothing else of the project. Files it writes
are readable by the reference C++ reader (slac-lcls/lcls2 ``xtcdata``), and it reads theirs.
"""

from ._decode import Decoder, DetectorData, Event, NamesLookup, walk
from ._dgram import Dgram, XtcHeader, iter_children, iter_dgrams
from ._errors import XtcError, XtcTruncatedError, XtcTruncatedWarning
from ._file import XtcFileReader, read_dgrams
from ._names import Alg, Field, Names
from ._template import BatchDgrams, BoundDgram, DgramTemplate
from ._types import (
    DGRAM_HEADER_SIZE,
    EPICS_EPOCH_OFFSET,
    NAMES_ID_CHUNKINFO,
    NAMES_ID_RUNINFO,
    NAMES_ID_SMDINFO,
    NAMES_ID_STEPINFO,
    XTC_HEADER_SIZE,
    Damage,
    DataType,
    DgramType,
    Level,
    TransitionId,
    TypeId,
    datatype_of,
    make_env,
    make_src,
    names_id,
    split_timestamp,
    timestamp,
)
from ._writer import (
    EncodedDgram,
    NamesBlock,
    ParentBlock,
    RawBlock,
    ShapesDataBlock,
    event_src,
    make_dgram,
    segment_src,
    writev_all,
)

__all__ = [
    "DGRAM_HEADER_SIZE",
    "EPICS_EPOCH_OFFSET",
    "NAMES_ID_CHUNKINFO",
    "NAMES_ID_RUNINFO",
    "NAMES_ID_SMDINFO",
    "NAMES_ID_STEPINFO",
    "XTC_HEADER_SIZE",
    "Alg",
    "BatchDgrams",
    "BoundDgram",
    "Damage",
    "DataType",
    "Decoder",
    "DetectorData",
    "Dgram",
    "DgramTemplate",
    "DgramType",
    "EncodedDgram",
    "Event",
    "Field",
    "Level",
    "Names",
    "NamesBlock",
    "NamesLookup",
    "ParentBlock",
    "RawBlock",
    "ShapesDataBlock",
    "TransitionId",
    "TypeId",
    "XtcError",
    "XtcFileReader",
    "XtcHeader",
    "XtcTruncatedError",
    "XtcTruncatedWarning",
    "datatype_of",
    "event_src",
    "iter_children",
    "iter_dgrams",
    "make_dgram",
    "make_env",
    "make_src",
    "names_id",
    "read_dgrams",
    "segment_src",
    "split_timestamp",
    "timestamp",
    "walk",
    "writev_all",
]
