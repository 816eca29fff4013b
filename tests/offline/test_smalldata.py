"""The smalldata producer: HDF5 layout, values, cubes vs brute force, parts, MPI vs serial."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ami.offline import DataSource, produce
from ami.offline._h5 import PartWriter, columns, join

from ._runs import SimRun, Truth

CONFIG = '''
from ami.offline import BoolFilter, CompositeFilter, CubeSpec
epicsPV = ["XPP:MON:TEMP:01"]
def getROIs(run):
    return {"epix": [{"ROI": [[100, 200], [50, 300]], "name": "ROI_0", "proj_ax": 0}]}
def get_droplet2photon(run):
    return {"epix": {"droplet": {"threshold": 5, "thresholdLow": 3, "useRms": True},
                     "d2p": {"aduspphot": 9.5}, "nData": None}}
def get_azav(run):
    return {"epix": {"eBeam": 9.5, "center": [0, 0], "dis_to_sam": 100.0, "nbins": 40}}
def get_wf_integrate(run):
    return {"acqiris": {"sig_roi": [90, 130], "bkg_roi": [0, 50], "negative_signal": True}}
def get_wf_hitfinder(run):
    return {"acqiris": {"delay": 3, "fraction": 0.5, "threshold": 100, "nmax_hits": 8}}
def get_sum_algos(run):
    return {"epix": ["calib", "calib_square", "calib_max", "calib_thresADU5"]}
def cube(run):
    return CubeSpec(fields=["epix/ROI_0_sum", "epix/image", "gasdet/f_11_ENRC"],
                    screener=CompositeFilter(
                        [BoolFilter("lightStatus", "laser", True, "laser_on"),
                         BoolFilter("lightStatus", "laser", False, "laser_off")],
                        require_all=False))
'''

SCRIPT = '''
import sys
from ami.offline import produce
produce(sys.argv[1], "epx", 1, dir=sys.argv[2], out_dir=sys.argv[3], batch_size=2,
        gather_interval=3, writers=int(sys.argv[4]))
'''


def _load(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


@pytest.fixture(scope="module")
def serial(epix_run: tuple[Path, SimRun, Truth], tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[Path, dict[str, Any]]:
    root = epix_run[0]
    d = tmp_path_factory.mktemp("sd")
    (d / "cfg.py").write_text(CONFIG)
    result = produce(d / "cfg.py", "epx", 1, dir=root, out_dir=d / "out1", batch_size=2,
                     gather_interval=3)
    return d, result


def test_layout_and_values(serial: tuple[Path, dict[str, Any]],
                           epix_run: tuple[Path, SimRun, Truth]) -> None:
    root, _sim, truth = epix_run
    _d, result = serial
    assert result["events"] == len(truth.shots) == 12
    data = _load(result["smalldata"])
    n = len(truth.shots)
    assert data["timestamp"].tolist() == [s.timestamp64 for s in truth.shots]
    assert data["fiducials"].tolist() == [s.fiducial for s in truth.shots]
    for key in ("epix/ROI_0_sum", "epix/ROI_0_com", "epix/ROI_0_pj_ax_0_data",
                "epix/droplet2phot_nDroplets", "epix/droplet2phot_photon_nPhotons",
                "epix/azav_azav", "acqiris/wfintegrate_wfintegrate", "acqiris/cfd_nHits",
                "gasdet/f_11_ENRC", "lightStatus/laser", "scan/motor1", "scan/step",
                "epics/XPP:MON:TEMP:01", "timing/fiducial"):
        assert data[key].shape[0] == n, key
    lens = data["epix/var_droplet2phot_photon_sparse_len"]
    assert lens.tolist() == data["epix/droplet2phot_photon_nPhotons"].tolist()
    assert data["epix/var_droplet2phot_photon_sparse/row"].size == lens.sum()
    assert data["lightStatus/laser"].tolist() == [int(s.laser_on) for s in truth.shots]
    assert data["scan/motor1"].tolist() == [truth.scan[k] for k in truth.step_of]
    assert data["UserDataCfg/epix/ROI_0__ROI"].tolist() == [[100, 200], [50, 300]]
    assert data["UserDataCfg/epix/azav__q"].shape == (40,)
    # brute force from the DataSource
    total = None
    for run in DataSource(exp="epx", run=1, dir=root).runs():
        det = run.Detector("epix")
        good = det.constants("pixel_status") == 0
        for evt in run.events():
            c = det.calib(evt)
            roi = c[100:200, 50:300].astype(np.float64)
            assert data["epix/ROI_0_sum"][evt.index] == pytest.approx(
                float(roi[good[100:200, 50:300]].sum()), rel=1e-9)
            masked = np.where(good, c.astype(np.float64), 0)[100:200, 50:300]
            np.testing.assert_allclose(data["epix/ROI_0_pj_ax_0_data"][evt.index],
                                       masked.sum(axis=0), rtol=1e-9, atol=1e-6)
            total = c.astype(np.float64) if total is None else total + c
    np.testing.assert_allclose(data["Sums/epix_calib"], total, rtol=1e-12)


def test_cube_sums_and_counts_vs_brute_force(serial: tuple[Path, dict[str, Any]],
                                             epix_run: tuple[Path, SimRun, Truth]) -> None:
    root, _sim, truth = epix_run
    _d, result = serial
    cube = _load(result["cube"])
    rows = _load(result["smalldata"])
    laser = rows["lightStatus/laser"]
    step = rows["scan/step"]
    images: dict[tuple[str, int], np.ndarray] = {}
    for run in DataSource(exp="epx", run=1, dir=root).runs():
        det = run.Detector("epix")
        for evt in run.events():
            key = ("laser_on" if laser[evt.index] else "laser_off", int(step[evt.index]))
            img = det.image(evt).astype(np.float64)
            images[key] = images[key] + img if key in images else img
    assert cube["motor1"].tolist() == truth.scan
    for label, on in (("laser_on", 1), ("laser_off", 0)):
        for b in range(2):
            sel = (laser == on) & (step == b)
            assert cube[f"{label}/count"][b] == sel.sum()
            assert cube[f"{label}/epix/ROI_0_sum"][b] == pytest.approx(
                rows["epix/ROI_0_sum"][sel].sum(), rel=1e-12)
            assert cube[f"{label}/gasdet/f_11_ENRC"][b] == pytest.approx(
                rows["gasdet/f_11_ENRC"][sel].sum(), rel=1e-12)
            if sel.any():
                np.testing.assert_allclose(cube[f"{label}/epix/image"][b],
                                           images[(label, b)], rtol=1e-12)


def test_parts_join_in_event_order_with_fill(tmp_path: Path) -> None:
    a, b = PartWriter(tmp_path / "x_part0.h5"), PartWriter(tmp_path / "x_part1.h5")
    rows_a = [{"s": 1.0, "i": 3, "d/var_p/v": np.arange(2.0)}, {"s": 2.0}]
    rows_b = [{"s": 5.0, "only_b": np.ones(3, np.float32), "d/var_p/v": np.arange(3.0)}]
    a.append(np.array([0, 2]), *columns(rows_a))
    b.append(np.array([1]), *columns(rows_b))
    a.close()
    b.close()
    join(tmp_path / "x.h5", [a.path, b.path], sums={"tot": np.arange(3)}, config={"c": 1})
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert f["s"][:].tolist() == [1.0, 5.0, 2.0]
        assert f["i"][:].tolist() == [3, -99999, -99999]
        assert np.isnan(f["only_b"][0]).all() and f["only_b"][1].tolist() == [1, 1, 1]
        assert f["d/var_p_len"][:].tolist() == [2, 3, 0]
        assert f["d/var_p/v"][:].tolist() == [0, 1, 0, 1, 2]
        assert f["Sums/tot"][:].tolist() == [0, 1, 2] and f["UserDataCfg/c"][()] == 1


@pytest.mark.slow
def test_mpi_three_ranks_identical_to_serial(serial: tuple[Path, dict[str, Any]],
                                             epix_run: tuple[Path, SimRun, Truth]) -> None:
    pytest.importorskip("mpi4py")
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        found = shutil.which("mpiexec")
        if found is None:
            pytest.skip("no mpiexec (pip install mpich)")
        mpiexec = Path(found)
    d, result = serial
    (d / "mpi.py").write_text(SCRIPT)
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(
        [str(mpiexec.parent.parent / "lib"), os.environ.get("LD_LIBRARY_PATH", "")])}
    for n, writers, out in ((3, 0, "out3"), (4, 1, "out4")):
        proc = subprocess.run([str(mpiexec), "-n", str(n), sys.executable, str(d / "mpi.py"),
                               str(d / "cfg.py"), str(epix_run[0]), str(d / out), str(writers)],
                              capture_output=True, text=True, timeout=100, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        for name in ("epx_Run0001.h5", "cube_epx_r0001.h5"):
            serial_data = _load(Path(result["smalldata"]).parent / name)
            mpi_data = _load(d / out / name)
            assert serial_data.keys() == mpi_data.keys()
            for k, v in serial_data.items():
                w = mpi_data[k]
                assert np.asarray(v).tobytes() == np.asarray(w).tobytes(), (out, name, k)
        assert len(list((d / out).glob("epx_Run0001_part*.h5"))) == (writers or n - 1)
