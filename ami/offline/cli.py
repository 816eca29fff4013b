"""``ami smalldata CONFIG --exp E --run R``: reduce a run to HDF5 (and a cube) with a config.

Serial, or under ``mpiexec -n N ami smalldata ...`` (rank 0 reads the small data, the other
ranks reduce events and write part files, joined at the end). ``main(argv)`` is what the
``ami smalldata`` sub-command calls.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from ._errors import OfflineError


def build_parser(prog: str = "ami smalldata") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Reduce a run to smalldata HDF5 "
                                "(smalldata_tools style) and optionally a cube")
    p.add_argument("config", help="Python config file (getROIs, get_droplet2photon, cube, ...)")
    p.add_argument("--exp", required=True, help="experiment name")
    p.add_argument("--run", type=int, required=True, help="run number")
    p.add_argument("--dir", default="data", help="data root (default %(default)s)")
    p.add_argument("--out", default=None,
                   help="output folder (default <dir>/<exp>/hdf5/smalldata)")
    p.add_argument("--nevents", type=int, default=None, help="stop after N events")
    p.add_argument("--gather-interval", type=int, default=None,
                   help="rows written per batch (default: the config's, else 100)")
    p.add_argument("--batch-size", type=int, default=10,
                   help="events per batch handed to an MPI worker (default %(default)s)")
    p.add_argument("--calib-dir", default=None, help="constants (default <dir>/<exp>/calib)")
    p.add_argument("--live", action="store_true", help="follow a run still being recorded")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="live: end after this many seconds without data (default %(default)s)")
    p.add_argument("--mpi", choices=("auto", "on", "off"), default="auto",
                   help="auto: MPI when started by mpiexec (default)")
    p.add_argument("--writers", type=int, default=0,
                   help="MPI: dedicated writer ranks (default 0: every worker writes a part)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ._producer import produce

    t0 = time.perf_counter()
    try:
        result = produce(args.config, args.exp, args.run, dir=args.dir, out_dir=args.out,
                         nevents=args.nevents, gather_interval=args.gather_interval,
                         calib_dir=args.calib_dir, live=args.live, mpi=args.mpi,
                         writers=args.writers, batch_size=args.batch_size,
                         timeout=args.timeout)
    except OfflineError as exc:
        print(f"ami smalldata: error: {exc}", file=sys.stderr)
        return 1
    if result:
        dt = time.perf_counter() - t0
        n = result.get("events")
        print(f"wrote {result['smalldata']}" + (f" ({n} events, {n / dt:.1f} events/s)"
                                                 if n is not None else f" in {dt:.1f} s"))
        if "cube" in result:
            print(f"wrote {result['cube']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
