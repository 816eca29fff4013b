"""Dark-run processing: one streaming pass over a recorded run, serial or split over MPI ranks.

The events considered are the first ``max_events`` of the run in (timestamp, stream) order (see
:mod:`calib._run`); events without the detector are skipped but keep their numbers. Frames are
read in place from the memory-mapped files (:mod:`calib._frames`) and summed exactly as
integers (:mod:`calib._dark`). Under MPI rank r takes a contiguous range of whole blocks of
events; the partial sums travel to rank 0 as raw int64 buffers and add up to the serial ones, so
serial and parallel runs give the same constants bit for bit.

Gain-switching detectors (Jungfrau) take one dark run per gain stage, G0 (normal, dynamic
gain), then G1 and G2 with the gain forced: :func:`process_dark_stages` finds each run's stage
from the gain bits of its data, accumulates the 14 data bits of each run, counts the pixels that
leave the run's stage, and stacks the three results into ``(3, ...)`` constants, as psana does.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import numpy as np

from daq.xtc import XtcError

from ._dark import GAIN_CODES, DarkAccumulator, DarkStats, DarkThresholds, dark_constants
from ._detectors import DETECTORS
from ._errors import CalibError
from ._frames import MappedFrames
from ._mpi import recv_arrays, send_arrays
from ._run import RunIndex
from ._status import StatusBit

DEFAULT_BLOCK = 64
STAGE_NAMES = ("G0", "G1", "G2")


@dataclass(frozen=True)
class DarkRun:
    """Constants of one detector from one dark run, or from one run per gain stage (then the
    arrays have a leading axis of 3 and ``stats`` holds one DarkStats per stage)."""

    det_name: str
    det_type: str
    n_events: int
    stats: tuple[DarkStats, ...]
    pedestals: np.ndarray  # float32
    pixel_rms: np.ndarray  # float32
    pixel_status: np.ndarray  # uint64, StatusBit

    def constants(self) -> dict[str, np.ndarray]:
        return {"pedestals": self.pedestals, "pixel_rms": self.pixel_rms,
                "pixel_status": self.pixel_status}

    def summary(self) -> str:
        """A few lines for the terminal."""
        staged = len(self.stats) > 1
        lines = [f"{self.det_name} ({self.det_type}): {self.n_events} dark events"
                 + (f" ({', '.join(str(s.n) for s in self.stats)} per gain stage)"
                    if staged else "") + f", shape {self.pedestals.shape}"]
        for k in range(len(self.stats)):
            ped, rms, st = ((self.pedestals[k], self.pixel_rms[k], self.pixel_status[k])
                            if staged else (self.pedestals, self.pixel_rms, self.pixel_status))
            bits = {b.name: int(np.count_nonzero(st & np.uint64(b))) for b in StatusBit}
            bad = int(np.count_nonzero(st))
            head = f"  {STAGE_NAMES[k]}: " if staged else "  "
            lines += [
                f"{head}pedestal median {np.median(ped):.2f} ADU, rms median "
                f"{np.median(rms):.3f} ADU",
                f"{head}bad pixels {bad} ({100 * bad / max(st.size, 1):.3g} %): "
                + ", ".join(f"{k} {v}" for k, v in bits.items() if v),
            ]
        return "\n".join(lines)


def block_ranges(n_events: int, block_size: int, ranks: int) -> list[range]:
    """Events of each rank: contiguous runs of whole blocks, as even as blocks allow."""
    blocks = -(-n_events // block_size)
    out = []
    for r in range(ranks):
        b0, b1 = r * blocks // ranks, (r + 1) * blocks // ranks
        out.append(range(min(b0 * block_size, n_events), min(b1 * block_size, n_events)))
    return out


def pick_detector(index: RunIndex, det_name: str | None) -> tuple[str, str]:
    """(name, type) of the detector to process: the one named, or the only area detector."""
    dets = index.detectors()
    if det_name is not None:
        if det_name not in dets:
            have = ", ".join(sorted(dets)) or "none"
            raise CalibError(f"detector {det_name!r} is not in the run (detectors: {have})")
        return det_name, dets[det_name]
    area = sorted(n for n, t in dets.items() if t in DETECTORS)
    if len(area) != 1:
        have = ", ".join(f"{n} ({dets[n]})" for n in sorted(dets)) or "none"
        raise CalibError(f"give --det: the run has {len(area)} area detectors ({have})")
    return area[0], dets[area[0]]


def _switching(det_type: str) -> bool:
    spec = DETECTORS.get(det_type)
    return spec is not None and spec.gain_switching


def first_frame(index: RunIndex, det_name: str, field: str = "raw") -> np.ndarray:
    """A copy of the first frame of the run holding ``det_name:field`` (CalibError if none)."""
    with MappedFrames(index, det_name, field) as frames, \
            closing(frames.batches(range(len(index)), 1)) as batches:
        for batch in batches:
            assert frames.shape is not None
            off = batch.offsets[0]
            return batch.data[off:off + int(np.prod(frames.shape))].reshape(frames.shape).copy()
    have = ", ".join(sorted(index.detectors())) or "none"
    raise CalibError(f"no event of the run holds {det_name}:{field} (detectors: {have})")


def accumulate(index: RunIndex, det_name: str, events: range, shape: tuple[int, ...], *,
               block_size: int = DEFAULT_BLOCK, field: str = "raw",
               gain_code: int | None = None, threads: int = 1) -> DarkAccumulator:
    """Exact sums of the detector's frames over event numbers ``events``."""
    acc = DarkAccumulator(shape, gain_code=gain_code, threads=threads)
    with MappedFrames(index, det_name, field) as frames:
        for batch in frames.batches(events, block_size):
            if frames.shape != acc.shape:
                raise CalibError(f"{det_name}:{field} has shape {frames.shape} in events "
                                 f"{batch.indices[0]}.., {acc.shape} in the first event")
            acc.add_frames(batch.data, batch.offsets, batch.indices)
            del batch  # views of the mapped files must go before they are closed
    return acc


