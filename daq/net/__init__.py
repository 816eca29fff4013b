"""DAQ networking: the fragment header, contribution reassembly and multicast sockets."""

from ._fragment import (
    FLAG_TIMING,
    HEADER_SIZE,
    FragmentError,
    FragmentHeader,
    Reassembly,
    fragments,
    parse,
)
from ._mcast import MAX_DATAGRAM, kernel_udp_drops, receiver, sender, socket_drops

__all__ = [
    "FLAG_TIMING",
    "HEADER_SIZE",
    "MAX_DATAGRAM",
    "FragmentError",
    "FragmentHeader",
    "Reassembly",
    "fragments",
    "kernel_udp_drops",
    "parse",
    "receiver",
    "sender",
    "socket_drops",
]
