"""Reading XTC2 files: large sequential reads, zero-copy dgram views, truncated tails."""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

from ._dgram import Dgram
from ._errors import XtcError, XtcTruncatedError, XtcTruncatedWarning
from ._types import DGRAM_HEADER_SIZE, XTC_HEADER_SIZE

_EXTENT = struct.Struct("<I")
DEFAULT_CHUNK = 1 << 22  #: bytes read per system call for small dgrams


class XtcFileReader:
    """Iterate the dgrams of one XTC2 file (or any binary stream) in order.

    Small dgrams are cut out of large read buffers; a dgram larger than the read size gets a
    buffer of its own. Each yielded Dgram keeps its buffer alive, so its arrays stay valid after
    the reader moves on. A file that ends inside a dgram yields every complete dgram, then warns
    (``XtcTruncatedWarning``) and counts it in ``truncated``; with ``strict=True`` it raises
    ``XtcTruncatedError`` instead. A size that cannot be right (extent < 12) raises XtcError.
    Nothing is ever allocated from a size read in the file beyond what the file actually holds.
    """

    def __init__(self, path: str | os.PathLike[str], *, strict: bool = False,
                 chunk_size: int = DEFAULT_CHUNK) -> None:
        self.path = Path(path)
        self.strict = strict
        self.chunk_size = chunk_size
        self.truncated = 0
        self.dgrams = 0
        self.bytes = 0
        self.tail_offset = -1  #: file offset of an incomplete tail dgram, -1 if none
        self._fh: io.RawIOBase | None = None

    def __enter__(self) -> XtcFileReader:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        if self._fh is None:
            self._fh = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed in close()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __iter__(self) -> Iterator[Dgram]:
        self.open()
        assert self._fh is not None
        yield from read_stream(self._fh, str(self.path), self, 0)


def _readinto_full(fh: io.RawIOBase | io.BufferedReader, view: memoryview) -> int:
    got = 0
    while got < len(view):
        n = fh.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def read_stream(fh: io.RawIOBase | io.BufferedReader, source: str, stats: XtcFileReader,
                start: int) -> Iterator[Dgram]:
    """The dgram loop behind XtcFileReader, reading ``fh`` from its current position."""
    chunk = stats.chunk_size
    buf = np.empty(0, np.uint8)
    mv = memoryview(buf)  # type: ignore[arg-type]
    pos = 0  # position in buf of the next dgram
    filled = 0  # valid bytes in buf
    buf_base = start  # file offset of buf[0]
    eof = False

    def refill(need: int) -> None:
        """Make at least ``need`` bytes available from ``pos``, keeping the unread tail."""
        nonlocal buf, mv, pos, filled, buf_base, eof
        left = filled - pos
        size = max(chunk, need)
        new = np.empty(size, np.uint8)
        nmv = memoryview(new)  # type: ignore[arg-type]
        if left:
            nmv[:left] = mv[pos:filled]
        got = _readinto_full(fh, nmv[left:]) if not eof else 0
        if got < size - left:
            eof = True
        buf_base += pos
        buf, mv, pos, filled = new, nmv, 0, left + got

    while True:
        if filled - pos < DGRAM_HEADER_SIZE:
            if eof and filled - pos == 0:
                return
            refill(DGRAM_HEADER_SIZE)
            if filled - pos == 0:
                return
            if filled - pos < DGRAM_HEADER_SIZE:
                _truncated(stats, source, buf_base + pos, filled - pos, DGRAM_HEADER_SIZE)
                return
        extent = _EXTENT.unpack_from(mv, pos + 20)[0]
        if extent < XTC_HEADER_SIZE:
            raise XtcError(f"corrupt dgram with too small extent: {extent}", source=source,
                           offset=buf_base + pos, rule="extent-too-small")
        size = 12 + extent
        if filled - pos < size:
            if not eof:
                # Allocate from an untrusted header only what the file really holds.
                avail = filled - pos + _remaining(fh)
                if size <= avail:
                    refill(size)
                else:
                    refill(min(size, max(chunk, avail)))
            if filled - pos < size:
                _truncated(stats, source, buf_base + pos, filled - pos, size)
                return
        dg = Dgram(buf, pos, source=source, file_offset=buf_base + pos)
        stats.dgrams += 1
        stats.bytes += size
        pos += size
        yield dg


def _remaining(fh: io.RawIOBase | io.BufferedReader) -> int:
    """Bytes left in a regular file after its current position (a large number for streams)."""
    try:
        return max(0, os.fstat(fh.fileno()).st_size - fh.tell())
    except (OSError, io.UnsupportedOperation):
        return 1 << 62


def _truncated(stats: XtcFileReader, source: str, offset: int, have: int, need: int) -> None:
    stats.truncated += 1
    stats.tail_offset = offset
    if need == DGRAM_HEADER_SIZE:
        message = f"file ends inside a dgram header: read {have}/{need} bytes"
    else:  # as the reference reader counts: payload bytes after the 24-byte header
        message = (f"file ends inside a dgram: read incomplete payload "
                   f"{have - DGRAM_HEADER_SIZE}/{need - DGRAM_HEADER_SIZE}")
    if stats.strict:
        raise XtcTruncatedError(message, source=source, offset=offset, rule="truncated")
    warnings.warn(f"{source} at byte {offset}: {message}", XtcTruncatedWarning, stacklevel=3)


def read_dgrams(path: str | os.PathLike[str], *, strict: bool = False) -> Iterator[Dgram]:
    """Convenience: iterate the dgrams of a file, closing it at the end."""
    with XtcFileReader(path, strict=strict) as reader:
        yield from reader
