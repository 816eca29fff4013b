"""The numba kernels agree bit for bit with their NumPy references."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from daq.sim._kernels import (
    NOISE_SCALE,
    apply_signal,
    apply_signal_reference,
    compose_dense,
    compose_dense_reference,
)
from daq.sim._noise import MIN_BANK_LENGTH, NoiseStream, bank_length, noise_bank


def _inputs(seed: int, rows: int, nbanks: int, bank_w: int, stages: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = rows * nbanks * bank_w
    return {
        "ped": rng.uniform(-50, 17000, (stages, n)).astype(np.float32),
        "rms": rng.uniform(0, 40, (stages, n)).astype(np.float32),
        "gain": rng.uniform(0.05, 50, (stages, n)).astype(np.float32),
        "bank": rng.integers(-32767, 32768, n + 128).astype(np.int16),
        "cmrow": rng.normal(0, 20, (rows, nbanks)),
        "tmpl": rng.uniform(0, 300, n).astype(np.float32),
    }


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 12),
    nbanks=st.integers(1, 4),
    bank_w=st.integers(1, 40),
    dtype=st.sampled_from(["<i2", "<u2"]),
    dense_signal=st.booleans(),
    start=st.integers(0, 100),
)
def test_compose_dense_matches_reference(
    seed: int, rows: int, nbanks: int, bank_w: int, dtype: str, dense_signal: bool, start: int
) -> None:
    a = _inputs(seed, rows, nbanks, bank_w, 1)
    n = rows * nbanks * bank_w
    tmpl = a["tmpl"] if dense_signal else a["tmpl"][:0]
    args = (a["ped"][0], a["rms"][0], a["bank"], start, a["cmrow"], bank_w, 0, 16383, tmpl, 1.7)
    fast = compose_dense(np.empty(n, dtype), *args)
    ref = compose_dense_reference(np.empty(n, dtype), *args)
    assert np.array_equal(fast, ref)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 8),
    nbanks=st.integers(1, 4),
    bank_w=st.integers(1, 30),
    stages=st.sampled_from([1, 3]),
    nsig=st.integers(0, 300),
    dense_signal=st.booleans(),
)
def test_apply_signal_matches_reference(
    seed: int, rows: int, nbanks: int, bank_w: int, stages: int, nsig: int, dense_signal: bool
) -> None:
    a = _inputs(seed, rows, nbanks, bank_w, stages)
    rng = np.random.default_rng(seed + 1)
    n = rows * nbanks * bank_w
    idx = rng.integers(0, n, nsig).astype(np.int64)  # duplicates on purpose
    kev = rng.exponential(2000.0, nsig)
    thresholds = np.array([300.0, 9000.0][: stages - 1])
    bits = np.array([0, 1, 3][:stages], dtype=np.int64)
    shift = 14 if stages > 1 else 0
    tmpl = a["tmpl"] if dense_signal and stages == 1 else a["tmpl"][:0]
    base = rng.integers(0, 60000, n).astype(np.uint16)
    common = (a["ped"], a["rms"], a["gain"], a["bank"], 5, a["cmrow"], nbanks * bank_w, bank_w)
    tail = (thresholds, bits, shift, 0, 16383, tmpl, 0.8)
    scratch = np.zeros(n)
    fast = apply_signal(base.copy(), idx, kev, scratch, *common, *tail)
    ref = apply_signal_reference(base.copy(), idx, kev, scratch, *common, *tail)
    assert np.array_equal(fast, ref)
    assert not scratch.any()  # left clean for the next event


def test_noise_bank_statistics_and_sharing() -> None:
    length = bank_length(10)
    assert length >= MIN_BANK_LENGTH and all(length % p for p in range(2, 2000))
    bank = noise_bank(0, length)
    assert bank is noise_bank(0, length) and not bank.flags.writeable
    z = bank[:length].astype(np.float64) * NOISE_SCALE
    assert abs(z.mean()) < 1e-4 and abs(z.std() - 1) < 1e-4
    assert np.array_equal(bank[:length], bank[length:])
    stream = NoiseStream(key=12345, npix=1000)
    starts = [stream.start(p) for p in range(0, 30_000, 3)]
    assert len(set(starts)) == len(starts)  # no two events read the same place
