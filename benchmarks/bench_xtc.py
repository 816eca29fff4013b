"""XTC2 library: header scan, full decode, big and small event writes, zero-copy big reads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from daq.xtc import (
    Alg,
    DataType,
    Decoder,
    Dgram,
    DgramTemplate,
    Field,
    Names,
    NamesBlock,
    ParentBlock,
    ShapesDataBlock,
    TransitionId,
    XtcFileReader,
    event_src,
    make_dgram,
    segment_src,
)
from daq.xtc._stream import StreamWriter

from ._common import Result, best_rate, scratch

SUITE = "xtc"
CSPAD_SHAPE = (32, 185, 388)


def _timing_names(node: int) -> Names:
    return Names.create("timing", "timing", [
        Field("pulseId", DataType.UINT64), Field("fiducial", DataType.UINT32),
        Field("eventCodes", DataType.UINT8, 1)], node_id=node, index=0)


def _small_layout() -> tuple[DgramTemplate, Names, Names]:
    """~1 kB event: timing + a 4 x 110 int16 waveform from one node, as a built event."""
    tn = _timing_names(1)
    wn = Names.create("acq", "acqiris", [Field("waveforms", DataType.INT16, 2)],
                      node_id=1, index=1, alg=Alg.of("raw", 1, 0, 0))
    tmpl = DgramTemplate(TransitionId.L1Accept, [
        (segment_src(1), [(tn, {"eventCodes": (32,)}), (wn, {"waveforms": (4, 110)})])],
        root_src=event_src(0), readout_groups=1)
    return tmpl, tn, wn


def _configure(names: list[Names]) -> Dgram:
    return Dgram(make_dgram(TransitionId.Configure, 1, 0,
                            [ParentBlock(segment_src(1), [NamesBlock(n) for n in names])],
                            root_src=event_src(0)).tobytes())


def write_small_template(path: Path, n: int) -> int:
    """Template encoding + buffered appends: the recorder's raw write path."""
    tmpl, tn, wn = _small_layout()
    bound = tmpl.bind()
    wf = np.zeros((4, 110), np.int16)
    codes = np.zeros(32, np.uint8)
    arr_wf = bound.array(wn, "waveforms")
    arr_codes = bound.array(tn, "eventCodes")
    with open(path, "wb", buffering=1 << 20) as fh:
        write = fh.write
        set_time, set_ = bound.set_time, bound.set
        view = bound.view
        for i in range(n):
            set_time(1000, i)
            set_(tn, "pulseId", i)
            set_(tn, "fiducial", i % 131041)
            arr_codes[:] = codes
            arr_wf[:] = wf
            write(view)
    return n


def write_small_generic(path: Path, n: int) -> int:
    """The general writer (ShapesDataBlock per detector per event)."""
    _tmpl, tn, wn = _small_layout()
    wf = np.zeros((4, 110), np.int16)
    codes = np.zeros(32, np.uint8)
    seg = segment_src(1)
    root = event_src(0)
    with open(path, "wb", buffering=1 << 20) as fh:
        for i in range(n):
            enc = make_dgram(TransitionId.L1Accept, 1000, i, [ParentBlock(seg, [
                ShapesDataBlock(tn, (i, i % 131041, codes)),
                ShapesDataBlock(wn, (wf,))])], root_src=root)
            for p in enc.parts:
                fh.write(p)
    return n


def record_small_stream(root: Path, n: int) -> int:
    """Template encoding through the StreamWriter: big file + small data with inline copies."""
    tmpl, tn, wn = _small_layout()
    bound = tmpl.bind()
    cfg = _configure([tn, wn])
    with StreamWriter(root, "bench", 1, 0, inline_limit=0) as w:
        w.write(cfg)
        w.write(Dgram(make_dgram(TransitionId.BeginRun, 1000, 0, root_src=event_src(0))
                      .tobytes()))
        w.write(Dgram(make_dgram(TransitionId.BeginStep, 1000, 0, root_src=event_src(0))
                      .tobytes()))
        w.write(Dgram(make_dgram(TransitionId.Enable, 1000, 0, root_src=event_src(0))
                      .tobytes()))
        buf = bound.buffer
        for i in range(n):
            bound.set_time(1000, i + 1)
            bound.set(tn, "pulseId", i)
            w.write(Dgram(buf))
    return n


def write_cspad(path: Path, n: int) -> int:
    """Big events: 4.6 MB CSPAD arrays referenced (not copied) down to os.writev."""
    names = Names.create("cspad", "cspad", [Field("raw", DataType.INT16, 3)], node_id=2,
                         index=0)
    tn = _timing_names(1)
    frames = [np.full(CSPAD_SHAPE, k, np.int16) for k in range(4)]
    codes = np.zeros(32, np.uint8)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        cfg = make_dgram(TransitionId.Configure, 1, 0, [
            ParentBlock(segment_src(1), [NamesBlock(tn)]),
            ParentBlock(segment_src(2), [NamesBlock(names)])], root_src=event_src(0))
        cfg.write_to(fd)
        for i in range(n):
            enc = make_dgram(TransitionId.L1Accept, 1000, i + 1, [
                ParentBlock(segment_src(1), [ShapesDataBlock(tn, (i, i, codes))]),
                ParentBlock(segment_src(2), [ShapesDataBlock(names, (frames[i % 4],))])],
                root_src=event_src(0))
            enc.write_to(fd)
    finally:
        os.close(fd)
    return n


