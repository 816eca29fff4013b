"""Reductions: kernels vs NumPy references, photons vs the simulated truth, rings, screeners."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ami.offline import (
    AzimuthalFunc,
    BoolFilter,
    CompositeFilter,
    DataSource,
    DetContext,
    RangeFilter,
    ThresholdFilter,
    droplet_photons,
    droplets,
    photon_counts,
    photons,
    sparsify,
    unsparsify,
)
from ami.offline._kernels import (
    droplet_label_kernel,
    droplet_label_reference,
    greedy_photons_reference,
)

from ._runs import SimRun, Truth


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), tiles=st.integers(1, 3), rows=st.integers(1, 12),
       cols=st.integers(1, 12), low=st.floats(0.5, 3.0))
def test_droplet_kernels_match_references(seed: int, tiles: int, rows: int, cols: int,
                                          low: float) -> None:
    rng = np.random.default_rng(seed)
    img = rng.normal(0, 1, (tiles, rows, cols))
    hits = rng.random(img.shape) < 0.15
    img[hits] += rng.uniform(2, 25, hits.sum())
    good = rng.random(img.shape) > 0.05
    labels = np.empty(img.shape, np.int32)
    n = droplet_label_kernel(img, np.array([3.0]), np.array([low]), good, labels,
                             np.empty(img.size, np.int64))
    ref, nref = droplet_label_reference(img, 3.0, low, good)
    assert n == nref
    np.testing.assert_array_equal(labels, ref)
    d = droplets(img, 3.0, low, mask=good, thres_adu=4.0)
    assert d.n_all == n and len(d) == int(d.kept.sum())
    for j, k in enumerate(np.flatnonzero(d.kept)[:5]):
        sel = ref == k + 1
        assert d.adu[j] == pytest.approx(img[sel].sum())
        assert d.npix[j] == sel.sum()
    ph = droplet_photons(d, 4.0)
    nph = np.zeros(d.kept.size, np.int64)
    nph[d.kept] = photon_counts(d.adu, 4.0)
    full = [np.zeros(d.kept.size) for _ in range(3)]
    for a, v in zip(full, (d.tile, d.row, d.col), strict=True):
        a[d.kept] = v
    t, r, c = greedy_photons_reference(d.image, d.labels, None, nph, full[0].astype(int),
                                       full[1], full[2], 4.0)
    np.testing.assert_allclose(ph.tile, t)
    np.testing.assert_allclose(ph.row, r)
    np.testing.assert_allclose(ph.col, c)
    assert len(ph) == nph.sum()


def test_growth_and_adu_cut() -> None:
    img = np.zeros((6, 6))
    img[2, 2] = 10.0  # seed
    img[2, 3] = 2.0  # grows in at thresholdLow 1.5
    img[2, 4] = 2.0  # two steps away: not grown
    img[5, 5] = 3.5  # a small droplet cut by thres_adu
    d = droplets(img, 3.0, 1.5, thres_adu=5.0)
    assert d.n_all == 2 and len(d) == 1
    assert d.adu[0] == 12.0 and d.npix[0] == 2
    assert d.col[0] == pytest.approx((2 * 10 + 3 * 2) / 12)
    two = np.zeros((3, 4))
    two[1, 1], two[1, 2] = 1.3, 0.8  # 2.1 photons of 1 ADU: two photons, greedy
    ph = droplet_photons(droplets(two, 0.5), 1.0)
    assert len(ph) == 2
    assert sorted(zip(ph.row.tolist(), ph.col.tolist(), strict=True))[0] == (1.0, 1.0)


def test_photons_match_simulated_truth(epix_run: tuple[Path, SimRun, Truth]) -> None:
    """Droplets + greedy guess, and Chuck's photons, on calibrated ePix100 frames."""
    root, sim, truth = epix_run
    epix = sim.detector("epix")
    shape = epix.shape
    for run in DataSource(exp="epx", run=1, dir=root, max_events=3).runs():
        det = run.Detector("epix")
        status = det.constants("pixel_status")
        rms = det.constants("pixel_rms") / det.constants("pixel_gain")
        good = status == 0
        for evt in run.events():
            frame = det.calib(evt)
            t = epix.truth_event(truth.shots[evt.index])
            assert not t["hit"]
            pix = t["photon_index"]
            pix = pix[good.reshape(-1)[pix]]
            want = np.bincount(pix, minlength=frame.size)
            d = droplets(frame, 5 * rms, 3 * rms, mask=good)
            ph = droplet_photons(d, 9.5)
            got = unsparsify(sparsify(ph.row, ph.col, ph.tile), shape).reshape(-1)
            assert abs(len(ph) - pix.size) <= 0.01 * pix.size
            assert np.minimum(got, want).sum() >= 0.98 * pix.size  # at the right pixels
            counts = photons(np.where(good, frame, 0), 9.5).reshape(-1)
            assert np.minimum(counts, want).sum() >= 0.98 * pix.size
            assert abs(int(counts.sum()) - pix.size) <= 0.01 * pix.size


