"""The fragment header carried by every DAQ datagram, and splitting/reassembly of contributions.

Header (40 bytes, little-endian):

| off | type | field |
|---|---|---|
| 0 | u32 | magic ``0x31464458`` ("XDF1") |
| 4 | u8 | version (1) |
| 5 | u8 | transition id (12 = L1Accept) |
| 6 | u16 | partition (datagrams of another partition are foreign) |
| 8 | u16 | node id of the sender |
| 10 | u16 | fragment index |
| 12 | u16 | fragment count |
| 14 | u16 | flags (bit 0: timing record; bit 1: the CRC covers the payload too) |
| 16 | u64 | pulse id |
| 24 | u32 | total size of the contribution (all fragments) |
| 28 | u32 | offset of this fragment's payload in the contribution |
| 32 | u32 | configure epoch (increments at each Configure; older epochs are stale) |
| 36 | u32 | CRC-32 of bytes 0..35 (and of the payload when flag bit 1 is set) |

Checking the payload costs ~0.3 ms per MB on each side; UDP already checksums payloads, so by
default only the header is covered and ``full_crc=True`` (config ``network.checksum = "full"``)
turns payload coverage on.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = 0x31464458
VERSION = 1
HEADER = struct.Struct("<IBBHHHHHQIIII")
HEADER_SIZE = HEADER.size  # 40
_CRC_SPAN = 36
FLAG_TIMING = 1
FLAG_FULL_CRC = 2
MAX_CONTRIBUTION = 1 << 30  #: refuse to reassemble anything larger (a bad size field)


class FragmentError(ValueError):
    """A datagram that is not a valid fragment (size, magic, version, checksum, bounds)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FragmentHeader:
    transition: int
    partition: int
    node: int
    index: int
    count: int
    flags: int
    pulse_id: int
    total: int
    offset: int
    epoch: int


def fragments(payload: memoryview | bytes, *, fragment_size: int, transition: int,
              partition: int, node: int, pulse_id: int, epoch: int,
              flags: int = 0, full_crc: bool = False) -> Iterator[list[bytes | memoryview]]:
    """Split a contribution into datagrams, each ``[header, payload slice]`` (for sendmsg)."""
    mv = memoryview(payload).cast("B")
    total = len(mv)
    step = fragment_size - HEADER_SIZE
    if step <= 0:
        raise ValueError(f"fragment size {fragment_size} leaves no room after the header")
    count = max(1, -(-total // step))
    if count > 0xFFFF:
        raise ValueError(f"a {total}-byte contribution needs {count} fragments (max 65535)")
    if full_crc:
        flags |= FLAG_FULL_CRC
    for index in range(count):
        off = index * step
        piece = mv[off : off + step]
        head = bytearray(HEADER.pack(MAGIC, VERSION, transition, partition, node, index, count,
                                     flags, pulse_id, total, off, epoch, 0))
        crc = zlib.crc32(memoryview(head)[:_CRC_SPAN])
        if full_crc:
            crc = zlib.crc32(piece, crc)
        struct.pack_into("<I", head, _CRC_SPAN, crc)
        yield [bytes(head), piece]


def parse(datagram: memoryview, n: int) -> FragmentHeader:
    """Check and decode a received datagram of ``n`` bytes (checksum included)."""
    if n < HEADER_SIZE:
        raise FragmentError("short", f"{n}-byte datagram is shorter than the {HEADER_SIZE}-byte "
                            "fragment header")
    (magic, version, transition, partition, node, index, count, flags, pulse_id, total,
     offset, epoch, crc) = HEADER.unpack_from(datagram, 0)
    if magic != MAGIC:
        raise FragmentError("foreign", f"bad magic {magic:#x}")
    if version != VERSION:
        raise FragmentError("foreign", f"fragment version {version}, expected {VERSION}")
    size = n - HEADER_SIZE
    if count == 0 or index >= count or total > MAX_CONTRIBUTION or offset + size > total:
        raise FragmentError("malformed", f"fragment {index}/{count} at {offset}+{size} of "
                            f"{total} bytes is out of bounds")
    expect = zlib.crc32(datagram[:_CRC_SPAN])
    if flags & FLAG_FULL_CRC:
        expect = zlib.crc32(datagram[HEADER_SIZE:n], expect)
    if expect != crc:
        raise FragmentError("checksum", "checksum mismatch")
    return FragmentHeader(transition, partition, node, index, count, flags, pulse_id, total,
                          offset, epoch)


class Reassembly:
    """One contribution being reassembled from its fragments (any order, duplicates counted)."""

    __slots__ = ("buf", "count", "received", "seen", "total")

    def __init__(self, total: int, count: int) -> None:
        self.buf = bytearray(total)
        self.total = total
        self.count = count
        self.received = 0
        self.seen = bytearray(count)

    def add(self, head: FragmentHeader, datagram: memoryview, n: int) -> bool:
        """Place a fragment; returns True when complete. Raises FragmentError on mismatch."""
        if head.total != self.total or head.count != self.count:
            raise FragmentError("malformed", "fragment disagrees with its siblings on size")
        if self.seen[head.index]:
            raise FragmentError("duplicate", f"fragment {head.index} received twice")
        size = n - HEADER_SIZE
        self.buf[head.offset : head.offset + size] = datagram[HEADER_SIZE:n]
        self.seen[head.index] = 1
        self.received += 1
        return self.received == self.count
