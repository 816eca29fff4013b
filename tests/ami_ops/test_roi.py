"""Regions of interest: clipped selection, statistics against a plain reference, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ami.ops import PixelRoi, RangeRoi, RectRoi, roi_stats


def reference_stats(image, r0, r1, c0, c1, mask, count_threshold):
    """Pixel-by-pixel statistics of the clipped rectangle, with plain Python loops."""
    total, n, best, wr, wc, count = 0.0, 0, -math.inf, 0.0, 0.0, 0
    for r in range(max(r0, 0), min(r1, image.shape[0])):
        for c in range(max(c0, 0), min(c1, image.shape[1])):
            v = image[r, c]
            if not mask[r, c] or math.isnan(v):
                continue
            total += v
            n += 1
            best = max(best, v)
            wr += v * r
            wc += v * c
            count += v > count_threshold
    nan = math.nan
    mean = total / n if n else nan
    com = (wr / total, wc / total) if n and total != 0 else (nan, nan)
    return total, mean, best if n else nan, com, count, n


bounds = st.integers(-5, 25)


@settings(max_examples=150, deadline=None)
@given(
    image=arrays(np.float64, (12, 15), elements=st.floats(-5, 20) | st.just(np.nan)),
    mask=arrays(bool, (12, 15)),
    r=st.tuples(bounds, bounds).filter(lambda b: b[1] > b[0]),
    c=st.tuples(bounds, bounds).filter(lambda b: b[1] > b[0]),
    count_threshold=st.floats(-1, 10),
)
def test_rect_roi_matches_reference(image, mask, r, c, count_threshold):
    result = RectRoi(r[0], r[1], c[0], c[1], count_threshold=count_threshold)(image, mask)
    total, mean, best, com, count, n = reference_stats(image, *r, *c, mask, count_threshold)
    assert result.npix == n
    assert result.count == count
    assert result.sum == pytest.approx(total, abs=1e-9)
    np.testing.assert_allclose(
        [result.mean, result.max, *result.com], [mean, best, *com], rtol=1e-9, atol=1e-9
    )


def test_area_is_a_clipped_view_with_its_origin():
    image = np.arange(50.0).reshape(5, 10)
    result = RectRoi(-3, 2, 7, 40)(image)
    assert result.area.shape == (2, 3)
    assert np.shares_memory(result.area, image)
    assert result.origin == (0, 7)
    np.testing.assert_array_equal(result.area, image[0:2, 7:10])


def test_centre_of_mass_is_in_image_coordinates():
    image = np.zeros((20, 20))
    image[12, 7] = 5.0
    result = RectRoi(10, 15, 5, 10)(image)
    assert result.com == (12.0, 7.0)
    assert result.sum == 5.0 and result.max == 5.0 and result.count == 1


def test_roi_entirely_off_the_image_is_empty_not_an_error():
    result = RectRoi(100, 120, 0, 5)(np.ones((10, 10)))
    assert result.area.size == 0
    assert result.sum == 0.0 and result.count == 0 and result.npix == 0
    assert math.isnan(result.mean) and math.isnan(result.max)
    assert all(math.isnan(v) for v in result.com)


def test_all_masked_and_all_nan_give_nan_statistics():
    image = np.ones((4, 4))
    masked = RectRoi(0, 4, 0, 4)(image, np.zeros((4, 4), dtype=bool))
    nans = RectRoi(0, 4, 0, 4)(np.full((4, 4), np.nan))
    for result in (masked, nans):
        assert result.sum == 0.0 and result.npix == 0
        assert math.isnan(result.mean) and math.isnan(result.max)


def test_nan_pixels_do_not_count():
    image = np.array([[1.0, np.nan], [3.0, 4.0]])
    result = RectRoi(0, 2, 0, 2)(image)
    assert result.sum == 8.0 and result.npix == 3
    assert result.mean == pytest.approx(8 / 3)
    assert result.max == 4.0


def test_integer_images():
    image = np.arange(16, dtype=np.uint16).reshape(4, 4)
    result = RectRoi(1, 3, 1, 3)(image)
    assert result.sum == 5 + 6 + 9 + 10
    assert isinstance(result.sum, float)


def test_tiled_stack_selects_the_tile():
    stack = np.zeros((4, 6, 6))
    stack[2, 3, 3] = 7.0
    result = RectRoi(0, 6, 0, 6, tile=2)(stack)
    assert result.sum == 7.0 and result.com == (3.0, 3.0)
    assert RectRoi(0, 6, 0, 6, tile=1)(stack).sum == 0.0


def test_tiled_stack_mask_follows_the_tile():
    stack = np.ones((2, 3, 3))
    mask = np.ones((2, 3, 3), dtype=bool)
    mask[1, 0, 0] = False
    assert RectRoi(0, 3, 0, 3, tile=1)(stack, mask).npix == 8
    assert RectRoi(0, 3, 0, 3, tile=0)(stack, mask).npix == 9


@pytest.mark.parametrize(
    ("roi", "data", "message"),
    [
        (RectRoi(0, 2, 0, 2), np.zeros((2, 2, 2)), "give a tile"),
        (RectRoi(0, 2, 0, 2, tile=0), np.zeros((2, 2)), "not tiled"),
        (RectRoi(0, 2, 0, 2, tile=5), np.zeros((2, 2, 2)), "tile 5 is out of range"),
    ],
)
def test_shape_mismatches_are_explained(roi, data, message):
    with pytest.raises(ValueError, match=message):
        roi(data)


def test_bounds_are_checked_with_a_readable_message():
    with pytest.raises(ValueError, match=r"^r1 \(10\) must be greater than r0 \(20\)$"):
        RectRoi(20, 10, 0, 5)
    with pytest.raises(ValueError, match=r"c1 \(3\) must be greater than c0 \(3\)"):
        RectRoi(0, 5, 3, 3)
    with pytest.raises(ValueError, match="whole number"):
        RectRoi(0, 2.5, 0, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"x1 \(1\) must be greater than x0 \(5\)"):
        RangeRoi(5, 1)


def test_numpy_integer_bounds_are_accepted():
    roi = RectRoi(np.int64(0), np.int32(2), 0, 2)  # type: ignore[arg-type]
    assert roi.r1 == 2 and type(roi.r1) is int


def test_range_roi_on_waveforms():
    wf = np.array([0.0, 1.0, 2.0, 3.0, np.nan, 5.0])
    result = RangeRoi(1, 100, count_threshold=1.5)(wf)
    assert result.origin == (1,)
    assert result.sum == 11.0 and result.npix == 4 and result.count == 3
    assert result.com[0] == pytest.approx((1 + 4 + 9 + 25) / 11)
    empty = RangeRoi(10, 20)(wf)
    assert empty.area.size == 0 and math.isnan(empty.mean)
    assert RangeRoi(0, 3)(np.zeros(0)).npix == 0
    with pytest.raises(ValueError, match="expected 1-D"):
        RangeRoi(0, 3)(np.zeros((2, 2)))


def test_pixel_roi():
    image = np.arange(12.0).reshape(3, 4)
    assert PixelRoi(1, 2)(image) == 6.0
    assert math.isnan(PixelRoi(3, 0)(image))
    assert math.isnan(PixelRoi(-1, 0)(image))
    assert PixelRoi(0, 1, tile=1)(np.stack([image, 10 * image])) == 10.0


def test_roi_stats_directly_on_any_rank():
    stats = roi_stats(np.ones((2, 2, 2)), count_threshold=0.5)
    assert stats.sum == 8.0 and stats.com == (0.5, 0.5, 0.5) and stats.count == 8
    zero_sum = roi_stats(np.array([1.0, -1.0]))
    assert zero_sum.sum == 0.0 and math.isnan(zero_sum.com[0]) and zero_sum.mean == 0.0
