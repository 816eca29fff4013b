"""Offline access and reduction, end to end (see docs/offline.md).

    python examples/offline_example.py                     # records a small run, then reads it
    python examples/offline_example.py --exp E --run R --dir ROOT [--det epix]

Without ``--exp`` it records a 2-stream run of 2 scan steps (timing, gas detector, EPICS,
an ePix100 with its true constants deployed) in a temporary folder first. Then it walks the run
step by step with psana-style detector handles, uses a small-data filter, jumps to an event by
timestamp, and writes smalldata HDF5 plus a laser on/off cube.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from ami.offline import (
    BoolFilter,
    CompositeFilter,
    CubeSpec,
    DataSource,
    build_config,
    produce,
)


def record_demo_run(root: Path, expt: str = "demo01", run: int = 1, steps: int = 2,
                    events_per_step: int = 8, streams: int = 2) -> None:
    """A run as the DAQ records it: Configure, BeginRun, per step BeginStep (scan value), Enable,
    events split over the streams (SlowUpdates with EPICS between), Disable, EndStep; EndRun."""
    from calib import CalibStore, deploy_truth
    from daq.sim import make_detector
    from daq.timing import TimingConfig, TimingSystem
    from daq.xtc import (
        NAMES_ID_STEPINFO,
        Alg,
        DataType,
        Dgram,
        Field,
        Names,
        NamesBlock,
        ParentBlock,
        ShapesDataBlock,
        TransitionId,
        event_src,
        make_dgram,
        segment_src,
    )
    from daq.xtc._stream import StreamWriter, runinfo_names

    timing = TimingSystem(TimingConfig.from_dict({"start_time": 1.7e9, "laser_off_every": 2}))
    small = [make_detector("timing", "timing"), make_detector("gasdet", "gasdet")]
    epix = make_detector("epix100", "epix")
    epics = make_detector("epics", "epics", rate_hz=100.0)
    names = [Names.create(d.det_name, d.det_type, d.xtc_fields(), node_id=1, index=k,
                          det_id=d.det_id, alg=d.alg) for k, d in enumerate(small)]
    epix_names = Names.create("epix", "epix100", epix.xtc_fields(), node_id=2, index=0,
                              det_id=epix.det_id, alg=epix.alg)
    epics_names = Names.create("epics", "epics", epics.xtc_fields(), node_id=1, index=9)
    info = runinfo_names(1)
    scan = Names.create("scan", "scan", [Field("step", DataType.UINT32),
                                         Field("motor1", DataType.DOUBLE)], node_id=1,
                        index=NAMES_ID_STEPINFO, alg=Alg.of("raw", 2, 0, 0))
    writers = [StreamWriter(root, expt, run, s) for s in range(streams)]
    slot = 0

    def write(service: TransitionId, blocks1: list, blocks2: list, stream: int | None = None
              ) -> None:
        nonlocal slot
        shot = timing.shot(slot)
        slot += 1
        parents = [ParentBlock(segment_src(1), blocks1), ParentBlock(segment_src(2), blocks2)]
        for s in ([stream] if stream is not None else range(streams)):
            writers[s].write(Dgram(make_dgram(service, shot.seconds, shot.nanoseconds, parents,
                                              root_src=event_src(s)).tobytes()))

    for w in writers:
        w.open()
    write(TransitionId.Configure, [NamesBlock(n) for n in (*names, epics_names, info, scan)],
          [NamesBlock(epix_names)])
    write(TransitionId.BeginRun, [ShapesDataBlock(info, {"expt": expt, "runnum": run})], [])
    n = 0
    for step in range(steps):
        write(TransitionId.BeginStep, [ShapesDataBlock(scan, {"step": step,
                                                              "motor1": 0.5 * step})], [])
        write(TransitionId.Enable, [], [])
        for _ in range(events_per_step):
            if n % 5 == 0:
                write(TransitionId.SlowUpdate,
                      [ShapesDataBlock(epics_names, epics.read(timing.shot(slot)))], [])
            shot = timing.shot(slot)
            write(TransitionId.L1Accept,
                  [ShapesDataBlock(nm, d.read(shot)) for nm, d in zip(names, small, strict=True)],
                  [ShapesDataBlock(epix_names, epix.read(shot))], stream=n % streams)
            n += 1
        write(TransitionId.Disable, [], [])
        write(TransitionId.EndStep, [], [])
    write(TransitionId.EndRun, [], [])
    for w in writers:
        w.close()
    deploy_truth(CalibStore(root / expt / "calib"), "epix100", "epix")


def walk(exp: str, run: int, root: Path, det_name: str) -> None:
    ds = DataSource(exp=exp, run=run, dir=root)
    for r in ds.runs():
        print(f"run {r.runnum} of {r.expt}: detectors {sorted(r.detnames)}")
        det = r.Detector(det_name)
        pvs = r.epics_names[:1]
        for step in r.steps():
            sums = []
            for evt in step.events():
                img = det.image(evt)  # calibrated and placed by the geometry
                sums.append(float(np.nansum(img)))
                pv = r.Detector(pvs[0])(evt) if pvs else None
            print(f"  step {step.index} {step.scan}: {len(sums)} events, "
                  f"mean image sum {np.mean(sums):.1f}, last {pvs[0] if pvs else 'PV'} = {pv}")
        ts = r.timestamps
        evt = r.event(int(ts[len(ts) // 2]))
        print(f"  random access: event #{evt.index} fiducial {evt.fiducial} "
              f"pulse id {evt.pulse_id}")
    laser_only = DataSource(exp=exp, run=run, dir=root,
                            filter=lambda e: e.get("timing", "laser_on") == 1)
    for r in laser_only.runs():
        kept = sum(1 for _ in r.events())
        print(f"  filter on small data: {kept} laser-on events, big data read "
              f"{r.big.reads} times, {r.stats['filtered_out']} events never read")


def reduce(exp: str, run: int, root: Path, det_name: str, out: Path) -> None:
    ns = {
        "getROIs": lambda run: {det_name: [{"ROI": [[100, 300], [100, 400]], "name": "ROI_0",
                                            "proj_ax": 0}]},
        "get_droplet2photon": lambda run: {det_name: {
            "droplet": {"threshold": 5, "thresholdLow": 3, "useRms": True},
            "d2p": {"aduspphot": 9.5}, "nData": None}},
        "get_sum_algos": lambda run: {det_name: ["calib", "calib_max"]},
        "cube": lambda run: CubeSpec(fields=[f"{det_name}/ROI_0_sum", f"{det_name}/image"],
                                     screener=CompositeFilter([
                                         BoolFilter("lightStatus", "laser", True, "laser_on"),
                                         BoolFilter("lightStatus", "laser", False,
                                                    "laser_off")], require_all=False)),
    }
    result = produce(build_config(ns, run), exp, run, dir=root, out_dir=out)
    print(f"smalldata: {result['smalldata']} ({result['events']} events); "
          f"cube: {result['cube']}")
    import h5py

    with h5py.File(result["smalldata"], "r") as f:
        print(f"  photons per event: {f[f'{det_name}/droplet2phot_photon_nPhotons'][:]}")
    with h5py.File(result["cube"], "r") as f:
        print(f"  cube laser_on counts per step: {f['laser_on/count'][:]}, "
              f"laser_off: {f['laser_off/count'][:]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exp")
    p.add_argument("--run", type=int, default=1)
    p.add_argument("--dir", default="data")
    p.add_argument("--det", default="epix", help="area detector to show (default epix)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="offline_example_") as tmp:
        root = Path(args.dir)
        exp = args.exp
        if exp is None:
            root, exp = Path(tmp), "demo01"
            record_demo_run(root, exp, args.run)
            print(f"recorded run {args.run} of {exp} in {root}")
        walk(exp, args.run, root, args.det)
        reduce(exp, args.run, root, args.det, Path(tmp) / "hdf5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
