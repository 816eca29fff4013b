"""Fast encoding of dgrams whose layout never changes (same detectors, fields and shapes).

A readout node or benchmark sends the same structure every shot: the header bytes and every
field's offset are computed once; per shot only the time, the values and perhaps the damage are
written into a reused buffer (scalars by ``struct.pack_into``, arrays through numpy views).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._names import Names
from ._types import NUMPY_DTYPE, DataType, TransitionId, make_env
from ._writer import ParentBlock, ShapesDataBlock, make_dgram

_TIME = struct.Struct("<II")
_U16 = struct.Struct("<H")
_SCALAR_CODE = {
    DataType.UINT8: "B", DataType.UINT16: "H", DataType.UINT32: "I", DataType.UINT64: "Q",
    DataType.INT8: "b", DataType.INT16: "h", DataType.INT32: "i", DataType.INT64: "q",
    DataType.FLOAT: "f", DataType.DOUBLE: "d", DataType.ENUMVAL: "i", DataType.ENUMDICT: "i",
}

#: per node: (segment src, [(Names, {array field: shape})])
Layout = Sequence[tuple[int, Sequence[tuple[Names, Mapping[str, tuple[int, ...]]]]]]


class DgramTemplate:
    """The fixed layout of a dgram: one Parent per node holding one ShapesData per Names.

    CHARSTR fields are not allowed (their size varies). ``bind()`` gives a reusable buffer.
    """

    def __init__(self, transition: TransitionId | int, layout: Layout, *, root_src: int = 0,
                 readout_groups: int = 0) -> None:
        self.transition = transition
        self.root_src = root_src
        self.readout_groups = readout_groups
        blocks = []
        self._slots: dict[int, dict[str, tuple[int, Any, tuple[int, ...]]]] = {}
        self._segments: list[int] = []  # byte offsets of Segment Parent headers
        offset = 24
        for node_src, items in layout:
            children = []
            self._segments.append(offset)
            offset += 12
            for names, shapes in items:
                values: dict[str, Any] = {}
                for f in names.fields:
                    if f.type is DataType.CHARSTR:
                        raise ValueError(f"{names.det_name}.{f.name}: CHARSTR fields vary in "
                                         "size and cannot be in a fixed layout")
                    if f.rank:
                        if f.name not in shapes or len(shapes[f.name]) != f.rank:
                            raise ValueError(f"{names.det_name}.{f.name}: give a shape of rank "
                                             f"{f.rank}")
                        values[f.name] = np.zeros(shapes[f.name], NUMPY_DTYPE[f.type])
                    else:
                        values[f.name] = 0
                sd = ShapesDataBlock(names, values)
                data_base = offset + sd.size - _data_bytes(names, shapes) + 12
                field_slots: dict[str, tuple[int, Any, tuple[int, ...]]] = {}
                pos = data_base
                for f in names.fields:
                    if f.rank:
                        shape = tuple(shapes[f.name])
                        dtype = NUMPY_DTYPE[f.type]
                        field_slots[f.name] = (pos, dtype, shape)
                        pos += int(np.prod(shape)) * dtype.itemsize
                    else:
                        st = struct.Struct("<" + _SCALAR_CODE[f.type])
                        field_slots[f.name] = (pos, st, ())
                        pos += st.size
                self._slots[names.names_id] = field_slots
                children.append(sd)
                offset += sd.size
            blocks.append(ParentBlock(node_src, children))
        enc = make_dgram(transition, 0, 0, blocks, root_src=root_src,
                         readout_groups=readout_groups)
        self.template = enc.tobytes()
        self.size = enc.size

    def bind(self, buffer: Any = None) -> BoundDgram:
        """A BoundDgram over ``buffer`` (a new bytearray by default), holding the template."""
        return BoundDgram(self, buffer)

    def bind_batch(self, n: int) -> BatchDgrams:
        """``n`` copies of the template as the rows of one array, set column-wise."""
        return BatchDgrams(self, n)


def _data_bytes(names: Names, shapes: Mapping[str, tuple[int, ...]]) -> int:
    total = 12  # Data xtc header
    for f in names.fields:
        n = int(np.prod(shapes[f.name])) if f.rank else 1
        total += n * NUMPY_DTYPE[f.type].itemsize
    return total


class BoundDgram:
    """A template's bytes in a buffer, with setters for the time, damage and every field."""

    def __init__(self, template: DgramTemplate, buffer: Any = None) -> None:
        self.template = template
        if buffer is None:
            buffer = bytearray(template.size)
        mv = memoryview(buffer).cast("B")
        if len(mv) < template.size:
            raise ValueError(f"buffer of {len(mv)} bytes cannot hold a {template.size}-byte "
                             "dgram")
        mv[: template.size] = template.template
        self.buffer = buffer
        self.view = mv[: template.size]
        self._arrays: dict[tuple[int, str], np.ndarray] = {}
        self._scalars: dict[tuple[int, str], tuple[struct.Struct, int]] = {}
        for nid, fields in template._slots.items():
            for name, (pos, kind, shape) in fields.items():
                if shape:
                    count = int(np.prod(shape))
                    self._arrays[nid, name] = np.frombuffer(
                        self.view, kind, count, pos).reshape(shape)
                else:
                    self._scalars[nid, name] = (kind, pos)

    def set_time(self, seconds: int, nanoseconds: int) -> None:
        _TIME.pack_into(self.view, 0, nanoseconds, seconds)

    def set_env(self, readout_groups: int) -> None:
        struct.pack_into("<I", self.view, 8, make_env(self.template.transition, readout_groups))

    def set_damage(self, root: int, segments: Sequence[int] | None = None) -> None:
        _U16.pack_into(self.view, 16, root)
        for at, dmg in zip(self.template._segments, segments or (), strict=False):
            _U16.pack_into(self.view, at + 4, dmg)

    def array(self, names: Names, field: str) -> np.ndarray:
        """The writable numpy view of an array field inside the buffer."""
        return self._arrays[names.names_id, field]

    def set(self, names: Names, field: str, value: Any) -> None:
        """Write one field (scalar or array)."""
        key = (names.names_id, field)
        scalar = self._scalars.get(key)
        if scalar is not None:
            scalar[0].pack_into(self.view, scalar[1], value)
        else:
            self._arrays[key][...] = value

    def fill(self, names: Names, values: Mapping[str, Any]) -> None:
        for field, value in values.items():
            self.set(names, field, value)

    def tobytes(self) -> bytes:
        return bytes(self.view)


