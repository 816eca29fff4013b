"""The accumulators of the registry: reductions over events, merged across workers.

An accumulator operation's ``update`` receives its single input, or a tuple of its inputs when
it has several (``scatter`` gets ``(x, y)``); the event timestamp goes in as ``key``.
"""

from __future__ import annotations

from ._accumulate import ExponentialMovingAverage, Latest, MeanN, RunningMean, RunningSum
from ._buffer import BinnedMean, RollingBuffer
from ._histogram import Histogram1D, Histogram2D
from ._registry import OpSpec, Param, Port

_CAPACITY = Param("capacity", "int", 1000, min=1, max=1_000_000, doc="points kept")
_HIST = Port("histogram", "dict", "edges, counts, underflow, overflow, nan")
_POINTS = Port("points", "dict", "keys, x, y of the points held, oldest first")

ACCUMULATOR_OPS: tuple[OpSpec, ...] = (
    OpSpec.accumulator(
        "mean_n",
        MeanN,
        "Mean over windows of n events (ready after n; merged windows may hold more).",
        output=Port("mean", "any"),
        params=(Param("n", "int", 10, min=1, doc="events per window"),),
    ),
    OpSpec.accumulator(
        "running_mean",
        RunningMean,
        "Mean of every event since reset (NaN-aware).",
        output=Port("mean", "any"),
    ),
    OpSpec.accumulator(
        "running_sum",
        RunningSum,
        "Sum of every event since reset (NaN skipped).",
        output=Port("sum", "any"),
    ),
    OpSpec.accumulator(
        "background_reference",
        RunningMean,
        "Running mean of the events a filter lets through (e.g. x-ray off), to subtract from"
        " the others with background_subtract.",
        inputs=(Port("value", "array"),),
        output=Port("reference", "array"),
    ),
    OpSpec.accumulator(
        "ema",
        ExponentialMovingAverage,
        "Exponential moving average with time constant tau (in timestamp units).",
        output=Port("mean", "any"),
        params=(Param("tau", "float", 1.0, min=1e-9, doc="time constant (s)"),),
    ),
    OpSpec.accumulator(
        "histogram1d",
        Histogram1D,
        "Histogram of values (arrays add every element).",
        output=_HIST,
        params=(
            Param("nbins", "int", 100, min=1, max=1_000_000),
            Param("lo", "float", 0.0, doc="lower edge"),
            Param("hi", "float", 1.0, doc="upper edge"),
        ),
    ),
    OpSpec.accumulator(
        "histogram2d",
        Histogram2D,
        "2-D histogram of (x, y) pairs.",
        inputs=(Port("x", "any"), Port("y", "any")),
        output=_HIST,
        params=(
            Param("nx", "int", 100, min=1, max=10_000),
            Param("xlo", "float", 0.0),
            Param("xhi", "float", 1.0),
            Param("ny", "int", 100, min=1, max=10_000),
            Param("ylo", "float", 0.0),
            Param("yhi", "float", 1.0),
        ),
    ),
    OpSpec.accumulator(
        "strip_chart",
        RollingBuffer,
        "The latest values against their timestamps.",
        inputs=(Port("value", "scalar"),),
        output=_POINTS,
        params=(_CAPACITY,),
    ),
    OpSpec.accumulator(
        "scatter",
        RollingBuffer,
        "The latest (x, y) pairs.",
        inputs=(Port("x", "scalar"), Port("y", "scalar")),
        output=_POINTS,
        params=(_CAPACITY,),
    ),
    OpSpec.accumulator(
        "mean_vs_scan",
        BinnedMean,
        "Mean of a value for each scan step.",
        inputs=(Port("scan", "scalar"), Port("value", "any")),
        output=Port("binned", "dict", "scan values, means, counts"),
        params=(
            Param(
                "resolution",
                "float",
                None,
                min=0.0,
                nullable=True,
                doc="round scan values to multiples of this",
            ),
        ),
    ),
    OpSpec.accumulator(
        "latest",
        Latest,
        "The value of the latest event (by timestamp).",
        output=Port("value", "any"),
    ),
)
