"""Building dgrams: Names, ShapesData and Parent blocks emitted as buffer parts, no big copies.

A block knows its size before it is written, so headers with extents are produced in one pass.
Large arrays travel as memoryviews of the caller's numpy arrays down to ``os.writev`` (files) or
one copy into a destination buffer (shared memory, datagrams).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ._names import Names
from ._types import (
    ELEMENT_SIZE,
    NUMPY_DTYPE,
    SHAPE_SIZE,
    XTC_HEADER_SIZE,
    DataType,
    DgramType,
    Level,
    TransitionId,
    TypeId,
    make_env,
)

_XTC_HEADER = struct.Struct("<IHHI")
_DGRAM_HEADER = struct.Struct("<IIIIHHI")
_SCALAR = {t: struct.Struct("<" + c) for t, c in {
    DataType.UINT8: "B", DataType.UINT16: "H", DataType.UINT32: "I", DataType.UINT64: "Q",
    DataType.INT8: "b", DataType.INT16: "h", DataType.INT32: "i", DataType.INT64: "q",
    DataType.FLOAT: "f", DataType.DOUBLE: "d", DataType.ENUMVAL: "i", DataType.ENUMDICT: "i",
}.items()}
INLINE_LIMIT = 4096  #: arrays smaller than this are copied into the header part
_IOV_MAX = 1024

Part = bytes | bytearray | memoryview


class Block(Protocol):
    """Anything that can be placed in a Parent: knows its size and emits its bytes."""

    @property
    def size(self) -> int: ...

    def emit(self, parts: list[Part]) -> None: ...


class NamesBlock:
    """A Names xtc (goes into the Configure)."""

    __slots__ = ("_bytes",)

    def __init__(self, names: Names) -> None:
        self._bytes = names.encode()

    @property
    def size(self) -> int:
        return len(self._bytes)

    def emit(self, parts: list[Part]) -> None:
        parts.append(self._bytes)


class RawBlock:
    """An already-encoded xtc (e.g. a readout node's contribution received from the network)."""

    __slots__ = ("_buf",)

    def __init__(self, buf: Part) -> None:
        self._buf = buf

    @property
    def size(self) -> int:
        return len(self._buf)

    def emit(self, parts: list[Part]) -> None:
        parts.append(self._buf)


def _encode_value(f_type: DataType, rank: int, name: str, value: Any,
                  head: bytearray, shapes: list[int], parts: list[Part]) -> int:
    """Append one field's bytes; returns bytes added. Large arrays become their own part."""
    if f_type is DataType.CHARSTR:
        raw = value.encode() if isinstance(value, str) else bytes(value)
        if b"\0" in raw:
            raw = raw[: raw.index(b"\0")]
        n = (len(raw) + 1 + 3) & ~3
        head += raw
        head += bytes(n - len(raw))
        shapes.extend((n, 0, 0, 0, 0))
        return n
    if rank == 0:
        try:
            head += _SCALAR[f_type].pack(value)
        except (struct.error, TypeError) as exc:
            raise ValueError(f"field {name!r}: cannot store {value!r} as {f_type.name}: "
                             f"{exc}") from None
        return ELEMENT_SIZE[f_type]
    dtype = NUMPY_DTYPE[f_type]
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.ndim != rank:
        raise ValueError(f"field {name!r}: expected rank {rank}, got an array of shape "
                         f"{arr.shape}")
    if arr.dtype != dtype:
        arr = _convert(arr, dtype, name, f_type)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    dims = list(arr.shape) + [0] * (5 - rank)
    if any(d >= 1 << 32 for d in dims):
        raise ValueError(f"field {name!r}: dimension does not fit in 32 bits")
    shapes.extend(dims)
    if arr.nbytes < INLINE_LIMIT:
        head += arr.tobytes()
    else:
        if head:  # flush the small values that came before
            parts.append(bytes(head))
            head.clear()
        parts.append(memoryview(arr).cast("B"))  # type: ignore[arg-type]
    return arr.nbytes


def _convert(arr: np.ndarray, dtype: np.dtype, name: str, f_type: DataType) -> np.ndarray:
    """Convert an array to a field's dtype (a copy) when no value can change."""
    src = arr.dtype
    ok = np.can_cast(src, dtype, casting="safe") or (src.kind == "b" and dtype.kind in "uif") \
        or (src.kind in "iu" and dtype.kind == "f")
    if not ok and src.kind in "iu" and dtype.kind in "iu":
        info = np.iinfo(dtype)
        ok = arr.size == 0 or (int(arr.min()) >= info.min and int(arr.max()) <= info.max)
    if not ok and src.kind == "f" and dtype.kind == "f":
        ok = True  # double -> float: precision, by request of the field's declared type
    if not ok:
        raise ValueError(f"field {name!r}: array of {src} cannot be stored as {f_type.name} "
                         "without changing values")
    return arr.astype(dtype)


class ShapesDataBlock:
    """A ShapesData xtc {Shapes, Data} holding one value per field of ``names``.

    ``values`` maps field names to values, or is a sequence in field order. Arrays must have the
    field's rank; their dtype is converted only if it differs (a copy), and large C-contiguous
    arrays are referenced, not copied.
    """

    __slots__ = ("_parts", "_size", "damage", "names")

    def __init__(self, names: Names, values: Mapping[str, Any] | Sequence[Any],
                 damage: int = 0) -> None:
        self.names = names
        self.damage = damage
        if isinstance(values, Mapping):
            missing = [f.name for f in names.fields if f.name not in values]
            if missing:
                raise ValueError(f"detector {names.det_name!r} ({names.alg.name}): no value "
                                 f"for field(s) {', '.join(missing)}")
            if len(values) != len(names.fields):
                extra = set(values) - {f.name for f in names.fields}
                raise ValueError(f"detector {names.det_name!r}: unknown field(s) "
                                 f"{', '.join(sorted(extra))}")
            seq = [values[f.name] for f in names.fields]
        else:
            seq = list(values)
            if len(seq) != len(names.fields):
                raise ValueError(f"detector {names.det_name!r}: {len(seq)} values for "
                                 f"{len(names.fields)} fields")
        shapes: list[int] = []
        data_parts: list[Part] = []
        head = bytearray()
        nbytes = 0
        for f, v in zip(names.fields, seq, strict=True):
            nbytes += _encode_value(f.type, f.rank, f.name, v, head, shapes, data_parts)
        if head:
            data_parts.append(bytes(head))
        n_arrays = len(shapes) // 5
        shapes_size = XTC_HEADER_SIZE + SHAPE_SIZE * n_arrays
        data_size = XTC_HEADER_SIZE + nbytes
        self._size = XTC_HEADER_SIZE + shapes_size + data_size
        prefix = bytearray(XTC_HEADER_SIZE * 2)
        _XTC_HEADER.pack_into(prefix, 0, names.names_id, damage, int(TypeId.ShapesData),
                              self._size)
        _XTC_HEADER.pack_into(prefix, 12, 0, 0, int(TypeId.Shapes), shapes_size)
        if shapes:
            prefix += struct.pack(f"<{len(shapes)}I", *shapes)
        prefix += _XTC_HEADER.pack(0, 0, int(TypeId.Data), data_size)
        # Merge the prefix with the first data part when that part is small.
        if data_parts and not isinstance(data_parts[0], memoryview):
            prefix += data_parts[0]
            data_parts = data_parts[1:]
        self._parts: list[Part] = [bytes(prefix), *data_parts]

    @property
    def size(self) -> int:
        return self._size

    def emit(self, parts: list[Part]) -> None:
        parts.extend(self._parts)


class ParentBlock:
    """A Parent xtc holding other blocks (a readout node's Segment, or nested events)."""

    __slots__ = ("_size", "children", "damage", "src")

    def __init__(self, src: int, children: Iterable[Block], damage: int = 0) -> None:
        self.src = src
        self.children = list(children)
        self.damage = damage
        self._size = XTC_HEADER_SIZE + sum(c.size for c in self.children)

    @property
    def size(self) -> int:
        return self._size

    def emit(self, parts: list[Part]) -> None:
        parts.append(_XTC_HEADER.pack(self.src, self.damage, int(TypeId.Parent), self._size))
        for child in self.children:
            child.emit(parts)


def segment_src(node_id: int) -> int:
    """src of a readout node's Segment-level Parent."""
    return (int(Level.Segment) << 28) | (node_id & 0x0FFFFFFF)


def event_src(builder_id: int) -> int:
    """src of an event builder's Event-level Parent (the root of a built event)."""
    return (int(Level.Event) << 28) | (builder_id & 0x0FFFFFFF)


class EncodedDgram:
    """A whole dgram as a list of buffer parts; write it to a file or pack it into a buffer."""

    __slots__ = ("parts", "size")

    def __init__(self, parts: list[Part], size: int) -> None:
        self.parts = parts
        self.size = size

    def tobytes(self) -> bytes:
        return b"".join(self.parts)

    def pack_into(self, buf: Any, offset: int = 0) -> int:
        """Copy into a writable buffer at ``offset`` (one copy); returns the size."""
        mv = memoryview(buf).cast("B") if not isinstance(buf, memoryview) else buf.cast("B")
        if offset + self.size > len(mv):
            raise ValueError(f"dgram of {self.size} bytes does not fit at offset {offset} of a "
                             f"{len(mv)}-byte buffer")
        p = offset
        for part in self.parts:
            n = len(part) if not isinstance(part, memoryview) else part.nbytes
            mv[p : p + n] = part
            p += n
        return self.size

    def write_to(self, fd: int) -> int:
        """Write to a file descriptor with gathered writes; returns bytes written."""
        return writev_all(fd, self.parts)


def writev_all(fd: int, parts: Sequence[Part]) -> int:
    """os.writev that finishes partial writes and respects IOV_MAX."""
    total = 0
    pending = [memoryview(p).cast("B") for p in parts]
    while pending:
        batch = pending[:_IOV_MAX]
        n = os.writev(fd, batch)
        total += n
        # drop fully written parts, trim a partly written one
        while batch and n >= len(batch[0]):
            n -= len(batch[0])
            batch.pop(0)
            pending.pop(0)
        if n:
            pending[0] = pending[0][n:]
    return total


def make_dgram(
    transition: TransitionId | int,
    seconds: int,
    nanoseconds: int,
    children: Iterable[Block] = (),
    *,
    root_src: int = 0,
    damage: int = 0,
    readout_groups: int = 0,
    dgram_type: DgramType | int = DgramType.Event,
    trigger_bits: int = 0,
) -> EncodedDgram:
    """Build a dgram: 24-byte header whose root Parent holds ``children``.

    For a built event, ``root_src`` is the builder's Event-level src and each child a
    Segment-level ParentBlock per readout node.
    """
    kids = list(children)
    extent = XTC_HEADER_SIZE + sum(c.size for c in kids)
    env = make_env(transition, readout_groups, dgram_type, trigger_bits)
    parts: list[Part] = [_DGRAM_HEADER.pack(nanoseconds, seconds, env, root_src, damage,
                                            int(TypeId.Parent), extent)]
    for child in kids:
        child.emit(parts)
    return EncodedDgram(parts, 12 + extent)
