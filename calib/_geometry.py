"""psana geometry files: parse, check, write, and pixel coordinates.

A file is a table of ``PARENT IND OBJECT IND X0 Y0 Z0 ROT_Z ROT_Y ROT_X TILT_Z TILT_Y TILT_X``
rows (micrometres, degrees; ``#`` starts a comment) forming a tree rooted at ``IP``. Each row
places an object in its parent's frame: rotate by the angles rot + tilt (about Z, then Y, then
X), then translate. Leaves are segments of known pixel layout; their order in a depth-first walk
(children by index) is the order of segments in the data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._errors import GeometryError
from ._segments import SegmentType, segment_type

COLUMNS = ("PARENT", "IND", "OBJECT", "IND", "X0", "Y0", "Z0",
           "ROT_Z", "ROT_Y", "ROT_X", "TILT_Z", "TILT_Y", "TILT_X")
Key = tuple[str, int]


@dataclass(frozen=True)
class GeometryRow:
    """One placement: ``name index`` inside ``parent parent_index``."""

    parent: str
    parent_index: int
    name: str
    index: int
    x0: float = 0.0
    y0: float = 0.0
    z0: float = 0.0
    rot_z: float = 0.0
    rot_y: float = 0.0
    rot_x: float = 0.0
    tilt_z: float = 0.0
    tilt_y: float = 0.0
    tilt_x: float = 0.0
    line: int = field(default=0, compare=False)  # source line, for messages

    @property
    def key(self) -> Key:
        return (self.name, self.index)

    @property
    def parent_key(self) -> Key:
        return (self.parent, self.parent_index)


def _is_root(name: str) -> bool:
    return name == "IP" or name.startswith("IP:")


def _cos_sin(deg: float) -> tuple[float, float]:
    """Exact for multiples of 90 degrees, so that rotated pixel grids stay on the grid."""
    if deg % 90.0 == 0.0:
        return {0: (1.0, 0.0), 1: (0.0, 1.0), 2: (-1.0, 0.0), 3: (0.0, -1.0)}[int(deg // 90) % 4]
    rad = math.radians(deg)
    return math.cos(rad), math.sin(rad)


def _rotate(u: np.ndarray, v: np.ndarray, deg: float) -> tuple[np.ndarray, np.ndarray]:
    if deg == 0.0:
        return u, v
    c, s = _cos_sin(deg)
    return u * c - v * s, v * c + u * s


def transform(row: GeometryRow, x: np.ndarray, y: np.ndarray, z: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates in the child's frame -> in the parent's frame (psana's convention)."""
    x, y = _rotate(x, y, row.rot_z + row.tilt_z)
    z, x = _rotate(z, x, row.rot_y + row.tilt_y)
    y, z = _rotate(y, z, row.rot_x + row.tilt_x)
    return x + row.x0, y + row.y0, z + row.z0


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