class BatchDgrams:
    """``n`` dgrams of one template as the rows of an (n, size) uint8 array.

    Fields are set for all rows at once through strided numpy views (``field``), so encoding a
    batch costs a few numpy calls instead of per-dgram Python. ``data[i]`` is dgram ``i``.
    """

    def __init__(self, template: DgramTemplate, n: int) -> None:
        self.template = template
        self.data = np.empty((n, template.size), np.uint8)
        self.data[...] = np.frombuffer(template.template, np.uint8)
        self._views: dict[tuple[int, str], np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def _column(self, pos: int, dtype: np.dtype[Any], shape: tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(shape)) if shape else 1
        col = self.data[:, pos : pos + count * dtype.itemsize].view(dtype)
        return col.reshape((len(self), *shape)) if shape else col[:, 0]

    def set_times(self, seconds: np.ndarray, nanoseconds: np.ndarray) -> None:
        self._column(0, np.dtype("<u4"), ())[...] = nanoseconds
        self._column(4, np.dtype("<u4"), ())[...] = seconds

    def set_envs(self, readout_groups: np.ndarray) -> None:
        env = make_env(self.template.transition, 0)
        self._column(8, np.dtype("<u4"), ())[...] = env | (readout_groups.astype(np.uint32)
                                                           & 0xFFFF)

    def field(self, names: Names, field: str) -> np.ndarray:
        """The (n, *shape) view (``(n,)`` for scalars) of one field in every row."""
        key = (names.names_id, field)
        view = self._views.get(key)
        if view is None:
            pos, kind, shape = self.template._slots[names.names_id][field]
            dtype = kind if shape else np.dtype("<" + kind.format.lstrip("<"))
            view = self._views[key] = self._column(pos, dtype, shape)
        return view
