"""The control link: every DAQ process talks to the control process over one ZMQ DEALER.

Frames are ``[b"", kind, msgpack body]``. Members send ``hello``, ``status``, ``ack``, ``error``
and ``done``; control sends ``cmd``. Command-line clients use REQ sockets with the same framing
(``[b"", b"req", body]`` -> ``[b"", b"rep", body]``).
"""

from __future__ import annotations

import os
from typing import Any

import msgpack
import zmq

PROTOCOL_VERSION = 1
MAX_MESSAGE = 16 << 20


def pack(body: dict[str, Any]) -> bytes:
    return msgpack.packb({"v": PROTOCOL_VERSION, **body}, use_bin_type=True)


def unpack(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_MESSAGE:
        raise ValueError(f"control message of {len(raw)} bytes exceeds {MAX_MESSAGE}")
    body = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    if not isinstance(body, dict):
        raise ValueError("control message body is not a map")
    return body


class ControlLink:
    """A member's DEALER connection to the control process (opened in the member's process)."""

    def __init__(self, address: str, role: str, ident: int) -> None:
        self.address = address
        self.role = role
        self.ident = ident
        self.ctx: zmq.Context[Any] | None = None
        self.sock: zmq.Socket[Any] | None = None

    def open(self) -> zmq.Socket[Any]:
        self.ctx = zmq.Context()
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 500)
        s.setsockopt(zmq.IDENTITY, f"{self.role}-{self.ident}".encode())
        s.connect(self.address)
        self.sock = s
        self.send("hello", {"role": self.role, "id": self.ident, "pid": os.getpid()})
        return s

    def send(self, kind: str, body: dict[str, Any]) -> None:
        assert self.sock is not None
        self.sock.send_multipart([b"", kind.encode(), pack(body)])

    def recv(self) -> tuple[str, dict[str, Any]]:
        assert self.sock is not None
        frames = self.sock.recv_multipart()
        return frames[-2].decode(), unpack(frames[-1])

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.ctx is not None:
            self.ctx.term()
            self.ctx = None


def request(address: str, body: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """Send one command to the control process and wait for its reply."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(address)
    try:
        s.send_multipart([b"req", pack(body)])
        if not s.poll(int(timeout * 1000)):
            raise TimeoutError(f"no reply from the control process at {address} within "
                               f"{timeout:.0f} s (is the partition running?)")
        frames = s.recv_multipart()
        return unpack(frames[-1])
    finally:
        s.close()
        ctx.term()
