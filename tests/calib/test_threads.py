"""``Calibrator(threads=N)`` (numba prange over bank rows) gives exactly the serial result.

Only int16 frames here: each raw dtype compiles another parallel kernel (~10 s), and the
gain-switching path is the same code as the serial kernel's, tested in test_kernels."""

from __future__ import annotations

import numpy as np
import pytest

from calib import CalibError, Calibrator, CommonMode


@pytest.mark.parametrize(("shape", "banks", "switching", "mode"), [
    ((4, 24, 16), (12, 8), False, 1),
    ((3, 24, 16), (8, 16), False, 7),
])
def test_threads_give_identical_results(shape: tuple[int, int, int], banks: tuple[int, int],
                                        switching: bool, mode: int) -> None:
    rng = np.random.default_rng(mode)
    G = 3 if switching else 1
    ped = rng.normal(100, 10, (G, *shape) if switching else shape).astype(np.float32)
    if switching:
        gains = rng.choice(np.array([0, 1, 3], np.uint16), shape, p=[0.8, 0.1, 0.1])
        raw = (gains << 14) | rng.integers(50, 200, shape).astype(np.uint16)
    else:
        raw = rng.integers(50, 200, shape).astype(np.int16)
    status = (rng.random(shape) < 0.05).astype(np.uint64)
    cm = CommonMode(mode=mode, cormax=1000.0, npixmin=2)
    results = []
    for threads in (1, 2, 3, 64):
        cal = Calibrator(ped, status=status, common_mode=cm, banks=banks,
                         gain_switching=switching, threads=threads)
        assert cal.threads == min(threads, shape[0] * shape[1] // banks[0])
        results.append(cal.calib(raw))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_threads_must_be_positive() -> None:
    with pytest.raises(CalibError, match="threads must be >= 1"):
        Calibrator(np.zeros((2, 2), np.float32), threads=0)
