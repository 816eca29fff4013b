"""The fast paths of projection, ROI statistics and ``Latest`` against their plain NumPy
references: NaN, infinities, masks, empty and fully masked areas, and the strided, offset and
misaligned views that event data arrive as."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ami.ops import (
    Histogram1D,
    Latest,
    RangeRoi,
    RectRoi,
    default_registry,
    project,
    roi_stats,
)
from ami.ops import _kernels as k
from ami.ops._image import project_numpy
from ami.ops._roi import STATISTICS, roi_stats_numpy

SETTINGS = settings(deadline=None, max_examples=120)
values = st.floats(-50, 50) | st.just(np.nan) | st.sampled_from([np.inf, -np.inf])
shapes = st.tuples(st.integers(0, 9), st.integers(0, 9))
images = arrays(np.float64, shapes, elements=values)


def _layout(a: np.ndarray, how: str) -> np.ndarray:
    """``a``'s values in the memory layout ``how``: as event data and views present them."""
    if how == "c":
        return a
    if how == "f":
        return np.asfortranarray(a)
    if how == "view":  # a window of a bigger image, as a ROI gives
        big = np.full((a.shape[0] + 3, a.shape[1] + 5), 7.0, dtype=a.dtype)
        big[1 : 1 + a.shape[0], 2 : 2 + a.shape[1]] = a
        return big[1 : 1 + a.shape[0], 2 : 2 + a.shape[1]]
    if how == "misaligned":  # a dgram payload at an odd offset
        raw = bytearray(a.size * a.itemsize + 1)
        out = np.frombuffer(raw, dtype=a.dtype, offset=1, count=a.size).reshape(a.shape)
        out[...] = a
        return out
    if how == "flipped":
        return np.flipud(np.flipud(a).copy())
    raise AssertionError(how)


layouts = st.sampled_from(["c", "f", "view", "misaligned", "flipped"])


def _same(fast: np.ndarray, ref: np.ndarray) -> None:
    assert fast.shape == ref.shape and fast.dtype == ref.dtype
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-9)


@SETTINGS
@given(image=images, how=layouts, axis=st.sampled_from([0, 1, -1, -2]), mean=st.booleans(),
       mask=st.none() | arrays(bool, 81))
def test_projection_matches_numpy_reference(image, how, axis, mean, mask):
    m = None if mask is None else mask[: image.size].reshape(image.shape)
    data = _layout(image, how)
    _same(project(data, axis, mean=mean, mask=m), project_numpy(image, axis, mean=mean, mask=m))


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32, np.int64, np.bool_])
def test_projection_of_other_types_matches_reference(dtype):
    image = (np.arange(35).reshape(5, 7) % 4).astype(dtype)
    mask = np.arange(35).reshape(5, 7) % 3 > 0
    for axis in (0, 1):
        for m in (None, mask):
            _same(project(image, axis, mask=m), project_numpy(image, axis, mask=m))
            _same(project(image[:, 1:5], axis, mean=True, mask=None if m is None else m[:, 1:5]),
                  project_numpy(image[:, 1:5], axis, mean=True,
                                mask=None if m is None else m[:, 1:5]))


@pytest.mark.parametrize("shape", [(0,), (6,), (2, 3, 4), (0, 3, 2)])
def test_projection_of_other_dimensions_matches_reference(shape):
    data = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    for axis in range(len(shape)):
        _same(project(data, axis), project_numpy(data, axis))
        _same(project(data, axis, mean=True), project_numpy(data, axis, mean=True))
        if data.size:
            data.flat[0] = np.nan
            _same(project(data, axis, mean=True), project_numpy(data, axis, mean=True))


def test_projection_all_masked_and_all_nan():
    image = np.ones((3, 4))
    none = np.zeros((3, 4), dtype=bool)
    np.testing.assert_array_equal(project(image, 0, mask=none), np.zeros(4))
    assert np.isnan(project(image, 1, mean=True, mask=none)).all()
    assert np.isnan(project(np.full((3, 4), np.nan), 0, mean=True)).all()
    np.testing.assert_array_equal(project(np.full((3, 4), np.inf), 1), np.zeros(3))


@SETTINGS
@given(image=images, how=layouts, origin=st.tuples(st.integers(-3, 50), st.integers(-3, 50)),
       threshold=st.floats(-20, 20), mask=st.none() | arrays(bool, 81),
       only=st.none() | st.sets(st.sampled_from(sorted(STATISTICS))))
