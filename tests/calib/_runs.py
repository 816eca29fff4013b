"""Record simulated runs as real XTC2 files (several streams, as the DAQ writes them)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from daq.sim import AreaDetector
from daq.timing import Shot, TimingConfig, TimingSystem
from daq.xtc import (
    Alg,
    DataType,
    Dgram,
    Field,
    Names,
    NamesBlock,
    ParentBlock,
    ShapesDataBlock,
    TransitionId,
    event_src,
    make_dgram,
    segment_src,
)
from daq.xtc._stream import StreamWriter, runinfo_names

START = 1_700_000_000.0
NODE = 3


def timing(dark: bool, seed: int = 0) -> TimingSystem:
    """120 Hz LCLS-I timing; ``dark``: x-rays off on every shot."""
    return TimingSystem(TimingConfig.from_dict({
        "start_time": START, "seed": seed, **({"xray_off_every": 1} if dark else {})}))


def _dgram(service: TransitionId, sec: int, ns: int, blocks: list, stream: int) -> Dgram:
    enc = make_dgram(service, sec, ns, [ParentBlock(segment_src(NODE), blocks)],
                     root_src=event_src(stream), readout_groups=1)
    return Dgram(enc.tobytes())


def record_run(root: Path, expt: str, run: int, dets: Sequence[AreaDetector],
               shots: Sequence[Shot], streams: int = 2, chunk_bytes: int = 1 << 31) -> None:
    """Write ``shots`` of the detectors as run ``run``: event i goes to stream i % streams;
    every stream has the transitions (Configure with the Names, BeginRun with runinfo)."""
    names = [Names.create(d.det_name, d.det_type, d.xtc_fields(), node_id=NODE, index=k,
                          det_id=d.det_id, alg=d.alg) for k, d in enumerate(dets)]
    xray = Names.create("timing", "timing", [Field("xray", DataType.UINT8)], node_id=NODE,
                        index=len(dets), alg=Alg.of("raw", 1, 0, 0))
    info = runinfo_names(NODE)
    first, last = shots[0], shots[-1]
    writers = [StreamWriter(root, expt, run, s, chunk_bytes=chunk_bytes) for s in range(streams)]
    for s, w in enumerate(writers):
        w.open()
        sec, ns = first.seconds, first.nanoseconds
        w.write(_dgram(TransitionId.Configure, sec, ns,
                       [NamesBlock(n) for n in (*names, xray, info)], s))
        w.write(_dgram(TransitionId.BeginRun, sec, ns, [ShapesDataBlock(
            info, {"expt": expt, "runnum": run})], s))
        w.write(_dgram(TransitionId.BeginStep, sec, ns, [], s))
        w.write(_dgram(TransitionId.Enable, sec, ns, [], s))
    for i, shot in enumerate(shots):
        blocks = [ShapesDataBlock(n, d.read(shot)) for n, d in zip(names, dets, strict=True)]
        blocks.append(ShapesDataBlock(xray, {"xray": int(shot.xray_on)}))
        s = i % streams
        writers[s].write(_dgram(TransitionId.L1Accept, shot.seconds, shot.nanoseconds, blocks,
                                s))
    for s, w in enumerate(writers):
        for service in (TransitionId.Disable, TransitionId.EndStep, TransitionId.EndRun):
            w.write(_dgram(service, last.seconds, last.nanoseconds + 1, [], s))
        w.close()


def record_sim_run(root: Path, expt: str, run: int, dets: Sequence[AreaDetector], n: int,
                   *, dark: bool, streams: int = 2, first: int = 0,
                   chunk_bytes: int = 1 << 31) -> list[Shot]:
    """``n`` shots (counters first..first+n-1) of the detectors, recorded; the shots."""
    ts = timing(dark)
    shots = [ts.shot(first + i) for i in range(n)]
    record_run(root, expt, run, dets, shots, streams, chunk_bytes)
    return shots
