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
| 14 | u16 | flags (bit 0: timing record; bit 1: the CRC covers the payload too; bit 2: batch) |
| 16 | u64 | pulse id |
| 24 | u32 | total size of the contribution (all fragments) |
| 28 | u32 | offset of this fragment's payload in the contribution |
| 32 | u32 | configure epoch (increments at each Configure; older epochs are stale) |
| 36 | u32 | CRC-32 of bytes 0..35 (and of the payload when flag bit 1 is set) |

Checking the payload costs ~0.3 ms per MB on each side; UDP already checksums payloads, so by
default only the header is covered and ``full_crc=True`` (config ``network.checksum = "full"``)
turns payload coverage on.

A batch datagram (flag bit 2, never fragmented) carries several small L1Accept contributions of
one node, all of the same size, for one builder; the header's pulse id is the first one's:

| off | type | field |
|---|---|---|
| 0 | u32 | number of contributions N |
| 4 | u32 | size S of each contribution |
| 8 | u64 x N | their pulse ids, increasing |
| 8 + 8N | S x N | the contributions (each a dgram holding the node's Segment Parent) |
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

MAGIC = 0x31464458
VERSION = 1
HEADER = struct.Struct("<IBBHHHHHQIIII")
HEADER_SIZE = HEADER.size  # 40
_CRC_SPAN = 36
FLAG_TIMING = 1
FLAG_FULL_CRC = 2
FLAG_BATCH = 4
_BATCH_HEAD = struct.Struct("<II")
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

    def __init__(self, total: int, count: int,
                 buf: bytearray | memoryview | None = None) -> None:
        """``buf`` (``total`` bytes, e.g. from a buffer pool) receives the payload."""
        self.buf = bytearray(total) if buf is None else buf
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


def batch_capacity(fragment_size: int, size: int) -> int:
    """How many contributions of ``size`` bytes fit in one batch datagram."""
    return max(0, (fragment_size - HEADER_SIZE - _BATCH_HEAD.size) // (size + 8))


def batch_payload(pulse_ids: np.ndarray, rows: np.ndarray) -> list[bytes | memoryview]:
    """The payload parts of a batch datagram: ``rows`` is (N, S) uint8, one contribution each."""
    n, size = rows.shape
    return [_BATCH_HEAD.pack(n, size), pulse_ids.astype("<u8").tobytes(),
            np.ascontiguousarray(rows).data.cast("B")]


def parse_batch(payload: bytes | memoryview) -> tuple[np.ndarray, np.ndarray]:
    """(pulse ids (N,), contributions (N, S) uint8) of a batch datagram's payload, checked."""
    if len(payload) < _BATCH_HEAD.size:
        raise FragmentError("malformed", f"{len(payload)}-byte batch has no batch header")
    n, size = _BATCH_HEAD.unpack_from(payload, 0)
    if n == 0 or size < 24 or _BATCH_HEAD.size + n * (8 + size) != len(payload):
        raise FragmentError("malformed", f"batch of {n} x {size} bytes does not fill its "
                            f"{len(payload)}-byte payload")
    buf = np.frombuffer(payload, np.uint8)
    pids = buf[_BATCH_HEAD.size : _BATCH_HEAD.size + 8 * n].view("<u8")
    if n > 1 and not bool(np.all(pids[1:] > pids[:-1])):
        raise FragmentError("malformed", "batch pulse ids are not increasing")
    rows = buf[_BATCH_HEAD.size + 8 * n :].reshape(n, size)
    return pids, rows
