"""``calib``: dark runs, deploying, showing and comparing constants (``python -m calib``).

::

    calib darks (--exp E --run R [--dir ROOT] | --files F...) [--det NAME] [--deploy]
    calib darks --exp E --run R0 R1 R2 --det jungfrau      # one dark run per gain stage
    mpiexec -n 4 python -m calib darks ...        # same constants, events split over ranks
    calib deploy FILE --det NAME [--type T] [--ctype C] --runs 12-end
    calib show DET --run R
    calib diff DET --runs A B  |  calib diff --files OLD NEW
    calib truth --det NAME [--kind K] [--param k=v] --runs 1-end
    calib geometry FILE

Every problem (bad files, wrong shapes, missing constants) prints ``calib: error: ...`` and
exits with status 1; a wrong command line exits with 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from daq.xtc import XtcError

from ._commands import COMMANDS, CliError
from ._dark import DarkThresholds
from ._errors import CalibError
from ._store import FORMATS


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib-dir", help="constants store (default: ROOT/EXP/calib with --exp)")


def _add_run(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--exp", help="experiment name")
    g.add_argument("--run", type=int, nargs="+", metavar="RUN",
                   help="run number; a gain-switching detector (Jungfrau) takes three, one "
                        "dark run per gain stage, in any order")
    g.add_argument("--dir", default="data", help="data root (default %(default)s)")
    g.add_argument("--files", nargs="+",
                   help="XTC2 chunks instead of --exp/--run (chunks of several runs are "
                        "grouped by the run number in their names)")
    g.add_argument("--inprogress", action="store_true",
                   help="also read .inprogress files (a run still being written)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calib", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = DarkThresholds()

    p = sub.add_parser("darks", help="pedestals, rms and bad pixels of a dark run")
    _add_run(p)
    _add_store(p)
    p.add_argument("--det", help="detector name (default: the run's only area detector)")
    p.add_argument("--max-events", type=int, help="use the first N events of the run")
    p.add_argument("--block-size", type=int, default=64,
                   help="events per batch of the sums: the unit split between MPI ranks")
    p.add_argument("--threads", type=int, default=0,
                   help="numba threads per process for the sums (default 0: the CPU cores "
                        "this process may use, shared among the MPI ranks)")
    t = p.add_argument_group("bad-pixel thresholds")
    t.add_argument("--dead-rms", type=float, default=d.dead_rms,
                   help="DEAD below this x median rms (default %(default)s)")
    t.add_argument("--noisy-rms", type=float, default=d.noisy_rms,
                   help="NOISY above this x median rms (default %(default)s)")
    t.add_argument("--hot-sigma", type=float, default=d.hot_sigma,
                   help="HOT: pedestal above median + this x spread (default %(default)s)")
    t.add_argument("--cold-sigma", type=float, default=d.cold_sigma,
                   help="COLD: pedestal below median - this x spread (default %(default)s)")
    t.add_argument("--saturation", type=float, help="SATURATED: pedestal at or above (ADU)")
    t.add_argument("--per-segment", action="store_true", help="medians per segment")
    t.add_argument("--off-stage", type=float, default=d.off_stage,
                   help="gain switching: BAD_GAIN when in another gain stage in more than this "
                        "fraction of its stage's dark events (default %(default)s)")
    p.add_argument("--deploy", action="store_true", help="write the constants to the store")
    p.add_argument("--runs", help="validity when deploying, e.g. 12-end (default RUN-end)")
    p.add_argument("--fmt", choices=FORMATS, default="data", help="file format when deploying")
    p.add_argument("--out", help="also save the constants to this .npz (for calib deploy)")
    p.add_argument("--mpi", choices=("auto", "on", "off"), default="auto",
                   help="auto: use MPI when started by mpiexec")

    p = sub.add_parser("deploy", help="deploy constants from a file for a range of runs")
    p.add_argument("file", help=".npy, psana text (.data/.txt), geometry, or calib darks --out")
    p.add_argument("--det", help="detector name (default: the one in a darks .npz)")
    p.add_argument("--type", dest="det_type", help="detector type (cspad, epix100, ...)")
    p.add_argument("--ctype", help="constant type (pedestals, pixel_status, geometry, ...)")
    p.add_argument("--runs", required=True, help="validity, e.g. 12-end or 12-20")
    p.add_argument("--fmt", choices=FORMATS, help="format in the store (default: as given)")
    p.add_argument("--exp", help="experiment (store under DIR/EXP/calib)")
    p.add_argument("--dir", default="data", help="data root (default %(default)s)")
    _add_store(p)

    p = sub.add_parser("show", help="the constants valid for a run, and whether they work")
    p.add_argument("det", help="detector name")
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--type", dest="det_type", help="detector type (default: from the store)")
    p.add_argument("--exp")
    p.add_argument("--dir", default="data")
    _add_store(p)

    p = sub.add_parser("diff", help="compare constants of two runs, or two files")
    p.add_argument("det", nargs="?", help="detector name (with --runs)")
    p.add_argument("--runs", nargs=2, type=int, metavar=("OLD", "NEW"))
    p.add_argument("--files", nargs=2, metavar=("OLD", "NEW"))
    p.add_argument("--ctype", action="append",
                   help="constant type (repeatable; default pedestals, pixel_rms, pixel_status)")
    p.add_argument("--type", dest="det_type")
    p.add_argument("--atol", type=float, default=0.0, help="differences up to this are equal")
    p.add_argument("--exp")
    p.add_argument("--dir", default="data")
    _add_store(p)

    p = sub.add_parser("truth", help="deploy a simulated detector's true constants")
    p.add_argument("--det", required=True, help="detector name (as in the DAQ config)")
    p.add_argument("--kind", help="simulator kind (default: from --config, else the name)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="simulator parameter (repeatable; JSON values)")
    p.add_argument("--config", help="partition TOML: take the kind and params from it")
    p.add_argument("--runs", default="0-end", help="validity (default %(default)s)")
    p.add_argument("--fmt", choices=FORMATS, default="npy")
    p.add_argument("--exp")
    p.add_argument("--dir", default="data")
    _add_store(p)

    p = sub.add_parser("geometry", help="check a geometry file and print what it describes")
    p.add_argument("file")
    p.add_argument("--type", dest="det_type", help="also check it fits this detector type")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (CalibError, CliError, XtcError, OSError, ValueError) as exc:
        print(f"calib: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
