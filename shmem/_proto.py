"""Control-channel messages: msgpack maps with a version and an ``op``, over SOCK_SEQPACKET.

A one-byte message ``b"\\x01"`` from server to client is a wake-up (new ring entries).
"""

from __future__ import annotations

from typing import Any

import msgpack

PROTOCOL = 1
WAKE = b"\x01"
MAX_MESSAGE = 1 << 16

OPS_FROM_CLIENT = ("attach", "status", "detach")
MODES = ("shared", "distributed")


class BadMessageError(ValueError):
    """A control message that is not a msgpack map of this protocol."""


def encode(op: str, **fields: Any) -> bytes:
    return msgpack.packb({"v": PROTOCOL, "op": op, **fields}, use_bin_type=True)


def decode(data: bytes) -> dict[str, Any]:
    """A message as a dict with str keys; raises BadMessageError on anything else."""
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise BadMessageError(f"not msgpack: {exc}") from None
    if not isinstance(msg, dict) or msg.get("v") != PROTOCOL or not isinstance(msg.get("op"),
                                                                               str):
        raise BadMessageError("not a control message of protocol 1")
    return msg


def check_attach(msg: dict[str, Any]) -> tuple[str, str, int, int, str]:
    """(group, mode, queue_depth, pid, name) of an attach request, or BadMessageError."""
    group, mode = msg.get("group"), msg.get("mode")
    depth, pid, name = msg.get("queue_depth", 0), msg.get("pid", 0), msg.get("name", "")
    if not isinstance(group, str) or not 0 < len(group) <= 64:
        raise BadMessageError("attach needs a group name of 1..64 characters")
    if mode not in MODES:
        raise BadMessageError(f"mode must be one of {MODES}")
    if not isinstance(depth, int) or not isinstance(pid, int) or not isinstance(name, str):
        raise BadMessageError("queue_depth and pid must be integers, name a string")
    return group, mode, depth, pid, name[:64]
