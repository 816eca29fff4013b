"""Recording streams: chunk switching, small data offsets, inline small contributions, names."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from daq.xtc import (
    DataType,
    Decoder,
    Dgram,
    Field,
    Names,
    NamesBlock,
    ParentBlock,
    ShapesDataBlock,
    TransitionId,
    XtcFileReader,
    event_src,
    make_dgram,
    read_dgrams,
    segment_src,
)
from daq.xtc._files import chunk_name, parse_name, run_streams, smd_name
from daq.xtc._smd import SmdIndex
from daq.xtc._stream import StreamWriter
from daq.xtc._validate import validate_file

SMALL = Names.create("gasdet", "bld", [Field("energy", DataType.DOUBLE)], node_id=1, index=0)
BIG = Names.create("cam", "opal", [Field("image", DataType.UINT16, 2)], node_id=2, index=0)


def dg(service: TransitionId, t: int, blocks_by_node: dict[int, list]) -> Dgram:
    enc = make_dgram(service, 100, t, [ParentBlock(segment_src(n), b)
                                       for n, b in blocks_by_node.items()],
                     root_src=event_src(0))
    return Dgram(enc.tobytes())


def record(root: Path, n_events: int, chunk_bytes: int, steps: int = 3) -> StreamWriter:
    w = StreamWriter(root, "xpp123", 7, 2, chunk_bytes=chunk_bytes, inline_limit=1024)
    t = 0

    def nxt() -> int:
        nonlocal t
        t += 1
        return t

    with w:
        w.write(dg(TransitionId.Configure, nxt(), {1: [NamesBlock(SMALL)],
                                                    2: [NamesBlock(BIG)]}))
        w.write(dg(TransitionId.BeginRun, nxt(), {}))
        k = 0
        for _ in range(steps):
            w.write(dg(TransitionId.BeginStep, nxt(), {}))
            w.write(dg(TransitionId.Enable, nxt(), {}))
            for _ in range(n_events):
                img = np.full((64, 64), k, np.uint16)
                w.write(dg(TransitionId.L1Accept, nxt(), {
                    1: [ShapesDataBlock(SMALL, {"energy": k * 0.5})],
                    2: [ShapesDataBlock(BIG, {"image": img})]}))
                k += 1
            w.write(dg(TransitionId.Disable, nxt(), {}))
            w.write(dg(TransitionId.EndStep, nxt(), {}))
        w.write(dg(TransitionId.EndRun, nxt(), {}))
    return w


def test_chunks_smd_and_validation(tmp_path: Path) -> None:
    w = record(tmp_path, n_events=10, chunk_bytes=50_000)
    streams = run_streams(tmp_path, "xpp123", 7)
    chunks = streams[2]
    assert [parse_name(p).chunk for p in chunks] == [0, 1, 2]  # type: ignore[union-attr]
    assert w.chunk == 2 and chunks == [*w.closed_chunks, w.big_path]
    assert not list(tmp_path.rglob("*.inprogress"))
    # chunk 000 alone starts with the Configure; later ones validate with its Names
    assert validate_file(chunks[0]).ok
    for c in chunks[1:]:
        first = next(iter(read_dgrams(c)))
        assert first.service == TransitionId.L1Accept
        rep = validate_file(c, config=chunks[0])
        assert rep.ok, rep.problems
    smd = w.smd_path
    assert smd.name == smd_name("xpp123", 7, 2) and smd.parent.name == "smalldata"
    rep = validate_file(smd)
    assert rep.ok, rep.problems
    with XtcFileReader(smd) as r:
        index = SmdIndex.from_dgrams(r)
    assert len(index) == 30
    assert sorted({e.chunk for e in index.entries}) == [0, 1, 2]
    # every entry points at the right big dgram, found by timestamp
    decoders = {}
    for k, entry in enumerate(index.entries):
        found = index.find(entry.timestamp)
        assert found == entry
        with open(chunks[entry.chunk], "rb") as fh:
            fh.seek(entry.offset)
            raw = fh.read(entry.size)
        big = Dgram(raw)
        assert big.timestamp == entry.timestamp
        dec = decoders.setdefault(0, Decoder())
        if not dec.lookup:
            dec.lookup.add_configure(next(iter(read_dgrams(chunks[0]))))
        assert int(dec.decode(big).get("cam", "image")[0, 0]) == k
    assert index.find(12345) is None


def test_small_contributions_are_inline_in_smd(tmp_path: Path) -> None:
    w = record(tmp_path, n_events=3, chunk_bytes=1 << 30, steps=1)
    decoder = Decoder()
    energies = []
    for d in read_dgrams(w.smd_path):
        ev = decoder.decode(d)
        if d.service == TransitionId.L1Accept:
            assert ev.get("cam", "image") is None  # 8 kB: stays in the big file
            energies.append(float(ev.get("gasdet", "energy")))
            assert ev.get("smdinfo", "intDgramSize") > 8192
    assert energies == [0.0, 0.5, 1.0]


def test_incomplete_run_keeps_inprogress_names(tmp_path: Path) -> None:
    w = StreamWriter(tmp_path, "xpp123", 1, 0)
    w.open()
    w.write(dg(TransitionId.Configure, 1, {1: [NamesBlock(SMALL)]}))
    w.close(complete=False)
    names = sorted(p.name for p in tmp_path.rglob("*.xtc2*"))
    assert names == sorted([chunk_name("xpp123", 1, 0, 0) + ".inprogress",
                            smd_name("xpp123", 1, 0) + ".inprogress"])
    assert run_streams(tmp_path, "xpp123", 1) == {}
    assert run_streams(tmp_path, "xpp123", 1, include_inprogress=True)


def test_refuses_to_overwrite_a_recorded_run(tmp_path: Path) -> None:
    record(tmp_path, n_events=1, chunk_bytes=1 << 30, steps=1)
    with pytest.raises(FileExistsError, match="recorded before"):
        StreamWriter(tmp_path, "xpp123", 7, 2).open()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_root_gives_clear_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(OSError, match="cannot create data folder"):
        StreamWriter(ro, "x", 1, 0).open()


def test_unwritable_root_as_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot create data folder"):
        StreamWriter(blocker, "x", 1, 0).open()


def test_file_names() -> None:
    assert chunk_name("xpp123", 7, 2, 11) == "xpp123-r0007-s002-c011.xtc2"
    info = parse_name("/a/b/xpp123-r0007-s002-c000.smd.xtc2.inprogress")
    assert info is not None and info.smd and info.inprogress and info.run == 7
    assert parse_name("foo.xtc2") is None
    with pytest.raises(ValueError, match="experiment name"):
        chunk_name("../evil", 1, 0, 0)
