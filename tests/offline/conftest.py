"""Recorded runs shared by the offline tests (written once per session: they take seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from calib import CalibStore, deploy_truth

from ._runs import SimRun, Truth, record

try:
    import h5py  # noqa: F401
except ImportError:  # HDF5 output needs h5py (a dependency): only reading can be tested
    collect_ignore = ["test_smalldata.py", "test_translate.py", "test_example_and_bench.py"]


@pytest.fixture(scope="session")
def scalar_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimRun, Truth]:
    """3 streams, 3 steps of 12 events, SlowUpdates every 7 events, an Acqiris, small chunks."""
    root = tmp_path_factory.mktemp("scalar")
    sim, truth = record(root, "scl", 3, streams=3, steps=3, events_per_step=12, acqiris=True,
                        chunk_bytes=40_000)
    return root, sim, truth


@pytest.fixture(scope="session")
def epix_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimRun, Truth]:
    """2 streams, 2 steps of 6 events with an ePix100 (true constants deployed) and Acqiris."""
    root = tmp_path_factory.mktemp("epix")
    sim, truth = record(root, "epx", 1, streams=2, steps=2, events_per_step=6, epix=True,
                        acqiris=True)
    deploy_truth(CalibStore(root / "epx" / "calib"), "epix100", "epix")
    return root, sim, truth
