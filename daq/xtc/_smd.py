"""Small data: per big dgram, its (offset, size) plus small contributions inline; lookup by time.

The small-data stream copies every transition verbatim, adds an ``smdinfo`` Names block to the
Configure and replaces each L1Accept by a dgram holding {intOffset, intDgramSize} of the big
dgram in its chunk file, followed by copies of that event's contributions no larger than
``inline_limit`` bytes, so cheap cuts never touch the big file. The reference reader reads both.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ._decode import Decoder, NamesLookup
from ._dgram import Dgram
from ._errors import XtcError
from ._names import Alg, Field, Names
from ._types import SMD_NODE_ID, DataType, TransitionId, TypeId
from ._writer import Block, EncodedDgram, NamesBlock, Part

_EXTENT_AT = struct.Struct("<I")
#: dgram header + ShapesData {Shapes (empty), Data {intOffset, intDgramSize}}: 76 bytes
_SMD_EVENT = struct.Struct("<IIIIHHI" + "IHHI" * 3 + "QQ")
_SMD_EXTENT = 12 + 52

SMDINFO_NAMES = Names.create(
    "smdinfo", "offset",
    [Field("intOffset", DataType.UINT64), Field("intDgramSize", DataType.UINT64)],
    node_id=SMD_NODE_ID, index=0, alg=Alg.of("offsetAlg", 0, 0, 0),
)


class SmdGenerator:
    """Turns each big dgram into its small-data dgram (stateless but for the inline limit)."""

    def __init__(self, inline_limit: int = 0, names: Names = SMDINFO_NAMES) -> None:
        self.inline_limit = inline_limit
        self.names = names

    def convert(self, dg: Dgram, offset: int) -> EncodedDgram:
        """The smd dgram for big dgram ``dg`` found at byte ``offset`` of its chunk file."""
        service = dg.service
        if service == TransitionId.L1Accept:
            inline: list[Part] = []
            added = 0
            if self.inline_limit > 0:
                mv = memoryview(dg.buf)
                for child in dg.children():
                    if child.extent <= self.inline_limit:
                        inline.append(mv[child.offset : child.end])
                        added += child.extent
            head = _SMD_EVENT.pack(dg.nanoseconds, dg.seconds, dg.env, dg.root.src, dg.damage,
                                   int(TypeId.Parent), _SMD_EXTENT + added,
                                   self.names.names_id, 0, int(TypeId.ShapesData), 52,
                                   0, 0, int(TypeId.Shapes), 12, 0, 0, int(TypeId.Data), 28,
                                   offset, dg.size)
            return EncodedDgram([head, *inline], len(head) + added)
        body = dg.memoryview()
        if service == TransitionId.Configure:
            return add_to_root(dg, [NamesBlock(self.names)])
        return EncodedDgram([body], dg.size)


def convert_rows(gen: SmdGenerator, rows: np.ndarray, offset: int) -> np.ndarray | None:
    """The smd dgrams of L1Accepts stored back to back from ``offset``: ``rows`` is (N, size)
    uint8, every row a dgram of the same layout. Returns (N, smd size) uint8, byte for byte what
    ``convert`` gives row by row, or None when the rows' layouts differ."""
    n, size = rows.shape
    spans: list[tuple[int, int]] = []  # inline children (start, end)
    pos = 24
    while pos < size:
        ext = rows[:, pos + 8 : pos + 12].view("<u4")[:, 0]
        if np.any(ext != ext[0]) or ext[0] < 12 or pos + int(ext[0]) > size:
            return None
        end = pos + int(ext[0])
        if gen.inline_limit > 0 and end - pos <= gen.inline_limit:
            spans.append((pos, end))
        pos = end
    added = sum(e - b for b, e in spans)
    head = np.frombuffer(_SMD_EVENT.pack(
        0, 0, 0, 0, 0, int(TypeId.Parent), _SMD_EXTENT + added, gen.names.names_id, 0,
        int(TypeId.ShapesData), 52, 0, 0, int(TypeId.Shapes), 12, 0, 0, int(TypeId.Data), 28,
        0, size), np.uint8)
    out = np.empty((n, head.size + added), np.uint8)
    out[:, : head.size] = head
    out[:, 0:18] = rows[:, 0:18]  # time, env, root src, damage
    out[:, 60:68].view("<u8")[:, 0] = offset + size * np.arange(n, dtype=np.uint64)
    at = head.size
    for b, e in spans:
        out[:, at : at + e - b] = rows[:, b:e]
        at += e - b
    return out


def add_to_root(dg: Dgram, blocks: Iterable[Block]) -> EncodedDgram:
    """A copy of ``dg`` with extra blocks appended to its root Parent (extents updated)."""
    extra: list = []
    added = 0
    for b in blocks:
        b.emit(extra)
        added += b.size
    head = bytearray(dg.memoryview()[:24])
    _EXTENT_AT.pack_into(head, 20, dg.root.extent + added)
    body = dg.memoryview()[24:]
    return EncodedDgram([bytes(head), body, *extra], dg.size + added)


@dataclass(frozen=True, slots=True)
class SmdEntry:
    """Where one big dgram lives, as the small-data stream says."""

    timestamp: int
    service: int
    chunk: int
    offset: int
    size: int
    smd_offset: int = -1  #: where this entry's dgram sits in the small-data file


class SmdIndex:
    """Index of a small-data stream: L1Accepts by timestamp -> (chunk, offset, size)."""

    def __init__(self, entries: list[SmdEntry]) -> None:
        self.entries = entries
        self._keys = [e.timestamp for e in entries]

    @classmethod
    def from_dgrams(cls, dgrams: Iterable[Dgram]) -> SmdIndex:
        decoder = Decoder(NamesLookup())
        entries: list[SmdEntry] = []
        chunk = 0
        for dg in dgrams:
            if dg.service == TransitionId.Configure:
                decoder.lookup.add_configure(dg)
                continue
            if dg.service == TransitionId.Enable:
                cid = _chunk_id(decoder, dg)
                if cid is not None:
                    chunk = cid
                continue
            if dg.service != TransitionId.L1Accept:
                continue
            off = size = None
            for hdr in dg.children():
                if hdr.type_id == TypeId.ShapesData:
                    names = decoder.lookup.get(hdr.value)
                    if names is not None and names.det_name == "smdinfo":
                        values = decoder.decode_shapesdata(dg, hdr).values
                        off, size = int(values["intOffset"]), int(values["intDgramSize"])
                        break
            if off is None or size is None:
                raise dg.error("small-data L1Accept has no smdinfo offset", dg.offset,
                               "smd-offset")
            entries.append(SmdEntry(dg.timestamp, dg.service, chunk, off, size, dg.file_offset))
        return cls(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, ts: int) -> SmdEntry | None:
        """The L1Accept with exactly this timestamp (``seconds << 32 | nanoseconds``)."""
        i = bisect.bisect_left(self._keys, ts)
        if i < len(self._keys) and self._keys[i] == ts:
            return self.entries[i]
        return None


def _chunk_id(decoder: Decoder, dg: Dgram) -> int | None:
    try:
        event = decoder.decode(dg)
    except XtcError:
        return None
    value = event.get("chunkinfo", "chunkid")
    return None if value is None else int(value)
