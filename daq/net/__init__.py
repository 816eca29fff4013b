"""DAQ networking: the fragment header, contribution reassembly and multicast sockets."""

from ._fragment import (
    FLAG_BATCH,
    FLAG_TIMING,
    HEADER_SIZE,
    FragmentError,
    FragmentHeader,
    Reassembly,
    batch_capacity,
    batch_payload,
    fragments,
    parse,
    parse_batch,
)
from ._mcast import MAX_DATAGRAM, kernel_udp_drops, receiver, sender, socket_drops

__all__ = [
    "FLAG_BATCH",
    "FLAG_TIMING",
    "HEADER_SIZE",
    "MAX_DATAGRAM",
    "FragmentError",
    "FragmentHeader",
    "Reassembly",
    "batch_capacity",
    "batch_payload",
    "fragments",
    "kernel_udp_drops",
    "parse",
    "parse_batch",
    "receiver",
    "sender",
    "socket_drops",
]