def test_azimuthal_matches_analytic_rings() -> None:
    """Rings I(r) = sum of Gaussians in radius: the radial average returns I at bin centres."""
    pixel_um, n = 100.0, 301
    rows, cols = np.indices((n, n), dtype=float)
    x, y = cols * pixel_um, rows * pixel_um
    cx, cy = 150.0 * pixel_um, 150.0 * pixel_um
    r_mm = np.hypot(x - cx, y - cy) / 1000

    def intensity(r: np.ndarray) -> np.ndarray:
        return 100 * np.exp(-0.5 * ((r - 5.0) / 0.8) ** 2) + 40 * np.exp(
            -0.5 * ((r - 11.0) / 1.2) ** 2)

    f = AzimuthalFunc(center=(cx, cy), dis_to_sam=100.0, eBeam=9.5, unit="r", nbins=60,
                      qrange=(0.0, 15.0), solid_angle=False)
    f.setup(DetContext("cam", (n, n), x=x, y=y))
    azav = f.process(intensity(r_mm))["azav"]
    assert f.q is not None
    np.testing.assert_allclose(azav, intensity(f.q), rtol=0.03, atol=0.5)
    assert f.q[np.argmax(azav)] == pytest.approx(5.0, abs=0.25)
    fq = AzimuthalFunc(center=(cx, cy), dis_to_sam=100.0, eBeam=9.5, qbin=0.01,
                       solid_angle=False)
    fq.setup(DetContext("cam", (n, n), x=x, y=y))
    az = fq.process(intensity(r_mm))["azav"]
    lam = 12.398419843320026 / 9.5
    q5 = 4 * np.pi / lam * np.sin(np.arctan(5.0 / 100.0) / 2)
    assert fq.q is not None and fq.q[np.nanargmax(az)] == pytest.approx(q5, abs=0.01)


def test_screeners_and_sparsify() -> None:
    row = {"lightStatus/laser": 1, "gasdet/f_11_ENRC": 2.5, "ipm/sum": np.nan}
    laser = CompositeFilter([BoolFilter("lightStatus", "laser", True, "laser_on"),
                             BoolFilter("lightStatus", "laser", False, "laser_off")],
                            require_all=False)
    assert laser.apply(row) == (True, "laser_on")
    assert laser.apply({"lightStatus": {"laser": 0}}) == (True, "laser_off")
    assert ThresholdFilter("gasdet", "f_11_ENRC", 2.0).apply(row)[0]
    assert not ThresholdFilter("gasdet", "f_11_ENRC", 2.0, greater_than=False).apply(row)[0]
    assert RangeFilter("gasdet", "f_11_ENRC", 2.5, 3.0).apply(row)[0]  # inclusive
    assert not RangeFilter("ipm", "sum", -1e9, 1e9).apply(row)[0]  # NaN never passes
    both = CompositeFilter([laser, ThresholdFilter("gasdet", "f_11_ENRC", 3.0, label="hi")])
    assert both.apply(row) == (False, "laser_on")
    sp = sparsify([1, 2, 3], [4, 5, 6], n_data=2)
    assert sp["row"].tolist() == [1, 2] and sp["data"].tolist() == [1, 1]
    sp = sparsify([1], [2], n_data=3)
    assert sp["col"].tolist() == [2, 0, 0]
