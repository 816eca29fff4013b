"""The server's control thread: a SOCK_SEQPACKET listener for attach, status and departures.

A client's connection stays open while it is attached; its end (detach, exit, ``kill -9``)
shows here as end-of-file at once, and its buffers are taken back.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._proto import MAX_MESSAGE, BadMessageError, check_attach, decode, encode

if TYPE_CHECKING:
    from ._clients import Client
    from ._server import ShmemServer

log = logging.getLogger("shmem")


def _is_eventfd(fd: int) -> bool:
    """Only an eventfd (made non-blocking) may be written by put: nothing that could block."""
    try:
        if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:[eventfd]":
            return False
        os.set_blocking(fd, False)
    except OSError:
        return False
    return True


class ControlLoop:
    """Accepts connections and serves their messages in a thread of the server's process."""

    def __init__(self, server: ShmemServer, path: Path, mode: int) -> None:
        self.server = server
        self.path = path
        self.mode = mode
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._conns: dict[socket.socket, Client | None] = {}
        self._stop_r = self._stop_w = -1
        self._ino = 0

    def start(self) -> None:
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.path.unlink(missing_ok=True)  # ours: we hold the segment's lock
            lst.bind(str(self.path))
            os.chmod(self.path, self.mode)
            lst.listen(64)
        except BaseException:
            lst.close()
            raise
        self._ino = os.stat(self.path).st_ino
        self._listener = lst
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"shmem-{self.server.tag}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=10)
            self._thread = None
        for conn in list(self._conns):
            conn.close()
        self._conns.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            try:
                if os.stat(self.path).st_ino == self._ino:
                    self.path.unlink()
            except FileNotFoundError:
                pass
        for fd in (self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._stop_r = self._stop_w = -1

    def _run(self) -> None:
        assert self._listener is not None
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "listen")
        sel.register(self._stop_r, selectors.EVENT_READ, "stop")
        try:
            while True:
                for key, _ in sel.select():
                    if key.data == "stop":
                        return
                    if key.data == "listen":
                        conn, _addr = self._listener.accept()
                        self._conns[conn] = None
                        sel.register(conn, selectors.EVENT_READ, "conn")
                    else:
                        conn = key.fileobj  # type: ignore[assignment]
                        if not self._serve(conn):
                            sel.unregister(conn)
                            self._drop(conn)
        except Exception:  # pragma: no cover - a bug here must not pass silently
            log.exception("shmem control loop failed")
            raise
        finally:
            sel.close()

    def _drop(self, conn: socket.socket) -> None:
        client = self._conns.pop(conn, None)
        if client is not None:
            self.server._detach(client)
        conn.close()

    def _bad(self, why: str) -> None:
        with self.server._lock:
            self.server.counters["bad_messages"] += 1
        log.info("ignored a control message: %s", why)

    def _serve(self, conn: socket.socket) -> bool:
        """Handle one message; False when the connection is over."""
        try:
            data, fds, flags, _ = socket.recv_fds(conn, MAX_MESSAGE, 3)
        except OSError:
            return False
        try:
            if not data and not fds:
                return False
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                self._bad("truncated")
                return True
            try:
                msg = decode(data)
            except BadMessageError as exc:
                self._bad(str(exc))
                return True
            op = msg["op"]
            if op == "status":
                self._reply(conn, "status", stats=self.server.statistics())
            elif op == "detach" and self._conns.get(conn) is not None:
                return False
            elif op == "attach" and self._conns.get(conn) is None:
                self._attach(conn, msg, fds)
                fds = []
            else:
                self._bad(f"unexpected op {op!r}")
            return True
        finally:
            for fd in fds:
                os.close(fd)

    def _attach(self, conn: socket.socket, msg: dict[str, Any], fds: list[int]) -> None:
        try:
            group, mode, depth, pid, name = check_attach(msg)
            if len(fds) not in (1, 2):
                raise BadMessageError("attach must carry the client's region file descriptor "
                                      "(and optionally an eventfd for wake-ups)")
            if len(fds) == 2 and not _is_eventfd(fds[1]):
                raise BadMessageError("the wake-up file descriptor is not an eventfd")
        except BadMessageError as exc:
            for fd in fds:
                os.close(fd)
            self._bad(str(exc))
            self._reply(conn, "refused", reason=str(exc))
            return
        client, reply = self.server._attach(conn, fds[0], group, mode, depth, pid, name,
                                            fds[1] if len(fds) == 2 else -1)
        if client is None:
            log.warning("refused client %s (pid %d): %s", name, pid, reply["error"])
            self._reply(conn, "refused", reason=reply["error"])
            return
        self._conns[conn] = client
        self._reply(conn, "attached", **reply)

    def _reply(self, conn: socket.socket, op: str, **fields: Any) -> None:
        try:
            conn.send(encode(op, **fields), socket.MSG_DONTWAIT)
        except OSError as exc:
            log.info("could not reply %s: %s", op, exc)
