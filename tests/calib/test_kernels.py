"""numba kernels against their NumPy references on random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from calib import _kernels as k
from calib import _select

finite32 = st.floats(-1e4, 1e4, width=32, allow_nan=False, allow_infinity=False)


def _median(values: np.ndarray, state: np.ndarray | None = None) -> np.float32:
    """The median as the common-mode kernel finds it: one bank holding ``values`` and a pixel
    excluded from the statistic that starts at 0, so it ends at exactly -median."""
    n = values.size + 1
    data = np.append(values, np.float32(0.0)).astype(np.float32)
    ok = np.ones(n, np.uint8)
    ok[-1] = 0
    u = np.uint64
    k.common_mode_bank(
        data, np.zeros(1, np.uint16), ok, np.zeros(1, np.float32), u(0), u(1), u(n), u(n),
        k.MODE_BANKS, np.float32(np.inf), 0, np.float32(np.inf), False, False,
        np.empty(n + 8, np.float32), np.empty(n + 8, np.float32),
        np.full(1, np.nan) if state is None else state, False, u(0),
    )
    return -data[-1]


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 600), elements=finite32))
def test_median_is_exactly_numpy_median(values: np.ndarray) -> None:
    assert _median(values) == _select.median_ref(values)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3000), st.integers(0, 2**32 - 1), st.sampled_from(["normal", "ties", "skew"]),
    st.floats(1e-3, 1e3),
)
def test_median_on_detector_like_groups(n: int, seed: int, kind: str, state: float) -> None:
    """Gaussian noise, integer ties and photon tails; ``state`` (the spread guess carried
    between groups) only steers the search, whatever its value."""
    rng = np.random.default_rng(seed)
    v = rng.normal(rng.normal(0, 20), 3, n)
    if kind == "ties":
        v = np.rint(v)
    elif kind == "skew":
        v[rng.random(n) < 0.2] += rng.uniform(20, 300)
    values = v.astype(np.float32)
    assert _median(values, np.full(1, state)) == _select.median_ref(values)


def test_median_special_values() -> None:
    for values in ([0.0, -0.0], [-0.0, -0.0, 1.0], [5.0] * 300, [1.0, 2.0], [3.0],
                   [1e30, -1e30, 0.0], [1.0] * 150 + [2.0] * 150):
        v = np.array(values, np.float32)
        assert _median(v) == _select.median_ref(v), values


def _cm_inputs(draw: st.DrawFn) -> dict:
    S = draw(st.integers(1, 3))
    br, bc = draw(st.sampled_from([(4, 8), (8, 4), (16, 16), (3, 5)]))
    R, C = br * draw(st.integers(1, 3)), bc * draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    switching = draw(st.booleans())
    G = 3 if switching else 1
    ped = rng.normal(100, 10, (G, S, R, C)).astype(np.float32)
    if switching:
        gains = rng.choice(np.array([0, 1, 3, 2], np.uint16), (S, R, C), p=[0.7, 0.1, 0.1, 0.1])
        raw = (gains << 14) | rng.integers(0, 400, (S, R, C)).astype(np.uint16)
    else:
        raw = rng.integers(0, 400, (S, R, C)).astype(draw(st.sampled_from([np.int16, np.uint16])))
        raw[rng.random(raw.shape) < 0.05] += 3000
    return dict(
        raw=raw, ped=ped, gm=(rng.uniform(0.5, 2, (G, S, R, C)) * (rng.random((G, S, R, C)) > 0.1)
                              ).astype(np.float32),
        cmok=(rng.random((S, R, C)) > 0.1).astype(np.uint8), banks=(br, bc),
        mode=draw(st.integers(0, 7)), cormax=np.float32(draw(st.sampled_from([1e9, 50.0, 5.0]))),
        npixmin=draw(st.sampled_from([0, 3, 10])),
        thr=np.float32(draw(st.sampled_from([np.inf, 300.0, 50.0]))),
        use_mean=draw(st.booleans()), switching=switching,
    )


@settings(max_examples=120, deadline=None)
@given(st.composite(_cm_inputs)())
def test_calibrate_matches_reference(a: dict) -> None:
    raw = a["raw"]
    S, R, C = raw.shape
    out = np.empty(raw.size, np.float32)
    size = a["banks"][0] * a["banks"][1] + 8
    k.calibrate(raw.reshape(-1), a["ped"].reshape(-1), a["gm"].reshape(-1), a["cmok"].reshape(-1),
                out, (S, R, C), a["banks"], a["mode"], a["cormax"], a["npixmin"], a["thr"],
                a["use_mean"], a["switching"], np.empty(size, np.float32),
                np.empty(size, np.float32), np.full(1, np.nan))
    ref = k.calibrate_ref(raw, a["ped"], a["gm"], a["cmok"], a["banks"], a["mode"], a["cormax"],
                          a["npixmin"], a["thr"], a["use_mean"], a["switching"])
    if a["use_mean"]:  # the mean's sum order differs: allow float32 rounding
        np.testing.assert_allclose(out.reshape(raw.shape), ref, rtol=1e-5, atol=1e-3)
    else:
        np.testing.assert_array_equal(out.reshape(raw.shape), ref)


def test_gain_index() -> None:
    raw = np.array([0x0005, 0x4005, 0xC005, 0x8005], np.uint16)
    np.testing.assert_array_equal(k.gain_index_ref(raw), [0, 1, 2, -1])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 50), st.integers(0, 2**32 - 1))
def test_scatter_kernels_match_reference(npix: int, ncell: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = rng.normal(0, 10, npix).astype(np.float32)
    idx = rng.integers(0, ncell, npix).astype(np.uint32)
    counts = np.bincount(idx, minlength=ncell)
    empty = np.flatnonzero(counts == 0).astype(np.uint32)
    out = np.full(ncell, 7.0, np.float32)
    ref = np.full(ncell, 7.0, np.float32)
    k.scatter(data, idx, empty, out)
    k.scatter_ref(data, idx.astype(np.intp), ref)
    np.testing.assert_array_equal(out, ref)
    inv = np.divide(1.0, counts, out=np.zeros(ncell), where=counts > 0).astype(np.float32)
    k.scatter_mean(data, idx, inv, out)
    np.testing.assert_allclose(out, k.scatter_mean_ref(data, idx, inv), rtol=1e-5, atol=1e-4)
