"""Azimuthal integration against a brute-force per-pixel reference and known geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ami.ops import AzimuthalIntegrator

HC = 12.398419843320026


def brute_force(image, x, y, xc, yc, d, wavelength, edges, polarization=None, solid_angle=True):
    """Each pixel's q and correction computed on its own, binned with np.histogram."""
    q, corrected = [], []
    for xi, yi, v in zip(x.ravel(), y.ravel(), image.ravel(), strict=True):
        dx, dy = xi - xc, yi - yc
        r = math.sqrt(dx * dx + dy * dy + d * d)
        two_theta = math.acos(d / r)
        q.append(4 * math.pi / wavelength * math.sin(two_theta / 2))
        corr = (d / r) ** 3 if solid_angle else 1.0
        if polarization is not None:
            rho2 = dx * dx + dy * dy
            sin2_phi = dx * dx / rho2 if rho2 else 0.0
            s = math.sin(two_theta) ** 2
            p = polarization
            corr *= (1 - p) * (1 - sin2_phi * s) + p * (1 - (1 - sin2_phi) * s)
        corrected.append(v / corr)
    q_arr, values = np.array(q), np.array(corrected)
    ok = np.isfinite(values)
    sums, _ = np.histogram(q_arr[ok], edges, weights=values[ok])
    counts, _ = np.histogram(q_arr[ok], edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts, counts


@pytest.mark.parametrize("polarization", [None, 0.0, 0.3])
def test_matches_brute_force(polarization):
    rng = np.random.default_rng(7)
    shape = (24, 30)
    image = rng.uniform(0, 10, shape)
    image[3, 4] = np.nan
    ai = AzimuthalIntegrator.from_pixel_grid(
        shape,
        center=(11.3, 14.6),
        pixel_size=0.5,
        distance=40.0,
        photon_energy=8.0,
        nbins=12,
        polarization=polarization,
    )
    rows, cols = np.indices(shape, dtype=float)
    expected, counts = brute_force(
        image,
        cols * 0.5,
        rows * 0.5,
        14.6 * 0.5,
        11.3 * 0.5,
        40.0,
        HC / 8.0,
        ai.edges,
        polarization,
    )
    result = ai(image)
    np.testing.assert_array_equal(result.counts, counts)
    np.testing.assert_allclose(result.intensity, expected, rtol=1e-10)
    assert result.counts.sum() == image.size - 1


def test_uniform_image_without_corrections_is_flat():
    ai = AzimuthalIntegrator.from_pixel_grid(
        (50, 50),
        center=(25, 25),
        pixel_size=0.1,
        distance=50.0,
        wavelength=1.0,
        nbins=20,
        solid_angle=False,
    )
    result = ai(np.full((50, 50), 3.0))
    np.testing.assert_allclose(result.intensity, 3.0)


def test_radial_unit_recovers_a_radial_profile():
    x, y = np.meshgrid(np.linspace(-10, 10, 201), np.linspace(-10, 10, 201))
    image = np.sqrt(x**2 + y**2)  # intensity equal to the radius in mm
    ai = AzimuthalIntegrator(
        x, y, distance=100.0, unit="r", nbins=10, range=(0.0, 10.0), solid_angle=False
    )
    result = ai(image)
    np.testing.assert_allclose(result.centers, np.arange(0.5, 10, 1.0))
    a, b = result.centers - 0.5, result.centers + 0.5
    mean_radius = 2 / 3 * (b**3 - a**3) / (b**2 - a**2)  # over the annulus area
    np.testing.assert_allclose(result.intensity, mean_radius, atol=0.02)


def test_q_of_a_single_pixel():
    # One pixel at 2theta = 45 degrees: x = d.
    ai = AzimuthalIntegrator(
        np.array([100.0]),
        np.array([0.0]),
        distance=100.0,
        wavelength=1.5,
        nbins=1,
        solid_angle=False,
    )
    expected = 4 * math.pi / 1.5 * math.sin(math.radians(22.5))
    assert ai.centers[0] == pytest.approx(expected)
    two_theta = AzimuthalIntegrator(
        np.array([100.0]), np.array([0.0]), distance=100.0, unit="2theta", nbins=1
    )
    assert two_theta.centers[0] == pytest.approx(45.0)


def test_polarisation_suppresses_along_x_for_a_horizontal_beam():
    x = np.array([100.0, 0.0])
    y = np.array([0.0, 100.0])
    ai = AzimuthalIntegrator(
        x, y, distance=100.0, unit="r", nbins=1, solid_angle=False, polarization=0.0
    )
    # Both pixels at 2theta = 45 deg: the one along x is divided by 1 - sin^2(90) * ... = 0.5.
    assert ai(np.array([0.5, 1.0])).intensity[0] == pytest.approx(1.0)


def test_mask_and_nan_pixels_are_dropped():
    mask = np.ones((10, 10), dtype=bool)
    mask[:, :5] = False
    ai = AzimuthalIntegrator.from_pixel_grid(
        (10, 10), center=(5, 5), pixel_size=1, distance=10, unit="r", nbins=4, mask=mask
    )
    assert (ai.bin_index.reshape(10, 10)[:, :5] == -1).all()
    image = np.ones((10, 10))
    image[:, :5] = 1e6  # masked: must not show
    image[0, 9] = np.nan
    result = ai(image)
    assert result.counts.sum() == 49
    assert np.nanmax(result.intensity) < 2


def test_bin_index_is_computed_once_and_read_only():
    ai = AzimuthalIntegrator.from_pixel_grid(
        (8, 8), center=(4, 4), pixel_size=1, distance=10, unit="r"
    )
    with pytest.raises(ValueError, match="read-only"):
        ai.bin_index[0] = 3
    first = ai(np.ones((8, 8)))
    second = ai(np.ones((8, 8)))
    np.testing.assert_array_equal(first.intensity, second.intensity)


def test_all_masked_gives_nan_without_warnings():
    ai = AzimuthalIntegrator.from_pixel_grid(
        (4, 4),
        center=(2, 2),
        pixel_size=1,
        distance=10,
        unit="r",
        mask=np.zeros((4, 4), dtype=bool),
    )
    result = ai(np.ones((4, 4)))
    assert np.isnan(result.intensity).all() and result.counts.sum() == 0


def test_tiled_geometry_and_integer_images():
    x = np.random.default_rng(0).uniform(-5, 5, (2, 6, 6))
    y = np.random.default_rng(1).uniform(-5, 5, (2, 6, 6))
    ai = AzimuthalIntegrator(x, y, distance=50, unit="r", nbins=5)
    result = ai(np.ones((2, 6, 6), dtype=np.uint16))
    assert result.counts.sum() == 72
    with pytest.raises(ValueError, match="does not match geometry"):
        ai(np.ones((6, 6)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"unit": "q"}, "needs a wavelength"),
        ({"unit": "r", "distance": 0.0}, "distance"),
        ({"unit": "r", "nbins": 0}, "nbins"),
        ({"unit": "k"}, "unit 'k' must be one of"),
        ({"wavelength": 1.0, "polarization": 2.0}, "polarization"),
        ({"unit": "r", "range": (3.0, 1.0)}, "range upper end"),
        ({"photon_energy": -1.0}, "photon_energy"),
    ],
)
def test_parameters_are_checked(kwargs, message):
    params = {"distance": 10.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        AzimuthalIntegrator(np.zeros(3), np.ones(3), **params)
