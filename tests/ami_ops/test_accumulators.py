"""Accumulators: merging partial states of any split equals one pass; states survive the wire."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ami.ops import (
    ACCUMULATOR_KINDS,
    Accumulator,
    BinnedMean,
    ExponentialMovingAverage,
    Histogram1D,
    Histogram2D,
    Latest,
    MeanN,
    RollingBuffer,
    RunningMean,
    RunningSum,
    decode_state,
    encode_state,
)

NAN = float("nan")
scalar = st.floats(-100, 100) | st.just(NAN)
vec3 = arrays(np.float64, 3, elements=scalar)
vec2 = arrays(np.float64, 2, elements=scalar)

CASES: dict[str, tuple[Callable[[], Any], st.SearchStrategy[Any]]] = {
    "mean_n": (lambda: MeanN(4), vec3),
    "running_mean_scalar": (RunningMean, scalar),
    "running_mean_array": (RunningMean, vec3),
    "running_sum": (RunningSum, vec3),
    "ema": (lambda: ExponentialMovingAverage(tau=40.0), vec3),
    "latest": (Latest, vec3),
    "histogram1d": (lambda: Histogram1D(7, -50, 50), vec3),
    "histogram2d": (lambda: Histogram2D(4, -50, 50, 3, -10, 10), st.tuples(vec2, vec2)),
    "strip_chart": (lambda: RollingBuffer(5), scalar),
    "scatter": (lambda: RollingBuffer(4), st.tuples(scalar, st.integers(0, 2).map(float))),
    "mean_vs_scan": (BinnedMean, st.tuples(st.sampled_from([0.0, -0.0, 0.5, 1.0, NAN]), vec2)),
    "mean_vs_scan_rounded": (lambda: BinnedMean(0.5), st.tuples(st.floats(-2, 2), scalar)),
}


@st.composite
def event_lists(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> list[tuple[float, Any]]:
    n = draw(st.integers(0, 20))
    keys = draw(st.lists(st.integers(0, 400), min_size=n, max_size=n, unique=True))
    return [(float(k), draw(values)) for k in keys]


def assert_same(a: Any, b: Any) -> None:
    """Equal results, to rounding: dataclasses field by field, arrays with NaN == NaN."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b)
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name))
    elif a is None or b is None:
        assert a is b
    else:
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True)


def one_pass(factory: Callable[[], Any], events: list[tuple[float, Any]]) -> Any:
    acc = factory()
    for key, value in events:
        acc.update(value, key=key)
    return acc


def wire(acc: Any) -> Any:
    """Through bytes, as over ZMQ: msgpack header frame plus raw array frames."""
    return decode_state([bytes(frame) for frame in encode_state(acc)])


