"""Dark-run processing: one streaming pass over a recorded run, serial or split over MPI ranks.

The events considered are the first ``max_events`` of the run in (timestamp, stream) order (see
:mod:`calib._run`); events without the detector are skipped but keep their numbers. Under MPI
rank r takes a contiguous range of whole accumulator blocks; the partial results travel to rank
0 as raw float64 buffers and merge along the fixed block tree of :class:`DarkAccumulator`, so
serial and parallel runs give the same constants bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._dark import DarkAccumulator, DarkStats, DarkThresholds, dark_constants
from ._detectors import DETECTORS
from ._errors import CalibError
from ._mpi import recv_arrays, send_arrays
from ._run import RunIndex, RunReader
from ._status import StatusBit

DEFAULT_BLOCK = 64


@dataclass(frozen=True)
class DarkRun:
    """Constants of one detector from one dark run."""

    det_name: str
    det_type: str
    n_events: int
    stats: DarkStats
    pedestals: np.ndarray  # float32
    pixel_rms: np.ndarray  # float32
    pixel_status: np.ndarray  # uint64, StatusBit

    def constants(self) -> dict[str, np.ndarray]:
        return {"pedestals": self.pedestals, "pixel_rms": self.pixel_rms,
                "pixel_status": self.pixel_status}

    def summary(self) -> str:
        """A few lines for the terminal."""
        st = self.pixel_status
        bits = {b.name: int(np.count_nonzero(st & np.uint64(b))) for b in StatusBit}
        bad = int(np.count_nonzero(st))
        lines = [
            f"{self.det_name} ({self.det_type}): {self.n_events} dark events, shape "
            f"{self.pedestals.shape}",
            f"  pedestal median {np.median(self.pedestals):.2f} ADU, rms median "
            f"{np.median(self.pixel_rms):.3f} ADU",
            f"  bad pixels {bad} ({100 * bad / max(st.size, 1):.3g} %): "
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


def accumulate(reader: RunReader, det_name: str, events: range, shape: tuple[int, ...],
               block_size: int = DEFAULT_BLOCK, field: str = "raw") -> DarkAccumulator:
    """Welford statistics of the detector over event numbers ``events``."""
    acc = DarkAccumulator(shape, block_size)
    for i, frame in reader.frames(det_name, field, events):
        if frame.shape != acc.shape:
            raise CalibError(f"event {i}: {det_name}:{field} has shape {frame.shape}, "
                             f"earlier events {acc.shape}")
        acc.add(frame, index=i)
    return acc


def _check_type(det_type: str, det_name: str) -> None:
    spec = DETECTORS.get(det_type)
    if spec is not None and spec.gain_switching:
        raise CalibError(
            f"{det_name} is a gain-switching {det_type}: its pedestals need one dark run per "
            "gain stage, which calib darks does not combine yet (use 'calib truth' for "
            "simulated detectors, or deploy the three stages with 'calib deploy')"
        )


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


def process_dark(
    index: RunIndex, det_name: str | None = None, *, thresholds: DarkThresholds | None = None,
    max_events: int | None = None, block_size: int = DEFAULT_BLOCK, comm: Any = None,
    field: str = "raw",
) -> DarkRun | None:
    """Pedestals, rms and status of one detector from a dark run.

    With ``comm`` (an mpi4py communicator) every rank must call this; rank 0 gets the result,
    the others None. Any rank's error is raised on rank 0 (and on that rank).
    """
    name, det_type = pick_detector(index, det_name)
    _check_type(det_type, name)
    n = len(index) if max_events is None else min(len(index), max(0, max_events))
    rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
    with RunReader(index, reuse_buffer=True) as reader:
        shape = tuple(reader.first_frame(name, field)[1].shape)
        events = block_ranges(n, block_size, size)[rank]
        error = ""
        try:
            acc = accumulate(reader, name, events, shape, block_size, field)
        except (CalibError, OSError) as exc:
            error, acc = f"rank {rank}: {exc}", DarkAccumulator(shape, block_size)
    if comm is not None:
        acc, error = _gather(comm, acc, error)
        if rank != 0:
            return None
    if error:
        raise CalibError(error)
    if acc.n_events == 0:
        raise CalibError(f"none of the first {n} events holds {name}:{field}")
    stats = acc.result()
    ped, rms, status = dark_constants(stats, thresholds)
    return DarkRun(name, det_type, stats.n, stats, ped, rms, status)


def _gather(comm: Any, acc: DarkAccumulator, error: str) -> tuple[DarkAccumulator, str]:
    """Rank 0 merges every rank's blocks (in rank order; any order gives the same bits)."""
    rank = comm.Get_rank()
    state = acc.state()
    nodes = state["nodes"]
    if rank != 0:
        header = {"error": error, "next": state["next"],
                  "nodes": [[nd["level"], nd["index"], nd["n"]] for nd in nodes]}
        arrays = [a for nd in nodes for a in (nd["mean"], nd["m2"])]
        send_arrays(comm, header, arrays, dest=0)
        return acc, error
    errors = [error] if error else []
    for src in range(1, comm.Get_size()):
        header, arrays = recv_arrays(comm, src)
        if header["error"]:
            errors.append(header["error"])
            continue
        other = DarkAccumulator.from_state({
            "version": state["version"], "shape": state["shape"],
            "block_size": state["block_size"], "next": header["next"],
            "nodes": [{"level": lv, "index": ix, "n": cnt, "mean": arrays[2 * k],
                       "m2": arrays[2 * k + 1]}
                      for k, (lv, ix, cnt) in enumerate(header["nodes"])],
        })
        acc.merge(other)
    return acc, "; ".join(errors)
