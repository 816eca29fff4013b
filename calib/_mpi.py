"""Optional MPI (mpi4py with the ``mpich`` wheel): the world communicator, or None.

mpi4py is imported only when asked for, or when the process looks started by ``mpiexec``: with
the mpi4py wheel but no MPI library, ``import mpi4py.MPI`` raises RuntimeError (not
ImportError), and a serial command should not pay for MPI start-up at all.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._errors import CalibError

# set by mpiexec of MPICH (hydra: PMI_*), Open MPI and Slurm
_LAUNCHER_VARS = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS",
                  "SLURM_NTASKS")


def launched_by_mpiexec() -> bool:
    """True when an MPI launcher started this process with more than one rank."""
    for var in _LAUNCHER_VARS:
        value = os.environ.get(var)
        if value is not None:
            try:
                return int(value) > 1 or var.endswith("RANK")
            except ValueError:
                return True
    return False


def world(mode: str = "auto") -> Any | None:
    """``MPI.COMM_WORLD`` (mode "on", or "auto" under mpiexec), else None (serial).

    "on" without a usable mpi4py raises CalibError saying what to install.
    """
    if mode not in ("auto", "on", "off"):
        raise CalibError(f"--mpi must be auto, on or off, not {mode!r}")
    if mode == "off" or (mode == "auto" and not launched_by_mpiexec()):
        return None
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as exc:  # RuntimeError: mpi4py without an MPI library
        if mode == "auto":
            raise CalibError(
                f"started under mpiexec but mpi4py is not usable ({exc}); install it with "
                "'pip install mpi4py mpich', or run serially with --mpi off"
            ) from None
        raise CalibError(f"--mpi on needs mpi4py and an MPI library "
                         f"('pip install mpi4py mpich'): {exc}") from None
    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 or mode == "on" else None


def send_arrays(comm: Any, header: dict[str, Any], arrays: list[np.ndarray], dest: int,
                tag: int = 7) -> None:
    """A small header of plain ints, strings and lists (mpi4py's generic ``send``), then each
    array as a raw float64 buffer (``Send``: bulk data are never pickled)."""
    comm.send({**header, "n_arrays": len(arrays), "sizes": [a.size for a in arrays]},
              dest=dest, tag=tag)
    for a in arrays:
        comm.Send(np.ascontiguousarray(a, dtype=np.float64), dest=dest, tag=tag + 1)


def recv_arrays(comm: Any, source: int, tag: int = 7) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The counterpart of :func:`send_arrays`."""
    header = comm.recv(source=source, tag=tag)
    arrays = []
    for size in header["sizes"]:
        buf = np.empty(int(size), np.float64)
        comm.Recv(buf, source=source, tag=tag + 1)
        arrays.append(buf)
    return header, arrays
