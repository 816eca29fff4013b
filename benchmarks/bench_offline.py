"""Offline access: small-data scan rate, a filtered run vs reading everything, MPI reduction."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ._common import Result, scratch

SUITE = "offline"

_REDUCE = '''
import sys, time
from ami.offline import DataSource
ds = DataSource(exp="bo", run=2, dir=sys.argv[1], batch_size=4)
smd = ds.smalldata(sys.argv[2], gather_interval=20)
t0 = time.perf_counter()
from ami.offline import droplets
n = 0
for run in ds.runs():
    det = run.Detector("epix")
    for evt in run.events():
        c = det.calib(evt)
        smd.event(evt, {"epix": {"n": len(droplets(c, 2.0, 1.2))}})
        n += 1
smd.done()
if ds.rank == 0:
    print(f"SECONDS {time.perf_counter() - t0}")
'''


def _record(root: Path, events: int, epix: bool) -> None:
    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo))
    try:
        from tests.offline._runs import SimRun  # the tests' recorder: the DAQ's file layout
    finally:
        sys.path.remove(str(repo))
    sim = SimRun(root, "bo", 2 if epix else 1, streams=2, epix=epix, steps=1,
                 events_per_step=events, slow_every=120)
    sim.record()
    if epix:
        from calib import CalibStore, deploy_truth

        deploy_truth(CalibStore(root / "bo" / "calib"), "epix100", "epix")


def _scan_rate(root: Path) -> float:
    from ami.offline import DataSource

    t0 = time.perf_counter()
    n = 0
    for run in DataSource(exp="bo", run=1, dir=root).runs():
        gas = run.Detector("gasdet")
        for evt in run.events():
            gas.f_11_ENRC(evt)
            n += 1
    return n / (time.perf_counter() - t0)


def _filtered(root: Path) -> tuple[float, float]:
    from ami.offline import DataSource

    def read(keep_every: int) -> float:
        t0 = time.perf_counter()
        ds = DataSource(exp="bo", run=2, dir=root,
                        filter=lambda e: int(e.get("timing", "counter")) % keep_every == 0)
        for run in ds.runs():
            det = run.Detector("epix")
            for evt in run.events():
                det.calib(evt)
        return time.perf_counter() - t0

    read(1)  # page cache, numba kernels
    return read(1), read(10)


def _mpi(root: Path, ranks: int) -> float | None:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        found = shutil.which("mpiexec")
        if found is None:
            return None
        mpiexec = Path(found)
    script = root / "reduce.py"
    script.write_text(_REDUCE)
    cmd = [sys.executable, str(script), str(root), str(root / f"o{ranks}.h5")]
    if ranks > 1:
        cmd = [str(mpiexec), "-n", str(ranks), *cmd]
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(
        [str(mpiexec.parent.parent / "lib"), os.environ.get("LD_LIBRARY_PATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode != 0:
        return None
    for line in proc.stdout.splitlines():
        if line.startswith("SECONDS"):
            return float(line.split()[1])
    return None


def run(quick: bool) -> list[Result]:
    out: list[Result] = []
    with scratch("bench_offline_") as root:
        n_small = 300 if quick else 20000
        n_big = 12 if quick else 200
        _record(root, n_small, epix=False)
        _record(root, n_big, epix=True)
        out.append(Result(SUITE, "small-data scan (timing + gasdet, 2 streams)",
                          _scan_rate(root), "events/s", note=f"{n_small} events"))
        full, filtered = _filtered(root)
        out.append(Result(SUITE, "ePix100 calib, every event", n_big / full, "events/s"))
        out.append(Result(SUITE, "filtered on small data (1 in 10) vs all", full / filtered,
                          "x faster", note="big data of rejected events never read"))
        if not quick:
            serial = _mpi(root, 1)
            for ranks, label in ((2, "1 worker"), (3, "2 workers")):
                t = _mpi(root, ranks)
                if t is not None and serial is not None:
                    out.append(Result(SUITE, f"droplets under mpiexec -n {ranks} ({label})",
                                      n_big / t, "events/s",
                                      note=f"serial {n_big / serial:.1f} events/s"))
    return out
