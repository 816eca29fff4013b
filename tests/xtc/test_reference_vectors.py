"""The reference implementation's files read back exactly as its own reader printed them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from daq.xtc import Decoder, TransitionId, XtcError, XtcTruncatedError, XtcTruncatedWarning
from daq.xtc import read_dgrams as _read_dgrams
from daq.xtc._dump import dgram_lines
from daq.xtc._validate import validate_file

GOOD = ["basic", "steps", "chunk", "node5", "nested", "basic.smd"]


def dump(path: Path) -> list[str]:
    decoder = Decoder()
    lines: list[str] = []
    for i, dg in enumerate(_read_dgrams(path), start=1):
        lines.extend(dgram_lines(i, dg, decoder, detail=True))
    return lines


@pytest.mark.parametrize("stem", GOOD)
def test_dump_matches_reference_line_for_line(vectors: Path, stem: str) -> None:
    ours = dump(vectors / f"{stem}.xtc2")
    ref = (vectors / f"{stem}.dump.txt").read_text().splitlines()
    assert ours == ref


@pytest.mark.parametrize("stem", GOOD)
def test_vectors_are_valid(vectors: Path, stem: str) -> None:
    big = [vectors / "basic.xtc2"] if stem == "basic.smd" else None
    report = validate_file(vectors / f"{stem}.xtc2", big=big)
    assert report.ok, [str(p) for p in report.problems]
    assert report.dgrams > 0


def decoded(path: Path) -> list[tuple[int, int, list[tuple[str, int, str, dict]]]]:
    decoder = Decoder()
    out = []
    for dg in _read_dgrams(path):
        ev = decoder.decode(dg)
        out.append((dg.timestamp, dg.service, [
            (d.det_name, d.segment, d.alg, d.values) for d in ev.items]))
    return out


def assert_same_values(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k])
            assert a[k].dtype == b[k].dtype
        else:
            assert a[k] == b[k]


def test_nested_decodes_like_basic_field_for_field(vectors: Path) -> None:
    basic, nested = decoded(vectors / "basic.xtc2"), decoded(vectors / "nested.xtc2")
    assert len(basic) == len(nested) == 13
    for (ta, sa, ia), (tb, sb, ib) in zip(basic, nested, strict=True):
        assert (ta, sa) == (tb, sb)
        assert [x[:3] for x in ia] == [x[:3] for x in ib]
        for x, y in zip(ia, ib, strict=True):
            assert_same_values(x[3], y[3])


def test_full_values_of_basic(vectors: Path) -> None:
    """Values beyond the dump's first three elements: shapes, dtypes, enums, strings."""
    decoder = Decoder()
    dgrams = list(_read_dgrams(vectors / "basic.xtc2"))
    decoder.decode(dgrams[0])
    ev = decoder.decode(dgrams[4])
    assert ev.transition == TransitionId.L1Accept
    fex = ev.detectors["xpphsd"][0]["fex"]
    assert fex["arrayFex"].shape == (2, 3) and fex["arrayFex"].dtype == np.float32
    assert fex["charStrFex"] == "Test String"
    assert fex["enumFex1:MyEnumName"] == -2 and fex["On:MyEnumName2"] == -7
    raw = ev.detectors["xppcspad"][1]["raw"]["arrayRaw"]
    assert raw.shape == (3, 6) and raw.dtype == np.uint16
    np.testing.assert_array_equal(raw.ravel(), np.arange(18))
    begin_run = decoder.decode(dgrams[1])
    assert begin_run.get("runinfo", "expt") == "xpptut15"
    assert begin_run.get("runinfo", "runnum") == 14


def test_arrays_are_zero_copy_views(vectors: Path) -> None:
    decoder = Decoder()
    dgrams = list(_read_dgrams(vectors / "basic.xtc2"))
    decoder.decode(dgrams[0])
    arr = decoder.decode(dgrams[4]).get("xppcspad", "arrayRaw")
    assert arr.base is not None and not arr.flags.owndata
    assert np.shares_memory(arr, np.frombuffer(dgrams[4].buf, np.uint8))


def test_truncated_file_yields_complete_dgrams_then_warns(vectors: Path) -> None:
    from daq.xtc import XtcFileReader

    with pytest.warns(XtcTruncatedWarning, match=r"152/824"), \
            XtcFileReader(vectors / "bad_truncated.xtc2") as r:
        dgrams = list(r)
    assert [d.transition.name for d in dgrams] == [
        "Configure", "BeginRun", "BeginStep", "Enable", "L1Accept"]
    assert r.truncated == 1 and r.tail_offset == 41824


def test_truncated_file_strict_raises(vectors: Path) -> None:
    with pytest.raises(XtcTruncatedError) as info:
        list(_read_dgrams(vectors / "bad_truncated.xtc2", strict=True))
    assert info.value.offset == 41824 and "bad_truncated.xtc2" in str(info.value)


def test_child_extent_too_small(vectors: Path) -> None:
    decoder = Decoder()
    with pytest.raises(XtcError) as info:
        for dg in _read_dgrams(vectors / "bad_child_extent.xtc2"):
            decoder.decode(dg)
    err = info.value
    assert err.rule == "extent-too-small" and err.offset == 41000
    assert "too small extent: 8" in str(err) and "41008" in str(err)


def test_unknown_namesid(vectors: Path) -> None:
    decoder = Decoder()
    with pytest.raises(XtcError) as info:
        for dg in _read_dgrams(vectors / "bad_namesid.xtc2"):
            decoder.decode(dg)
    assert info.value.rule == "unknown-namesid" and info.value.offset == 41000
    assert "0x1ff" in str(info.value)


@pytest.mark.parametrize("stem,rule", [("bad_truncated", "truncated"),
                                       ("bad_child_extent", "extent-too-small"),
                                       ("bad_namesid", "unknown-namesid")])
def test_validator_rejects_damaged_vectors(vectors: Path, stem: str, rule: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = validate_file(vectors / f"{stem}.xtc2")
    assert not report.ok
    assert report.problems[0].rule == rule


def test_names_from_another_files_configure(vectors: Path) -> None:
    """A later chunk has no Configure: its Names come from chunk 000's."""
    dgrams = list(_read_dgrams(vectors / "basic.xtc2"))
    tail = b"".join(bytes(d.memoryview()) for d in dgrams[4:])
    from daq.xtc import NamesLookup, iter_dgrams

    decoder = Decoder(NamesLookup.from_configure(dgrams[0]))
    events = [decoder.decode(d) for d in iter_dgrams(tail)]
    assert events[0].get("xppcspad", "arrayRaw").shape == (3, 6)
    without = Decoder()
    with pytest.raises(XtcError, match="not found"):
        without.decode(next(iter_dgrams(tail)))
