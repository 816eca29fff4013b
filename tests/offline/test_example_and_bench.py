"""The example script runs (it records its own run) and the benchmark suite runs briefly."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_offline_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    ns = runpy.run_path(str(REPO / "examples" / "offline_example.py"), run_name="example")
    assert ns["main"]([]) == 0
    out = capsys.readouterr().out
    assert "random access" in out and "cube laser_on counts" in out


def test_offline_benchmark_quick() -> None:
    from benchmarks import bench_offline

    results = bench_offline.run(quick=True)
    assert results and all(r.suite == "offline" and r.value > 0 for r in results)
