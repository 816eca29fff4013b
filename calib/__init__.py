"""Calibration: constants store, dark-run statistics, corrections, geometry and images.

Pure computation on numpy arrays (the store and ``Geometry.read`` are the only file I/O), used
by both the live monitor and offline analysis. Names follow psana where users know them.
"""

from ._calibrator import Calibrator, apply_common_mode, split_gain
from ._dark import DarkAccumulator, DarkStats, DarkThresholds, dark_constants
from ._darks import DarkRun, process_dark, process_dark_stages
from ._default_geometry import default_geometry, default_geometry_text
from ._detectors import DETECTORS, CommonMode, DetectorSpec, detector_spec
from ._diff import ConstantsDiff, diff_constants
from ._errors import CalibError, GeometryError
from ._geometry import Geometry, GeometryRow
from ._image import ImageAssembler
from ._run import EventRef, RunIndex, RunReader
from ._segments import SegmentType, segment_type
from ._sources import CalibSources, DerivedSource, calibrated_events, derived_sources
from ._status import ALL_STATUS_BITS, StatusBit, good_pixels
from ._store import CTYPES, CalibEntry, CalibStore, RunRange, read_constants
from ._textarray import format_text_array, parse_text_array
from ._truth import deploy_truth, truth_constants

__all__ = [
    "ALL_STATUS_BITS",
    "CTYPES",
    "DETECTORS",
    "CalibEntry",
    "CalibError",
    "CalibSources",
    "CalibStore",
    "Calibrator",
    "CommonMode",
    "ConstantsDiff",
    "DarkAccumulator",
    "DarkRun",
    "DarkStats",
    "DarkThresholds",
    "DerivedSource",
    "DetectorSpec",
    "EventRef",
    "Geometry",
    "GeometryError",
    "GeometryRow",
    "ImageAssembler",
    "RunIndex",
    "RunRange",
    "RunReader",
    "SegmentType",
    "StatusBit",
    "apply_common_mode",
    "calibrated_events",
    "dark_constants",
    "default_geometry",
    "default_geometry_text",
    "deploy_truth",
    "derived_sources",
    "detector_spec",
    "diff_constants",
    "format_text_array",
    "good_pixels",
    "parse_text_array",
    "process_dark",
    "process_dark_stages",
    "read_constants",
    "segment_type",
    "split_gain",
    "truth_constants",
]
