"""Registry entries of the waveform, cursor and expression operations.

Factories here only adapt the library's classes to the registry's calling convention (positional
inputs in, one value or a tuple of values out); the computation lives in the other modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ami.expr import Expression, ExpressionError, compile_expression

from ._cursor import (
    cursor_difference,
    cursor_integral,
    cursor_moments,
    cursor_ratio,
    cursor_value,
)
from ._registry import REQUIRED, OpSpec, Param, Port, ports
from ._waveform import ConstantFraction, EdgeFinder, PeakFinder, match_template


def _edges(**p: Any) -> Any:
    finder = EdgeFinder(**p)

    def op(waveform: Any) -> tuple[Any, ...]:
        e = finder(waveform)
        return e.times, e.amplitudes, len(e)

    return op


def _cfd(**p: Any) -> Any:
    cfd = ConstantFraction(**p)

    def op(waveform: Any) -> tuple[Any, ...]:
        times = cfd(waveform)
        return times, float(times[0]) if times.size else float("nan"), int(times.size)

    return op


def _peaks(**p: Any) -> Any:
    finder = PeakFinder(**p)

    def op(data: Any) -> tuple[Any, ...]:
        peaks = finder(data)
        return peaks.positions, peaks.heights, len(peaks)

    return op


def _template(data: Any, template: Any) -> tuple[Any, ...]:
    m = match_template(data, template, full=True)
    return m.lag, m.score, m.correlation


class _Filter:
    """An expression that must give one true/false value per event."""

    def __init__(self, expression: str) -> None:
        self.expression: Expression = compile_expression(expression)
        self.names = self.expression.names

    def __call__(self, *values: Any) -> bool:
        verdict = np.asarray(self.expression(*values))
        if verdict.size != 1:
            raise ExpressionError(f"a filter must give one true/false value, got {verdict.shape}")
        return bool(verdict.reshape(()))


_WAVEFORM = Port("waveform", "waveform")
_TRACE = (Port("y", "array1d"), Port("x", "array1d", "x axis; sample index if absent", True))
_CURSORS_AB = (
    Param("a", "float", 0.0, "first cursor (x units)"),
    Param("b", "float", 1.0, "second cursor (x units)"),
)
_CURSORS_ABCD = (
    *_CURSORS_AB,
    Param("c", "float", 0.0, "first cursor of the second interval"),
    Param("d", "float", 1.0, "second cursor of the second interval"),
)
_TIME_AXIS = (
    Param("sample_interval", "float", 1.0, "time per sample", min=0.0),
    Param("t0", "float", 0.0, "time of sample 0"),
)

WAVEFORM_OPS = (
    OpSpec.map(
        "find_edges",
        "waveform",
        _edges,
        "psalg find_edges: constant-fraction edges of pulses over a threshold.",
        inputs=(_WAVEFORM,),
        outputs=(*ports("times", "amplitudes", type="array1d"), *ports("count")),
        params=(
            Param("baseline", "float", 0.0),
            Param("threshold", "float", REQUIRED, "below the baseline: negative pulses"),
            Param("fraction", "float", 0.5, min=0.0, max=1.0),
            Param("deadtime", "float", 0.0, "samples", min=0.0),
            Param("leading_edge", "bool", True),
            Param("npkmax", "int", 100, "most edges reported", min=1),
            *_TIME_AXIS,
        ),
    ),
    OpSpec.map(
        "cfd",
        "waveform",
        _cfd,
        "Foucar-style constant fraction discriminator.",
        inputs=(_WAVEFORM,),
        outputs=(Port("times", "array1d"), *ports("first", "count")),
        params=(
            Param("delay", "int", 5, "samples", min=1),
            Param("fraction", "float", 0.5, min=0.0, max=1.0),
            Param("walk", "float", 0.0),
            Param("threshold", "float", 0.0, "|waveform - offset| must exceed it", min=0.0),
            Param("offset", "float", 0.0, "baseline subtracted first"),
            Param("npkmax", "int", 100, "most crossings reported", min=1),
            *_TIME_AXIS,
        ),
    ),
    OpSpec.map(
        "find_peaks",
        "waveform",
        _peaks,
        "Local maxima above threshold, at least min_distance apart.",
        inputs=(Port("data", "array1d"),),
        outputs=(*ports("positions", "heights", type="array1d"), *ports("count")),
        params=(
            Param("threshold", "float", 0.0),
            Param("min_distance", "int", 1, "samples", min=1),
        ),
    ),
    OpSpec.map(
        "template_match",
        "waveform",
        lambda: _template,
        "Normalised cross-correlation: best lag, score and the score at every lag.",
        inputs=(_WAVEFORM, Port("template", "array1d")),
        outputs=(*ports("lag", "score"), Port("correlation", "array1d")),
    ),
)

CURSOR_OPS = (
    OpSpec.map(
        "cursor_value",
        "cursor",
        lambda at: lambda y, x=None: cursor_value(y, at, x),
        "Trace value at a cursor (interpolated).",
        inputs=_TRACE,
        outputs=ports("value"),
        params=(Param("at", "float", 0.0, "cursor (x units)"),),
    ),
    OpSpec.map(
        "cursor_integral",
        "cursor",
        lambda a, b: lambda y, x=None: cursor_integral(y, a, b, x),
        "Integral between two cursors.",
        inputs=_TRACE,
        outputs=ports("integral"),
        params=_CURSORS_AB,
    ),
    OpSpec.map(
        "cursor_ratio",
        "cursor",
        lambda a, b, c, d: lambda y, x=None: cursor_ratio(y, a, b, c, d, x),
        "Integral over [a, b] divided by the integral over [c, d].",
        inputs=_TRACE,
        outputs=ports("ratio"),
        params=_CURSORS_ABCD,
    ),
    OpSpec.map(
        "cursor_difference",
        "cursor",
        lambda a, b, c, d: lambda y, x=None: cursor_difference(y, a, b, c, d, x),
        "Integral over [a, b] minus the integral over [c, d].",
        inputs=_TRACE,
        outputs=ports("difference"),
        params=_CURSORS_ABCD,
    ),
    OpSpec.map(
        "cursor_moments",
        "cursor",
        lambda a, b: lambda y, x=None: cursor_moments(y, a, b, x),
        "Centroid and variance between two cursors.",
        inputs=_TRACE,
        outputs=ports("centroid", "variance"),
        params=_CURSORS_AB,
    ),
)

EXPRESSION_OPS = (
    OpSpec(
        "calculator",
        "expression",
        "map",
        (),
        (Port("value", "any"),),
        (Param("expression", "expression", REQUIRED, "e.g. (roi_sum - bkg) / gasdet.energy"),),
        lambda expression: compile_expression(expression),
        "Arithmetic over named inputs; its inputs are the expression's names, in order.",
        variadic=True,
    ),
    OpSpec(
        "filter",
        "expression",
        "filter",
        (),
        (Port("pass", "bool"),),
        (Param("expression", "expression", REQUIRED, "e.g. gasdet.energy > 1.5 and timing.laser"),),
        _Filter,
        "Keep events where the expression is true; its inputs are the expression's names.",
        variadic=True,
    ),
)