class Geometry:
    """A checked geometry tree; construction does no I/O (see :meth:`read`)."""

    def __init__(self, rows: Sequence[GeometryRow], source: str = "<geometry>",
                 comments: Sequence[str] = (), wide_pixel_center: bool = False) -> None:
        self.rows = tuple(rows)
        self.source = source
        self.comments = tuple(comments)
        self.wide_pixel_center = wide_pixel_center
        self._by_key: dict[Key, GeometryRow] = {}  # objects that have children
        self._children: dict[Key, list[GeometryRow]] = {}
        self.root: Key = ("IP", 0)
        self.leaves: tuple[GeometryRow, ...] = ()
        self.segment: SegmentType
        self._check()
        self._coords: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _error(self, row: GeometryRow | None, msg: str) -> GeometryError:
        where = f"{self.source}:{row.line}" if row is not None and row.line else self.source
        return GeometryError(f"{where}: {msg}")

    def _check(self) -> None:
        if not self.rows:
            raise self._error(None, "no geometry rows")
        # an object is its row; objects that are parents are referred to by (name, index), so
        # those must be unique, while leaves may repeat (SENS2X1:V1 0..7 in each quad)
        seen: dict[tuple[Key, Key], GeometryRow] = {}
        for row in self.rows:
            if (row.parent_key, row.key) in seen:
                first = seen[(row.parent_key, row.key)].line
                raise self._error(row, f"{row.name} {row.index} is placed in {row.parent} "
                                       f"{row.parent_index} twice (first at line {first})")
            seen[(row.parent_key, row.key)] = row
            self._children.setdefault(row.parent_key, []).append(row)
        for row in self.rows:
            if row.key in self._children:
                if row.key in self._by_key:
                    first = self._by_key[row.key].line
                    raise self._error(row, f"parent object {row.name} {row.index} is defined "
                                           f"twice (first at line {first})")
                self._by_key[row.key] = row
        roots = {row.parent_key for row in self.rows if row.parent_key not in self._by_key}
        for row in self.rows:
            if row.parent_key in roots and not _is_root(row.parent):
                raise self._error(row, f"parent {row.parent} {row.parent_index} is not defined "
                                       "by any row (and is not the root IP)")
        if len(roots) > 1:
            raise self._error(None, f"several roots: {sorted(roots)}")
        if not roots:  # every parent is defined: the tree must loop somewhere
            raise self._cycle(self.rows[0])
        self.root = roots.pop()
        reached: set[int] = set()
        stack = [self.root]
        while stack:
            kids = sorted(self._children.get(stack.pop(), []), key=lambda r: r.index)
            found = [r.index for r in kids]
            if found != list(range(len(kids))):
                raise self._error(kids[0], f"children of {kids[0].parent} {kids[0].parent_index}"
                                           f" have indices {found}, expected 0..{len(kids) - 1}")
            for r in reversed(kids):
                reached.add(id(r))
                if r.key in self._children:
                    stack.append(r.key)
        missing = [row for row in self.rows if id(row) not in reached]
        if missing:
            raise self._cycle(missing[0])
        self.leaves = tuple(self._leaf_order())
        types = []
        for row in self.leaves:
            try:
                types.append(segment_type(row.name, self.wide_pixel_center))
            except GeometryError as exc:
                raise self._error(row, f"{exc} (a leaf must be a known segment)") from None
        shapes = sorted({t.shape for t in types})
        if len(shapes) > 1:
            raise self._error(None, f"segments of different shapes: {shapes}")
        self.segment = types[0]

    def _leaf_order(self) -> list[GeometryRow]:
        """Leaves in depth-first order, children by index: the order of segments in the data."""
        out: list[GeometryRow] = []

        def visit(key: Key) -> None:
            for r in sorted(self._children.get(key, []), key=lambda r: r.index):
                if r.key in self._children:
                    visit(r.key)
                else:
                    out.append(r)

        visit(self.root)
        return out

    def _cycle(self, start: GeometryRow) -> GeometryError:
        path = [start.key]
        key = start.parent_key
        while key in self._by_key and key not in path:
            path.append(key)
            key = self._by_key[key].parent_key
        loop = [*path[path.index(key):], key] if key in path else path
        text = " -> ".join(f"{n} {i}" for n, i in loop)
        row = self._by_key.get(loop[0], start)
        return self._error(row, f"cycle in the geometry tree: {text}")

    # -- text -----------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, source: str = "<string>", wide_pixel_center: bool = False
              ) -> Geometry:
        """Geometry from the text of a psana geometry file; errors carry ``source:line``."""
        rows, comments = [], []
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if line.startswith("#"):
                comments.append(line[1:].strip())
                continue
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) != len(COLUMNS):
                raise GeometryError(
                    f"{source}:{lineno}: expected {len(COLUMNS)} columns ({' '.join(COLUMNS)}), "
                    f"found {len(fields)}"
                )
            values: list[float] = []
            for col in (1, 3, *range(4, 13)):
                try:
                    v = float(fields[col])
                    if col in (1, 3) and (not v.is_integer() or v < 0):
                        raise ValueError
                except ValueError:
                    kind = "a non-negative integer" if col in (1, 3) else "a number"
                    raise GeometryError(f"{source}:{lineno}: column {col + 1} ({COLUMNS[col]}) "
                                        f"is {fields[col]!r}, not {kind}") from None
                if not math.isfinite(v):
                    raise GeometryError(f"{source}:{lineno}: column {col + 1} ({COLUMNS[col]}) "
                                        f"is not finite: {fields[col]!r}")
                values.append(v)
            x0, y0, z0, rz, ry, rx, tz, ty, tx = values[2:]
            rows.append(GeometryRow(fields[0], int(values[0]), fields[2], int(values[1]),
                                    x0, y0, z0, rz, ry, rx, tz, ty, tx, line=lineno))
        return cls(rows, source, comments, wide_pixel_center)

    @classmethod
    def read(cls, path: str | os.PathLike[str], wide_pixel_center: bool = False) -> Geometry:
        """Geometry from a file."""
        return cls.parse(Path(path).read_text(), str(path), wide_pixel_center)

    def to_text(self) -> str:
        """The psana text of this geometry (children before parents, as psana writes)."""
        out = [f"# {c}".rstrip() for c in self.comments]
        if not any(c.startswith("HDR") for c in self.comments):
            out.append("# HDR " + " ".join(COLUMNS))
        for row in self._rows_bottom_up():
            nums = (row.x0, row.y0, row.z0, row.rot_z, row.rot_y, row.rot_x,
                    row.tilt_z, row.tilt_y, row.tilt_x)
            out.append(f"{row.parent:<12} {row.parent_index:>3} {row.name:<12} {row.index:>3} "
                       + " ".join(f"{_fmt(v):>10}" for v in nums))
        return "\n".join(out) + "\n"

    def write(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.to_text())

    def _rows_bottom_up(self) -> Iterable[GeometryRow]:
        def depth(row: GeometryRow) -> int:
            d = 0
            while row.parent_key in self._by_key:
                row = self._by_key[row.parent_key]
                d += 1
            return d

        return sorted(self.rows, key=lambda r: (-depth(r), r.parent, r.parent_index, r.index))

    # -- coordinates ----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(segments, rows, columns) of the data this geometry describes."""
        return (len(self.leaves), self.segment.rows, self.segment.cols)

    @property
    def pixel_scale_size(self) -> float:
        """Pixel size (um) used for image indexes: that of the segments."""
        return self.segment.pixel_size

    def pixel_coords(self, frame: str = "psana") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, y, z (um) of every pixel, each of :attr:`shape`; ``frame="lab"`` gives psana's
        lab frame (cframe=1: x, y, z -> -y, -x, -z)."""
        if self._coords is None:
            xs, ys, zs = [], [], []
            for leaf in self.leaves:
                x, y, z = self.segment.coords()
                row: GeometryRow | None = leaf
                while row is not None:
                    x, y, z = transform(row, x, y, z)
                    row = self._by_key.get(row.parent_key)
                xs.append(x)
                ys.append(y)
                zs.append(z)
            self._coords = (np.stack(xs), np.stack(ys), np.stack(zs))
            for a in self._coords:
                a.setflags(write=False)
        x, y, z = self._coords
        if frame == "psana":
            return x, y, z
        if frame == "lab":
            return -y, -x, -z
        raise GeometryError(f"unknown frame {frame!r} (psana or lab)")

    def pixel_radius(self, center: tuple[float, float] = (0.0, 0.0), frame: str = "psana"
                     ) -> np.ndarray:
        """Distance (um) of every pixel from ``center`` (x, y) in the detector plane."""
        x, y, _ = self.pixel_coords(frame)
        return np.hypot(x - center[0], y - center[1])

    def image_indexes(self, frame: str = "psana") -> tuple[np.ndarray, np.ndarray]:
        """Image row and column (uint32) of every pixel: row = (x - xmin + p/2) / p,
        col = (y - ymin + p/2) / p with p the pixel scale size, as psana."""
        x, y, _ = self.pixel_coords(frame)
        p = self.pixel_scale_size
        rows = np.floor((x - x.min()) / p + 0.5).astype(np.uint32)
        cols = np.floor((y - y.min()) / p + 0.5).astype(np.uint32)
        return rows, cols