def test_roi_statistics_match_numpy_reference(image, how, origin, threshold, mask, only):
    m = None if mask is None else mask[: image.size].reshape(image.shape)
    fast = roi_stats(_layout(image, how), origin=origin, mask=m, count_threshold=threshold,
                     only=only)
    ref = roi_stats_numpy(image, origin=origin, mask=m, count_threshold=threshold)
    assert fast.origin == ref.origin and fast.npix == ref.npix
    np.testing.assert_array_equal(fast.area, image)
    want = STATISTICS if only is None else only
    np.testing.assert_allclose([fast.sum, fast.mean], [ref.sum, ref.mean], rtol=1e-12, atol=1e-9)
    if "max" in want:
        np.testing.assert_array_equal(fast.max, ref.max)
    else:
        assert math.isnan(fast.max)
    if "com" in want:
        np.testing.assert_allclose(fast.com, ref.com, rtol=1e-9, atol=1e-9)
    else:
        assert all(math.isnan(c) for c in fast.com)
    assert fast.count == (ref.count if "count" in want else -1)


@SETTINGS
@given(line=arrays(np.float64, st.integers(0, 30), elements=values), x0=st.integers(-5, 35),
       width=st.integers(1, 40), mask=st.none() | arrays(bool, 30))
def test_range_roi_matches_numpy_reference(line, x0, width, mask):
    m = None if mask is None else mask[: line.size]
    roi = RangeRoi(x0, x0 + width)
    fast = roi(line, m)
    area, origin = roi.select(line)
    ref = roi_stats_numpy(area, origin=origin, mask=None if m is None else roi.select(m)[0])
    assert fast.npix == ref.npix and fast.count == ref.count
    np.testing.assert_allclose([fast.sum, fast.mean, fast.max, *fast.com],
                               [ref.sum, ref.mean, ref.max, *ref.com], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.uint16, np.int8, np.float32, np.int64, np.uint32])
def test_roi_statistics_of_other_types_match_reference(dtype):
    image = ((np.arange(48).reshape(6, 8) * 37) % 11).astype(dtype)
    fast = roi_stats(image[1:5, 2:7], origin=(1, 2), count_threshold=4)
    ref = roi_stats_numpy(image[1:5, 2:7], origin=(1, 2), count_threshold=4)
    assert (fast.npix, fast.count) == (ref.npix, ref.count)
    np.testing.assert_allclose([fast.sum, fast.mean, fast.max, *fast.com],
                               [ref.sum, ref.mean, ref.max, *ref.com], rtol=1e-12)


def test_roi_statistics_empty_and_all_masked():
    for only in (None, {"sum"}, STATISTICS):
        for result in (roi_stats(np.ones((0, 4)), only=only),
                       roi_stats(np.ones((3, 4)), mask=np.zeros((3, 4), bool), only=only),
                       roi_stats(np.full((2, 2), np.nan), only=only)):
            assert result.sum == 0.0 and result.npix == 0
            assert math.isnan(result.mean) and math.isnan(result.max)
            assert all(math.isnan(c) for c in result.com)
            assert result.count == (-1 if only == {"sum"} else 0)


def test_roi_statistics_refuse_unknown_names():
    with pytest.raises(ValueError, match="unknown statistics"):
        roi_stats(np.ones((2, 2)), only={"median"})


def test_max_ignores_infinities_and_nan():
    image = np.array([[np.inf, 3.0, np.nan], [-np.inf, 2.0, 1.0]])
    assert roi_stats(image).max == 3.0
    assert roi_stats(image, mask=[[True, False, True], [True, True, True]]).max == 2.0


@SETTINGS
@given(image=arrays(np.float64, shapes, elements=values), mask=st.none() | arrays(bool, 81),
       row0=st.integers(-4, 4), col0=st.integers(-4, 4), threshold=st.floats(-20, 20))
def test_roi_stats_kernel_matches_reference(image, mask, row0, col0, threshold):
    m = None if mask is None else mask[: image.size].reshape(image.shape)
    flat, n0, n1, rs = k.as_rows(image)
    mflat, mrs = (None, 0) if m is None else k.as_rows(m)[::3]
    out = np.empty(6)
    k.roi_stats_kernel(flat, n0, n1, rs, mflat, mrs, row0, col0, threshold, True, True, True,
                       out)
    np.testing.assert_allclose(out, k.roi_stats_reference(image, m, row0, col0, threshold),
                               rtol=1e-12, atol=1e-9)


@SETTINGS
@given(image=arrays(np.float32, shapes, elements=st.floats(-50, 50, width=32) | st.just(np.nan)),
       mask=st.none() | arrays(bool, 81), axis=st.sampled_from([0, 1]))
def test_project_kernel_matches_reference(image, mask, axis):
    m = None if mask is None else mask[: image.size].reshape(image.shape)
    flat, n0, n1, rs = k.as_rows(image)
    mflat, mrs = (None, 0) if m is None else k.as_rows(m)[::3]
    length = image.shape[1 - axis]
    sums, counts = np.empty(length), np.empty(length, dtype=np.int64)
    k.project_kernel(flat, n0, n1, rs, mflat, mrs, axis, sums, counts, True)
    ref_sums, ref_counts = k.project_reference(image, m, axis)
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(counts, ref_counts)


