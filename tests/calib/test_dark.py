"""Dark-run statistics: the exact-sum kernels, merges across ranks, bad-pixel flags."""

from __future__ import annotations

import itertools
import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from calib import CalibError, DarkAccumulator, DarkThresholds, StatusBit, dark_constants
from calib import _darksums as ds

from ._synth import fake_detector


def _kernel_sums(frames: np.ndarray, mask: int, threads: int = 1,
                 unaligned: bool = False) -> tuple[np.ndarray, ...]:
    """dark_sums (or its parallel twin) and the NumPy reference on frames placed at odd
    offsets of one flat array, as in a mapped file (``unaligned``: starting at an odd byte,
    as frames in dgrams of odd sizes do)."""
    n, npix = frames.shape
    size = 3 + n * (npix + 5)
    if unaligned:
        data = np.zeros(size * frames.itemsize + 1, np.uint8)[1:].view(frames.dtype)
        assert not data.flags.aligned
    else:
        data = np.zeros(size, frames.dtype)
    offsets = 3 + np.arange(n, dtype=np.int64) * (npix + 5)
    for f, o in zip(frames, offsets, strict=True):
        data[o:o + npix] = f
    ref = (frames[0].astype(np.int32) & mask).astype(np.int32)
    s1, s2, r1, r2 = (np.zeros(npix, np.int64) for _ in range(4))
    b1 = np.empty((threads, ds.CHUNK), np.int32)
    b2 = np.empty((threads, ds.CHUNK), np.uint32)
    if threads == 1:
        ds.dark_sums(data, offsets, np.int32(mask), ref, s1, s2, b1[0], b2[0])
    else:
        ds.dark_sums_parallel(data, offsets, np.int32(mask), ref, s1, s2, b1, b2)
    ds.dark_sums_ref(data, offsets, mask, ref, r1, r2)
    return s1, s2, r1, r2


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([np.int16, np.uint16, np.uint8]), st.integers(1, 11),
       st.integers(1, 2 * ds.CHUNK + 40), st.sampled_from([-1, 0x3FFF]),
       st.integers(0, 2**32 - 1), st.sampled_from(["noise", "wild", "mixed"]))
