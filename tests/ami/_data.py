"""Small recorded runs for AMI tests: timing, gas detector and a 16 x 24 image per event."""

from __future__ import annotations

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
    event_src,
    make_dgram,
    segment_src,
)

T0 = 1_100_000_000  # EPICS seconds
RATE = 120.0
SHAPE = (16, 24)


def names() -> dict[str, Names]:
    raw = Alg.of("raw", 1, 0, 0)
    return {
        "timing": Names.create("timing", "timing", [
            Field("fiducial", DataType.UINT32), Field("laser", DataType.UINT8)],
            node_id=1, index=0, alg=raw),
        "gasdet": Names.create("gasdet", "bld", [Field("energy", DataType.DOUBLE)],
                               node_id=1, index=1, alg=raw),
        "cam": Names.create("cam", "opal", [Field("raw", DataType.UINT16, 2)],
                            node_id=1, index=2, alg=raw),
    }


def event_values(i: int) -> dict[str, dict[str, object]]:
    rng = np.random.default_rng(i)
    energy = float(rng.gamma(20.0, 0.1))
    return {
        "timing": {"fiducial": 3 * i, "laser": int(i % 3 != 0)},
        "gasdet": {"energy": energy},
        "cam": {"raw": rng.integers(0, 1000, SHAPE).astype(np.uint16)},
    }


def event_time(i: int) -> tuple[int, int]:
    ns = int(i * 1e9 / RATE) + 1000
    return T0 + ns // 1_000_000_000, ns % 1_000_000_000


def dgrams(n_events: int) -> list[Dgram]:
    """Configure, BeginRun, Enable, events, Disable, EndRun."""
    nm = names()
    seg = segment_src(1)

    def dg(service: TransitionId, sec: int, ns: int, blocks: list) -> Dgram:
        enc = make_dgram(service, sec, ns, [ParentBlock(seg, blocks)], root_src=event_src(0))
        return Dgram(enc.tobytes())

    out = [dg(TransitionId.Configure, T0, 0, [NamesBlock(n) for n in nm.values()]),
           dg(TransitionId.BeginRun, T0, 1, []), dg(TransitionId.Enable, T0, 2, [])]
    for i in range(n_events):
        vals = event_values(i)
        out.append(dg(TransitionId.L1Accept, *event_time(i),
                      [ShapesDataBlock(nm[d], vals[d]) for d in ("timing", "gasdet", "cam")]))
    end = event_time(n_events)
    out += [dg(TransitionId.Disable, *end, []), dg(TransitionId.EndRun, *end, [])]
    return out


def write_run(folder: Path, n_events: int) -> Path:
    """A one-stream run file in ``folder``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "amitest-r0001-s000-c000.xtc2"
    with open(path, "wb") as fh:
        for d in dgrams(n_events):
            fh.write(d.memoryview())
    return path
