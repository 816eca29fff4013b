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
    array as a raw buffer of its own dtype (``Send``: bulk data are never pickled, integers
    stay exact)."""
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    comm.send({**header, "n_arrays": len(flat), "sizes": [a.size for a in flat],
               "dtypes": [a.dtype.str for a in flat]}, dest=dest, tag=tag)
    for a in flat:
        comm.Send(a, dest=dest, tag=tag + 1)


def recv_arrays(comm: Any, source: int, tag: int = 7) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The counterpart of :func:`send_arrays`."""
    header = comm.recv(source=source, tag=tag)
    arrays = []
    for size, dtype in zip(header["sizes"], header["dtypes"], strict=True):
        buf = np.empty(int(size), np.dtype(dtype))
        comm.Recv(buf, source=source, tag=tag + 1)
        arrays.append(buf)
    return header, arrays
