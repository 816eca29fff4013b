"""Image assembly from geometry: index maps, overlaps, extent, kernels, speed."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from calib import CalibError, Geometry, ImageAssembler, default_geometry, default_geometry_text
from calib import _kernels as k


@pytest.fixture(scope="module")
def cspad() -> Geometry:
    return Geometry.parse(default_geometry_text("cspad"), "cspad")


def test_cspad_image_has_no_shared_cells_and_the_expected_extent(cspad: Geometry) -> None:
    asm = ImageAssembler.from_geometry(cspad)
    assert asm.n_shared == 0 and asm.counts.max() == 1
    x, y, _ = cspad.pixel_coords()
    p = cspad.pixel_scale_size
    # the image spans the pixel centres, one cell per pixel size
    expect = (round((x.max() - x.min()) / p) + 1, round((y.max() - y.min()) / p) + 1)
    assert asm.image_shape == expect == (1555, 1555)
    assert 160_000 < x.max() - x.min() < 180_000  # ~17 cm across, around the beam
    assert abs(x.mean()) < 1.0 and abs(y.mean()) < 1.0
    r = cspad.pixel_radius()
    assert 1_000 < r.min() < 3_000  # a small hole for the beam
    assert np.count_nonzero(asm.counts) == 32 * 185 * 388


def test_assemble_matches_fancy_indexing(cspad: Geometry) -> None:
    asm = ImageAssembler.from_geometry(cspad)
    rows, cols = cspad.image_indexes()
    data = np.random.default_rng(0).normal(0, 1, cspad.shape).astype(np.float32)
    ref = np.zeros(asm.image_shape, np.float32)
    ref[rows, cols] = data
    out = np.full(asm.image_shape, np.nan, np.float32)
    assert asm.assemble(data, out=out) is out
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(asm.assemble_mean(data.reshape(-1, 388)), ref)


def test_shared_cells_last_wins_or_average() -> None:
    rows = np.array([[0, 0, 1], [1, 2, 0]])
    cols = np.array([[0, 0, 1], [1, 1, 0]])
    asm = ImageAssembler(rows, cols)
    assert asm.image_shape == (3, 2) and asm.n_shared == 3
    data = np.array([[1.0, 2.0, 3.0], [5.0, 7.0, 11.0]])
    np.testing.assert_array_equal(asm.assemble(data), [[11, 0], [0, 5], [0, 7]])
    np.testing.assert_allclose(asm.assemble_mean(data), [[14 / 3, 0], [0, 4], [0, 7]])
    with pytest.raises(CalibError):
        asm.assemble(np.zeros(5))
    with pytest.raises(CalibError):
        asm.assemble_mean(data, out=np.zeros((3, 2), np.int32))
    with pytest.raises(CalibError):
        ImageAssembler(np.array([-1]), np.array([0]))


@pytest.mark.parametrize(("det", "modules", "shape", "tiles"), [
    ("cspad", None, (1555, 1555), 64), ("jungfrau", 2, (1064, 1030), 16),
    ("jungfrau", 8, (2074, 2070), 64), ("epix100", None, (773, 709), 4),
    ("opal", None, (1024, 1024), 1),
])
def test_default_detectors_assemble_like_fancy_indexing(
    det: str, modules: int | None, shape: tuple[int, int], tiles: int
) -> None:
    geo = default_geometry(det, modules)
    asm = ImageAssembler.from_geometry(geo)
    assert asm.image_shape == shape and asm.n_shared == 0
    assert asm._tiles is not None and len(asm._tiles) == tiles  # the fast path: ASIC rectangles
    data = np.random.default_rng(1).normal(0, 1, geo.shape).astype(np.float32)
    ref = np.zeros(shape, np.float32)
    ref[geo.image_indexes()] = data
    np.testing.assert_array_equal(asm.assemble(data), ref)


def test_tilted_segments_use_the_index_map() -> None:
    geo = Geometry.parse("IP 0 MTRX:V2:40:60:10:10 0 0 0 0 0 0 0 7.5 0 0\n")
    asm = ImageAssembler.from_geometry(geo)
    assert asm._tiles is None
    data = np.arange(40 * 60, dtype=np.float32).reshape(1, 40, 60)
    rows, cols = geo.image_indexes()
    ref = np.zeros(asm.image_shape, np.float32)
    ref[rows, cols] = data
    np.testing.assert_array_equal(asm.assemble(data), ref)
    counts = np.zeros(asm.image_shape)
    np.add.at(counts, (rows, cols), 1)
    sums = np.zeros(asm.image_shape)
    np.add.at(sums, (rows, cols), data)
    mean = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    np.testing.assert_allclose(asm.assemble_mean(data), mean, rtol=1e-6)


def test_opal_is_the_identity_image() -> None:
    geo = Geometry.parse(default_geometry_text("opal"))
    data = np.arange(1024 * 1024, dtype=np.float32).reshape(1024, 1024)
    img = ImageAssembler.from_geometry(geo).assemble(data)
    # psana frame: image rows follow x (columns of the camera), image columns follow y
    np.testing.assert_array_equal(img, data[::-1].T)


def test_cspad_assembly_is_fast(cspad: Geometry) -> None:
    asm = ImageAssembler.from_geometry(cspad)
    data = np.ones(cspad.shape, np.float32)
    out = np.empty(asm.image_shape, np.float32)
    asm.assemble(data, out=out)
    best = math.inf
    for _ in range(5):
        t = time.perf_counter()
        asm.assemble(data, out=out)
        best = min(best, time.perf_counter() - t)
    assert best < 0.05, f"{best * 1e3:.1f} ms per CSPAD image"


def test_scatter_reference_is_numpy_fancy_assignment() -> None:
    idx = np.array([3, 1, 3], np.intp)
    out = np.ones(4, np.float32)
    k.scatter_ref(np.array([1.0, 2.0, 3.0], np.float32), idx, out)
    np.testing.assert_array_equal(out, [0, 2, 0, 3])
