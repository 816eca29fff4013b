"""AMI's operations library: pure computations on numpy arrays, no I/O.

- Per-event operations: regions of interest, projection, threshold, mask, background,
  normalisation, contrast, hit finding, azimuthal integration, waveform edge finding (psalg
  ``find_edges`` and a Foucar CFD), peak finding, template matching and cursor math.
- Accumulators, mergeable across workers (see :class:`Accumulator`), and their wire format
  (:func:`encode_state` / :func:`decode_state`, msgpack header + raw arrays, no pickle).
- The operation registry (:func:`default_registry`): declarative :class:`OpSpec` descriptions
  for GUIs and graph validators; ``spec.make(**params)`` checks parameters and builds the op.
"""

from ._accumulate import (
    Accumulator,
    ExponentialMovingAverage,
    Latest,
    MeanN,
    RunningMean,
    RunningSum,
)
from ._azimuthal import AzimuthalIntegrator, AzimuthalResult
from ._buffer import BinnedMean, BinnedResult, RollingBuffer, RollingResult
from ._catalog_accumulators import ACCUMULATOR_OPS
from ._catalog_images import IMAGE_OPS, ROI_OPS
from ._catalog_traces import CURSOR_OPS, EXPRESSION_OPS, WAVEFORM_OPS
from ._cursor import (
    cursor_difference,
    cursor_integral,
    cursor_moments,
    cursor_ratio,
    cursor_value,
)
from ._histogram import Histogram1D, Histogram1DResult, Histogram2D, Histogram2DResult
from ._image import (
    Hits,
    apply_mask,
    contrast,
    find_hits,
    normalize,
    project,
    subtract_background,
    threshold,
)
from ._registry import (
    PORT_TYPES,
    REQUIRED,
    OpSpec,
    Param,
    ParamError,
    Port,
    Registry,
    UnknownOperationError,
    port_accepts,
    ports,
)
from ._roi import PixelRoi, RangeRoi, RectRoi, RoiResult, roi_stats
from ._state import ACCUMULATOR_KINDS, decode_state, encode_state
from ._waveform import (
    ConstantFraction,
    EdgeFinder,
    Edges,
    PeakFinder,
    Peaks,
    TemplateMatch,
    find_edges,
    find_peaks,
    match_template,
)


def default_registry() -> Registry:
    """A registry of every operation of this library (a new one each call: add to it freely)."""
    return Registry.of(
        (*ROI_OPS, *IMAGE_OPS, *WAVEFORM_OPS, *CURSOR_OPS, *EXPRESSION_OPS, *ACCUMULATOR_OPS)
    )


__all__ = [
    "ACCUMULATOR_KINDS",
    "PORT_TYPES",
    "REQUIRED",
    "Accumulator",
    "AzimuthalIntegrator",
    "AzimuthalResult",
    "BinnedMean",
    "BinnedResult",
    "ConstantFraction",
    "EdgeFinder",
    "Edges",
    "ExponentialMovingAverage",
    "Histogram1D",
    "Histogram1DResult",
    "Histogram2D",
    "Histogram2DResult",
    "Hits",
    "Latest",
    "MeanN",
    "OpSpec",
    "Param",
    "ParamError",
    "PeakFinder",
    "Peaks",
    "PixelRoi",
    "Port",
    "RangeRoi",
    "RectRoi",
    "Registry",
    "RoiResult",
    "RollingBuffer",
    "RollingResult",
    "RunningMean",
    "RunningSum",
    "TemplateMatch",
    "UnknownOperationError",
    "apply_mask",
    "contrast",
    "cursor_difference",
    "cursor_integral",
    "cursor_moments",
    "cursor_ratio",
    "cursor_value",
    "decode_state",
    "default_registry",
    "encode_state",
    "find_edges",
    "find_hits",
    "find_peaks",
    "match_template",
    "normalize",
    "port_accepts",
    "ports",
    "project",
    "roi_stats",
    "subtract_background",
    "threshold",
]