def _run_stats(index: RunIndex, name: str, *, n: int, block_size: int, comm: Any, field: str,
               gain_code: int | None, threads: int) -> DarkStats | None:
    """Statistics of one run (all ranks call; rank 0 gets them, the others None)."""
    rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
    shape = first_frame(index, name, field).shape
    error = ""
    try:
        acc = accumulate(index, name, block_ranges(n, block_size, size)[rank], shape,
                         block_size=block_size, field=field, gain_code=gain_code,
                         threads=threads)
    except (CalibError, OSError, XtcError) as exc:
        error, acc = f"rank {rank}: {exc}", DarkAccumulator(shape, gain_code=gain_code)
    if comm is not None:
        acc, error = _gather(comm, acc, error)
        if rank != 0:
            return None
    if error:
        raise CalibError(error)
    if acc.n_events == 0:
        raise CalibError(f"none of the first {n} events holds {name}:{field}")
    return acc.result()


def _n_events(index: RunIndex, max_events: int | None) -> int:
    return len(index) if max_events is None else min(len(index), max(0, max_events))


def process_dark(
    index: RunIndex, det_name: str | None = None, *, thresholds: DarkThresholds | None = None,
    max_events: int | None = None, block_size: int = DEFAULT_BLOCK, comm: Any = None,
    field: str = "raw", threads: int = 1,
) -> DarkRun | None:
    """Pedestals, rms and status of one detector from a dark run.

    With ``comm`` (an mpi4py communicator) every rank must call this; rank 0 gets the result,
    the others None. Any rank's error is raised on rank 0 (and on that rank). ``threads``:
    numba threads per process for the sums. Gain-switching detectors need
    :func:`process_dark_stages`.
    """
    if block_size < 1:
        raise CalibError(f"block_size must be >= 1, not {block_size}")
    name, det_type = pick_detector(index, det_name)
    if _switching(det_type):
        raise CalibError(f"{name} is a gain-switching {det_type}: give one dark run per gain "
                         "stage (G0, G1, G2), e.g. 'calib darks --run 5 6 7'")
    stats = _run_stats(index, name, n=_n_events(index, max_events), block_size=block_size,
                       comm=comm, field=field, gain_code=None, threads=threads)
    if stats is None:
        return None
    ped, rms, status = dark_constants(stats, thresholds)
    return DarkRun(name, det_type, stats.n, (stats,), ped, rms, status)


