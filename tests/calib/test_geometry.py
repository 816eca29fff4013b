"""Geometry files: parsing, errors with line numbers, round trips, coordinates, segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calib import Geometry, GeometryError, default_geometry_text, segment_type

DEFAULTS = [("cspad", None), ("epix100", None), ("jungfrau", 1), ("jungfrau", 2),
            ("jungfrau", 8), ("opal", None)]


@pytest.mark.parametrize(("det", "modules"), DEFAULTS)
def test_default_geometries_round_trip(tmp_path: Path, det: str, modules: int | None) -> None:
    geo = Geometry.parse(default_geometry_text(det, modules), det)
    path = tmp_path / "0-end.data"
    geo.write(path)
    again = Geometry.read(path)
    assert again.shape == geo.shape
    assert again.rows == geo.rows
    for a, b in zip(geo.pixel_coords(), again.pixel_coords(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.to_text() == geo.to_text()


def test_shapes_of_the_defaults() -> None:
    shapes = {(d, m): Geometry.parse(default_geometry_text(d, m)).shape for d, m in DEFAULTS}
    assert shapes == {
        ("cspad", None): (32, 185, 388), ("epix100", None): (1, 704, 768),
        ("jungfrau", 1): (1, 512, 1024), ("jungfrau", 2): (2, 512, 1024),
        ("jungfrau", 8): (8, 512, 1024), ("opal", None): (1, 1024, 1024),
    }


PSANA_1M = """\
# TITLE      Geometry parameters of Jungfrau
# HDR PARENT IND      OBJECT     IND    X0[um]  Y0[um]  Z0[um]   ROT-Z ROT-Y ROT-X    TILT-Z   TILT-Y   TILT-X

JFCAMERA:V1    0    JUNGFRAU:V2    0         0   20625       0       0     0   180    0.0      0.0      0.0
JFCAMERA:V1    0    JUNGFRAU:V2    1         0  -20625       0       0     0   180    0.0      0.0      0.0

