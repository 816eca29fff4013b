"""The calib benchmark suite runs briefly as a test so it never rots (no timing assertions)."""

from __future__ import annotations

from benchmarks import bench_calib


def test_calib_benchmarks_run_quickly() -> None:
    results = bench_calib.run(quick=True)
    assert len(results) == 8
    for r in results:
        assert r.suite == bench_calib.SUITE and r.value > 0 and r.unit