@pytest.mark.parametrize("case", list(CASES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_merging_any_split_equals_one_pass(case: str, data: st.DataObject) -> None:
    factory, values = CASES[case]
    events = data.draw(event_lists(values))
    workers = data.draw(st.integers(1, 4))
    assignment = data.draw(
        st.lists(st.integers(0, workers - 1), min_size=len(events), max_size=len(events))
    )
    partials = [factory() for _ in range(workers)]
    for (key, value), worker in zip(events, assignment, strict=True):
        partials[worker].update(value, key=key)
    # Ship some partials over the wire, then merge in a random tree order.
    partials = [wire(p) if data.draw(st.booleans()) else p for p in partials]
    while len(partials) > 1:
        i, j = data.draw(
            st.lists(st.integers(0, len(partials) - 1), min_size=2, max_size=2, unique=True)
        )
        partials[i].merge(partials[j])
        partials.pop(j)
    assert_same(partials[0].result(), one_pass(factory, events).result())


@pytest.mark.parametrize("case", list(CASES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_state_round_trip_through_bytes(case: str, data: st.DataObject) -> None:
    factory, values = CASES[case]
    events = data.draw(event_lists(values))
    acc = one_pass(factory, events)
    copy = wire(acc)
    assert type(copy) is type(acc)
    assert_same(copy.result(), acc.result())
    header, _ = copy.to_state()
    assert msgpack.unpackb(msgpack.packb(header)) == header
    extra = data.draw(values)
    acc.update(extra, key=1000.0)
    copy.update(extra, key=1000.0)
    assert_same(copy.result(), acc.result())


@pytest.mark.parametrize("case", list(CASES))
def test_merging_an_empty_partial_changes_nothing(case: str) -> None:
    factory, _ = CASES[case]
    acc = factory()
    sample = {
        "histogram2d": (np.ones(2), np.ones(2)),
        "scatter": (1.0, 2.0),
        "mean_vs_scan": (0.5, np.ones(2)),
        "mean_vs_scan_rounded": (0.5, 1.0),
    }.get(case, np.arange(3.0) if case not in ("running_mean_scalar", "strip_chart") else 2.0)
    acc.update(sample, key=5.0)
    before = acc.result()
    acc.merge(factory())
    assert_same(acc.result(), before)
    empty = factory()
    empty.merge(acc)
    assert_same(empty.result(), before)
    acc.reset()
    assert_same(acc.result(), factory().result())


def test_every_accumulator_satisfies_the_protocol() -> None:
    for cls in ACCUMULATOR_KINDS.values():
        instance = cls(4) if cls in (MeanN, RollingBuffer) else None
        if cls is ExponentialMovingAverage:
            instance = cls(1.0)
        elif cls is Histogram1D:
            instance = cls(3, 0, 1)
        elif cls is Histogram2D:
            instance = cls(3, 0, 1, 3, 0, 1)
        elif instance is None:
            instance = cls()
        assert isinstance(instance, Accumulator)


def test_mean_n_is_ready_after_n_events_and_keeps_merged_surplus() -> None:
    acc = MeanN(3)
    for v in (1.0, 2.0):
        acc.update(v)
    assert not acc.ready and acc.result() == 1.5
    acc.update(6.0)
    assert acc.ready and acc.result() == 3.0
    other = MeanN(3)
    other.update(7.0)
    acc.merge(other)
    assert acc.events == 4 and acc.result() == 4.0
    acc.reset()
    assert not acc.ready and math.isnan(acc.result())
    with pytest.raises(ValueError, match=r"n \(0\)"):
        MeanN(0)


def test_running_mean_is_nan_aware_per_element() -> None:
    acc = RunningMean()
    acc.update(np.array([1.0, NAN, NAN]))
    acc.update(np.array([3.0, 4.0, NAN]))
    np.testing.assert_array_equal(acc.result(), [2.0, 4.0, NAN])
    with pytest.raises(ValueError, match="shape"):
        acc.update(np.ones(4))
    total = RunningSum()
    assert total.result() == 0.0
    total.update(np.array([1.0, NAN]))
    np.testing.assert_array_equal(total.result(), [1.0, 0.0])


def test_ema_with_event_numbers_is_the_classic_ema() -> None:
    alpha = 0.2
    tau = -1 / math.log(1 - alpha)
    values = np.random.default_rng(3).normal(size=30)
    keyed, unkeyed = ExponentialMovingAverage(tau), ExponentialMovingAverage(tau)
    num = den = 0.0
    for i, v in enumerate(values):
        keyed.update(v, key=float(i))
        unkeyed.update(v)
        num = (1 - alpha) * num + v
        den = (1 - alpha) * den + 1
    assert keyed.result() == pytest.approx(num / den, rel=1e-12)
    assert unkeyed.result() == pytest.approx(num / den, rel=1e-12)
    with pytest.raises(ValueError, match="tau"):
        ExponentialMovingAverage(0)
    with pytest.raises(ValueError, match="finite"):
        keyed.update(1.0, key=math.nan)


def test_ema_merge_refuses_a_different_tau() -> None:
    with pytest.raises(ValueError, match="tau differs"):
        ExponentialMovingAverage(1.0).merge(ExponentialMovingAverage(2.0))


def test_latest_keeps_the_largest_key_and_copies_values() -> None:
    acc = Latest()
    assert acc.result() is None and acc.key is None
    buffer = np.array([1.0, 2.0])
    acc.update(buffer, key=10.0)
    buffer[:] = 99  # the event buffer is reused
    acc.update(np.array([5.0, 5.0]), key=3.0)  # older: ignored
    np.testing.assert_array_equal(acc.result(), [1.0, 2.0])
    acc.update(np.array([7.0, 7.0]), key=10.0)  # tie: the first stays
    np.testing.assert_array_equal(acc.result(), [1.0, 2.0])
    scalar_acc = Latest()
    scalar_acc.update(4)
    scalar_acc.update(5)
    assert scalar_acc.result() == 5
    with pytest.raises(ValueError, match="numeric"):
        Latest().update("text")


@settings(max_examples=60, deadline=None)
@given(
    values=arrays(np.float64, st.integers(0, 60), elements=st.floats(-3, 3) | st.just(NAN)),
    nbins=st.integers(1, 12),
)
def test_histogram1d_matches_numpy(values: np.ndarray, nbins: int) -> None:
    acc = Histogram1D(nbins, -2.0, 2.0)
    acc.update(values)
    expected, edges = np.histogram(values[np.isfinite(values)], nbins, (-2.0, 2.0))
    result = acc.result()
    np.testing.assert_array_equal(result.counts, expected)
    np.testing.assert_array_equal(result.edges, edges)
    assert result.underflow == np.sum(values < -2) and result.overflow == np.sum(values > 2)
    assert result.nan == np.isnan(values).sum()


def test_histogram1d_edges_weights_and_infinities() -> None:
    acc = Histogram1D(4, 0.0, 1.0)
    acc.update(np.array([0.0, 0.25, 0.5, 0.75, 1.0, -np.inf, np.inf]))
    acc.update(0.3, weight=2.5)
    result = acc.result()
    assert result.counts.tolist() == [1.0, 3.5, 1.0, 2.0]
    assert (result.underflow, result.overflow, result.nan) == (1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"^hi \(0\.0\) must be greater than lo \(1\.0\)$"):
        Histogram1D(3, 1.0, 0.0)
    with pytest.raises(ValueError, match="nbins differs"):
        acc.merge(Histogram1D(5, 0.0, 1.0))


@settings(max_examples=40, deadline=None)
@given(data=arrays(np.float64, (2, 30), elements=st.floats(-3, 3)))
def test_histogram2d_matches_numpy(data: np.ndarray) -> None:
    acc = Histogram2D(5, -2, 2, 3, -1, 1)
    acc.update((data[0], data[1]))
    expected, _, _ = np.histogram2d(data[0], data[1], bins=[5, 3], range=[[-2, 2], [-1, 1]])
    np.testing.assert_array_equal(acc.result().counts, expected)
    assert acc.result().outside == 30 - expected.sum()


def test_histogram2d_counts_nan_pairs_apart() -> None:
    acc = Histogram2D(2, 0, 1, 2, 0, 1)
    acc.update((np.array([0.1, NAN, 5.0]), np.array([0.1, 0.2, 0.3])))
    result = acc.result()
    assert result.counts.sum() == 1 and result.nan == 1 and result.outside == 1
    with pytest.raises(ValueError, match="does not match"):
        acc.update((np.ones(2), np.ones(3)))


def test_rolling_buffer_keeps_the_latest_points_by_key() -> None:
    acc = RollingBuffer(3)
    for key in (5.0, 1.0, 9.0, 7.0, 2.0):
        acc.update(key * 10, key=key)
    result = acc.result()
    assert result.keys.tolist() == [5.0, 7.0, 9.0]
    assert result.y.tolist() == [50.0, 70.0, 90.0]
    assert result.x.tolist() == result.keys.tolist()  # strip chart: x is the timestamp
    scatter = RollingBuffer(2)
    scatter.update((1.0, 2.0), key=1.0)
    scatter.update((3.0, 4.0))
    assert scatter.result().x.tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="capacity"):
        RollingBuffer(0)


def test_rolling_buffer_trims_across_many_updates() -> None:
    acc = RollingBuffer(10)
    for i in range(1000):
        acc.update(float(i), key=float(i))
    assert acc.result().y.tolist() == [float(i) for i in range(990, 1000)]


def test_binned_mean_by_scan_value() -> None:
    acc = BinnedMean(resolution=0.1)
    for scan, y in ((0.1001, 2.0), (0.0999, 4.0), (0.3, 1.0), (NAN, 100.0), (-0.0, 5.0)):
        acc.update((scan, y))
    result = acc.result()
    np.testing.assert_allclose(result.values, [0.0, 0.1, 0.3])
    np.testing.assert_array_equal(result.mean, [5.0, 3.0, 1.0])
    np.testing.assert_array_equal(result.counts, [1, 2, 1])
    assert acc.dropped == 1
    empty = BinnedMean().result()
    assert empty.values.size == 0 and empty.mean.shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        acc.update((0.0, np.ones(2)))


def test_merge_refuses_another_kind() -> None:
    with pytest.raises(ValueError, match="cannot merge RunningSum into RunningMean"):
        RunningMean().merge(RunningSum())


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([], "no frames"),
        ([b"\xc1"], "unreadable header"),
        ([msgpack.packb({"version": 99, "kind": "latest"})], "version"),
        (
            [msgpack.packb({"version": 1, "kind": "pickle", "state": {}, "arrays": []})],
            "unknown kind",
        ),
        (
            [
                msgpack.packb(
                    {"version": 1, "kind": "latest", "state": {"key": 1.0}, "arrays": [["|O", [1]]]}
                ),
                b"\0" * 8,
            ],
            "refusing array",
        ),
        (
            [
                msgpack.packb(
                    {
                        "version": 1,
                        "kind": "latest",
                        "state": {"key": 1.0},
                        "arrays": [["<f8", [2]]],
                    }
                ),
                b"\0" * 8,
            ],
            "8 bytes",
        ),
        (
            [
                msgpack.packb(
                    {
                        "version": 1,
                        "kind": "latest",
                        "state": {"key": 1.0},
                        "arrays": [["<f8", [1]]],
                    }
                )
            ],
            "1 arrays announced, 0 sent",
        ),
        (
            [msgpack.packb({"version": 1, "kind": "mean_n", "state": {}, "arrays": []})],
            "bad mean_n state",
        ),
    ],
)
def test_decode_rejects_bad_frames(frames: list[bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_state(frames)


def test_no_pickle_anywhere_in_the_library() -> None:
    root = Path(__file__).resolve().parents[2] / "ami"
    uses_pickle = re.compile(r"^\s*(import|from)\s+(c?pickle|dill|cloudpickle)\b|\bpickle\.", re.M)
    for folder in ("ops", "expr"):
        for source in (root / folder).glob("*.py"):
            assert not uses_pickle.search(source.read_text()), source
