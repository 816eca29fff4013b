"""The client side: attach by tag, take buffers zero-copy from the ring, release them."""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import socket
import sys
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

from daq.xtc import Dgram, TransitionId, XtcError

from ._errors import AttachRefusedError, ServerGoneError, ServerNotFoundError, ShmemError
from ._layout import (
    C_DELIVERED,
    C_OVERWRITTEN,
    C_READ,
    C_SKIPPED,
    C_SLEEP,
    C_TAIL,
    C_TRANSITIONS,
    C_TSKIPPED,
    CLIENT_REGION_SIZE,
    H_STATE,
    S_HEAD,
    SLOT_MASK,
    STATE_CLOSED,
    T_SEQ,
    T_SIZE,
    socket_path,
    validate_tag,
)
from ._proto import MAX_MESSAGE, MODES, WAKE, BadMessageError, decode, encode
from ._segment import open_readonly
from ._view import DgramFactory

_L1 = int(TransitionId.L1Accept)


class Message:
    """One buffer taken from the ring: ``dgram`` is a zero-copy view, valid until released."""

    __slots__ = ("_client", "dgram", "pos", "released", "seq", "slot")

    def __init__(self, client: ShmemClient, pos: int, slot: int, seq: int, dgram: Dgram):
        self._client, self.pos, self.slot, self.seq, self.dgram = client, pos, slot, seq, dgram
        self.released = False

    @property
    def is_event(self) -> bool:
        return self.dgram.service == _L1

    def intact(self) -> bool:
        """False if the buffer was reused while held (a race the server avoids; counted)."""
        return self._client._seq_of(self.slot) == self.seq

    def release(self) -> None:
        """Give the buffer back to the server; the dgram's views must not be used after."""
        self._client._release(self)

    def __enter__(self) -> Message:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class ShmemClient:
    """A client of one tag's server, in a ``shared`` or ``distributed`` group.

    ``for dgram in client`` yields every dgram (transitions first), releasing the previous
    buffer at each step; ``next(timeout)`` does the same one at a time (None on timeout);
    ``take(timeout)`` hands a Message the caller releases itself (several may be held).
    Raises ServerGoneError once the server has gone and the queued dgrams are consumed.
    """

    def __init__(self, tag: str, group: str = "monitor", mode: str = "shared", *,
                 queue_depth: int = 0, name: str = "", directory: str | os.PathLike[str] |
                 None = None, spin: float = 50e-6, attach_timeout: float = 5.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.tag = validate_tag(tag)
        self.group, self.mode, self.queue_depth = group, mode, queue_depth
        self.name = name or f"{os.path.basename(sys.argv[0] or 'python')}:{os.getpid()}"
        self.socket_path = socket_path(tag, directory)
        self.spin = spin
        self.attach_timeout = attach_timeout
        self.id = 0
        self.depth = 0
        self._sock: socket.socket | None = None
        self._mm: mmap.mmap | None = None
        self._region_mm: mmap.mmap | None = None
        self._held: deque[Message | None] = deque()  # unreleased entries in ring order
        self._current: Message | None = None
        self._gone = False

    # ---- life cycle ------------------------------------------------------------------
    def open(self) -> ShmemClient:
        if self._sock is not None:
            return self
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(str(self.socket_path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise ServerNotFoundError(f"no shmem server for tag {self.tag!r} "
                                 f"({self.socket_path})") from None
        except BaseException:
            sock.close()
            raise
        region_fd = os.memfd_create(f"shmem-client-{self.tag}", os.MFD_CLOEXEC)
        try:
            os.ftruncate(region_fd, CLIENT_REGION_SIZE)
            self._region_mm = mmap.mmap(region_fd, CLIENT_REGION_SIZE)
            req = encode("attach", group=self.group, mode=self.mode, queue_depth=self.queue_depth,
                         pid=os.getpid(), name=self.name)
            socket.send_fds(sock, [req], [region_fd])
        except BaseException:
            sock.close()
            self._close_maps()
            raise
        finally:
            os.close(region_fd)
        self._sock = sock
        try:
            reply = self._wait_reply(self.attach_timeout)
            if reply["op"] == "refused":
                raise AttachRefusedError(f"server of tag {self.tag!r} refused: "
                                         f"{reply.get('reason')}")
            self._mm, self.layout = open_readonly(Path(reply["segment"]),
                                                   reply["generation"])
        except BaseException:
            self.close()
            raise
        self.id, self.depth = reply["id"], reply["depth"]
        self._map(reply["index"])
        return self

    def _wait_reply(self, timeout: float) -> dict[str, Any]:
        assert self._sock is not None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self._sock], [], [], left)[0]:
                break
            data = self._sock.recv(MAX_MESSAGE)
            if not data:
                raise ServerGoneError(f"server of tag {self.tag!r} closed the connection")
            if data == WAKE:
                continue
            try:
                return decode(data)
            except BadMessageError:
                continue
        raise ShmemError(f"no reply from the server of tag {self.tag!r} in {timeout} s")

    def _map(self, index: int) -> None:
        assert self._mm is not None and self._region_mm is not None
        lay = self.layout
        self._mv = memoryview(self._mm)
        self._words = self._mv[: lay.control_size].cast("Q")
        self._region = memoryview(self._region_mm).cast("Q")
        self._head_word = lay.client_word(index, S_HEAD)
        self._ring_base = lay.ring_word(index)
        self._ring_mask = lay.ring_size - 1
        self._slot_base = lay.slot_word(0, 0)
        self._seq_words = [lay.slot_word(s, T_SEQ) for s in range(lay.n_slots)]
        self._views = [self._mv[lay.buffer_offset(s): lay.buffer_offset(s) + lay.capacity(s)]
                       for s in range(lay.n_slots)]
        self._factory = DgramFactory(f"shmem:{self.tag}")
        self._read = self._tail = self._sleeps = 0
        self._counts = [0] * 8
        self._n_events = lay.n_events
        self._poller = select.poll()
        assert self._sock is not None
        self._poller.register(self._sock, select.POLLIN)

    def close(self) -> None:
        """Detach: the server takes back every buffer this client held or had queued."""
        self._current = None
        self._held.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for view in self.__dict__.pop("_views", []):
            view.release()
        for name in ("_words", "_region", "_mv"):
            view = self.__dict__.pop(name, None)
            if view is not None:
                view.release()
        self._close_maps()

    def _close_maps(self) -> None:
        for name in ("_mm", "_region_mm"):
            mm = getattr(self, name)
            if mm is not None:
                with contextlib.suppress(BufferError):  # views still held: freed later
                    mm.close()
                setattr(self, name, None)

    def __enter__(self) -> ShmemClient:
        return self.open()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- reading ---------------------------------------------------------------------
    def _seq_of(self, slot: int) -> int:
        return int(self._words[self._slot_base + 4 * slot + T_SEQ])

    def _poll(self) -> Message | None:
        w = self._words
        read = self._read
        while read < w[self._head_word]:
            entry = w[self._ring_base + (read & self._ring_mask)]
            slot, seq = entry & SLOT_MASK, entry >> 16
            read += 1
            self._read = read
            self._region[C_READ] = read  # claim it, then check it was not taken back:
            sw = self._seq_words[slot]  # neither from us (entry) nor from all (seq)
            if w[sw] == seq and w[self._ring_base + ((read - 1) & self._ring_mask)] == entry:
                try:
                    dgram = self._factory.make(self._views[slot], w[sw + T_SIZE])
                except XtcError:  # reused under our feet: counted below
                    pass
                else:
                    if w[sw] == seq:
                        msg = Message(self, read - 1, slot, seq, dgram)
                        self._held.append(msg)
                        return msg
                self._bump(C_OVERWRITTEN if slot < self._n_events else C_TSKIPPED)
            else:
                self._bump(C_SKIPPED if slot < self._n_events else C_TSKIPPED)
            self._held.append(None)
            self._advance()
        return None

    def _bump(self, word: int) -> None:
        counts = self._counts
        counts[word] += 1
        self._region[word] = counts[word]

    def _release(self, msg: Message) -> None:
        if msg.released or self._sock is None:
            return
        msg.released = True
        slot = msg.slot
        intact = self._words[self._seq_words[slot]] == msg.seq
        if slot < self._n_events:
            word = C_DELIVERED if intact else C_OVERWRITTEN
        else:
            word = C_TRANSITIONS if intact else C_TSKIPPED
        counts = self._counts
        counts[word] += 1
        self._region[word] = counts[word]
        self._advance()

    def _advance(self) -> None:
        held = self._held
        tail = self._tail
        while held and (held[0] is None or held[0].released):
            held.popleft()
            tail += 1
        self._tail = tail
        self._region[C_TAIL] = tail

    def take(self, timeout: float | None = None) -> Message | None:
        """The next buffer (the caller releases it), or None after ``timeout`` seconds."""
        if self._sock is None:
            raise ShmemError("client is not attached")
        msg = self._poll()
        if msg is not None:
            return msg
        now = time.perf_counter()
        deadline = None if timeout is None else now + timeout
        spin_end = now + min(self.spin, timeout if timeout is not None else self.spin)
        head_word, w = self._head_word, self._words
        while time.perf_counter() < spin_end:
            if w[head_word] > self._read:
                return self._poll()
        while True:
            self._sleeps += 1
            self._region[C_SLEEP] = self._sleeps  # ask for a wake-up, then look once more
            msg = self._poll()
            if msg is not None:
                return msg
            if w[H_STATE] == STATE_CLOSED:
                self._gone = True
            if self._gone:
                raise ServerGoneError(f"the server of tag {self.tag!r} has gone")
            left = 0.002 if deadline is None else min(0.002, deadline - time.perf_counter())
            if left <= 0:
                return None
            # the short timeout bounds a wake-up lost between the store and the check above
            if self._poller.poll(left * 1000):
                self._drain()

    def _drain(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(MAX_MESSAGE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._gone = True
                return

    def next(self, timeout: float | None = None) -> Dgram | None:
        """The next dgram, releasing the one handed by the previous ``next``; None on timeout."""
        if self._current is not None:
            self._release(self._current)
            self._current = None
        msg = self.take(timeout)
        if msg is None:
            return None
        self._current = msg
        return msg.dgram

    def __iter__(self) -> ShmemClient:
        return self

    def __next__(self) -> Dgram:
        dg = self.next()
        assert dg is not None
        return dg

    def release(self) -> None:
        """Release every buffer this client holds."""
        self._current = None
        for msg in list(self._held):
            if msg is not None:
                msg.release()

    def statistics(self) -> dict[str, int]:
        """This client's own counters (the server adds the drops it made; see status)."""
        c = self._counts
        return {"delivered": c[C_DELIVERED], "skipped": c[C_SKIPPED],
                "overwritten": c[C_OVERWRITTEN], "transitions": c[C_TRANSITIONS],
                "transitions_skipped": c[C_TSKIPPED],
                "held": sum(1 for m in self._held if m is not None and not m.released),
                "read": self._read, "released": self._tail}


def attach(tag: str, group: str = "monitor", mode: str = "shared", **kwargs: Any) -> ShmemClient:
    """A client attached to ``tag`` (use it as a context manager to detach)."""
    return ShmemClient(tag, group, mode, **kwargs).open()


def status(tag: str, *, directory: str | os.PathLike[str] | None = None,
           timeout: float = 5.0) -> dict[str, Any]:
    """The server's statistics for ``tag`` (buffers, counters, every client)."""
    path = socket_path(tag, directory)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise ServerNotFoundError(f"no shmem server for tag {tag!r} ({path})") from None
        sock.send(encode("status"))
        sock.settimeout(timeout)
        try:
            data = sock.recv(MAX_MESSAGE)
        except TimeoutError:
            raise ShmemError(f"no status reply from tag {tag!r} in {timeout} s") from None
    if not data:
        raise ServerGoneError(f"the server of tag {tag!r} closed the connection")
    return dict(decode(data)["stats"])
