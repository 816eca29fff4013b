"""Registry entries of the image and ROI operations.

Factories here only adapt the library's classes to the registry's calling convention (positional
inputs in, one value or a tuple of values out); the computation lives in the other modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._azimuthal import UNITS, AzimuthalIntegrator
from ._image import apply_mask, contrast, find_hits, normalize, project, subtract_background
from ._image import threshold as threshold_op
from ._registry import OpSpec, Param, Port, ports
from ._roi import PixelRoi, RangeRoi, RectRoi

# Which statistics of roi_stats each ROI output needs.
_NEEDS = {"sum": "sum", "mean": "mean", "max": "max", "com_row": "com", "com_col": "com",
          "com": "com", "count": "count"}


def _roi(outputs: frozenset[str] | None = None, **p: Any) -> Any:
    roi = RectRoi(**p)
    only = None if outputs is None else frozenset(_NEEDS[o] for o in outputs if o in _NEEDS)
    if only is not None and not only:  # only the area is read: no statistics at all

        def area(data: Any, mask: Any = None) -> tuple[Any, ...]:
            return roi.select(data)[0], None, None, None, None, None, None

        return area

    def op(data: Any, mask: Any = None) -> tuple[Any, ...]:
        r = roi(data, mask, only=only)
        return r.area, r.sum, r.mean, r.max, r.com[0], r.com[1], r.count

    return op


def _roi_1d(outputs: frozenset[str] | None = None, **p: Any) -> Any:
    roi = RangeRoi(**p)
    only = None if outputs is None else frozenset(_NEEDS[o] for o in outputs if o in _NEEDS)
    if only is not None and not only:

        def area(data: Any, mask: Any = None) -> tuple[Any, ...]:
            return roi.select(data)[0], None, None, None, None, None

        return area

    def op(data: Any, mask: Any = None) -> tuple[Any, ...]:
        r = roi(data, mask, only=only)
        return r.area, r.sum, r.mean, r.max, r.com[0], r.count

    return op


def _hits(threshold: float) -> Any:
    def op(data: Any, mask: Any = None) -> tuple[Any, ...]:
        hits = find_hits(data, threshold, mask)
        return hits.count, hits.positions, hits.values

    return op


def _threshold(lo: float, hi: float | None) -> Any:
    if hi is not None and hi < lo:
        raise ValueError(f"hi ({hi}) must not be less than lo ({lo})")
    return lambda data: threshold_op(data, lo, hi)


class _Azimuthal:
    """Azimuthal integration whose pixel grid is taken from the first image (and rebuilt only if
    the image shape changes)."""

    def __init__(self, **p: Any) -> None:
        self._geometry = dict(
            center=(p.pop("center_row"), p.pop("center_col")),
            range=None if p["q_min"] is None else (p["q_min"], p["q_max"]),
            **{k: v for k, v in p.items() if k not in ("q_min", "q_max")},
        )
        if (p["q_min"] is None) != (p["q_max"] is None):
            raise ValueError("give both range ends (q_min and q_max) or neither")
        self._integrator = AzimuthalIntegrator.from_pixel_grid((1, 1), **self._geometry)

    def __call__(self, image: Any) -> tuple[np.ndarray, np.ndarray]:
        shape = np.shape(image)
        if self._integrator.shape != shape:
            self._integrator = AzimuthalIntegrator.from_pixel_grid(shape, **self._geometry)
        r = self._integrator(image)
        return r.centers, r.intensity


_DATA = Port("data", "array")
_IMAGE = Port("image", "array", "an image, or a (tile, row, col) stack")
_MASK = Port("mask", "array", "True = good pixel", optional=True)
_TILE = Param("tile", "int", None, "tile of a (tile, row, col) stack", min=0, nullable=True)

ROI_OPS = (
    OpSpec.map(
        "roi",
        "roi",
        _roi,
        "Rectangle on an image (bounds clipped): sum, mean, max, centre of mass, count.",
        inputs=(_IMAGE, _MASK),
        outputs=(
            Port("area", "image"),
            *ports("sum", "mean", "max", "com_row", "com_col", "count"),
        ),
        params=(
            Param("r0", "int", 0, "first row"),
            Param("r1", "int", 100, "row after the last"),
            Param("c0", "int", 0, "first column"),
            Param("c1", "int", 100, "column after the last"),
            _TILE,
            Param("count_threshold", "float", 0.0, "count pixels above this"),
        ),
        selects_outputs=True,
    ),
    OpSpec.map(
        "roi_1d",
        "roi",
        _roi_1d,
        "Index range on 1-D data: sum, mean, max, centre of mass, count.",
        inputs=(Port("data", "array1d"), _MASK),
        outputs=(Port("area", "array1d"), *ports("sum", "mean", "max", "com", "count")),
        params=(
            Param("x0", "int", 0, "first sample"),
            Param("x1", "int", 100, "sample after the last"),
            Param("count_threshold", "float", 0.0, "count samples above this"),
        ),
        selects_outputs=True,
    ),
    OpSpec.map(
        "pixel",
        "roi",
        PixelRoi,
        "One pixel's value (NaN off the image).",
        inputs=(_IMAGE,),
        outputs=ports("value"),
        params=(Param("row", "int", 0), Param("col", "int", 0), _TILE),
    ),
)

IMAGE_OPS = (
    OpSpec.map(
        "projection",
        "image",
        lambda axis, mean: lambda d, m=None: project(d, axis, mean=mean, mask=m),
        "Sum or mean along an axis, skipping NaN and masked pixels.",
        inputs=(_IMAGE, _MASK),
        outputs=ports("profile", type="array1d"),
        params=(
            Param("axis", "int", 0, "axis summed over (0: rows, giving a profile along columns)"),
            Param("mean", "bool", False, "mean instead of sum"),
        ),
    ),
    OpSpec.map(
        "threshold",
        "image",
        _threshold,
        "Zero values below lo, or outside [lo, hi].",
        inputs=(_DATA,),
        outputs=ports("data", type="array"),
        params=(
            Param("lo", "float", 0.0, "values below become 0"),
            Param("hi", "float", None, "values above become 0 (optional)", nullable=True),
        ),
    ),
    OpSpec.map(
        "mask",
        "image",
        lambda fill: lambda d, m: apply_mask(d, m, fill),
        "Replace masked-out pixels by a fill value.",
        inputs=(_DATA, Port("mask", "array", "True = good pixel")),
        outputs=ports("data", type="array"),
        params=(Param("fill", "float", 0.0, "value of masked pixels (nan allowed)", finite=False),),
    ),
    OpSpec.map(
        "background_subtract",
        "image",
        lambda: subtract_background,
        "Subtract a background reference (fixed, or a background_reference accumulator).",
        inputs=(_DATA, Port("reference", "array", "background of the data's shape")),
        outputs=ports("data", type="array"),
    ),
    OpSpec.map(
        "normalize",
        "image",
        lambda: normalize,
        "Divide by a scalar; a zero or missing normaliser gives NaN.",
        inputs=(_DATA, Port("norm", "scalar", "e.g. pulse energy")),
        outputs=ports("data", type="array"),
    ),
    OpSpec.map(
        "contrast",
        "image",
        lambda: contrast,
        "Speckle contrast std/mean over valid pixels.",
        inputs=(_DATA, _MASK),
        outputs=ports("contrast"),
    ),
    OpSpec.map(
        "hit_finder",
        "image",
        _hits,
        "Pixels above threshold: count, positions, values.",
        inputs=(_DATA, _MASK),
        outputs=(Port("count", "scalar"), Port("positions", "array"), Port("values", "array1d")),
        params=(Param("threshold", "float", 0.0, "pixels above this are hits"),),
    ),
    OpSpec.map(
        "azimuthal",
        "image",
        _Azimuthal,
        "Radial average I(q), I(r) or I(2θ) in fixed bins.",
        inputs=(Port("image", "image"),),
        outputs=(Port("q", "array1d", "bin centres"), Port("intensity", "array1d")),
        params=(
            Param("center_row", "float", 0.0, "beam centre row (pixels)"),
            Param("center_col", "float", 0.0, "beam centre column (pixels)"),
            Param("pixel_size", "float", 0.1, "mm", min=1e-6),
            Param("distance", "float", 100.0, "sample-detector distance, mm", min=1e-3),
            Param(
                "photon_energy", "float", 9.5, "keV (or give wavelength)", min=1e-3, nullable=True
            ),
            Param(
                "wavelength", "float", None, "Å (overrides photon_energy)", min=1e-6, nullable=True
            ),
            Param("nbins", "int", 100, min=1, max=100_000),
            Param("unit", "choice", "q", "q (1/Å), r (mm) or 2theta (deg)", choices=UNITS),
            Param("q_min", "float", None, "lower end of the bins (in the unit)", nullable=True),
            Param("q_max", "float", None, "upper end of the bins (in the unit)", nullable=True),
            Param(
                "polarization",
                "float",
                None,
                "fraction P in the vertical plane (none: no correction)",
                min=0.0,
                max=1.0,
                nullable=True,
            ),
            Param("solid_angle", "bool", True, "correct for solid angle"),
        ),
    ),
)
