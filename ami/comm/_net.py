"""ZMQ plumbing shared by AMI's processes: typed send/receive, sockets made in the thread that
uses them, and a stop flag set by SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import threading
from typing import Any

import zmq

from ._messages import decode, encode
from ._security import Security, check_bind


def send(sock: zmq.Socket[Any], msg: Any, *, topic: bytes | None = None,
         block: bool = True) -> bool:
    """Send a message (arrays zero-copy); False if the queue is full and ``block`` is off."""
    frames = encode(msg)
    if topic is not None:
        frames = [topic, *frames]
    try:
        sock.send_multipart(frames, flags=0 if block else zmq.NOBLOCK, copy=False)
    except zmq.Again:
        return False
    return True


def recv(sock: zmq.Socket[Any], *, topic: bool = False, expect: tuple[type[Any], ...] = (),
         max_header: int = 1 << 24) -> Any:
    """Receive and check one message (WireError if malformed)."""
    frames = sock.recv_multipart(copy=False)
    if topic:
        frames = frames[1:]
    return decode([f.buffer for f in frames], expect=expect, max_header=max_header)


def bound(ctx: zmq.Context[Any], kind: int, endpoint: str, security: Security,
          *, hwm: int = 1000) -> zmq.Socket[Any]:
    """A socket bound to ``endpoint`` (loopback unless CURVE or insecure)."""
    check_bind(endpoint, security)
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.sndhwm = sock.rcvhwm = hwm
    if endpoint.startswith("tcp://"):
        security.server(sock)
    sock.bind(endpoint)
    return sock


def connected(ctx: zmq.Context[Any], kind: int, endpoint: str, security: Security,
              *, hwm: int = 1000, linger: int = 0) -> zmq.Socket[Any]:
    sock = ctx.socket(kind)
    sock.linger = linger
    sock.sndhwm = sock.rcvhwm = hwm
    if endpoint.startswith("tcp://"):
        security.client(sock)
    sock.connect(endpoint)
    return sock


class StopFlag:
    """Set by SIGINT/SIGTERM (when installed in the main thread) or by :meth:`set`."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self._event.set())
        return self

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)
