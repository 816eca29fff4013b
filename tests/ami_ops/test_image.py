"""Projection, threshold, mask, background, normalisation, contrast and hit finding."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ami.ops import (
    apply_mask,
    contrast,
    find_hits,
    normalize,
    project,
    subtract_background,
    threshold,
)

images = arrays(
    np.float64,
    st.tuples(st.integers(1, 8), st.integers(1, 8)),
    elements=st.floats(-10, 10) | st.just(np.nan),
)


@settings(max_examples=100, deadline=None)
@given(image=images, axis=st.sampled_from([0, 1, -1]))
def test_projection_matches_nan_functions(image, axis):
    np.testing.assert_allclose(project(image, axis), np.nansum(image, axis=axis), atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the reference warns on all-NaN lines
        expected = np.nanmean(image, axis=axis)
    np.testing.assert_allclose(project(image, axis, mean=True), expected, atol=1e-12)


def test_projection_skips_masked_pixels():
    image = np.array([[1.0, 2.0], [3.0, 4.0]])
    mask = np.array([[True, False], [True, True]])
    np.testing.assert_array_equal(project(image, 0, mask=mask), [4.0, 4.0])
    np.testing.assert_array_equal(project(image, 0, mean=True, mask=mask), [2.0, 4.0])
    all_masked = project(image, 1, mean=True, mask=np.zeros((2, 2), dtype=bool))
    assert np.isnan(all_masked).all()
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        project(image, 2)
    with pytest.raises(ValueError, match="mask shape"):
        project(image, 0, mask=np.ones(3, dtype=bool))


def test_projection_of_integer_images_is_float():
    out = project(np.ones((3, 4), dtype=np.uint16), 1)
    assert out.dtype == np.float64 and out.tolist() == [4.0, 4.0, 4.0]


def test_threshold_below_and_outside_a_window():
    data = np.array([-1.0, 0.5, 2.0, 5.0, np.nan])
    np.testing.assert_array_equal(threshold(data, 1.0), [0, 0, 2, 5, np.nan])
    np.testing.assert_array_equal(threshold(data, 0.0, 3.0), [0, 0.5, 2, 0, np.nan])
    ints = threshold(np.array([1, 5, 9], dtype=np.uint16), 4, 8)
    assert ints.dtype == np.uint16 and ints.tolist() == [0, 5, 0]
    with pytest.raises(ValueError, match=r"hi \(1\.0\) must not be less than lo \(2\.0\)"):
        threshold(data, 2.0, 1.0)


def test_mask_fills_bad_pixels():
    data = np.array([[1, 2], [3, 4]], dtype=np.int32)
    mask = np.array([[1, 0], [0, 1]])
    kept = apply_mask(data, mask)
    assert kept.dtype == np.int32 and kept.tolist() == [[1, 0], [0, 4]]
    nan_filled = apply_mask(data, mask, fill=np.nan)
    assert nan_filled.dtype == np.float64 and np.isnan(nan_filled[0, 1])
    with pytest.raises(ValueError, match="does not match"):
        apply_mask(data, np.ones(4))


def test_background_subtraction():
    data = np.array([[5.0, 6.0], [7.0, 8.0]])
    np.testing.assert_array_equal(subtract_background(data, np.ones((2, 2))), data - 1)
    np.testing.assert_array_equal(subtract_background(data, 2.0), data - 2)
    unsigned = subtract_background(np.array([1], dtype=np.uint16), np.array([3], dtype=np.uint16))
    assert unsigned.tolist() == [-2.0]
    with pytest.raises(ValueError, match="background shape"):
        subtract_background(data, np.ones(3))


@pytest.mark.parametrize("norm", [0.0, np.nan, np.inf, -np.inf, np.array([0.0])])
def test_normalisation_by_a_bad_normaliser_is_nan_without_warning(norm):
    out = normalize(np.ones((2, 3)), norm)
    assert isinstance(out, np.ndarray) and out.shape == (2, 3) and np.isnan(out).all()
    assert math.isnan(normalize(4.0, norm))  # type: ignore[arg-type]


def test_normalisation():
    np.testing.assert_array_equal(normalize(np.array([2.0, 4.0]), 2), [1.0, 2.0])
    assert normalize(3, np.float32(2)) == 1.5
    with pytest.raises(ValueError, match="single number"):
        normalize(np.ones(2), np.ones(2))


def test_contrast():
    data = np.array([1.0, 3.0, np.nan])
    assert contrast(data) == pytest.approx(0.5)
    assert contrast(np.array([1.0, 3.0, 100.0]), mask=np.array([1, 1, 0])) == pytest.approx(0.5)
    assert math.isnan(contrast(np.zeros(4)))
    assert math.isnan(contrast(np.full(3, np.nan)))
    assert math.isnan(contrast(np.zeros(0)))


def test_hit_finding():
    image = np.zeros((4, 5))
    image[1, 2] = 10
    image[3, 0] = 7
    image[2, 2] = np.nan
    hits = find_hits(image, 5.0)
    assert hits.count == 2
    assert hits.positions.tolist() == [[1, 2], [3, 0]]
    assert hits.values.tolist() == [10.0, 7.0]
    mask = np.ones((4, 5), dtype=bool)
    mask[1, 2] = False
    assert find_hits(image, 5.0, mask).count == 1
    none = find_hits(np.zeros((0, 3)), 1.0)
    assert none.count == 0 and none.positions.shape == (0, 2)


@settings(max_examples=50, deadline=None)
@given(image=images, level=st.floats(-10, 10))
def test_hit_finding_matches_argwhere(image, level):
    hits = find_hits(image, level)
    expected = np.argwhere(np.nan_to_num(image, nan=-np.inf) > level)
    np.testing.assert_array_equal(hits.positions, expected)
