"""Clients of a running AMI: commands to the manager, subscriptions to views and status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import zmq

from ami.comm import Command, Reply, Security, Status, ViewUpdate, connected, recv, send

from ._results import STATUS_TOPIC, view_topic


class CommandError(RuntimeError):
    """The manager refused a command; the message says why."""


class ManagerClient:
    """Send commands to a manager; every call waits at most ``timeout`` seconds."""

    def __init__(self, endpoint: str, *, timeout: float = 5.0,
                 security: Security | None = None) -> None:
        self.endpoint, self.timeout = endpoint, timeout
        self.security = security or Security()
        self._ctx: zmq.Context[Any] | None = None
        self._sock: zmq.Socket[Any] | None = None

    def __enter__(self) -> ManagerClient:
        self._ctx = zmq.Context()
        self._sock = connected(self._ctx, zmq.DEALER, self.endpoint, self.security)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._ctx is not None:
            self._ctx.term()
        self._sock = self._ctx = None

    def request(self, cmd: str, **args: Any) -> Any:
        """The command's result; CommandError if refused, TimeoutError if no answer."""
        reply = self.raw(Command(cmd=cmd, args=args))
        if not reply.ok:
            raise CommandError(reply.error)
        return reply.result

    def raw(self, command: Any) -> Reply:
        """Send any message and return the manager's Reply (for tests of bad input)."""
        if self._sock is None:
            raise RuntimeError("use ManagerClient as a context manager")
        send(self._sock, command)
        if not self._sock.poll(int(self.timeout * 1000)):
            raise TimeoutError(f"no answer from the manager at {self.endpoint}")
        reply = recv(self._sock, expect=(Reply,))
        assert isinstance(reply, Reply)
        return reply

    def raw_frames(self, frames: list[bytes]) -> Reply:
        """Send arbitrary frames (for tests of malformed input)."""
        if self._sock is None:
            raise RuntimeError("use ManagerClient as a context manager")
        self._sock.send_multipart(frames)
        if not self._sock.poll(int(self.timeout * 1000)):
            raise TimeoutError(f"no answer from the manager at {self.endpoint}")
        reply = recv(self._sock, expect=(Reply,))
        assert isinstance(reply, Reply)
        return reply


class ResultsClient:
    """Subscribe to views and/or status of the global collector."""

    def __init__(self, endpoint: str, views: list[str] | None = None, *, status: bool = True,
                 security: Security | None = None) -> None:
        self.endpoint = endpoint
        self.views = views
        self.status = status
        self.security = security or Security()
        self._ctx: zmq.Context[Any] | None = None
        self._sock: zmq.Socket[Any] | None = None

    def __enter__(self) -> ResultsClient:
        self._ctx = zmq.Context()
        self._sock = sock = self._ctx.socket(zmq.SUB)
        sock.linger = 0
        sock.rcvhwm = 10_000
        sock.reconnect_ivl = 10
        if self.endpoint.startswith("tcp://"):
            self.security.client(sock)
        for view in self.views if self.views is not None else [""]:
            sock.subscribe(view_topic(view) if view else b"view:")
        if self.status:
            sock.subscribe(STATUS_TOPIC)
        sock.connect(self.endpoint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._ctx is not None:
            self._ctx.term()
        self._sock = self._ctx = None

    def next(self, timeout: float) -> ViewUpdate | Status | None:
        """The next update, None if none within ``timeout`` seconds."""
        assert self._sock is not None
        if not self._sock.poll(int(timeout * 1000)):
            return None
        msg = recv(self._sock, topic=True, expect=(ViewUpdate, Status))
        return msg

    def __iter__(self) -> Iterator[ViewUpdate | Status]:
        while True:
            msg = self.next(1.0)
            if msg is not None:
                yield msg
