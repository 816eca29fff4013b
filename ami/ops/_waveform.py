"""Waveform operations: constant-fraction edge finding (psalg ``find_edges`` and a Foucar-style
CFD), 1-D peak finding and template matching.

Each configurable operation is a frozen dataclass: parameters are checked once, at construction,
with messages that name the parameter; calling it on a waveform never raises for odd data (empty,
NaN, no pulse) but returns empty results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._kernels import (
    cfd_kernel,
    find_edges_kernel,
    local_maxima_kernel,
    ncc_kernel,
    suppress_kernel,
)

ArrayLike = npt.ArrayLike


def _waveform(data: ArrayLike) -> np.ndarray:
    wf = np.ascontiguousarray(data, dtype=np.float64)
    if wf.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {wf.shape}")
    return wf


@dataclass(frozen=True)
class Edges:
    """Edge times (``t0 + sample * sample_interval``) and the pulse amplitudes, in time order."""

    times: np.ndarray
    amplitudes: np.ndarray

    def __len__(self) -> int:
        return int(self.times.size)


@dataclass(frozen=True)
class EdgeFinder:
    """psalg ``find_edges``: constant-fraction edges of pulses that cross ``threshold``.

    The pulse polarity follows from ``threshold`` vs ``baseline`` (above: positive pulses). For each
    excursion past the threshold, the edge is where the waveform crosses
    ``baseline + fraction * (peak - baseline)``, linearly interpolated between samples: on the
    rising side (``leading_edge``) or the falling side after the peak. Excursions no longer than
    ``deadtime`` samples, and edges within ``deadtime`` of the previous edge, are ignored. At most
    ``npkmax`` edges are returned; ``amplitudes`` are the peak values.

    Unlike psalg, the level includes the baseline (psalg uses ``fraction * (peak - baseline)``),
    a level below the threshold is found by walking back down the edge instead of extrapolating,
    and the search never reads past the end of the waveform.
    """

    baseline: float
    threshold: float
    fraction: float = 0.5
    deadtime: float = 0.0
    leading_edge: bool = True
    npkmax: int = 100
    sample_interval: float = 1.0
    t0: float = 0.0

    def __post_init__(self) -> None:
        if self.threshold == self.baseline:
            raise ValueError(
                f"threshold ({self.threshold}) must differ from baseline ({self.baseline}):"
                " above it finds positive pulses, below it negative ones"
            )
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction ({self.fraction}) must be in (0, 1]")
        if self.deadtime < 0:
            raise ValueError(f"deadtime ({self.deadtime}) must not be negative")
        if self.npkmax < 1:
            raise ValueError(f"npkmax ({self.npkmax}) must be at least 1")
        if not self.sample_interval > 0:
            raise ValueError(f"sample_interval ({self.sample_interval}) must be positive")

    def __call__(self, waveform: ArrayLike) -> Edges:
        wf = _waveform(waveform)
        size = min(self.npkmax, wf.size // 2 + 1)
        times = np.empty(size)
        amps = np.empty(size)
        n = find_edges_kernel(
            wf,
            float(self.baseline),
            float(self.threshold),
            float(self.fraction),
            float(self.deadtime),
            bool(self.leading_edge),
            times,
            amps,
        )
        return Edges(self.t0 + times[:n] * self.sample_interval, amps[:n].copy())


def find_edges(waveform: ArrayLike, **params: Any) -> Edges:
    """Functional form of :class:`EdgeFinder`: ``find_edges(wf, baseline=0, threshold=-0.05)``."""
    return EdgeFinder(**params)(waveform)


@dataclass(frozen=True)
class ConstantFraction:
    """Foucar-style constant fraction discriminator (the AMI ``CFD`` node).

    Forms ``s[i] = x[i - delay] - fraction * x[i]`` with ``x = waveform - offset`` and finds where
    ``s`` crosses ``walk`` while ``|x| > threshold`` and the pulse polarity matches the slope of
    ``s``; the crossing is refined on the cubic through four samples of ``s``. Returns the times
    of up to ``npkmax`` crossings (``t0 + sample * sample_interval``); the classic node reports
    only the first, ``times[0]``.
    """

    delay: int
    fraction: float = 0.5
    walk: float = 0.0
    threshold: float = 0.0
    offset: float = 0.0
    npkmax: int = 100
    sample_interval: float = 1.0
    t0: float = 0.0

    def __post_init__(self) -> None:
        if int(self.delay) != self.delay or self.delay < 1:
            raise ValueError(f"delay ({self.delay}) must be a whole number of samples, at least 1")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction ({self.fraction}) must be in (0, 1]")
        if self.threshold < 0:
            raise ValueError(f"threshold ({self.threshold}) must not be negative")
        if self.npkmax < 1:
            raise ValueError(f"npkmax ({self.npkmax}) must be at least 1")
        if not self.sample_interval > 0:
            raise ValueError(f"sample_interval ({self.sample_interval}) must be positive")

    def __call__(self, waveform: ArrayLike) -> np.ndarray:
        wf = _waveform(waveform)
        times = np.empty(min(self.npkmax, max(wf.size, 1)))
        n = cfd_kernel(
            wf,
            float(self.offset),
            int(self.delay),
            float(self.fraction),
            float(self.walk),
            float(self.threshold),
            times,
        )
        return self.t0 + times[:n] * self.sample_interval


@dataclass(frozen=True)
class Peaks:
    """Peak positions (sample index, ascending) and heights."""

    positions: np.ndarray
    heights: np.ndarray

    def __len__(self) -> int:
        return int(self.positions.size)


@dataclass(frozen=True)
class PeakFinder:
    """Local maxima above ``threshold``, at least ``min_distance`` samples apart.

    Where two peaks are closer, the higher one wins (the earlier one on a tie). A flat top counts
    once, at its middle; the first and last samples are never peaks. NaN samples are never peaks.
    """

    threshold: float = 0.0
    min_distance: int = 1

    def __post_init__(self) -> None:
        if int(self.min_distance) != self.min_distance or self.min_distance < 1:
            raise ValueError(f"min_distance ({self.min_distance}) must be a whole number >= 1")

    def __call__(self, data: ArrayLike) -> Peaks:
        y = _waveform(data)
        positions = np.empty(y.size // 2 + 1, dtype=np.int64)
        n = local_maxima_kernel(y, float(self.threshold), positions)
        positions = positions[:n]
        heights = y[positions]
        if self.min_distance > 1 and n > 1:
            keep = np.empty(n, dtype=np.bool_)
            suppress_kernel(positions, heights, int(self.min_distance), keep)
            positions, heights = positions[keep], heights[keep]
        return Peaks(positions, heights)


def find_peaks(data: ArrayLike, threshold: float = 0.0, min_distance: int = 1) -> Peaks:
    """Functional form of :class:`PeakFinder`."""
    return PeakFinder(threshold, min_distance)(data)


@dataclass(frozen=True)
class TemplateMatch:
    """Best alignment of a template in a waveform.

    ``lag`` is the waveform index of the template's first sample (-1 when nothing matches),
    ``score`` the normalised cross-correlation there (-1..1, NaN when undefined) and
    ``correlation`` the score at every lag when asked for.
    """

    lag: int
    score: float
    correlation: np.ndarray | None = None


def match_template(
    waveform: ArrayLike, template: ArrayLike, *, full: bool = False
) -> TemplateMatch:
    """Normalised cross-correlation (Pearson per window) of ``template`` against ``waveform``.

    Only lags where the template lies fully inside the waveform are scored. Windows that are flat
    or contain NaN score NaN; a flat template scores NaN everywhere.
    """
    w = _waveform(waveform)
    t = _waveform(template)
    nlags = w.size - t.size + 1
    if t.size < 2 or nlags < 1:
        return TemplateMatch(-1, float("nan"), np.empty(0) if full else None)
    score = np.full(nlags, np.nan)
    if np.ptp(t) > 0:  # a flat (or NaN) template matches nothing
        ncc_kernel(w, t - t.mean(), score)
    if np.isnan(score).all():
        return TemplateMatch(-1, float("nan"), score if full else None)
    lag = int(np.nanargmax(score))
    return TemplateMatch(lag, float(score[lag]), score if full else None)
