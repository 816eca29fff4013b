"""UDP multicast sockets on a given interface (loopback by default), with big receive buffers."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
from pathlib import Path

log = logging.getLogger(__name__)
MAX_DATAGRAM = 65507


def sender(interface: str = "127.0.0.1", ttl: int = 1, sndbuf: int = 8 << 20) -> socket.socket:
    """A UDP socket that sends multicast out of ``interface``."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    return s


def receiver(group: str, port: int, interface: str = "127.0.0.1",
             rcvbuf: int = 64 << 20) -> tuple[socket.socket, int]:
    """A socket bound to ``(group, port)`` that joined ``group`` on ``interface``.

    Asks for a large receive buffer (forcing it past rmem_max when allowed), falls back, and
    returns the effective size (the kernel reports twice what it grants for bookkeeping).
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    effective = _set_rcvbuf(s, rcvbuf)
    s.bind((group, port))
    mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(interface))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    return s, effective


def _set_rcvbuf(s: socket.socket, want: int) -> int:
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    if force is not None:
        try:
            s.setsockopt(socket.SOL_SOCKET, force, want)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, want)
    else:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, want)
    got = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    if got < want:
        log.warning("receive buffer: asked %d bytes, kernel granted %d (raise net.core.rmem_max "
                    "to avoid loss at high rates)", want, got)
    return got


def kernel_udp_drops() -> int:
    """The host's count of UDP datagrams dropped for lack of receive buffer (RcvbufErrors)."""
    try:
        lines = Path("/proc/net/snmp").read_text().splitlines()
    except OSError:
        return -1
    udp = [ln.split() for ln in lines if ln.startswith("Udp:")]
    if len(udp) < 2:
        return -1
    fields = dict(zip(udp[0][1:], udp[1][1:], strict=False))
    return int(fields.get("RcvbufErrors", -1))


def socket_drops(s: socket.socket) -> int:
    """Datagrams the kernel dropped for this socket (its receive queue was full), from the
    'drops' column of /proc/net/udp; -1 when unknown."""
    try:
        inode = os.fstat(s.fileno()).st_ino
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 13 and int(parts[9]) == inode:
                return int(parts[12])
    except (OSError, ValueError):
        pass
    return -1
