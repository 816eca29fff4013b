"""Malformed input: one documented error type, with file and offset; no crash, hang or huge
allocation; a fuzz test over mutations of the reference vectors."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daq.xtc import (
    DataType,
    Decoder,
    Dgram,
    Field,
    Names,
    NamesBlock,
    ShapesDataBlock,
    TransitionId,
    XtcError,
    XtcFileReader,
    iter_dgrams,
    make_dgram,
)
from daq.xtc._validate import validate_file

NAMES = Names.create("d", "t", [Field("a", DataType.UINT16, 2), Field("b", DataType.INT32)],
                     node_id=1, index=0)


def sample() -> bytearray:
    cfg = make_dgram(TransitionId.Configure, 1, 0, [NamesBlock(NAMES)])
    ev = make_dgram(TransitionId.L1Accept, 1, 1, [ShapesDataBlock(
        NAMES, {"a": [[1, 2], [3, 4]], "b": 5})])
    return bytearray(cfg.tobytes() + ev.tobytes())


def decode_all(buf: bytes | bytearray) -> None:
    d = Decoder()
    for dg in iter_dgrams(bytes(buf), source="mem"):
        d.decode(dg)


def cfg_len() -> int:
    return make_dgram(TransitionId.Configure, 1, 0, [NamesBlock(NAMES)]).size


def test_rank_above_five_is_refused() -> None:
    buf = sample()
    rank_at = 24 + 12 + 1036 + 520  # first Name's rank field
    struct.pack_into("<I", buf, rank_at, 6)
    with pytest.raises(XtcError, match="rank 6") as info:
        decode_all(buf)
    assert info.value.source == "mem" and info.value.rule == "field-rank"


def test_unknown_type_is_refused() -> None:
    buf = sample()
    struct.pack_into("<I", buf, 24 + 12 + 1036 + 516, 99)
    with pytest.raises(XtcError, match="unknown type 99"):
        decode_all(buf)


def test_shapes_whose_product_overflows_are_refused() -> None:
    buf = sample()
    shapes_at = cfg_len() + 24 + 12 + 12
    struct.pack_into("<5I", buf, shapes_at, 0xFFFFFFFF, 0xFFFFFFFF, 0, 0, 0)
    with pytest.raises(XtcError, match=r"needs .* bytes of Data") as info:
        decode_all(buf)
    assert info.value.rule == "data-size"
    assert info.value.offset == cfg_len() + 24


def test_extent_past_end_of_buffer() -> None:
    buf = sample()
    struct.pack_into("<I", buf, cfg_len() + 20, 1 << 30)
    with pytest.raises(XtcError, match="past the end"):
        decode_all(buf)


def test_huge_extent_in_a_file_is_not_allocated(tmp_path: Path) -> None:
    buf = sample()
    struct.pack_into("<I", buf, cfg_len() + 20, 0xFFFFFFF0)  # claims a 4 GB dgram
    p = tmp_path / "huge.xtc2"
    p.write_bytes(buf)
    with pytest.warns(UserWarning, match="incomplete payload"), XtcFileReader(p) as r:
        got = list(r)
    assert len(got) == 1 and r.truncated == 1
    rep = validate_file(p)
    assert not rep.ok and rep.problems[0].rule == "truncated"


def test_deep_nesting_is_bounded() -> None:
    depth = 200
    payload = b""
    for _ in range(depth):
        payload = struct.pack("<IHHI", 0, 0, 0, 12 + len(payload)) + payload
    head = struct.pack("<IIIIHHI", 0, 1, 0x0C000000, 0, 0, 0, 12 + len(payload))
    with pytest.raises(XtcError, match="nested deeper"):
        Decoder().decode(Dgram(head + payload))


def test_stray_bytes_inside_a_parent() -> None:
    head = struct.pack("<IIIIHHI", 0, 1, 0x0C000000, 0, 0, 0, 12 + 5)
    with pytest.raises(XtcError, match="stray bytes"):
        Decoder().decode(Dgram(head + b"\0" * 5))


VECTORS = ["basic.xtc2", "nested.xtc2", "basic.smd.xtc2"]


@st.composite
def mutation(draw: st.DrawFn, size: int) -> list[tuple[str, int, int]]:
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["byte", "u32", "cut"]))
        ops.append((kind, draw(st.integers(0, size - 1)), draw(st.integers(0, 2**32 - 1))))
    return ops


def apply(buf: bytearray, ops: list[tuple[str, int, int]]) -> bytearray:
    for kind, pos, val in ops:
        if pos >= len(buf):
            continue
        if kind == "byte":
            buf[pos] = val & 0xFF
        elif kind == "u32" and pos + 4 <= len(buf):
            struct.pack_into("<I", buf, pos, val)
        elif kind == "cut":
            del buf[pos:]
            if not buf:
                buf += b"\0"
    return buf


@pytest.mark.parametrize("name", VECTORS)
@settings(max_examples=150, deadline=2000, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_vectors_raise_only_xtc_errors(vectors: Path, tmp_path: Path, name: str,
                                             data: st.DataObject) -> None:
    original = (vectors / name).read_bytes()
    buf = apply(bytearray(original), data.draw(mutation(len(original))))
    p = tmp_path / "fuzz.xtc2"
    p.write_bytes(buf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            decoder = Decoder()
            with XtcFileReader(p) as r:
                for dg in r:
                    decoder.decode(dg)
        except XtcError:
            pass
        report = validate_file(p, check_smd=False)
    assert report.dgrams >= 0
