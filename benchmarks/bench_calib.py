"""Calibration: full CSPAD calibration on one core and on two threads, image assembly, and a
dark run from XTC2 files against plain reading of the same files."""

from __future__ import annotations

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
        what = "one core" if threads == 1 else "2 threads"
        results.append(Result(SUITE, f"CSPAD calib, cm per row ({what})", wall, "events/s",
                              target=200.0, note=f"CPU time {cpu:.0f} events/s per core"
                              if threads == 1 else "numba prange over bank rows"))
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


def _darks(events: int) -> list[Result]:
    with scratch("bench_calib_") as root:
        _record_dark(root, events)
        index = RunIndex.from_run(root, "bench01", 1)

        def read() -> int:
            with RunReader(index, reuse_buffer=True) as reader:
                return sum(1 for _ in reader.frames("epix"))

        def dark() -> int:
            result = process_dark(index, "epix")
            return 0 if result is None else result.n_events

        read()  # warm the page cache and the decoder
        dark()  # compile
        t = time.perf_counter()
        n = read()
        read_rate = n / (time.perf_counter() - t)
        t = time.perf_counter()
        n = dark()
        dark_rate = n / (time.perf_counter() - t)
    mb = 704 * 768 * 2 / 1e6
    return [
        Result(SUITE, f"read ePix100 dark run ({events} events)", read_rate, "events/s",
               note=f"{read_rate * mb:.0f} MB/s from the page cache"),
        Result(SUITE, f"calib darks ePix100 ({events} events)", dark_rate, "events/s",
               note=f"{dark_rate * mb:.0f} MB/s"),
        Result(SUITE, "darks speed / reading speed", dark_rate / read_rate, "ratio",
               target=1.0, note="Welford in float64 is memory-bound; reading is a copy"),
    ]


def run(quick: bool) -> list[Result]:
    return _calibration(5 if quick else 300) + _darks(20 if quick else 1000)
