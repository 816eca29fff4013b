"""Decoding ShapesData through the NamesId lookup into detName -> segment -> alg -> fields."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._dgram import MAX_DEPTH, Buffer, Dgram, XtcHeader, iter_children
from ._names import Names, decode_names
from ._types import (
    ELEMENT_SIZE,
    NUMPY_DTYPE,
    SHAPE_SIZE,
    XTC_HEADER_SIZE,
    DataType,
    Level,
    TypeId,
)

_SHAPE_DTYPE = np.dtype("<u4")
_XTC = struct.Struct("<IHHI")


class _FallBackError(Exception):
    """Internal: the fast decode path met something it leaves to the careful path."""


class NamesLookup(dict[int, Names]):
    """NamesId -> Names, filled from a Configure dgram (or another file's Configure)."""

    def add_configure(self, dgram: Dgram) -> None:
        """Register every Names block of a dgram (normally the Configure), at any depth."""
        for hdr, _parent in walk(dgram):
            if hdr.type_id == TypeId.Names:
                names = decode_names(dgram.buf, hdr.offset, hdr.extent, hdr.src, dgram.source)
                self[names.names_id] = names

    @classmethod
    def from_configure(cls, dgram: Dgram) -> NamesLookup:
        lookup = cls()
        lookup.add_configure(dgram)
        return lookup


def walk(dgram: Dgram) -> Iterator[tuple[XtcHeader, XtcHeader | None]]:
    """Depth-first (header, enclosing Segment-level Parent or None) over a dgram's containers.

    Parents are entered, ShapesData and Names are yielded (not entered). Depth is bounded.
    """
    base = dgram.file_offset - dgram.offset

    def visit(parent: XtcHeader, segment: XtcHeader | None,
              depth: int) -> Iterator[tuple[XtcHeader, XtcHeader | None]]:
        if depth > MAX_DEPTH:
            raise dgram.error(f"Parents nested deeper than {MAX_DEPTH}", parent.offset,
                              "nesting-depth")
        for child in iter_children(dgram.buf, parent, dgram.source, base):
            if child.type_id == TypeId.Parent:
                seg = child if child.level == Level.Segment else segment
                yield child, segment
                yield from visit(child, seg, depth + 1)
            else:
                yield child, segment

    yield from visit(dgram.root, None, 0)


@dataclass(frozen=True, slots=True)
class FieldLayout:
    name: str
    type: DataType
    offset: int  #: from the start of the Data payload
    nbytes: int
    shape: tuple[int, ...]  #: () for scalars


def shapes_and_data(dgram: Dgram, sd: XtcHeader) -> tuple[XtcHeader | None, XtcHeader]:
    """The (Shapes or None, Data) children of a ShapesData, accepting either order."""
    shapes = data = None
    for child in iter_children(dgram.buf, sd, dgram.source, dgram.file_offset - dgram.offset):
        if child.type_id == TypeId.Shapes and shapes is None:
            shapes = child
        elif child.type_id == TypeId.Data and data is None:
            data = child
        else:
            raise dgram.error(f"ShapesData child of TypeId {child.type_id} is not one Shapes "
                              "and one Data", child.offset, "shapesdata-children")
    if data is None:
        raise dgram.error("ShapesData has no Data child", sd.offset, "shapesdata-children")
    return shapes, data


def layout(names: Names, shapes: np.ndarray | None, data_size: int, dgram: Dgram,
           at: int) -> list[FieldLayout]:
    """Offsets and shapes of every field of a ShapesData; checks them against the Data size."""
    out: list[FieldLayout] = []
    off = 0
    iarr = 0
    n_shapes = 0 if shapes is None else len(shapes)
    for f in names.fields:
        size = ELEMENT_SIZE[f.type]
        if f.rank == 0:
            if f.type is DataType.CHARSTR:
                raise dgram.error(f"CHARSTR field {f.name!r} has rank 0", at, "charstr-rank")
            out.append(FieldLayout(f.name, f.type, off, size, ()))
            off += size
            continue
        if iarr >= n_shapes:
            raise dgram.error(
                f"field {f.name!r} of {names.det_name!r} is an array but the Shapes holds only "
                f"{n_shapes} shape(s)", at, "shapes-count")
        assert shapes is not None
        dims = tuple(int(d) for d in shapes[iarr, : f.rank])
        iarr += 1
        nbytes = math.prod(dims) * size
        if off + nbytes > data_size:
            raise dgram.error(
                f"field {f.name!r} of {names.det_name!r} with shape {dims} needs "
                f"{off + nbytes} bytes of Data, which holds {data_size}", at, "data-size")
        out.append(FieldLayout(f.name, f.type, off, nbytes, dims))
        off += nbytes
    if off > data_size:
        raise dgram.error(f"fields of {names.det_name!r} need {off} bytes of Data, which holds "
                          f"{data_size}", at, "data-size")
    return out


def field_value(buf: Buffer, base: int, fl: FieldLayout) -> Any:
    """A field's value: numpy scalar, zero-copy numpy array view, or str for CHARSTR."""
    dtype = NUMPY_DTYPE[fl.type]
    start = base + fl.offset
    if fl.type is DataType.CHARSTR:
        raw = bytes(buf[start : start + fl.nbytes])
        end = raw.find(b"\0")
        return (raw if end < 0 else raw[:end]).decode("utf-8", errors="replace")
    if not fl.shape:
        return np.frombuffer(buf, dtype, 1, start)[0]
    count = fl.nbytes // dtype.itemsize
    return np.frombuffer(buf, dtype, count, start).reshape(fl.shape)


@dataclass
class DetectorData:
    """One decoded ShapesData: its Names, its fields' values and where it came from."""

    names: Names
    values: dict[str, Any]
    node: int | None  #: src value of the enclosing Segment-level Parent, if any
    damage: int
    offset: int  #: file offset of the ShapesData xtc

    @property
    def det_name(self) -> str:
        return self.names.det_name

    @property
    def segment(self) -> int:
        return self.names.segment

    @property
    def alg(self) -> str:
        return self.names.alg.name


@dataclass
class Event:
    """A decoded dgram: header facts plus every detector's values.

    ``detectors[detName][segment][alg][field]`` gives a value; ``items`` keeps file order;
    ``nodes`` maps each Segment-level Parent's src value to its damage (built events).
    """

    dgram: Dgram
    items: list[DetectorData] = field(default_factory=list)
    nodes: dict[int, int] = field(default_factory=dict)

    @property
    def detectors(self) -> dict[str, dict[int, dict[str, dict[str, Any]]]]:
        out: dict[str, dict[int, dict[str, dict[str, Any]]]] = {}
        for item in self.items:
            by_seg = out.setdefault(item.det_name, {})
            by_alg = by_seg.setdefault(item.segment, {})
            by_alg.setdefault(item.alg, {}).update(item.values)
        return out

    @property
    def timestamp(self) -> int:
        return self.dgram.timestamp

    @property
    def transition(self) -> int:
        return self.dgram.service

    @property
    def damage(self) -> int:
        return self.dgram.damage

    def get(self, det_name: str, fld: str, *, segment: int | None = None,
            alg: str | None = None) -> Any:
        """The value of ``det_name``'s field (first segment/alg holding it), or None."""
        for item in self.items:
            if item.det_name != det_name or fld not in item.values:
                continue
            if (segment is None or item.segment == segment) and (alg is None or
                                                                  item.alg == alg):
                return item.values[fld]
        return None


_SCALAR_CODE = {
    DataType.UINT8: "B", DataType.UINT16: "H", DataType.UINT32: "I", DataType.UINT64: "Q",
    DataType.INT8: "b", DataType.INT16: "h", DataType.INT32: "i", DataType.INT64: "q",
    DataType.FLOAT: "f", DataType.DOUBLE: "d", DataType.ENUMVAL: "i", DataType.ENUMDICT: "i",
}


class _Plan:
    """How to pull every field of one (Names, shapes) out of a Data payload quickly.

    Runs of scalars become one ``struct`` unpack; arrays become ``np.frombuffer`` views.
    """

    __slots__ = ("names", "size", "steps")

    def __init__(self, names: Names, fields: list[FieldLayout]) -> None:
        self.names = names
        self.size = fields[-1].offset + fields[-1].nbytes if fields else 0
        steps: list[tuple] = []
        run: list[FieldLayout] = []

        def flush() -> None:
            if run:
                fmt = "<" + "".join(_SCALAR_CODE[f.type] for f in run)
                steps.append((0, tuple(f.name for f in run), struct.Struct(fmt), run[0].offset))
                run.clear()

        for fl in fields:
            if not fl.shape and fl.type is not DataType.CHARSTR:
                run.append(fl)
                continue
            flush()
            if fl.type is DataType.CHARSTR:
                steps.append((2, fl.name, fl.offset, fl.nbytes))
            else:
                dtype = NUMPY_DTYPE[fl.type]
                steps.append((1, fl.name, dtype, fl.nbytes // dtype.itemsize, fl.offset,
                              fl.shape))
        flush()
        self.steps = steps

    def values(self, buf: Buffer, base: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for step in self.steps:
            kind = step[0]
            if kind == 0:
                out.update(zip(step[1], step[2].unpack_from(buf, base + step[3]), strict=True))
            elif kind == 1:
                out[step[1]] = np.frombuffer(buf, step[2], step[3],
                                             base + step[4]).reshape(step[5])
            else:
                raw = bytes(buf[base + step[2] : base + step[2] + step[3]])
                end = raw.find(b"\0")
                out[step[1]] = (raw if end < 0 else raw[:end]).decode("utf-8", errors="replace")
        return out


class Decoder:
    """Decodes dgrams through a NamesLookup, caching field layouts per (NamesId, shapes)."""

    def __init__(self, lookup: NamesLookup | None = None) -> None:
        self.lookup = lookup if lookup is not None else NamesLookup()
        self._layouts: dict[tuple[int, bytes], list[FieldLayout]] = {}
        self._plans: dict[tuple[int, bytes], _Plan] = {}

    def decode(self, dgram: Dgram) -> Event:
        """Decode every ShapesData of a dgram (registering Names blocks found on the way).

        The common shape of data takes a fast path; anything unusual is handed to the careful
        path, which raises XtcError naming the offset and rule broken.
        """
        try:
            return self._decode_fast(dgram)
        except _FallBackError:
            return self._decode_careful(dgram)

    def _decode_fast(self, dgram: Dgram) -> Event:
        buf = dgram.buf
        unpack = _XTC.unpack_from
        event = Event(dgram)
        items = event.items
        nodes = event.nodes
        lookup = self.lookup
        plans = self._plans
        shift = dgram.file_offset - dgram.offset
        root = dgram.root
        stack: list[tuple[int, int, int | None, int]] = [(root.offset + 12, root.end, None, 0)]
        while stack:
            off, end, seg, depth = stack.pop()
            while off < end:
                if end - off < 12:
                    raise _FallBackError
                src, damage, contains, extent = unpack(buf, off)
                nxt = off + extent
                if extent < 12 or nxt > end:
                    raise _FallBackError
                tid = contains & 0xFFF
                if tid == 1:  # ShapesData
                    names = lookup.get(src & 0x0FFFFFFF)
                    if names is None or extent < 36:
                        raise _FallBackError
                    _a_src, _a_dmg, a_cont, a_ext = unpack(buf, off + 12)
                    b_off = off + 12 + a_ext
                    if a_ext < 12 or b_off + 12 > nxt:
                        raise _FallBackError
                    _b_src, _b_dmg, b_cont, b_ext = unpack(buf, b_off)
                    if b_off + b_ext != nxt:
                        raise _FallBackError
                    a_t, b_t = a_cont & 0xFFF, b_cont & 0xFFF
                    if a_t == 2 and b_t == 3:
                        shapes_at, shapes_ext, data_at, data_ext = off + 12, a_ext, b_off, b_ext
                    elif a_t == 3 and b_t == 2:
                        shapes_at, shapes_ext, data_at, data_ext = b_off, b_ext, off + 12, a_ext
                    else:
                        raise _FallBackError
                    key = (src & 0x0FFFFFFF, bytes(buf[shapes_at + 12 : shapes_at + shapes_ext]))
                    plan = plans.get(key)
                    if plan is None or plan.names is not names:
                        raise _FallBackError
                    if plan.size != data_ext - 12:
                        raise _FallBackError
                    items.append(DetectorData(names, plan.values(buf, data_at + 12),
                                              seg, damage, shift + off))
                elif tid == 0:  # Parent
                    if depth >= MAX_DEPTH:
                        raise _FallBackError
                    level = src >> 28
                    child_seg = seg
                    if level == 0:
                        child_seg = src & 0x0FFFFFFF
                        nodes[child_seg] = damage
                    stack.append((nxt, end, seg, depth))
                    stack.append((off + 12, nxt, child_seg, depth + 1))
                    break
                else:
                    raise _FallBackError  # Names blocks and strays go the careful way
                off = nxt
        return event

    def _decode_careful(self, dgram: Dgram) -> Event:
        event = Event(dgram)
        for hdr, seg in walk(dgram):
            tid = hdr.type_id
            if tid == TypeId.Parent:
                if hdr.level == Level.Segment:
                    event.nodes[hdr.value] = hdr.damage
            elif tid == TypeId.Names:
                names = decode_names(dgram.buf, hdr.offset, hdr.extent, hdr.src, dgram.source)
                self.lookup[names.names_id] = names
            elif tid == TypeId.ShapesData:
                event.items.append(self.decode_shapesdata(dgram, hdr, seg))
        return event

    def decode_shapesdata(self, dgram: Dgram, sd: XtcHeader,
                          segment: XtcHeader | None = None) -> DetectorData:
        nid = sd.value
        names = self.lookup.get(nid)
        if names is None:
            raise dgram.error(f"namesid {nid:#x} not found in the Configure's Names",
                              sd.offset, "unknown-namesid")
        shapes_hdr, data_hdr = shapes_and_data(dgram, sd)
        buf = dgram.buf
        if shapes_hdr is not None and shapes_hdr.extent > XTC_HEADER_SIZE:
            nbytes = shapes_hdr.extent - XTC_HEADER_SIZE
            if nbytes % SHAPE_SIZE:
                raise dgram.error(f"Shapes payload of {nbytes} bytes is not a whole number of "
                                  f"{SHAPE_SIZE}-byte shapes", shapes_hdr.offset, "shapes-size")
            key_bytes = bytes(buf[shapes_hdr.payload : shapes_hdr.end])
        else:
            key_bytes = b""
        data_size = data_hdr.extent - XTC_HEADER_SIZE
        key = (nid, key_bytes)
        fields = self._layouts.get(key)
        if fields is None or (fields and fields[-1].offset + fields[-1].nbytes > data_size):
            shapes = (np.frombuffer(key_bytes, _SHAPE_DTYPE).reshape(-1, 5)
                      if key_bytes else None)
            fields = layout(names, shapes, data_size, dgram, sd.offset)
            if len(self._layouts) < 4096:
                self._layouts[key] = fields
        base = data_hdr.payload
        plan = self._plans.get(key)
        if plan is None or plan.names is not names:
            plan = _Plan(names, fields)
            if len(self._plans) < 4096:
                self._plans[key] = plan
        values = plan.values(buf, base)
        return DetectorData(names, values, segment.value if segment is not None else None,
                            sd.damage, dgram.file_offset - dgram.offset + sd.offset)


def data_payload_size(names: Names, shapes: list[tuple[int, ...]]) -> int:
    """Bytes a Data payload must hold for ``names`` with these array shapes (field order)."""
    total = 0
    it = iter(shapes)
    for f in names.fields:
        if f.rank == 0:
            total += ELEMENT_SIZE[f.type]
        else:
            total += math.prod(next(it)[: f.rank]) * ELEMENT_SIZE[f.type]
    return total
