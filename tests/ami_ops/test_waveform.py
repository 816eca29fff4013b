"""Edge finding, CFD, peak finding and template matching on synthetic waveforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ami.ops import ConstantFraction, EdgeFinder, PeakFinder, find_edges, find_peaks, match_template


def triangle(n: int, start: int, rise: int, fall: int, height: float) -> np.ndarray:
    """A triangular pulse: linear rise over ``rise`` samples from ``start``, then linear fall."""
    t = np.arange(n, dtype=np.float64)
    up = (t - start) / rise
    down = 1 - (t - start - rise) / fall
    return height * np.clip(np.minimum(up, down), 0, None)


def gaussian(n: int, centre: float, sigma: float, height: float) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    return height * np.exp(-0.5 * ((t - centre) / sigma) ** 2)


def test_leading_and_trailing_edges_of_a_triangle_are_exact():
    wf = triangle(100, start=20, rise=10, fall=20, height=10.0)  # peak at 30
    lead = find_edges(wf, baseline=0.0, threshold=2.0, fraction=0.5)
    assert lead.times.tolist() == pytest.approx([25.0])
    assert lead.amplitudes.tolist() == [10.0]
    trail = find_edges(wf, baseline=0.0, threshold=2.0, fraction=0.5, leading_edge=False)
    assert trail.times.tolist() == pytest.approx([40.0])


def test_level_below_threshold_walks_back_down_the_edge():
    wf = triangle(100, start=20, rise=10, fall=20, height=10.0)
    edges = find_edges(wf, baseline=0.0, threshold=5.0, fraction=0.2)
    assert edges.times.tolist() == pytest.approx([22.0])


def test_baseline_is_part_of_the_level():
    wf = triangle(100, start=20, rise=10, fall=20, height=10.0) + 100.0
    edges = find_edges(wf, baseline=100.0, threshold=102.0, fraction=0.5)
    assert edges.times.tolist() == pytest.approx([25.0])
    assert edges.amplitudes.tolist() == [110.0]


def test_negative_pulses_and_several_hits():
    pulses = [triangle(200, start, 4, 4, height) for start, height in ((20, 5), (80, 8), (150, 3))]
    wf = -sum(pulses)
    edges = find_edges(wf, baseline=0.0, threshold=-2.0, fraction=0.5)
    assert edges.times.tolist() == pytest.approx([22.0, 82.0, 152.0])
    assert edges.amplitudes.tolist() == [-5.0, -8.0, -3.0]
    assert len(find_edges(wf, baseline=0.0, threshold=-2.0, npkmax=2)) == 2


def test_deadtime_skips_excursions_no_longer_than_it():
    wf = triangle(100, 10, 2, 2, 5.0) + triangle(100, 16, 2, 2, 5.0)  # 3 samples over, each
    assert find_edges(wf, baseline=0, threshold=1.0).times.tolist() == [11.0, 17.0]
    assert find_edges(wf, baseline=0, threshold=1.0, deadtime=2.5).times.tolist() == [11.0, 17.0]
    assert len(find_edges(wf, baseline=0, threshold=1.0, deadtime=3)) == 0
    blip = np.zeros(50)
    blip[20] = 5.0
    assert len(find_edges(blip, baseline=0, threshold=1.0, deadtime=1)) == 0
    assert len(find_edges(blip, baseline=0, threshold=1.0, deadtime=0.5)) == 1


def test_pulse_running_off_the_end_still_counts():
    wf = np.concatenate([np.zeros(10), np.linspace(0, 10, 6)])
    assert find_edges(wf, baseline=0, threshold=3.0).times.tolist() == pytest.approx([12.5])
    # Its trailing edge is never reached: no edge rather than a read past the end.
    assert len(find_edges(wf, baseline=0, threshold=3.0, leading_edge=False)) == 0


def test_time_axis_scaling():
    wf = triangle(100, start=20, rise=10, fall=20, height=10.0)
    edges = find_edges(wf, baseline=0, threshold=2, sample_interval=0.5, t0=100.0)
    assert edges.times.tolist() == pytest.approx([112.5])


@pytest.mark.parametrize(
    "wf", [np.zeros(0), np.zeros(1), np.full(20, np.nan), np.zeros(30), np.full(10, 9.0)]
)
def test_edge_finder_edge_cases(wf):
    edges = find_edges(wf, baseline=0.0, threshold=1.0)
    assert edges.times.dtype == np.float64
    assert np.isfinite(edges.times).all()


def test_nan_inside_a_pulse_does_not_produce_nan_times():
    wf = triangle(60, 20, 10, 10, 10.0)
    wf[24] = np.nan
    edges = find_edges(wf, baseline=0, threshold=1.0)
    assert np.isfinite(edges.times).all()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"baseline": 1.0, "threshold": 1.0}, "must differ from baseline"),
        ({"baseline": 0.0, "threshold": 1.0, "fraction": 0.0}, r"fraction \(0.0\) must be in"),
        ({"baseline": 0.0, "threshold": 1.0, "deadtime": -1}, "deadtime"),
        ({"baseline": 0.0, "threshold": 1.0, "npkmax": 0}, "npkmax"),
        ({"baseline": 0.0, "threshold": 1.0, "sample_interval": 0}, "sample_interval"),
    ],
)
def test_edge_finder_parameters_are_checked(params, message):
    with pytest.raises(ValueError, match=message):
        EdgeFinder(**params)


def test_cfd_time_does_not_depend_on_amplitude():
    cfd = ConstantFraction(delay=4, fraction=0.5, threshold=0.05)
    small = cfd(gaussian(300, 100.3, 4.0, 1.0))
    large = cfd(gaussian(300, 100.3, 4.0, 7.5))
    assert small.size == large.size == 1
    assert small[0] == pytest.approx(large[0], abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(shift=st.floats(0, 1), amplitude=st.floats(0.2, 10) | st.floats(-10, -0.2))
def test_cfd_follows_the_pulse_between_samples(shift, amplitude):
    cfd = ConstantFraction(delay=5, fraction=0.4, threshold=0.02 * abs(amplitude))
    base = cfd(gaussian(400, 150.0, 5.0, amplitude))
    moved = cfd(gaussian(400, 150.0 + shift, 5.0, amplitude))
    assert base.size == moved.size == 1
    assert moved[0] - base[0] == pytest.approx(shift, abs=0.02)


def test_cfd_reports_every_pulse_with_time_axis():
    wf = gaussian(400, 100, 3, 2.0) + gaussian(400, 250, 3, 5.0)
    times = ConstantFraction(delay=3, fraction=0.5, threshold=0.1)(wf)
    assert times.size == 2
    assert times[1] - times[0] == pytest.approx(150.0, abs=1e-6)
    scaled = ConstantFraction(delay=3, threshold=0.1, sample_interval=2.0, t0=-5.0)(wf)
    np.testing.assert_allclose(scaled, -5.0 + 2.0 * times)
    assert ConstantFraction(delay=3, threshold=0.1, npkmax=1)(wf).size == 1


@pytest.mark.parametrize("wf", [np.zeros(0), np.zeros(3), np.full(50, np.nan), np.ones(50)])
def test_cfd_edge_cases(wf):
    assert ConstantFraction(delay=2, threshold=0.5)(wf).size == 0


def test_cfd_parameters_are_checked():
    with pytest.raises(ValueError, match="delay"):
        ConstantFraction(delay=0)
    with pytest.raises(ValueError, match="fraction"):
        ConstantFraction(delay=2, fraction=1.5)


def test_peak_finding():
    y = np.array([0, 1, 5, 1, 0, 2, 2, 2, 0, 9, 8, 9.5, 0, 3])
    peaks = find_peaks(y, threshold=1.5)
    assert peaks.positions.tolist() == [2, 6, 9, 11]
    assert peaks.heights.tolist() == [5, 2, 9, 9.5]
    close = find_peaks(y, threshold=1.5, min_distance=3)
    assert close.positions.tolist() == [2, 6, 11]
    assert len(find_peaks(np.zeros(0))) == 0
    assert len(find_peaks(np.full(10, np.nan))) == 0
    with pytest.raises(ValueError, match="min_distance"):
        PeakFinder(min_distance=0)


def test_template_match_finds_the_planted_pulse():
    rng = np.random.default_rng(1)
    template = gaussian(21, 10, 3, 1.0)
    wf = rng.normal(0, 0.05, 500)
    wf[300:321] += 4 * template + 2.0
    match = match_template(wf, template, full=True)
    assert match.lag == 300
    assert match.score > 0.95
    assert match.correlation is not None and match.correlation.size == 480
    assert match_template(wf, template).correlation is None


def test_template_match_edge_cases():
    flat = match_template(np.arange(10.0), np.ones(3))
    assert flat.lag == -1 and math.isnan(flat.score)
    too_long = match_template(np.arange(3.0), np.arange(5.0))
    assert too_long.lag == -1
    constant_data = match_template(np.ones(10), np.arange(3.0))
    assert constant_data.lag == -1 and math.isnan(constant_data.score)
    with_nan = np.arange(20.0)
    with_nan[:10] = np.nan
    assert match_template(with_nan, np.arange(4.0)).lag == 10
