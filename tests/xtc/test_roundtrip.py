"""Write -> read round trips for random detector descriptions, and writer edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daq.xtc import (
    Alg,
    Damage,
    DataType,
    Decoder,
    Dgram,
    Field,
    Names,
    NamesBlock,
    ParentBlock,
    ShapesDataBlock,
    TransitionId,
    event_src,
    iter_dgrams,
    make_dgram,
    segment_src,
)
from daq.xtc._types import NUMPY_DTYPE
from daq.xtc._validate import Report, _check_contents

NUMERIC = [t for t in DataType if t not in (DataType.CHARSTR, DataType.ENUMVAL,
                                            DataType.ENUMDICT)]
names_text = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
                     min_size=1, max_size=12)


@st.composite
def field_and_value(draw: st.DrawFn, name: str) -> tuple[Field, object]:
    kind = draw(st.sampled_from(["scalar", "array", "charstr", "enumval", "enumdict"]))
    if kind == "charstr":
        text = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
        return Field(name, DataType.CHARSTR, 1), text
    if kind in ("enumval", "enumdict"):
        t = DataType.ENUMVAL if kind == "enumval" else DataType.ENUMDICT
        return Field(f"{name}:MyEnum", t), draw(st.integers(-(2**31), 2**31 - 1))
    t = draw(st.sampled_from(NUMERIC))
    dtype = NUMPY_DTYPE[t]
    if kind == "scalar":
        arr = draw_array(draw, dtype, ())
        return Field(name, t), arr[()]
    rank = draw(st.integers(1, 5))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=rank, max_size=rank)))
    return Field(name, t, rank), draw_array(draw, dtype, shape)


def draw_array(draw: st.DrawFn, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape)) if shape else 1
    raw = draw(st.binary(min_size=n * dtype.itemsize, max_size=n * dtype.itemsize))
    return np.frombuffer(raw, dtype).reshape(shape).copy()


@st.composite
def detector(draw: st.DrawFn, node: int, index: int) -> tuple[Names, dict[str, object]]:
    fnames = draw(st.lists(names_text, min_size=1, max_size=6, unique=True))
    pairs = [draw(field_and_value(n)) for n in fnames]
    names = Names.create(draw(names_text), draw(names_text), [f for f, _ in pairs],
                         node_id=node, index=index, det_id=draw(names_text),
                         alg=Alg.of(draw(names_text), *draw(st.tuples(
                             st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)))),
                         segment=draw(st.integers(0, 2**32 - 1)))
    return names, {f.name: v for f, v in pairs}


def same(a: object, b: object, f: Field) -> None:
    if f.type is DataType.CHARSTR:
        assert a == b
    elif f.rank:
        assert isinstance(b, np.ndarray) and b.shape == np.shape(a)
        assert b.tobytes() == np.asarray(a).tobytes()
    else:
        dtype = NUMPY_DTYPE[f.type]
        assert np.asarray(a, dtype=dtype).tobytes() == np.asarray(b, dtype=dtype).tobytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_detectors_round_trip(data: st.DataObject) -> None:
    dets = [data.draw(detector(node, i)) for node in (1, 2) for i in range(data.draw(
        st.integers(1, 3)))]
    by_node: dict[int, list] = {}
    for names, values in dets:
        by_node.setdefault(names.node_id, []).append((names, values))
    config = make_dgram(TransitionId.Configure, 5, 0, [
        ParentBlock(segment_src(n), [NamesBlock(nm) for nm, _ in d]) for n, d in by_node.items()],
        root_src=event_src(3))
    event = make_dgram(TransitionId.L1Accept, 5, 1, [
        ParentBlock(segment_src(n), [ShapesDataBlock(nm, v) for nm, v in d])
        for n, d in by_node.items()], root_src=event_src(3))
    buf = config.tobytes() + event.tobytes()
    dgrams = list(iter_dgrams(buf))
    assert [d.size for d in dgrams] == [config.size, event.size]
    decoder = Decoder()
    decoder.decode(dgrams[0])
    for names, _ in dets:
        assert decoder.lookup[names.names_id] == names
    ev = decoder.decode(dgrams[1])
    assert len(ev.items) == len(dets)
    for item, (names, values) in zip(ev.items, [x for d in by_node.values() for x in d],
                                     strict=True):
        assert item.names == names and item.node == names.node_id
        for f in names.fields:
            same(values[f.name], item.values[f.name], f)
    report = Report("<mem>")
    checker = Decoder()
    for d in dgrams:
        _check_contents(report, d, checker)
    assert report.ok, report.problems


def test_pack_into_equals_tobytes() -> None:
    names = Names.create("cam", "opal", [Field("image", DataType.UINT16, 2)], node_id=1, index=0)
    img = np.arange(512 * 512, dtype=np.uint16).reshape(512, 512)
    enc = make_dgram(TransitionId.L1Accept, 1, 2, [ShapesDataBlock(names, {"image": img})])
    target = bytearray(enc.size + 10)
    assert enc.pack_into(target, 10) == enc.size
    assert bytes(target[10:]) == enc.tobytes()
    # the big array was referenced, not copied, until packing
    assert any(isinstance(p, memoryview) and p.nbytes == img.nbytes for p in enc.parts)


def test_dtype_conversion_and_errors() -> None:
    names = Names.create("d", "t", [Field("a", DataType.FLOAT, 1), Field("s", DataType.UINT8)],
                         node_id=0, index=0)
    sd = ShapesDataBlock(names, {"a": [1, 2, 3], "s": 7})
    assert sd.size == 12 + 12 + 20 + 12 + 12 + 1
    with pytest.raises(ValueError, match="rank 1"):
        ShapesDataBlock(names, {"a": np.zeros((2, 2)), "s": 1})
    with pytest.raises(ValueError, match="cannot store 300 as UINT8"):
        ShapesDataBlock(names, {"a": [1.0], "s": 300})
    with pytest.raises(ValueError, match="no value for field"):
        ShapesDataBlock(names, {"a": [1.0]})
    with pytest.raises(ValueError, match="unknown field"):
        ShapesDataBlock(names, {"a": [1.0], "s": 1, "zz": 2})
    with pytest.raises(ValueError, match="must match"):
        Names.create("bad name", "t", [], node_id=0, index=0)
    with pytest.raises(ValueError, match="CHARSTR is always rank 1"):
        Field("x", DataType.CHARSTR, 0)
    with pytest.raises(ValueError, match="12 bits"):
        Names.create("d", "t", [], node_id=5000, index=0)


def test_non_contiguous_arrays_are_written_correctly() -> None:
    names = Names.create("d", "t", [Field("a", DataType.INT32, 2)], node_id=0, index=0)
    base = np.arange(10000, dtype=np.int32).reshape(100, 100)
    view = base[::2, 1::3]
    cfg = make_dgram(TransitionId.Configure, 0, 0, [NamesBlock(names)])
    ev = make_dgram(TransitionId.L1Accept, 0, 1, [ShapesDataBlock(names, {"a": view})])
    d = Decoder()
    dg = list(iter_dgrams(cfg.tobytes() + ev.tobytes()))
    d.decode(dg[0])
    np.testing.assert_array_equal(d.decode(dg[1]).get("d", "a"), view)


def test_damage_and_env_round_trip() -> None:
    enc = make_dgram(TransitionId.L1Accept, 10, 20, [ParentBlock(
        segment_src(4), [], damage=int(Damage.DroppedContribution))],
        damage=int(Damage.DroppedContribution), readout_groups=0b101, trigger_bits=3,
        root_src=event_src(1))
    dg = Dgram(enc.tobytes())
    assert dg.damage == Damage.DroppedContribution and dg.readout_groups == 0b101
    assert (dg.env >> 16) & 0xFF == 3 and dg.timestamp == (10 << 32) | 20
    ev = Decoder().decode(dg)
    assert ev.nodes == {4: int(Damage.DroppedContribution)}


def test_template_encodes_like_the_generic_writer() -> None:
    from daq.xtc import DgramTemplate

    tn = Names.create("timing", "timing", [Field("pulseId", DataType.UINT64),
                                            Field("codes", DataType.UINT8, 1)], node_id=1, index=0)
    wn = Names.create("acq", "acqiris", [Field("wf", DataType.INT16, 2),
                                         Field("gain", DataType.FLOAT)], node_id=2, index=0)
    tmpl = DgramTemplate(TransitionId.L1Accept, [
        (segment_src(1), [(tn, {"codes": (16,)})]),
        (segment_src(2), [(wn, {"wf": (2, 100)})])], root_src=event_src(4), readout_groups=1)
    bound = tmpl.bind()
    rng = np.random.default_rng(1)
    for pid in range(3):
        codes = rng.integers(0, 2, 16).astype(np.uint8)
        wf = rng.integers(-1000, 1000, (2, 100)).astype(np.int16)
        bound.set_time(7, pid)
        bound.fill(tn, {"pulseId": 1000 + pid, "codes": codes})
        bound.array(wn, "wf")[:] = wf
        bound.set(wn, "gain", 0.5)
        generic = make_dgram(TransitionId.L1Accept, 7, pid, [
            ParentBlock(segment_src(1), [ShapesDataBlock(tn, {"pulseId": 1000 + pid,
                                                              "codes": codes})]),
            ParentBlock(segment_src(2), [ShapesDataBlock(wn, {"wf": wf, "gain": 0.5})])],
            root_src=event_src(4), readout_groups=1)
        assert bound.tobytes() == generic.tobytes()
    bound.set_damage(int(Damage.DroppedContribution), [0, int(Damage.DroppedContribution)])
    dg = Dgram(bound.tobytes())
    assert dg.damage == Damage.DroppedContribution
    with pytest.raises(ValueError, match="CHARSTR"):
        DgramTemplate(TransitionId.L1Accept, [(segment_src(1), [(Names.create(
            "s", "t", [Field("txt", DataType.CHARSTR, 1)], node_id=1, index=3), {})])])
