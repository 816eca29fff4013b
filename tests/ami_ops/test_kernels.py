"""Every numba kernel against its NumPy reference, on random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ami.ops import _kernels as k

SETTINGS = settings(deadline=None, max_examples=150)
samples = st.one_of(st.floats(-10, 10), st.just(np.nan))
waveforms = arrays(np.float64, st.integers(0, 120), elements=samples)
small_ints = arrays(np.float64, st.integers(0, 80), elements=st.integers(-3, 3).map(float))
templates = arrays(np.float64, st.integers(2, 10), elements=st.integers(-3, 3).map(float))


def _edges_kernel(wf, baseline, threshold, fraction, deadtime, leading, npkmax):
    size = min(npkmax, wf.size // 2 + 1)
    times, amps = np.empty(size), np.empty(size)
    n = k.find_edges_kernel(wf, baseline, threshold, fraction, deadtime, leading, times, amps)
    return times[:n], amps[:n]


@SETTINGS
@given(
    wf=waveforms,
    baseline=st.floats(-2, 2),
    threshold=st.floats(-5, 5),
    fraction=st.floats(0.01, 1.0),
    deadtime=st.floats(0, 6),
    leading=st.booleans(),
    npkmax=st.integers(1, 12),
)
def test_find_edges_kernel_matches_reference(
    wf, baseline, threshold, fraction, deadtime, leading, npkmax
):
    if threshold == baseline:
        threshold += 1.0
    args = (baseline, threshold, fraction, deadtime, leading, npkmax)
    times, amps = _edges_kernel(wf, *args)
    ref_times, ref_amps = k.find_edges_reference(wf, *args)
    np.testing.assert_allclose(times, ref_times, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(amps, ref_amps)
    assert np.all(np.diff(times) > deadtime)


def _pulses(n, centres, amplitude, sigma):
    t = np.arange(n, dtype=np.float64)
    return sum(amplitude * np.exp(-0.5 * ((t - c) / sigma) ** 2) for c in centres)


@SETTINGS
@given(
    centres=st.lists(st.floats(20, 180), min_size=1, max_size=3),
    amplitude=st.floats(0.5, 5) | st.floats(-5, -0.5),
    sigma=st.floats(2.0, 6.0),
    delay=st.integers(1, 6),
    fraction=st.floats(0.2, 0.9),
    threshold=st.floats(0.0, 0.3),
)
def test_cfd_kernel_matches_reference_on_pulses(
    centres, amplitude, sigma, delay, fraction, threshold
):
    wf = _pulses(200, centres, amplitude, sigma) + 0.01
    times = np.empty(50)
    n = k.cfd_kernel(wf, 0.01, delay, fraction, 0.0, threshold, times)
    ref = k.cfd_reference(wf, 0.01, delay, fraction, 0.0, threshold, 50)
    np.testing.assert_allclose(times[:n], ref, atol=1e-6)


@SETTINGS
@given(wf=waveforms, delay=st.integers(1, 5), fraction=st.floats(0.1, 1.0), walk=st.floats(-1, 1))
def test_cfd_kernel_finds_the_reference_crossings_on_any_data(wf, delay, fraction, walk):
    times = np.empty(max(wf.size, 1))
    n = k.cfd_kernel(wf, 0.0, delay, fraction, walk, 0.5, times)
    ref = k.cfd_reference(wf, 0.0, delay, fraction, walk, 0.5, wf.size)
    assert n == ref.size
    # Both refine inside the same sample interval; the cubic may have several roots there.
    assert np.all(np.abs(times[:n] - ref) <= 1.0)


@SETTINGS
@given(y=small_ints, threshold=st.floats(-4, 3))
def test_local_maxima_kernel_matches_reference(y, threshold):
    positions = np.empty(y.size // 2 + 1, dtype=np.int64)
    n = k.local_maxima_kernel(y, threshold, positions)
    np.testing.assert_array_equal(positions[:n], k.local_maxima_reference(y, threshold))


def test_local_maxima_with_nan_and_plateaus():
    y = np.array([0, 2, 2, 2, 0, np.nan, 5, 0, 1, 3, 3, 4, 0, 7, 7])
    positions = np.empty(8, dtype=np.int64)
    n = k.local_maxima_kernel(y, 0.0, positions)
    assert positions[:n].tolist() == [2, 11] == k.local_maxima_reference(y, 0.0).tolist()


@settings(deadline=None, max_examples=80)
@given(
    data=st.lists(
        st.tuples(st.integers(0, 300), st.integers(0, 5).map(float)),
        max_size=40,
        unique_by=lambda p: p[0],
    ),
    min_distance=st.integers(1, 30),
)
def test_suppress_kernel_matches_reference(data, min_distance):
    data.sort()
    positions = np.array([p for p, _ in data], dtype=np.int64)
    heights = np.array([h for _, h in data], dtype=np.float64)
    keep = np.empty(positions.size, dtype=np.bool_)
    kept = k.suppress_kernel(positions, heights, min_distance, keep)
    ref = k.suppress_reference(positions, heights, min_distance)
    np.testing.assert_array_equal(keep, ref)
    assert kept == ref.sum()
    survivors = positions[keep]
    assert np.all(np.diff(survivors) >= min_distance)


@SETTINGS
@given(
    index=arrays(np.int32, st.integers(0, 200), elements=st.integers(-1, 9)),
    seed=st.integers(0, 2**32 - 1),
)
def test_bin_sum_kernel_matches_reference(index, seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=index.size)
    values[rng.random(index.size) < 0.1] = np.nan
    weights = rng.uniform(0.5, 2, size=index.size)
    sums, counts = np.empty(10), np.empty(10, dtype=np.int64)
    k.bin_sum_kernel(index, values, weights, sums, counts)
    ref_sums, ref_counts = k.bin_sum_reference(index, values, weights, 10)
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(counts, ref_counts)


def test_bin_sum_kernel_takes_float32_images():
    index = np.array([0, 1, 1, -1], dtype=np.int32)
    values = np.array([1, 2, 3, 4], dtype=np.float32)
    sums, counts = np.empty(2), np.empty(2, dtype=np.int64)
    k.bin_sum_kernel(index, values, np.ones(4), sums, counts)
    assert sums.tolist() == [1.0, 5.0]
    assert counts.tolist() == [1, 2]


@SETTINGS
@given(w=small_ints, t=templates)
def test_ncc_kernel_matches_reference(w, t):
    nlags = w.size - t.size + 1
    if nlags < 1:
        return
    out = np.empty(nlags)
    k.ncc_kernel(w, t - t.mean(), out)
    np.testing.assert_allclose(out, k.ncc_reference(w, t), rtol=1e-9, atol=1e-12)