def test_dark_sum_kernel_is_exact(dtype: type, n: int, npix: int, mask: int, seed: int,
                                  kind: str) -> None:
    """Exactly the int64 sums, for small deviations (the 32-bit fast path), full-range values
    (the undo and 64-bit paths) and a mix within one chunk."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    wild = rng.integers(info.min, info.max, (n, npix), endpoint=True)
    noise = np.clip(np.rint(rng.normal(info.max // 3, 4, (n, npix))), info.min, info.max)
    frames = {"noise": noise, "wild": wild,
              "mixed": np.where(rng.random((1, npix)) < 0.01, wild, noise)}[kind].astype(dtype)
    s1, s2, r1, r2 = _kernel_sums(frames, mask)
    np.testing.assert_array_equal(s1, r1)
    np.testing.assert_array_equal(s2, r2)


@settings(max_examples=20, deadline=None)
@given(hnp.arrays(np.uint16, st.tuples(st.integers(1, 9), st.integers(1, 3 * ds.CHUNK))),
       st.booleans())
def test_threads_and_unaligned_frames_give_the_same_sums(frames: np.ndarray,
                                                         unaligned: bool) -> None:
    for threads in (1, 2):
        s1, s2, r1, r2 = _kernel_sums(frames, -1, threads=threads, unaligned=unaligned)
        np.testing.assert_array_equal(s1, r1)
        np.testing.assert_array_equal(s2, r2)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 10**6), st.integers(0, 2**32 - 1), st.sampled_from([np.int16, np.uint16]))
def test_moments_kernel_matches_numpy_bitwise(n: int, seed: int, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    ref = rng.integers(info.min, info.max, 50, endpoint=True).astype(np.int32)
    x_mean = rng.integers(info.min, info.max, 50, endpoint=True)
    spread = rng.integers(0, 300, 50)
    s1 = n * (x_mean - ref) + rng.integers(-1, 2, 50) * spread  # sums of d = x - ref
    s2 = (s1 * s1) // n + n * spread * spread
    mean, var = np.empty(50), np.empty(50)
    ds.dark_moments(n, ref, s1, s2, mean, var)
    m_ref, v_ref = ds.dark_moments_ref(n, ref, s1, s2)
    assert mean.tobytes() == m_ref.tobytes() and var.tobytes() == v_ref.tobytes()


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 3000),
                  elements=st.floats(width=32, allow_nan=False)))
def test_radix_median_is_numpy_median(values: np.ndarray) -> None:
    """Including ties, +-0.0, infinities and neighbours split between histogram bins."""
    np.testing.assert_array_equal(ds.median_f32(values), np.median(values.astype(np.float64)))


def test_radix_median_on_detector_sized_arrays() -> None:
    rng = np.random.default_rng(4)
    for n in (540_672, 540_673):
        values = rng.normal(2500, 200, n).astype(np.float32)
        assert ds.median_f32(values) == np.median(values.astype(np.float64))


def test_gain_mismatch_counts() -> None:
    codes = np.array([[0, 1, 3, 2], [0, 0, 3, 3]], np.uint16)
    frames = (codes << 14) | np.uint16(100)
    counts = np.zeros(4, np.int32)
    ref = np.zeros(4, np.int64)
    offsets = np.array([0, 4], np.int64)
    ds.gain_mismatch(frames.reshape(-1), offsets, 3, counts)
    ds.gain_mismatch_ref(frames.reshape(-1), offsets, 3, ref)
    np.testing.assert_array_equal(counts, ref)
    np.testing.assert_array_equal(counts, [2, 2, 0, 1])


def _frames(n: int, shape: tuple[int, ...] = (3, 4, 5), seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(1000.0, 5.0, (n, *shape)) + 0.5).astype(np.int16)


def test_accumulator_matches_numpy() -> None:
    frames = _frames(100)
    acc = DarkAccumulator(frames.shape[1:], batch=7)
    for f in frames:
        acc.add(f)
    res = acc.result()
    assert res.n == acc.n_events == 100 and res.off_stage is None
    np.testing.assert_allclose(res.mean, frames.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(res.var, frames.var(axis=0), rtol=1e-12)
    n, s1, s2 = acc.sums()
    x = frames.reshape(100, -1).astype(np.int64)
    assert n == 100 and (s1 == x.sum(0)).all() and (s2 == (x * x).sum(0)).all()


def test_results_are_exact_where_floating_sums_cancel() -> None:
    """Values near the top of the 16-bit range with a tiny spread: the integer formulas give
    mean and variance to the last bit (checked with fractions)."""
    rng = np.random.default_rng(5)
    frames = (65535 - rng.integers(0, 3, (1001, 64))).astype(np.uint16)
    acc = DarkAccumulator((64,), batch=13)
    for f in frames:
        acc.add(f)
    res = acc.result()
    for p in range(0, 64, 7):
        xs = [int(v) for v in frames[:, p]]
        mean = Fraction(sum(xs), len(xs))
        var = Fraction(sum(v * v for v in xs), len(xs)) - mean * mean
        assert res.mean[p] == float(mean) and abs(res.var[p] - float(var)) <= 2e-16 * var


def test_frames_in_place_equal_frames_added_one_by_one() -> None:
    frames = _frames(37, shape=(2, 3000))
    one = DarkAccumulator(frames.shape[1:])
    for f in frames:
        one.add(f)
    npix = frames[0].size
    data = np.concatenate([np.zeros(5, np.int16)] + [np.append(f.ravel(), np.int16(0))
                                                     for f in frames])
    placed = DarkAccumulator(frames.shape[1:], threads=2)
    offsets = 5 + np.arange(37) * (npix + 1)
    placed.add_frames(data, offsets[::2], range(0, 37, 2))
    placed.add_frames(data, offsets[1::2], range(1, 37, 2))
    assert placed.state()["events"] == [[0, 37]]
    for a, b in zip(one.sums(), placed.sums(), strict=True):
        np.testing.assert_array_equal(a, b)


def _split(n_events: int, block: int, ranks: int, how: str) -> list[list[int]]:
    """Event indices per rank: contiguous block ranges, blocks round robin, or random."""
    if how == "random":
        owner = np.random.default_rng(ranks).integers(0, ranks, n_events)
        return [np.flatnonzero(owner == r).tolist() for r in range(ranks)]
    blocks = [list(range(b, min(b + block, n_events))) for b in range(0, n_events, block)]
    out: list[list[int]] = [[] for _ in range(ranks)]
    for i, blk in enumerate(blocks):
        r = i * ranks // len(blocks) if how == "contiguous" else i % ranks
        out[r].extend(blk)
    return out


def test_merges_are_bitwise_identical_for_any_split() -> None:
    frames = _frames(203)
    serial = DarkAccumulator(frames.shape[1:], batch=7)
    for f in frames:
        serial.add(f)
    ref = serial.result()
    for ranks, how in itertools.product((1, 2, 3, 5), ("contiguous", "round robin", "random")):
        parts = []
        for indices in _split(len(frames), 7, ranks, how):
            acc = DarkAccumulator(frames.shape[1:], batch=4)
            for i in indices[::-1]:  # any order within a rank too
                acc.add(frames[i], index=i)
            parts.append(acc)
        for order in (parts, parts[::-1]):
            # partial results travel as plain state dicts, as they would between MPI ranks
            total = DarkAccumulator.from_state(order[0].state())
            for p in order[1:]:
                total.merge(DarkAccumulator.from_state(p.state()))
            res = total.result()
            assert res.n == ref.n and total.state()["events"] == [[0, 203]]
            assert res.mean.tobytes() == ref.mean.tobytes(), (ranks, how)
            assert res.var.tobytes() == ref.var.tobytes(), (ranks, how)


def test_misuse_is_reported() -> None:
    acc = DarkAccumulator((2,))
    acc.add(np.zeros(2, np.int16), index=5)
    with pytest.raises(CalibError, match="accumulated twice"):
        acc.add(np.zeros(2, np.int16), index=5)
    with pytest.raises(CalibError, match="shape"):
        acc.add(np.zeros(3, np.int16), index=6)
    with pytest.raises(CalibError, match="at most 16 bits; the frame is float32"):
        acc.add(np.zeros(2, np.float32), index=6)
    with pytest.raises(CalibError, match="the frame is uint16, earlier events int16"):
        acc.add(np.zeros(2, np.uint16), index=6)
    other = DarkAccumulator((2,))
    other.add(np.zeros(2, np.int16), index=5)
    with pytest.raises(CalibError, match="accumulated twice"):
        acc.merge(other)
    with pytest.raises(CalibError, match="cannot merge"):
        acc.merge(DarkAccumulator((3,)))
    with pytest.raises(CalibError, match="cannot merge"):
        acc.merge(DarkAccumulator((2,), gain_code=1))
    with pytest.raises(CalibError, match="no events"):
        DarkAccumulator((2,)).result()
    with pytest.raises(CalibError, match="gain_code must be one of"):
        DarkAccumulator((2,), gain_code=2)
    with pytest.raises(CalibError, match="outside the data"):
        acc.add_frames(np.zeros(3, np.int16), [2], [9])


def test_gain_stage_statistics_use_the_data_bits() -> None:
    """gain_code: mean and rms of the 14 data bits; events in another stage are counted."""
    rng = np.random.default_rng(2)
    data = rng.integers(1000, 1010, (50, 6)).astype(np.uint16)
    codes = np.full((50, 6), 1, np.uint16)
    codes[:3, 0] = 0  # pixel 0 fell back to G0 in 3 events
    codes[:, 5] = 3  # pixel 5 always in G2
    acc = DarkAccumulator((6,), gain_code=1, batch=8)
    for f in (codes << 14) | data:
        acc.add(f)
    res = acc.result()
    np.testing.assert_allclose(res.mean, data.mean(axis=0), rtol=1e-15)
    assert res.off_stage is not None and res.off_stage.tolist() == [3, 0, 0, 0, 0, 50]
    _, _, status = dark_constants(res, DarkThresholds(off_stage=0.05))
    bad = (status & np.uint64(StatusBit.BAD_GAIN)) != 0
    assert bad.tolist() == [True, False, False, False, False, True]


def test_dark_constants_recover_pedestals_and_flag_bad_pixels() -> None:
    rng = np.random.default_rng(7)
    det = fake_detector(rng, shape=(4, 64, 128))
    n = 400
    acc = DarkAccumulator(det.shape, batch=50)
    for _ in range(n):
        acc.add(det.frame(rng))
    ped, rms, status = dark_constants(acc.result())
    assert ped.dtype == np.float32 and rms.dtype == np.float32 and status.dtype == np.uint64
    good = ~det.bad
    err = np.abs(ped - det.pedestal)[good]
    assert np.mean(err <= 4 * det.noise[good] / np.sqrt(n)) >= 0.999
    for mask, bit in ((det.dead, StatusBit.DEAD), (det.hot, StatusBit.HOT),
                      (det.noisy, StatusBit.NOISY), (det.cold, StatusBit.COLD)):
        assert mask.sum() > 50
        assert np.mean(status[mask] & np.uint64(bit) != 0) >= 0.99, bit
    assert np.mean(status[good] != 0) < 0.001
    np.testing.assert_allclose(np.median(rms[good] / det.noise[good]), 1.0, atol=0.02)


def test_thresholds_are_configurable() -> None:
    rng = np.random.default_rng(3)
    det = fake_detector(rng, shape=(2, 32, 64))
    acc = DarkAccumulator(det.shape)
    for _ in range(100):
        acc.add(det.frame(rng))
    stats = acc.result()
    _, _, loose = dark_constants(stats, DarkThresholds(noisy_rms=100.0, hot_sigma=1e6))
    assert not np.any(loose[det.noisy] & np.uint64(StatusBit.NOISY))
    assert not np.any(loose & np.uint64(StatusBit.HOT))
    _, _, sat = dark_constants(stats, DarkThresholds(saturation=2500.0, per_segment=True))
    assert np.all(sat[det.hot] & np.uint64(StatusBit.SATURATED))


def test_accumulating_a_cspad_event_takes_milliseconds() -> None:
    shape = (32, 185, 388)
    frame = np.random.default_rng(0).integers(900, 1100, shape).astype(np.int16)
    acc = DarkAccumulator(shape, batch=1)
    acc.add(frame)  # compile, first-touch the accumulators
    best = min(_timed(acc.add, frame) for _ in range(5))
    assert best < 0.05, f"{best * 1e3:.1f} ms per event"  # ~2 ms on a quiet machine


def _timed(fn: object, *args: object) -> float:
    t = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - t
