"""The constants store: layout, lookup rules, formats, HISTORY, errors, diff."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from calib import (
    CalibError,
    CalibStore,
    RunRange,
    StatusBit,
    diff_constants,
    format_text_array,
    parse_text_array,
)

DET = ("cspad", "CxiDs1.0:Cspad.0")


def clock() -> float:
    return 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.fixture
def store(tmp_path: Path) -> CalibStore:
    return CalibStore(tmp_path / "calib", clock=clock, user="tester")


def test_construction_does_no_io(tmp_path: Path) -> None:
    CalibStore(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_layout_and_round_trip_in_both_formats(store: CalibStore) -> None:
    peds = np.random.default_rng(0).normal(1000, 30, (4, 5, 6)).astype(np.float32)
    p_text = store.deploy(*DET, "pedestals", peds, runs=(1, None))
    p_npy = store.deploy(*DET, "pixel_rms", peds, runs=(3, 9), fmt="npy")
    assert p_text == store.root / "cspad" / "CxiDs1.0:Cspad.0" / "pedestals" / "1-end.data"
    assert p_npy.name == "3-9.npy"
    for ctype in ("pedestals", "pixel_rms"):
        got = store.load(*DET, ctype, 5, expected_shape=(4, 5, 6))
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, peds)
    # the psana layout: rows x last dimension
    rows = [ln for ln in p_text.read_text().splitlines() if not ln.startswith("#")]
    assert len(rows) == 20 and all(len(r.split()) == 6 for r in rows)


def test_status_keeps_uint64_bits(store: CalibStore) -> None:
    status = np.zeros((3, 4), np.uint64)
    status[0, 0] = np.uint64(1 << 63) | np.uint64(StatusBit.HOT)
    store.deploy(*DET, "pixel_status", status)
    got = store.load(*DET, "pixel_status", 0)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, status)


def test_lookup_newest_start_wins(store: CalibStore) -> None:
    for runs, value in [((1, None), 1.0), ((5, None), 2.0), ((8, 10), 3.0), ((5, 6), 4.0)]:
        store.deploy(*DET, "pedestals", np.full(2, value), runs=runs)
    expect = {0: None, 1: 1.0, 4: 1.0, 5: 4.0, 6: 4.0, 7: 2.0, 8: 3.0, 10: 3.0, 11: 2.0, 999: 2.0}
    for run, value in expect.items():
        got = store.load(*DET, "pedestals", run)
        assert (got is None and value is None) or got[0] == value, run


def test_same_range_in_both_formats_prefers_npy(store: CalibStore) -> None:
    folder = store.folder(*DET, "pedestals")
    folder.mkdir(parents=True)
    (folder / "2-end.data").write_text("1 1\n")
    np.save(folder / "2-end.npy", np.array([2.0, 2.0]))
    assert store.find(*DET, "pedestals", 3) == folder / "2-end.npy"


def test_deploy_replaces_the_other_format_and_logs(store: CalibStore) -> None:
    store.deploy(*DET, "pedestals", np.ones(3), runs=(2, None), source="dark r0002")
    store.deploy(*DET, "pedestals", np.zeros(3), runs=(2, None), fmt="npy", source="dark r0003")
    folder = store.folder(*DET, "pedestals")
    assert sorted(p.name for p in folder.iterdir()) == ["2-end.npy", "HISTORY"]
    history = store.history(*DET, "pedestals")
    assert len(history) == 2
    assert history[0] == (
        "2023-11-14T22:13:20+00:00  user: tester  file: 2-end.data  source: dark r0002"
    )
    assert "file: 2-end.npy" in history[1] and "replaces 2-end.data" in history[1]


def test_missing_constants_are_none_or_a_clear_error(store: CalibStore) -> None:
    assert store.find(*DET, "pedestals", 1) is None
    assert store.load(*DET, "pedestals", 1) is None
    with pytest.raises(CalibError, match=r"no pedestals for cspad/CxiDs1.0:Cspad.0 run 1 .*none"):
        store.require(*DET, "pedestals", 1)
    store.deploy(*DET, "pedestals", np.ones(2), runs=(5, 7))
    with pytest.raises(CalibError, match=r"run 9 .*cover runs 5-7"):
        store.require(*DET, "pedestals", 9)


def test_shape_mismatch_names_file_and_shapes(store: CalibStore) -> None:
    path = store.deploy(*DET, "pedestals", np.zeros((2, 3)))
    with pytest.raises(CalibError) as err:
        store.load(*DET, "pedestals", 0, expected_shape=(32, 185, 388))
    msg = str(err.value)
    assert str(path) in msg and "(2, 3)" in msg and "(32, 185, 388)" in msg


def test_plain_psana_file_without_header(store: CalibStore) -> None:
    folder = store.folder(*DET, "pedestals")
    folder.mkdir(parents=True)
    table = np.arange(24, dtype=float).reshape(6, 4)  # (2, 3, 4) flattened as psana does
    np.savetxt(folder / "1-end.data", table, fmt="%.3f")
    got = store.load(*DET, "pedestals", 1, expected_shape=(2, 3, 4))
    np.testing.assert_array_equal(got, table.reshape(2, 3, 4))
    with pytest.raises(CalibError, match=r"1-end.data: expected shape \(5, 5\).*6 x 4"):
        store.load(*DET, "pedestals", 1, expected_shape=(5, 5))
    assert store.load(*DET, "pedestals", 1).shape == (6, 4)


def test_common_mode_parameters_as_psana_writes_them(store: CalibStore) -> None:
    folder = store.folder(*DET, "common_mode")
    folder.mkdir(parents=True)
    (folder / "0-end.data").write_text("7 1 100 10\n")
    np.testing.assert_array_equal(store.load(*DET, "common_mode", 3), [7, 1, 100, 10])


def test_bad_run_range_in_a_filename(store: CalibStore) -> None:
    folder = store.folder(*DET, "pedestals")
    folder.mkdir(parents=True)
    (folder / "HISTORY").write_text("not a constants file\n")
    (folder / "notes.txt").write_text("ignored\n")
    (folder / "7-x.data").write_text("1\n")
    with pytest.raises(CalibError, match=r"pedestals/7-x.data: cannot parse run range '7-x'"):
        store.find(*DET, "pedestals", 7)
    (folder / "7-x.data").rename(folder / "9-3.data")
    with pytest.raises(CalibError, match=r"9-3.data: cannot parse run range"):
        store.find(*DET, "pedestals", 7)


def test_run_range_parse_and_validate() -> None:
    assert RunRange.parse("5-end") == RunRange(5, None)
    assert str(RunRange(5, 20)) == "5-20"
    assert RunRange(5, None).covers(10**6) and not RunRange(5, 6).covers(7)
    for bad in ("5", "a-end", "-3-4", "4-2"):
        with pytest.raises(CalibError):
            RunRange.parse(bad, "x")


def test_geometry_is_text(store: CalibStore) -> None:
    text = "# geometry\nIP 0 EPIX100A 0 0 0 0 0 0 0 0 0 0\n"
    store.deploy("epix100", "epix_1", "geometry", text)
    assert store.load("epix100", "epix_1", "geometry", 4) == text
    geo = store.geometry("epix100", "epix_1", 4)
    assert geo is not None and geo.shape == (1, 704, 768)
    assert store.geometry("epix100", "other", 4) is None
    with pytest.raises(CalibError):
        store.deploy("epix100", "epix_1", "geometry", text, fmt="npy")


def test_list_and_bad_names(store: CalibStore) -> None:
    store.deploy(*DET, "pedestals", np.ones(2), runs=(1, None))
    store.deploy(*DET, "pixel_status", np.zeros(2, np.uint64), runs=(3, 4))
    store.deploy("epix100", "e1", "pedestals", np.ones(2))
    assert [(e.det_type, e.ctype, str(e.runs)) for e in store.list()] == [
        ("cspad", "pedestals", "1-end"), ("cspad", "pixel_status", "3-4"),
        ("epix100", "pedestals", "0-end"),
    ]
    assert len(store.list("cspad")) == 2 and store.list("nope") == []
    for bad in ("", "..", "a/b"):
        with pytest.raises(CalibError):
            store.folder(bad, "x", "pedestals")


def test_diff_constants_values_and_status_bits() -> None:
    a = np.zeros((3, 3))
    b = a.copy()
    b[0, 0], b[2, 2] = 0.5, -2.0
    d = diff_constants(a, b, atol=0.1)
    assert (d.n_diff, d.max_abs_diff) == (2, 2.0)
    assert "2 of 9 pixels differ" in d.summary()
    s0 = np.zeros(4, np.uint64)
    s1 = np.array([StatusBit.HOT, StatusBit.HOT | StatusBit.DEAD, 0, 0], np.uint64)
    s0[3] = StatusBit.NOISY
    d = diff_constants(s0, s1)
    assert d.bits_set == {"HOT": 2, "DEAD": 1} and d.bits_cleared == {"NOISY": 1}
    assert d.n_diff == 3
    with pytest.raises(CalibError):
        diff_constants(a, np.zeros(2))


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.int16, np.uint16, np.uint64, np.int64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5),
        elements={"allow_nan": False, "allow_infinity": False},
    )
)
def test_text_arrays_round_trip_exactly(arr: np.ndarray) -> None:
    got = parse_text_array(format_text_array(arr), "t")
    assert got.dtype == arr.dtype and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)


def test_text_array_errors() -> None:
    with pytest.raises(CalibError, match="no constant values"):
        parse_text_array("# shape 2 dtype float32\n", "f.data")
    with pytest.raises(CalibError, match=r"f.data: header says shape \(3,\)"):
        parse_text_array("# shape 3 dtype float32\n1 2\n", "f.data")
    with pytest.raises(CalibError, match=r"f\.data: cannot parse"):
        parse_text_array("1 2\n3\n", "f.data")
