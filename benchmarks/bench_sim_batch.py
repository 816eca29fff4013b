"""Simulated detectors: CPU per shot of ``read(shot)`` and of ``read_batch`` on 100-shot batches.

The readout node of the 50 kHz small-event partition reads batches of ~100 shots (one timing
datagram) into the columns of a batch of dgrams; this measures that, per kind, against the
per-shot budgets. CPU time (``time.process_time``), best of several repetitions, so that other
load on a shared machine inflates the figures less; the load average is printed with them.

``python -m benchmarks.bench_sim_batch [--quick]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from daq.sim import Detector, make_detector
from daq.timing import Shot, TimingConfig, TimingSystem

from ._common import Result

SUITE = "sim_batch"
BATCH = 100

#: (label, kind, parameters, read_batch target in us per shot)
CASES: list[tuple[str, str, dict[str, Any], float | None]] = [
    ("timing", "timing", {}, 3.0),
    ("gasdet", "gasdet", {}, 3.0),
    ("ebeam", "ebeam", {}, 3.0),
    ("ipm", "ipm", {}, 3.0),
    ("encoder", "encoder", {}, 3.0),
    ("phasecav", "phasecav", {}, 3.0),
    ("acqiris 1x480", "acqiris", {"channels": 1, "samples": 480}, 5.0),
    ("acqiris 4x1000", "acqiris", {}, 20.0),
    ("hsd 2x2000", "hsd", {}, None),
]


def _views(det: Detector, n: int) -> dict[str, np.ndarray]:
    """Every field as a column of a (n, size) uint8 block (strided rows, like dgram batches)."""
    size = sum(f.nbytes for f in det.fields) + 1  # + 1: an odd row size, unaligned columns
    block = np.zeros((n, size), np.uint8)
    views, pos = {}, 1
    for f in det.fields:
        views[f.name] = block[:, pos : pos + f.nbytes].view(f.dtype).reshape(n, *f.shape)
        pos += f.nbytes
    return views


def _best_us(fn: Callable[[], None], shots: int, repeat: int) -> float:
    """Best CPU microseconds per shot over ``repeat`` runs of ``fn`` (which reads ``shots``)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best / shots * 1e6


def measure(kind: str, params: dict[str, Any], loops: int, repeat: int) -> tuple[float, float]:
    """(read, read_batch) CPU microseconds per shot for one detector."""
    ts = TimingSystem(TimingConfig(start_time=1_700_000_000.0, xray_off_fraction=0.1, seed=3))
    batch = ts.shots(0, BATCH)
    shots = [Shot.from_record(r) for r in batch]
    det = make_detector(kind, f"{kind}_bench", **params)
    det.prepare()
    buf = det.allocate()
    views = _views(det, BATCH)
    for shot in shots[:5]:  # warm-up: kernels compiled or loaded from the cache
        det.read(shot, buf)
    det.read_batch(batch, views)

    def singles() -> None:
        for _ in range(loops):
            for shot in shots:
                det.read(shot, buf)

    def batches() -> None:
        for _ in range(loops):
            det.read_batch(batch, views)

    n = loops * BATCH
    return _best_us(singles, n, repeat), _best_us(batches, n, repeat)


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages (the machine may be shared)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def run(quick: bool = False) -> list[Result]:
    loops, repeat = (1, 1) if quick else (5, 7)
    note = f"CPU us/shot, batch {BATCH}, loadavg {loadavg()}"
    results: list[Result] = []
    for label, kind, params, target in CASES:
        single, batched = measure(kind, params, loops, repeat)
        results.append(Result(SUITE, f"{label} read", single, "us", None, False, note))
        results.append(Result(SUITE, f"{label} read_batch", batched, "us", target, False, note))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sim_batch")
    parser.add_argument("--quick", action="store_true", help="one repetition (a smoke test)")
    args = parser.parse_args(argv)
    print(f"loadavg before: {loadavg()}")
    for r in run(quick=args.quick):
        print(r.row(), flush=True)
    print(f"loadavg after: {loadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
