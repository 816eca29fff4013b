"""Building ``daq.xtc.Dgram`` views of ring buffers fast.

``Dgram(buf)`` builds a frozen ``XtcHeader`` per call (about 1 us, the biggest per-event cost
of a client). Buffers in a ring hold the same few layouts over and over, so the root header is
cached, keyed by its 12 raw bytes (one ``bytes`` key is cheaper to make and look up than a
tuple of three ints); anything unusual goes through ``Dgram(buf)`` and its checks.
"""

from __future__ import annotations

import struct
from typing import Any

from daq.xtc import Dgram, TypeId, XtcHeader

KEYED = struct.Struct("<III12s")  # ns, s, env, the root xtc header's raw bytes (the key)
_ROOT = struct.Struct("<III")  # src, damage | contains << 16, extent
_MAX_CACHE = 4096
_PARENT = int(TypeId.Parent)


class DgramFactory:
    """Makes Dgram views over buffers whose size the server already checked.

    ``roots`` maps a root header's raw bytes to ``(root, dgram size)``; only headers that
    passed the checks of ``make`` (a Parent, extent >= 12) are in it.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.roots: dict[bytes, tuple[XtcHeader, int]] = {}

    def root(self, key: bytes) -> tuple[XtcHeader, int]:
        """The root header of these raw bytes, and the dgram size it implies, made once."""
        roots = self.roots
        hit = roots.get(key)
        if hit is None:
            if len(roots) >= _MAX_CACHE:
                roots.clear()
            src, dc, extent = _ROOT.unpack(key)
            hit = roots[key] = (XtcHeader(12, src, dc & 0xFFFF, dc >> 16, extent), 12 + extent)
        return hit

    def make(self, buf: Any, size: int) -> Dgram:
        """A view of the ``size``-byte dgram at the start of ``buf``."""
        ns, sec, env, key = KEYED.unpack_from(buf, 0)
        hit = self.roots.get(key)
        if hit is None:
            _, dc, extent = _ROOT.unpack(key)
            if extent < 12 or (dc >> 16) & 0xFFF != _PARENT:
                return Dgram(buf, source=self.source)  # raises XtcError with the reason
            hit = self.root(key)
        if hit[1] != size:
            return Dgram(buf, source=self.source)  # raises XtcError with the reason
        dg = Dgram.__new__(Dgram)
        dg.buf = buf
        dg.offset = 0
        dg.nanoseconds = ns
        dg.seconds = sec
        dg.env = env
        dg.root = hit[0]
        dg.source = self.source
        dg.file_offset = 0
        return dg