IP:V1          0    JFCAMERA:V1    0         0       0  100000      90     0     0    0.0      0.0      0.0
"""  # noqa: E501  (a file as psana writes it)


def test_psana_file_and_rotation_convention() -> None:
    geo = Geometry.parse(PSANA_1M, "jf1m.data")
    assert geo.root == ("IP:V1", 0) and geo.shape == (2, 512, 1024)
    x, y, z = geo.pixel_coords()
    # module 0: rot_x 180 flips y and z (y' = -y, z' = -z), then y0 = 20625; the camera turns
    # by 90 about z (x' = -y, y' = x), then z0 = 100 mm
    seg = segment_type("JUNGFRAU:V2")
    r, c = 10, 700
    yy = -seg.y_um[r] + 20625.0
    np.testing.assert_allclose([x[0, r, c], y[0, r, c], z[0, r, c]],
                               [-yy, seg.x_um[c], 100000.0])
    lx, ly, lz = geo.pixel_coords("lab")
    np.testing.assert_array_equal(lx, -y)
    np.testing.assert_array_equal(ly, -x)
    np.testing.assert_array_equal(lz, -z)
    np.testing.assert_allclose(geo.pixel_radius(), np.hypot(x, y))


def test_tilts_add_to_rotations() -> None:
    a = Geometry.parse("IP 0 EPIX100A 0 10 20 30 30 0 0 15 0 0\n")
    b = Geometry.parse("IP 0 EPIX100A 0 10 20 30 45 0 0 0 0 0\n")
    for u, v in zip(a.pixel_coords(), b.pixel_coords(), strict=True):
        np.testing.assert_allclose(u, v, atol=1e-9)


def test_segment_layouts() -> None:
    cs = segment_type("SENS2X1:V1")
    steps = np.diff(cs.x_um)
    np.testing.assert_allclose(steps[:193], 109.92)
    np.testing.assert_allclose(steps[193], 2 * 274.80 - 109.92)  # two wide central columns
    wide = segment_type("SENS2X1:V1", wide_pixel_center=True)
    np.testing.assert_allclose(wide.x_um[193:195], [-137.4, 137.4])
    np.testing.assert_allclose(np.diff(cs.y_um), -109.92)
    jf = segment_type("JUNGFRAU:V2")
    gaps = np.diff(jf.x_um)
    edges = [255, 511, 767]  # 2-pixel gaps between ASICs
    np.testing.assert_allclose(gaps[edges], 3 * 75.0)
    np.testing.assert_allclose(np.delete(gaps, edges), 75.0)
    np.testing.assert_allclose(np.diff(jf.y_um)[255], 3 * 75.0)
    ep = segment_type("EPIX100A")
    assert ep.shape == (704, 768) and ep.pixel_size == 50.0
    np.testing.assert_allclose(np.diff(ep.x_um)[[0, 383]], [50.0, 2 * 175.0 - 50.0])
    m = segment_type("MTRX:V2:4:6:10:20")
    assert m.shape == (4, 6) and m.pixel_size == 10.0
    np.testing.assert_allclose(m.x_um, [-50, -30, -10, 10, 30, 50])
    for bad in ("FOO:V1", "MTRX:V2:4:x:1:1", "MTRX:V2:0:4:1:1"):
        with pytest.raises(GeometryError):
            segment_type(bad)


OK_ROWS = """\
QUAD:V1 0 SENS2X1:V1 0  0 0 0  0 0 0  0 0 0
QUAD:V1 0 SENS2X1:V1 1  0 30000 0  0 0 0  0 0 0
CSPAD:V1 0 QUAD:V1 0  0 0 0  90 0 0  0 0 0
IP 0 CSPAD:V1 0  0 0 0  0 0 0  0 0 0
"""

BAD = {
    "columns": ("IP 0 EPIX100A 0 0 0 0 0 0 0 0 0\n", 1, "expected 13 columns"),
    "number": ("# c\nIP 0 EPIX100A 0 0 x 0 0 0 0 0 0 0\n", 2, r"column 6 \(Y0\) is 'x'"),
    "index": ("IP 0 EPIX100A 1.5 0 0 0 0 0 0 0 0 0\n", 1, "not a non-negative integer"),
    "nan": ("IP 0 EPIX100A 0 0 nan 0 0 0 0 0 0 0\n", 1, "not finite"),
    "missing parent": (OK_ROWS.replace("CSPAD:V1 0 QUAD", "DET:V1 0 QUAD"), 3,
                       "parent DET:V1 0 is not defined"),
    "cycle": (OK_ROWS + "BOX:V1 0 QUAD:V1 7 0 0 0 0 0 0 0 0 0\n"
              "QUAD:V1 7 BOX:V1 0 0 0 0 0 0 0 0 0 0\n", 5,
              "cycle in the geometry tree: QUAD:V1 7 -> BOX:V1 0 -> QUAD:V1 7"),
    "child gap": (OK_ROWS.replace("SENS2X1:V1 1", "SENS2X1:V1 2"), 1, r"indices \[0, 2\]"),
    "twice": (OK_ROWS + "QUAD:V1 0 SENS2X1:V1 1  0 0 0  0 0 0  0 0 0\n", 5, "twice"),
    "parent twice": (OK_ROWS + "IP 0 QUAD:V1 0 0 0 0 0 0 0 0 0 0\n", 5, "defined twice"),
    "unknown leaf": (OK_ROWS.replace("QUAD:V1 0 SENS2X1:V1 1", "QUAD:V1 0 SENSOR:V9 1"), 2,
                     "unknown segment type 'SENSOR:V9'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_give_line_numbers(case: str) -> None:
    text, line, message = BAD[case]
    with pytest.raises(GeometryError, match=rf"^geo\.data:{line}: .*{message}"):
        Geometry.parse(text, "geo.data")


def test_errors_without_a_line() -> None:
    with pytest.raises(GeometryError, match="no geometry rows"):
        Geometry.parse("# only comments\n\n", "g")
    with pytest.raises(GeometryError, match="different shapes"):
        Geometry.parse("IP 0 EPIX100A 0 0 0 0 0 0 0 0 0 0\nIP 0 SENS2X1:V1 1 0 0 0 0 0 0 0 0 0\n")
    with pytest.raises(GeometryError, match="several roots"):
        Geometry.parse("IP 0 EPIX100A 0 0 0 0 0 0 0 0 0 0\nIP:V1 0 EPIX100A 0 0 0 0 0 0 0 0 0 0\n")
    with pytest.raises(GeometryError, match="cycle"):
        Geometry.parse("A:V1 0 B:V1 0 0 0 0 0 0 0 0 0 0\nB:V1 0 A:V1 0 0 0 0 0 0 0 0 0 0\n")