def read_cspad(path: Path) -> tuple[int, int]:
    """Read + decode every event, getting the CSPAD array as a zero-copy view."""
    decoder = Decoder()
    n = nbytes = 0
    with XtcFileReader(path) as r:
        for dg in r:
            ev = decoder.decode(dg)
            if dg.service == TransitionId.L1Accept:
                arr = ev.items[1].values["raw"]
                nbytes += dg.size
                n += int(arr.shape[0] == 32)
    return n, nbytes


def scan(path: Path) -> int:
    n = 0
    with XtcFileReader(path) as r:
        for _ in r:
            n += 1
    return n


def basic_like_events(n: int) -> tuple[Dgram, list[Dgram]]:
    """Events shaped like the reference basic.xtc2 L1Accept: hsd raw + fex + cspad raw, two
    segments, 11 enum/string/scalar fields."""
    enum = [Field("enumFex1:MyEnumName", DataType.ENUMVAL),
            Field("HighGain:MyEnumName", DataType.ENUMDICT)]
    per_segment = []
    names_all = []
    for seg in range(2):
        raw = Names.create("xpphsd", "hsd", [
            Field("floatPgp", DataType.DOUBLE), Field("array0Pgp", DataType.FLOAT, 2),
            Field("intPgp", DataType.INT64), Field("array1Pgp", DataType.FLOAT, 2)],
            node_id=1, index=3 * seg, segment=seg)
        fex = Names.create("xpphsd", "hsd", [
            Field("floatFex", DataType.DOUBLE), Field("arrayFex", DataType.FLOAT, 2),
            Field("intFex", DataType.INT64), Field("charStrFex", DataType.CHARSTR, 1), *enum],
            node_id=1, index=3 * seg + 1, segment=seg, alg=Alg.of("fex", 4, 5, 6))
        cs = Names.create("xppcspad", "cspad", [Field("arrayRaw", DataType.UINT16, 2)],
                          node_id=1, index=3 * seg + 2, segment=seg)
        names_all += [raw, fex, cs]
        per_segment += [
            ShapesDataBlock(raw, (1.0, np.zeros((3, 3), np.float32), 2,
                                  np.full((3, 3), 2, np.float32))),
            ShapesDataBlock(fex, (41.0, np.zeros((2, 3), np.float32), 42, "Test String", -2,
                                  -2)),
            ShapesDataBlock(cs, (np.arange(18, dtype=np.uint16).reshape(3, 6),))]
    cfg = Dgram(make_dgram(TransitionId.Configure, 1, 0,
                           [NamesBlock(x) for x in names_all]).tobytes())
    one = make_dgram(TransitionId.L1Accept, 1, 4, per_segment).tobytes()
    buf = one * n
    return cfg, [Dgram(buf, k * len(one)) for k in range(n)]


def run(quick: bool = False) -> list[Result]:
    n_small = 20_000 if quick else 1_000_000
    n_cspad = 4 if quick else 150
    n_decode = 2_000 if quick else 100_000
    out: list[Result] = []
    with scratch("bench-xtc-") as d:
        small = d / "small.xtc2"
        rate = best_rate(lambda: write_small_template(small, n_small), 1 if quick else 3)
        size = small.stat().st_size / n_small
        out.append(Result(SUITE, f"write ~1 kB events, fixed-layout encoder ({size:.0f} B)",
                          rate, "dgram/s", 200_000))
        out.append(Result(SUITE, "write ~1 kB events, general encoder",
                          best_rate(lambda: write_small_generic(d / "g.xtc2", n_small // 5), 1),
                          "dgram/s"))
        k = [0]

        def stream() -> int:
            k[0] += 1
            return record_small_stream(d / f"rec{k[0]}", n_small // 5)

        out.append(Result(SUITE, "record ~1 kB events with small data (StreamWriter)",
                          best_rate(stream, 1), "dgram/s"))
        out.append(Result(SUITE, "header-only scan of the small-event file",
                          best_rate(lambda: scan(small), 1 if quick else 3), "dgram/s"))
        small.unlink()
        cfg, events = basic_like_events(n_decode)

        def decode_all() -> int:
            dec = Decoder()
            dec.decode(cfg)
            for ev in events:
                dec.decode(ev)
            return len(events)

        out.append(Result(SUITE, "full decode of basic-like events (6 ShapesData)",
                          best_rate(decode_all, 1 if quick else 3), "dgram/s"))
        big = d / "cspad.xtc2"
        ev_bytes = int(np.prod(CSPAD_SHAPE)) * 2
        wrate = best_rate(lambda: write_cspad(big, n_cspad), 1 if quick else 3)
        out.append(Result(SUITE, "write 4.6 MB CSPAD events to the page cache",
                          wrate * ev_bytes / 1e9, "GB/s", 1.5))
        best = 0.0
        for _ in range(1 if quick else 3):
            import time

            t0 = time.perf_counter()
            _n, nbytes = read_cspad(big)
            best = max(best, nbytes / (time.perf_counter() - t0) / 1e9)
        out.append(Result(SUITE, "read + decode CSPAD events, zero-copy arrays", best,
                          "GB/s", 2.0))
    return out
