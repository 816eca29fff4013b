"""``python -m benchmarks [--quick] [--only SUITE ...] [--json FILE]``"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

from ._common import Result, machine

SUITES = ["bench_xtc", "bench_shmem", "bench_ami", "bench_sim_batch", "bench_daq", "bench_calib",
          "bench_gui", "bench_offline"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--only", nargs="*", default=None, help="suite names, e.g. xtc")
    parser.add_argument("--json", default=None, help="also write results to this file")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"command: python -m benchmarks {' '.join(argv if argv is not None else sys.argv[1:])}")
    results: list[Result] = []
    for mod_name in SUITES:
        mod = importlib.import_module(f"benchmarks.{mod_name}")
        if args.only and mod.SUITE not in args.only:
            continue
        t0 = time.perf_counter()
        res = mod.run(quick=args.quick)
        for r in res:
            print(r.row(), flush=True)
        print(f"# {mod.SUITE}: {time.perf_counter() - t0:.1f} s", flush=True)
        results.extend(res)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "results": [r.asdict() for r in results]}, fh,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