def test_as_rows_does_not_copy_a_window_of_an_image():
    image = np.arange(60.0).reshape(6, 10)
    window = image[1:5, 2:9]
    flat, n0, n1, rs = k.as_rows(window)
    assert (n0, n1, rs) == (4, 7, 10) and np.shares_memory(flat, image)
    assert not flat.flags.writeable
    rows = [flat[i * rs : i * rs + n1] for i in range(n0)]
    np.testing.assert_array_equal(np.array(rows), window)


def test_roi_op_skips_statistics_nobody_reads():
    spec = default_registry().get("roi")
    image = np.arange(100.0).reshape(10, 10)
    area_only = spec.make_for({"area"}, r0=2, r1=5, c0=1, c1=4)(image)
    assert area_only[1:] == (None,) * 6
    assert np.shares_memory(area_only[0], image)
    full = spec.make(r0=2, r1=5, c0=1, c1=4)(image)
    sums = spec.make_for({"sum", "area"}, r0=2, r1=5, c0=1, c1=4)(image)
    assert sums[1] == full[1] == RectRoi(2, 5, 1, 4)(image).sum
    assert math.isnan(sums[3]) and sums[6] == -1  # max and count were not computed
    com = spec.make_for({"com_col"}, r0=2, r1=5, c0=1, c1=4)(image)
    assert com[4:6] == full[4:6]
    one_d = default_registry().get("roi_1d").make_for({"area"}, x0=2, x1=5)(np.arange(9.0))
    assert one_d[1:] == (None,) * 5


def test_make_for_checks_output_names_and_ignores_them_where_unsupported():
    registry = default_registry()
    with pytest.raises(ValueError, match="no output"):
        registry.get("roi").make_for({"volume"})
    op = registry.get("projection").make_for({"profile"}, axis=1)
    np.testing.assert_array_equal(op(np.ones((2, 3))), [3.0, 3.0])


def test_latest_reuses_its_buffer_but_never_one_it_lent():
    latest = Latest()
    frame = np.arange(6.0).reshape(2, 3)
    latest.update(frame, key=1.0)
    held = latest._value
    frame += 10  # the event buffer is reused by the next event
    latest.update(frame, key=2.0)
    assert latest._value is held  # copied in place
    frame += 10
    np.testing.assert_array_equal(latest.result(), np.arange(6.0).reshape(2, 3) + 10)
    _, (wire,) = latest.to_state()
    snapshot = wire.copy()
    latest.update(frame, key=3.0)
    np.testing.assert_array_equal(wire, snapshot)  # what went out is not written to
    np.testing.assert_array_equal(latest.result(), frame)
    latest.update(np.zeros(4, dtype=np.int16), key=4.0)  # another shape or type: a new buffer
    assert latest.result().dtype == np.int16
    with pytest.raises(ValueError, match="only numbers"):
        latest.update("text", key=5.0)
    np.testing.assert_array_equal(latest.result(), np.zeros(4))


def _near_edges(nbins: int, lo: float, hi: float) -> st.SearchStrategy[float]:
    """Bin edges and their floating-point neighbours: where a scaled index can be one off."""
    edges = np.linspace(lo, hi, nbins + 1)
    return st.sampled_from(edges).flatmap(
        lambda e: st.sampled_from([e, np.nextafter(e, -np.inf), np.nextafter(e, np.inf)]))


@SETTINGS
@given(data=st.data(), nbins=st.integers(1, 40), lo=st.floats(-100, 100),
       width=st.floats(1e-3, 1e3), how=layouts, dtype=st.sampled_from([np.float64, np.float32]))
def test_histogram_kernel_bins_like_the_numpy_path(data, nbins, lo, width, how, dtype):
    hi = lo + width
    elements = values | st.floats(lo - 1, hi + 1) | _near_edges(nbins, lo, hi)
    image = data.draw(arrays(np.float64, shapes, elements=elements)).astype(dtype)
    fast, ref = Histogram1D(nbins, lo, hi), Histogram1D(nbins, lo, hi)
    fast.update(_layout(image, how))
    ref._update_numpy(image)
    a, b = fast.result(), ref.result()
    np.testing.assert_array_equal(a.counts, b.counts)
    assert (a.underflow, a.overflow, a.nan) == (b.underflow, b.overflow, b.nan)


HISTOGRAM_VALUES = [np.uint16(7), 3.5, np.arange(12, dtype=np.uint16).reshape(2, 3, 2),
                    np.zeros((0, 3)), np.arange(5, dtype=np.int8)[::-2]]


@pytest.mark.parametrize("value", HISTOGRAM_VALUES)
def test_histogram_of_scalars_stacks_and_empty_arrays(value):
    fast, ref = Histogram1D(6, 0, 12), Histogram1D(6, 0, 12)
    fast.update(value)
    ref._update_numpy(value)
    np.testing.assert_array_equal(fast.result().counts, ref.result().counts)
    assert fast.to_state()[0] == ref.to_state()[0]
