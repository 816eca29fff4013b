"""Calibration: full CSPAD calibration on one core and on two threads, image assembly, and a
dark run from XTC2 files against plain reading of the same files.

The machine is shared, so rates are given by CPU time (user + system, all threads) where one
core's work is meant, with the wall-clock rate and the load average in the note."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from calib import (
    Calibrator,
    CommonMode,
    ImageAssembler,
    RunIndex,
    RunReader,
    default_geometry,
    detector_spec,
    process_dark,
)
from daq.sim import Epix100
from daq.timing import Shot, TimingConfig, TimingSystem
from daq.xtc import (
    Dgram,
    Names,
    NamesBlock,
    ParentBlock,
    ShapesDataBlock,
    TransitionId,
    event_src,
    make_dgram,
    segment_src,
)
from daq.xtc._stream import StreamWriter

from ._common import Result, scratch

SUITE = "calib"


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def _rate(fn: Callable[[], object], events: int) -> tuple[float, float]:
    """(events/s from the median wall time, events/s from CPU time) after one warm-up call."""
    fn()
    times = []
    cpu0 = time.process_time()
    for _ in range(events):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu0) / events
    return 1.0 / statistics.median(times), 1.0 / cpu if cpu > 0 else float("inf")


def _cspad_frame() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    shape = detector_spec("cspad").data_shape()
    rng = np.random.default_rng(0)
    ped = rng.normal(1000, 20, shape).astype(np.float32)
    consts: dict[str, np.ndarray] = {
        "pedestals": ped, "gain": rng.uniform(0.9, 1.1, shape).astype(np.float32),
        "status": (rng.random(shape) < 0.01).astype(np.uint64)}
    row_cm = rng.normal(0, 5, (*shape[:2], 2)).repeat(194, axis=2)
    raw = np.rint(ped + rng.normal(0, 3, shape) + row_cm).astype(np.int16)
    return raw, consts


def _calibration(events: int) -> list[Result]:
    raw, c = _cspad_frame()
    out = np.empty(raw.shape, np.float32)
    results = []
    for threads in (1, 2):
        cal = Calibrator.for_detector("cspad", c["pedestals"], gain=c["gain"],
                                      status=c["status"], common_mode=CommonMode(mode=1),
                                      threads=threads)
        wall, cpu = _rate(lambda: cal.calib(raw, out=out), events)  # noqa: B023 - used at once
        if threads == 1:
            results.append(Result(SUITE, "CSPAD calib, cm per row (CPU, one core)", cpu,
                                  "events/s", target=200.0,
                                  note=f"wall median {wall:.0f} events/s; {_load()}"))
        else:
            results.append(Result(SUITE, "CSPAD calib, cm per row (2 threads, wall)", wall,
                                  "events/s", note=f"numba prange over bank rows; {_load()}"))
    asm = ImageAssembler.from_geometry(default_geometry("cspad"))
    img = np.empty(asm.image_shape, np.float32)
    wall, _ = _rate(lambda: asm.assemble(out, out=img), events)
    results.append(Result(SUITE, f"CSPAD image assembly {asm.image_shape}", wall, "events/s",
                          target=500.0))
    return results


def _record_dark(root: Path, events: int) -> None:
    """``events`` dark ePix100 frames as run 1 of bench01, in two streams."""
    det = Epix100("epix")
    names = Names.create("epix", "epix100", det.xtc_fields(), node_id=1, index=0, alg=det.alg)
    ts = TimingSystem(TimingConfig(start_time=1.7e9, xray_off_every=1))
    writers = [StreamWriter(root, "bench01", 1, s) for s in range(2)]

    def dgram(service: TransitionId, shot: Shot, blocks: list, s: int) -> Dgram:
        enc = make_dgram(service, shot.seconds, shot.nanoseconds,
                         [ParentBlock(segment_src(1), blocks)], root_src=event_src(s))
        return Dgram(enc.tobytes())

    for s, w in enumerate(writers):
        w.open()
        w.write(dgram(TransitionId.Configure, ts.shot(0), [NamesBlock(names)], s))
    for i in range(events):
        shot = ts.shot(i)
        writers[i % 2].write(dgram(TransitionId.L1Accept, shot,
                                   [ShapesDataBlock(names, det.read(shot))], i % 2))
    for w in writers:
        w.close()


def _timed(fn: Callable[[], int], repeat: int) -> tuple[float, float]:
    """Best (events/s by wall time, events/s by CPU time) of ``repeat`` runs of ``fn``."""
    wall = cpu = 0.0
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        n = fn()
        dc, dt = time.process_time() - c, time.perf_counter() - t
        wall, cpu = max(wall, n / dt), max(cpu, n / dc if dc > 0 else float("inf"))
    return wall, cpu


def _darks(events: int, repeat: int) -> list[Result]:
    with scratch("bench_calib_") as root:
        _record_dark(root, events)
        index = RunIndex.from_run(root, "bench01", 1)

        def read() -> int:
            with RunReader(index, reuse_buffer=True) as reader:
                return sum(1 for _ in reader.frames("epix"))

        def dark(threads: int) -> int:
            result = process_dark(index, "epix", threads=threads)
            return 0 if result is None else result.n_events

        read()  # warm the page cache and the decoder
        dark(1)  # compile
        dark(2)
        read_wall, read_cpu = _timed(read, repeat)
        dark_wall, dark_cpu = _timed(lambda: dark(1), repeat)
        dark2_wall, dark2_cpu = _timed(lambda: dark(2), repeat)
    mb = 704 * 768 * 2 / 1e6
    return [
        Result(SUITE, f"read ePix100 dark run ({events} events)", read_cpu, "events/s",
               note=f"CPU; wall {read_wall:.0f} events/s = {read_wall * mb:.0f} MB/s from the "
                    f"page cache; {_load()}"),
        Result(SUITE, f"calib darks ePix100 ({events} events, CPU)", dark_cpu, "events/s",
               note=f"one thread; wall {dark_wall:.0f} events/s"),
        Result(SUITE, f"calib darks ePix100 ({events} events, 2 threads)", dark2_wall,
               "events/s", note=f"wall; CPU {dark2_cpu:.0f} events/s"),
        Result(SUITE, "darks / reading, CPU time of one core", dark_cpu / read_cpu, "ratio",
               note="exact integer sums, frames read in place (mmap)"),
        Result(SUITE, "darks (2 threads) / reading, wall time", dark2_wall / read_wall,
               "ratio", target=1.0, note=_load()),
    ]


def run(quick: bool) -> list[Result]:
    return _calibration(5 if quick else 300) + _darks(20 if quick else 1000, 1 if quick else 3)
