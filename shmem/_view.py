"""Building ``daq.xtc.Dgram`` views of ring buffers fast.

``Dgram(buf)`` builds a frozen ``XtcHeader`` per call (about 1 us, the biggest per-event cost
of a client). Buffers in a ring hold the same few layouts over and over, so the root header is
cached by value; anything unusual goes through ``Dgram(buf)`` and its checks.
"""

from __future__ import annotations

import struct
from typing import Any

from daq.xtc import Dgram, TypeId, XtcHeader

_HEAD = struct.Struct("<IIIIII")
_MAX_CACHE = 4096
_PARENT = int(TypeId.Parent)


class DgramFactory:
    """Makes Dgram views over buffers whose size the server already checked."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.roots: dict[tuple[int, int, int], XtcHeader] = {}  # (src, dc, extent) -> root

    def root(self, src: int, dc: int, extent: int) -> XtcHeader:
        """The root header of these raw words (damage | contains << 16), made once."""
        roots = self.roots
        root = roots.get((src, dc, extent))
        if root is None:
            if len(roots) >= _MAX_CACHE:
                roots.clear()
            root = roots[(src, dc, extent)] = XtcHeader(12, src, dc & 0xFFFF, dc >> 16, extent)
        return root

    def make(self, buf: Any, size: int) -> Dgram:
        ns, sec, env, src, dc, extent = _HEAD.unpack_from(buf, 0)
        if extent < 12 or 12 + extent != size or (dc >> 16) & 0xFFF != _PARENT:
            return Dgram(buf, source=self.source)  # raises XtcError with the reason
        root = self.roots.get((src, dc, extent)) or self.root(src, dc, extent)
        dg = Dgram.__new__(Dgram)
        dg.buf = buf
        dg.offset = 0
        dg.nanoseconds = ns
        dg.seconds = sec
        dg.env = env
        dg.root = root
        dg.source = self.source
        dg.file_offset = 0
        return dg
