"""Throughput of the CSPAD hot paths: ``python -m tests.calib.bench_calib [events]``.

Full calibration (pedestal, common mode per bank row, gain, mask) and image assembly of a
2.3 Mpix CSPAD frame on one core; prints events/s by CPU time (the machine may be shared) and
by the median and best wall time of the timed events, and the load average.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from calib import (
    Calibrator,
    CommonMode,
    Geometry,
    ImageAssembler,
    default_geometry_text,
    detector_spec,
)


def _rate(fn: Callable[[], object], events: int) -> tuple[float, float, float]:
    """events/s by CPU time, by the median and by the best wall time."""
    fn()  # compile / warm up
    times = []
    cpu = time.process_time()
    for _ in range(events):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu) / events
    return 1.0 / cpu, 1.0 / statistics.median(times), 1.0 / min(times)


def main(events: int = 200) -> None:
    spec = detector_spec("cspad")
    shape = spec.data_shape()
    rng = np.random.default_rng(0)
    ped = rng.normal(1000, 20, shape).astype(np.float32)
    gain = rng.uniform(0.9, 1.1, shape).astype(np.float32)
    status = (rng.random(shape) < 0.01).astype(np.uint64)
    row_cm = rng.normal(0, 5, (*shape[:2], 2)).repeat(194, axis=2)
    raw = np.rint(ped + rng.normal(0, 3, shape) + row_cm).astype(np.int16)
    out = np.empty(shape, np.float32)
    print(f"CSPAD {shape}, {raw.size / 1e6:.2f} Mpix, {events} events, one core, "
          f"load {os.getloadavg()[0]:.1f}")
    for label, cm in [("pedestal + gain + mask", None),
                      ("... + common mode per bank row (median)", CommonMode(mode=1)),
                      ("... + common mode per bank row (mean)",
                       CommonMode(mode=1, statistic="mean")),
                      ("... + banks, rows, columns (median)", CommonMode(mode=7))]:
        cal = Calibrator.for_detector(spec, ped, gain=gain, status=status, common_mode=cm)
        cpu, med, best = _rate(lambda cal=cal: cal.calib(raw, out=out), events)
        print(f"  calib {label:42s} {cpu:5.0f} events/s CPU (wall median {med:.0f}, "
              f"best {best:.0f})")
    geo = Geometry.parse(default_geometry_text("cspad"))
    asm = ImageAssembler.from_geometry(geo)
    img = np.empty(asm.image_shape, np.float32)
    for label, fn in [("assemble", asm.assemble), ("assemble_mean", asm.assemble_mean)]:
        cpu, med, best = _rate(lambda fn=fn: fn(out, out=img), events)
        print(f"  image {label:13s} {asm.image_shape!s:28s} {cpu:5.0f} events/s CPU (wall "
              f"median {med:.0f}, best {best:.0f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
