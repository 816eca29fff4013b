"""Every benchmark suite runs briefly as a test so it never rots (no timing assertions)."""

from __future__ import annotations

import importlib

import pytest

from benchmarks.__main__ import SUITES


@pytest.mark.parametrize("module", SUITES)
def test_benchmark_suite_runs_quickly(module: str) -> None:
    mod = importlib.import_module(f"benchmarks.{module}")
    results = mod.run(quick=True)
    assert results, "a suite must report at least one figure"
    for r in results:
        assert r.suite == mod.SUITE and r.value >= 0 and r.unit
