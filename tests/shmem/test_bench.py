"""The benchmark suite runs, briefly, so that it never rots (figures are not checked)."""

from __future__ import annotations

import pytest

from benchmarks.bench_shmem import SUITE, run


@pytest.mark.slow
def test_bench_shmem_quick() -> None:
    results = run(quick=True)
    assert {r.suite for r in results} == {SUITE}
    assert len(results) == 7 and all(r.value > 0 for r in results)
