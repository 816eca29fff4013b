"""Cursor math against exact integrals and a dense-sampling reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ami.ops import (
    cursor_difference,
    cursor_integral,
    cursor_moments,
    cursor_ratio,
    cursor_value,
)

LINE = 2.0 * np.arange(11.0) + 1.0  # y = 2x + 1 on x = 0..10


def test_value_at_a_cursor_is_interpolated():
    assert cursor_value(LINE, 2.25) == pytest.approx(5.5)
    assert math.isnan(cursor_value(LINE, 10.5))
    assert math.isnan(cursor_value(LINE, -0.1))
    assert math.isnan(cursor_value(np.zeros(0), 0.0))
    assert cursor_value(LINE, 25.0, x=np.arange(11.0) * 10) == pytest.approx(6.0)


@settings(max_examples=100, deadline=None)
@given(a=st.floats(0, 10), b=st.floats(0, 10))
def test_integral_of_a_line_is_exact_and_order_independent(a, b):
    exact = abs((b * b + b) - (a * a + a))  # ∫(2x + 1) dx
    assert cursor_integral(LINE, a, b) == pytest.approx(exact, abs=1e-9)
    assert cursor_integral(LINE, b, a) == cursor_integral(LINE, a, b)


def test_integral_is_clipped_to_the_trace():
    assert cursor_integral(LINE, -5, 2) == pytest.approx(6.0)
    assert cursor_integral(LINE, 20, 30) == 0.0
    assert cursor_integral(LINE, 3, 3) == 0.0
    assert cursor_integral(np.zeros(0), 0, 1) == 0.0
    assert cursor_integral(LINE, math.nan, 3) == 0.0


def test_integral_on_a_non_uniform_and_decreasing_axis():
    x = np.array([0.0, 0.5, 2.0, 3.0, 7.0])
    y = 3 * x
    assert cursor_integral(y, 1.0, 5.0, x=x) == pytest.approx(1.5 * (25 - 1))
    assert cursor_integral(y[::-1], 1.0, 5.0, x=x[::-1]) == pytest.approx(36.0)
    with pytest.raises(ValueError, match="monotonic"):
        cursor_integral(y, 0, 1, x=np.array([0.0, 2.0, 1.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="does not match"):
        cursor_integral(y, 0, 1, x=np.arange(3.0))


def test_nan_inside_the_interval_shows_as_nan():
    y = LINE.copy()
    y[5] = np.nan
    assert math.isnan(cursor_integral(y, 4, 6))
    assert cursor_integral(y, 0, 3) == pytest.approx(12.0)


def test_ratio_and_difference():
    assert cursor_ratio(LINE, 0, 2, 0, 1) == pytest.approx(6.0 / 2.0)
    assert cursor_difference(LINE, 0, 2, 0, 1) == pytest.approx(4.0)
    assert math.isnan(cursor_ratio(LINE, 0, 2, 20, 30))
    assert math.isnan(cursor_ratio(np.zeros(5), 0, 2, 0, 3))


def test_moments_of_a_gaussian():
    x = np.linspace(-20, 20, 4001)
    y = np.exp(-0.5 * ((x - 1.5) / 2.0) ** 2)
    centroid, variance = cursor_moments(y, -20, 20, x=x)
    assert centroid == pytest.approx(1.5, abs=1e-6)
    assert variance == pytest.approx(4.0, rel=1e-4)
    assert cursor_moments(y, 20, -20, x=x) == (centroid, variance)


def test_moments_edge_cases():
    assert all(math.isnan(v) for v in cursor_moments(np.zeros(10), 0, 9))
    assert all(math.isnan(v) for v in cursor_moments(LINE, 20, 30))
    x = np.linspace(0, 10, 2001)
    flat = cursor_moments(np.ones_like(x), 2, 6, x=x)
    assert flat == pytest.approx((4.0, 16 / 12), rel=1e-5)  # uniform on [2, 6]


def test_rejects_non_1d():
    with pytest.raises(ValueError, match="1-D"):
        cursor_integral(np.zeros((2, 2)), 0, 1)
