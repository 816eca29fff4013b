"""``daq demo``: record a short simulated run as XTC2 + small data, validate it, summarise.

This is the main job of ``make demo`` until the full partition (``daq run``) takes over.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

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
    XtcFileReader,
    event_src,
    make_dgram,
    segment_src,
)
from daq.xtc._smd import SmdIndex
from daq.xtc._stream import StreamWriter, runinfo_names
from daq.xtc._validate import validate_file

EPICS_OFFSET = 631152000


def _names(node: int) -> dict[str, Names]:
    return {
        "timing": Names.create("timing", "timing", [
            Field("pulseId", DataType.UINT64), Field("fiducial", DataType.UINT32),
            Field("eventCodes", DataType.UINT8, 1), Field("laser", DataType.UINT8),
            Field("xray", DataType.UINT8)], node_id=node, index=0, alg=Alg.of("raw", 1, 0, 0)),
        "gasdet": Names.create("gasdet", "bld", [
            Field("f11", DataType.DOUBLE), Field("f12", DataType.DOUBLE),
            Field("f21", DataType.DOUBLE), Field("f22", DataType.DOUBLE)],
            node_id=node, index=1, alg=Alg.of("raw", 1, 0, 0)),
        "epix": Names.create("epix", "epix100", [Field("raw", DataType.UINT16, 2)],
                             node_id=node, index=2, det_id="epix100-0001",
                             alg=Alg.of("raw", 1, 0, 0)),
        "runinfo": runinfo_names(node),
    }


def record_demo_run(root: Path, expt: str = "demo01", run: int = 1, events: int = 240,
                    seed: int = 7) -> list[Path]:
    """Write one run of ``events`` shots at 120 Hz (timestamps simulated) and return its files."""
    rng = np.random.default_rng(seed)
    node = 1
    names = _names(node)
    pedestal = rng.normal(1000.0, 30.0, (704, 768)).astype(np.float32)
    t0 = int(time.time()) - EPICS_OFFSET
    seg = segment_src(node)
    r = np.hypot(*np.meshgrid(np.arange(704) - 352, np.arange(768) - 384, indexing="ij"))
    ring = (40.0 * np.exp(-0.5 * ((r - 200.0) / 6.0) ** 2)).astype(np.float32)
    noise = rng.normal(0.0, 5.0, (8, 704, 768)).astype(np.float32)

    def dgram(service: TransitionId, tick: int, blocks: list) -> Dgram:
        ns_total = tick * 1_000_000_000 // 360
        sec, ns = t0 + ns_total // 1_000_000_000, ns_total % 1_000_000_000
        enc = make_dgram(service, sec, ns, [ParentBlock(seg, blocks)],
                         root_src=event_src(0), readout_groups=1)
        return Dgram(enc.tobytes())

    writer = StreamWriter(root, expt, run, 0, chunk_bytes=64 << 20)
    with writer:
        writer.write(dgram(TransitionId.Configure, 0,
                           [NamesBlock(n) for n in names.values()]))
        writer.write(dgram(TransitionId.BeginRun, 1, [ShapesDataBlock(
            names["runinfo"], {"expt": expt, "runnum": run})]))
        writer.write(dgram(TransitionId.BeginStep, 2, []))
        writer.write(dgram(TransitionId.Enable, 3, []))
        for i in range(events):
            tick = 6 + 3 * i
            pulse_id = 1_000_000 + tick
            laser = int(i % 4 != 0)
            energy = rng.gamma(20.0, 0.1, 4)
            codes = np.zeros(8, np.uint8)
            codes[:3] = (40, 140, 90 if laser else 91)
            image = pedestal + noise[i % 8] + float(energy.mean()) * ring
            writer.write(dgram(TransitionId.L1Accept, tick, [
                ShapesDataBlock(names["timing"], {
                    "pulseId": pulse_id, "fiducial": tick % 131041, "eventCodes": codes,
                    "laser": laser, "xray": 1}),
                ShapesDataBlock(names["gasdet"], dict(zip(("f11", "f12", "f21", "f22"),
                                                          energy.tolist(), strict=True))),
                ShapesDataBlock(names["epix"], {"raw": image.astype(np.uint16)}),
            ]))
        end = 6 + 3 * events
        for k, service in enumerate((TransitionId.Disable, TransitionId.EndStep,
                                     TransitionId.EndRun)):
            writer.write(dgram(service, end + k, []))
    return [*writer.closed_chunks, writer.big_path, writer.smd_path]


def run_demo(args: argparse.Namespace) -> int:
    root = Path(args.out)
    expt_dir = root / args.expt
    if expt_dir.exists():
        shutil.rmtree(expt_dir)
    t0 = time.perf_counter()
    files = record_demo_run(root, args.expt, 1, args.events)
    dt = time.perf_counter() - t0
    print(f"recorded run 1 of {args.expt}: {args.events} events in {dt:.2f} s")
    ok = True
    for f in files:
        report = validate_file(f)
        status = "valid" if report.ok else "INVALID"
        print(f"  {f}  {f.stat().st_size / 1e6:8.2f} MB  {report.dgrams:5d} dgrams  {status}")
        for p in report.problems:
            print(f"    {p}")
        ok &= report.ok
    smd = files[-1]
    with XtcFileReader(smd) as r:
        index = SmdIndex.from_dgrams(r)
    print(f"small data index: {len(index)} events, first at offset {index.entries[0].offset} "
          f"of chunk {index.entries[0].chunk}")
    print("summary: " + ("all files valid" if ok else "validation FAILED"))
    return 0 if ok else 1


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="record, validate and summarise a short simulated run")
    p.add_argument("--out", default="data", help="data root (default %(default)s)")
    p.add_argument("--expt", default="demo01")
    p.add_argument("--events", type=int, default=240)
    p.set_defaults(func=run_demo)
