"""MPI for offline access: roles, and messages of a small header plus raw arrays.

Rank 0 (*smd0*) reads the small data of every stream, merges them in time order and hands
batches of records (stream, chunk, offset, size and the small-data dgram) to worker ranks, which
read the big data. Transitions go to every worker, ahead of its next batch, so each keeps the
run's state (step, EPICS). Workers send per-event results to writer ranks; the writers' part
files are joined on rank 0 at the end. Bulk data travel as raw buffers (``Send``/``Recv``);
headers are small dicts of plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from calib._mpi import launched_by_mpiexec

from ._errors import OfflineError
from ._stream import Record

TAG_REQ = 11  #: worker -> rank 0: the batch it finished (with partial sums), give me more
TAG_REP = 12  #: rank 0 -> worker: run start, a batch, end of run, end
TAG_ROWS = 21  #: worker -> writer: a block of per-event rows, or done
TAG_PART = 31  #: writer -> rank 0: my part file is complete
_ARRAYS = 100  #: added to a tag for the raw arrays that follow a header


def world(mode: str = "auto") -> Any | None:
    """``MPI.COMM_WORLD`` under mpiexec with more than one rank (mode "auto") or always ("on");
    None for a serial run (mode "off", or no launcher, or no usable mpi4py under "auto" when
    the launcher started one rank)."""
    if mode not in ("auto", "on", "off"):
        raise OfflineError(f"mpi must be auto, on or off, not {mode!r}")
    if mode == "off" or (mode == "auto" and not launched_by_mpiexec()):
        return None
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as exc:  # RuntimeError: mpi4py without an MPI library
        raise OfflineError(f"MPI needs mpi4py and an MPI library ('pip install mpi4py mpich'): "
                           f"{exc}; or run serially (mpi='off')") from None
    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 or mode == "on" else None


@dataclass(frozen=True)
class Roles:
    """Who does what: rank 0 reads small data; workers read big data; writers write parts."""

    rank: int
    size: int
    workers: tuple[int, ...]
    writers: tuple[int, ...]  #: dedicated writer ranks; empty: every worker writes its part

    @classmethod
    def of(cls, rank: int, size: int, n_writers: int = 0) -> Roles:
        if size < 2:
            raise OfflineError("MPI needs at least 2 ranks (rank 0 reads the small data)")
        if n_writers < 0 or size - n_writers < 2:
            raise OfflineError(f"{size} ranks cannot hold rank 0, a worker and {n_writers} "
                               "writer(s)")
        workers = tuple(range(1, size - n_writers))
        return cls(rank, size, workers, tuple(range(size - n_writers, size)))

    @property
    def role(self) -> str:
        if self.rank == 0:
            return "smd0"
        return "worker" if self.rank in self.workers else "writer"

    def writer_of(self, worker: int) -> int:
        """The rank that writes a worker's rows (itself without dedicated writers)."""
        if not self.writers:
            return worker
        return self.writers[(worker - 1) % len(self.writers)]

    def clients_of(self, writer: int) -> list[int]:
        return [w for w in self.workers if self.writer_of(w) == writer]

    def part_of(self, writer: int) -> int:
        """The part-file number of a writer rank."""
        ranks = self.writers or self.workers
        return ranks.index(writer)

    @property
    def n_parts(self) -> int:
        return len(self.writers or self.workers)

    @property
    def writer_ranks(self) -> tuple[int, ...]:
        return self.writers or self.workers


def send(comm: Any, dest: int, tag: int, header: dict[str, Any],
         arrays: list[np.ndarray] | None = None) -> None:
    """A header (mpi4py ``send``) then each array as a raw buffer (``Send``)."""
    arrays = [np.require(a, requirements="C") for a in arrays or []]
    header = {**header, "_arrays": [(a.dtype.str, list(a.shape)) for a in arrays]}
    comm.send(header, dest=dest, tag=tag)
    for a in arrays:
        comm.Send(a.reshape(-1).view(np.uint8), dest=dest, tag=tag + _ARRAYS)


def recv(comm: Any, source: int, tag: int) -> tuple[int, dict[str, Any], list[np.ndarray]]:
    """(source rank, header, arrays) of a message from ``source`` (may be MPI.ANY_SOURCE)."""
    from mpi4py import MPI

    status = MPI.Status()
    header = comm.recv(source=source, tag=tag, status=status)
    src = status.Get_source()
    arrays = []
    for dtype, shape in header.pop("_arrays"):
        a = np.empty(shape, np.dtype(dtype))
        comm.Recv(a.reshape(-1).view(np.uint8), source=src, tag=tag + _ARRAYS)
        arrays.append(a)
    return src, header, arrays


def pack_records(items: list[tuple[Record, int, int]]) -> tuple[list[Any], np.ndarray]:
    """Records with their (batch, index) as a header list and one byte array of dgrams."""
    meta = []
    parts = []
    for rec, batch, index in items:
        mv = rec.dgram.memoryview()
        meta.append((rec.stream, rec.chunk, rec.offset, rec.size, batch, index, len(mv)))
        parts.append(np.frombuffer(mv, np.uint8))
    data = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    return meta, data


def unpack_records(meta: list[Any], data: np.ndarray) -> list[tuple[Record, int, int]]:
    from daq.xtc import Dgram

    out = []
    pos = 0
    for stream, chunk, offset, size, batch, index, n in meta:
        dg = Dgram(data, pos, source=f"<stream {stream} from rank 0>")
        pos += n
        out.append((Record(stream, dg, chunk, offset, size), batch, index))
    return out
