"""Measure what the simulators cost: ``python -m daq.sim [--events N] [kind ...]``.

Prints the per-event cost of ``read(shot, out)`` into reused buffers (median and best of N
events, after warm-up so numba compilation is excluded) and the timing system's shot rate.
"""

from __future__ import annotations

import argparse
import statistics
import time

from daq.timing import TimingConfig, TimingSystem

from ._registry import DETECTOR_KINDS, make_detector

_DEFAULT_KINDS = ("cspad", "jungfrau", "epix100", "opal", "acqiris", "hsd", "gasdet", "timing")


def _measure(kind: str, events: int, ts: TimingSystem) -> tuple[float, float, float]:
    det = make_detector(kind, f"{kind}_bench", **({"modules": 1} if kind == "jungfrau" else {}))
    t0 = time.perf_counter()
    det.prepare()
    prepare = time.perf_counter() - t0
    out = det.allocate()
    for n in range(30):  # warm-up: compile every kernel variant the events need
        det.read(ts.shot(n), out)
    shots = [ts.shot(n) for n in range(events)]
    costs = []
    for shot in shots:
        t0 = time.perf_counter()
        det.read(shot, out)
        costs.append(time.perf_counter() - t0)
    return prepare, statistics.median(costs), min(costs)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m daq.sim", description=__doc__)
    ap.add_argument("kinds", nargs="*", default=list(_DEFAULT_KINDS), choices=list(DETECTOR_KINDS))
    ap.add_argument("--events", type=int, default=200)
    args = ap.parse_args(argv)
    ts = TimingSystem(TimingConfig(start_time=1.7e9, xray_off_fraction=0.1))
    print(f"{'kind':10s} {'prepare s':>10s} {'median ms':>10s} {'best ms':>10s}")
    for kind in args.kinds:
        prepare, med, best = _measure(kind, args.events, ts)
        print(f"{kind:10s} {prepare:10.2f} {med * 1e3:10.3f} {best * 1e3:10.3f}")
    n = 50_000
    t0 = time.perf_counter()
    for i in range(n):
        ts.shot(i)
    single = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    ts.shots(0, 1_000_000)
    batch = (time.perf_counter() - t0) / 1_000_000
    print(f"timing shot(): {single * 1e6:.2f} us ({1 / single / 1e3:.0f} kHz); "
          f"shots() batch: {batch * 1e9:.0f} ns/shot ({1 / batch / 1e6:.1f} MHz)")  # fmt: skip


if __name__ == "__main__":
    main()