def gain_stage(frame: np.ndarray) -> int:
    """The gain stage (0, 1, 2) most pixels of a Jungfrau raw frame are in (its gain bits)."""
    codes = np.bincount(((frame.astype(np.uint16) >> 14) & 3).ravel(), minlength=4)
    code = int(np.argmax(codes))
    if code == 2:
        raise CalibError("most pixels carry the invalid gain code 10: not a Jungfrau dark run")
    return GAIN_CODES.index(code)


def process_dark_stages(
    indexes: Sequence[RunIndex], det_name: str | None = None, *,
    labels: Sequence[str] | None = None, thresholds: DarkThresholds | None = None,
    max_events: int | None = None, block_size: int = DEFAULT_BLOCK, comm: Any = None,
    field: str = "raw", threads: int = 1,
) -> DarkRun | None:
    """(3, ...) pedestals, rms and status of a gain-switching detector from one dark run per
    gain stage, in any order: each run's stage is read from the gain bits of its first frame.

    ``labels`` name the runs in messages (default "run 1", ...). Bad-pixel thresholds apply
    to each stage on its own; BAD_GAIN flags pixels that left their run's stage in more than
    ``thresholds.off_stage`` of its events. MPI as in :func:`process_dark`.
    """
    if block_size < 1:
        raise CalibError(f"block_size must be >= 1, not {block_size}")
    names = list(labels) if labels is not None else [f"run {k + 1}" for k in range(len(indexes))]
    if len(indexes) != 3 or len(names) != 3:
        raise CalibError(f"a gain-switching detector needs 3 dark runs (one per gain stage "
                         f"G0, G1, G2), got {len(indexes)}")
    picked = [pick_detector(ix, det_name) for ix in indexes]
    name, det_type = picked[0]
    if any(p != picked[0] for p in picked):
        raise CalibError("the dark runs hold different detectors: "
                         + ", ".join(f"{lab}: {n} ({t})" for lab, (n, t) in zip(names, picked,
                                                                               strict=True)))
    if not _switching(det_type):
        raise CalibError(f"{name} ({det_type}) does not switch gain: give one dark run")
    stages = [gain_stage(first_frame(ix, name, field)) for ix in indexes]
    if sorted(stages) != [0, 1, 2]:
        found = ", ".join(f"{lab} is in {STAGE_NAMES[s]}" for lab, s in zip(names, stages,
                                                                           strict=True))
        raise CalibError(f"{name}: need one dark run in each gain stage G0, G1, G2, but {found} "
                         "(record the G1 and G2 runs with the gain forced)")
    stats: list[DarkStats] = []
    for stage in range(3):
        k = stages.index(stage)
        st = _run_stats(indexes[k], name, n=_n_events(indexes[k], max_events),
                        block_size=block_size, comm=comm, field=field,
                        gain_code=GAIN_CODES[stage], threads=threads)
        if st is not None:
            stats.append(st)
    if not stats:
        return None
    consts = [dark_constants(st, thresholds) for st in stats]
    ped, rms, status = (np.stack([c[j] for c in consts]) for j in range(3))
    return DarkRun(name, det_type, sum(s.n for s in stats), tuple(stats), ped, rms, status)


def _gather(comm: Any, acc: DarkAccumulator, error: str) -> tuple[DarkAccumulator, str]:
    """Rank 0 adds every rank's sums (in rank order; integers: any order gives the same)."""
    rank = comm.Get_rank()
    state = acc.state()
    arrays = [state["sum"], state["sumsq"], state["off_stage"]]
    if rank != 0:
        header = {"error": error, **{k: state[k] for k in ("n", "events", "dtype")}}
        send_arrays(comm, header, arrays, dest=0)
        return acc, error
    errors = [error] if error else []
    for src in range(1, comm.Get_size()):
        header, (s1, s2, off) = recv_arrays(comm, src)
        if header["error"]:
            errors.append(header["error"])
            continue
        acc.merge(DarkAccumulator.from_state({
            **state, "n": header["n"], "events": header["events"], "dtype": header["dtype"],
            "sum": s1, "sumsq": s2, "off_stage": off}))
    return acc, "; ".join(errors)
