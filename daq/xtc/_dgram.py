"""Zero-copy views of dgrams and xtc containers in a buffer, with bounds-checked iteration."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._errors import XtcError
from ._types import (
    DGRAM_HEADER_SIZE,
    XTC_HEADER_SIZE,
    TransitionId,
    TypeId,
    env_readout_groups,
    env_transition,
)

_DGRAM_HEADER = struct.Struct("<IIIIHHI")
_XTC_HEADER = struct.Struct("<IHHI")
MAX_DEPTH = 32  #: deepest Parent nesting a reader follows (built events use 2)

#: anything exposing the buffer protocol: bytes, bytearray, memoryview, mmap, numpy uint8 array
Buffer = Any


@dataclass(frozen=True, slots=True)
class XtcHeader:
    """One xtc container header found at ``offset`` of a buffer."""

    offset: int
    src: int
    damage: int
    contains: int
    extent: int

    @property
    def type_id(self) -> int:
        return self.contains & 0xFFF

    @property
    def version(self) -> int:
        return self.contains >> 12

    @property
    def level(self) -> int:
        return (self.src >> 28) & 0xF

    @property
    def value(self) -> int:
        return self.src & 0x0FFFFFFF

    @property
    def payload(self) -> int:
        return self.offset + XTC_HEADER_SIZE

    @property
    def end(self) -> int:
        return self.offset + self.extent


def read_xtc_header(buf: Buffer, offset: int) -> XtcHeader:
    src, damage, contains, extent = _XTC_HEADER.unpack_from(buf, offset)
    return XtcHeader(offset, src, damage, contains, extent)


def iter_children(buf: Buffer, parent: XtcHeader, source: str = "<buffer>",
                  base: int = 0) -> Iterator[XtcHeader]:
    """The children of a container, each checked to lie inside it; they must fill it exactly.

    ``base`` is added to buffer offsets in error messages (the buffer's position in its file).
    """
    off, end = parent.payload, parent.end
    while off < end:
        if end - off < XTC_HEADER_SIZE:
            raise XtcError(
                f"{end - off} stray bytes after the last child: children do not fill their "
                f"parent (extent {parent.extent})",
                source=source, offset=base + off, rule="children-fill-parent",
            )
        child = read_xtc_header(buf, off)
        if child.extent < XTC_HEADER_SIZE:
            raise XtcError(f"corrupt xtc with too small extent: {child.extent} (extent field "
                           f"at byte {base + off + 8})",
                           source=source, offset=base + off, rule="extent-too-small")
        if child.end > end:
            raise XtcError(
                f"child extent {child.extent} runs {child.end - end} bytes past its parent",
                source=source, offset=base + off, rule="children-fill-parent",
            )
        yield child
        off = child.end


class Dgram:
    """A dgram in a buffer: header fields decoded, payload left in place (zero copy).

    ``file_offset`` is where the dgram starts in its file (or -1 for a bare buffer), used for
    error messages and small-data offsets.
    """

    __slots__ = (
        "buf",
        "env",
        "file_offset",
        "nanoseconds",
        "offset",
        "root",
        "seconds",
        "source",
    )

    def __init__(self, buf: Buffer, offset: int = 0, *, source: str = "<buffer>",
                 file_offset: int = -1) -> None:
        if len(buf) - offset < DGRAM_HEADER_SIZE:
            raise XtcError(f"{len(buf) - offset} bytes cannot hold a {DGRAM_HEADER_SIZE}-byte "
                           "dgram header", source=source, offset=max(file_offset, 0),
                           rule="dgram-header")
        ns, sec, env, src, damage, contains, extent = _DGRAM_HEADER.unpack_from(buf, offset)
        self.buf = buf
        self.offset = offset
        self.nanoseconds = ns
        self.seconds = sec
        self.env = env
        self.root = XtcHeader(offset + 12, src, damage, contains, extent)
        self.source = source
        self.file_offset = file_offset if file_offset >= 0 else offset
        where = self.file_offset
        if extent < XTC_HEADER_SIZE:
            raise XtcError(f"corrupt dgram with too small extent: {extent}", source=source,
                           offset=where, rule="extent-too-small")
        if offset + 12 + extent > len(buf):
            raise XtcError(f"dgram extent {extent} runs past the end of its buffer",
                           source=source, offset=where, rule="extent-past-end")
        if contains & 0xFFF != TypeId.Parent:
            raise XtcError(f"root xtc holds TypeId {contains & 0xFFF}, not a Parent",
                           source=source, offset=where, rule="root-parent")

    @property
    def size(self) -> int:
        """Whole size in bytes: 24-byte header + payload (= 12 + root extent)."""
        return 12 + self.root.extent

    @property
    def service(self) -> int:
        return env_transition(self.env)

    @property
    def transition(self) -> TransitionId:
        return TransitionId(self.service)

    @property
    def is_event(self) -> bool:
        return self.service == TransitionId.L1Accept

    @property
    def timestamp(self) -> int:
        return (self.seconds << 32) | self.nanoseconds

    @property
    def damage(self) -> int:
        return self.root.damage

    @property
    def readout_groups(self) -> int:
        return env_readout_groups(self.env)

    @property
    def payload_size(self) -> int:
        return self.root.extent - XTC_HEADER_SIZE

    def memoryview(self) -> memoryview:
        """The dgram's bytes (zero copy)."""
        return memoryview(self.buf)[self.offset : self.offset + self.size]

    def children(self) -> Iterator[XtcHeader]:
        return iter_children(self.buf, self.root, self.source, self.file_offset - self.offset)

    def error(self, message: str, offset: int, rule: str) -> XtcError:
        """An XtcError at a buffer offset inside this dgram, reported as a file offset."""
        return XtcError(message, source=self.source,
                        offset=self.file_offset - self.offset + offset, rule=rule)

    def __repr__(self) -> str:
        return (f"<Dgram {TransitionId.name_of(self.service)} t={self.seconds:#x}."
                f"{self.nanoseconds:#x} size={self.size} damage={self.damage:#x}>")


def iter_dgrams(buf: Buffer, *, source: str = "<buffer>", start: int = 0,
                base: int = 0) -> Iterator[Dgram]:
    """Every dgram of an in-memory buffer, back to back (e.g. a file read whole, a shm buffer).

    A tail too short for its dgram raises XtcError (a buffer, unlike a file, is never growing).
    """
    off, end = start, len(buf)
    while off < end:
        yield (dg := Dgram(buf, off, source=source, file_offset=base + off))
        off += dg.size
