"""The client side: attach by tag, take buffers zero-copy from the ring, release them."""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, overload

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
from ._view import KEYED, DgramFactory

_L1 = int(TransitionId.L1Accept)
SPIN_MIN = 50e-6  # the adaptive spin's bounds (seconds)
SPIN_MAX = 2e-3
_REPOLL = 0.05  # a blocked client looks at the ring at least this often (belt and braces)
_PREEMPTED = 500e-6  # a gap this long in a spin: another task had the CPU (not an interrupt)
_LOST = {C_DELIVERED: C_OVERWRITTEN, C_TRANSITIONS: C_TSKIPPED}  # if reused while held
_unpack_keyed = KEYED.unpack_from


_new_dgram = object.__new__


class _Skipped:
    """Ring entries the server took back (counted skipped): released at once."""

    __slots__ = ("n",)
    released = True

    def __init__(self, n: int = 1) -> None:
        self.n = n


_SKIPPED = _Skipped()


class Message:
    """One buffer taken from the ring: ``dgram`` is a zero-copy view, valid until released."""

    __slots__ = ("_client", "dgram", "pos", "released", "seq", "slot")
    n = 1  # ring entries

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


class Batch:
    """Every dgram ready in the ring (up to a maximum), taken in one pass by ``take_many``.

    A sequence of zero-copy ``Dgram`` views in ring order (transitions included), valid
    until ``release()`` (or the end of a ``with`` block), which gives all the buffers back
    at once.
    """

    __slots__ = ("_client", "dgrams", "n", "released", "seqs", "slots")

    def __init__(self, client: ShmemClient, n: int, dgrams: list[Dgram], slots: list[int],
                 seqs: list[int]) -> None:
        self._client, self.n, self.dgrams, self.slots, self.seqs = client, n, dgrams, slots, seqs
        self.released = False

    def __len__(self) -> int:
        return len(self.dgrams)

    def __iter__(self) -> Iterator[Dgram]:
        return iter(self.dgrams)

    @overload
    def __getitem__(self, k: int) -> Dgram: ...

    @overload
    def __getitem__(self, k: slice) -> list[Dgram]: ...

    def __getitem__(self, k: int | slice) -> Dgram | list[Dgram]:
        return self.dgrams[k]

    def intact(self) -> bool:
        """False if a buffer was reused while held (a race the server avoids; counted)."""
        seq_of = self._client._seq_of
        return all(seq_of(s) == q for s, q in zip(self.slots, self.seqs, strict=True))

    def release(self) -> None:
        """Give every buffer back to the server; the dgrams must not be used after."""
        self._client._release_batch(self)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class ShmemClient:
    """A client of one tag's server, in a ``shared`` or ``distributed`` group.

    ``for dgram in client`` yields every dgram (transitions first), releasing the previous
    buffer at each step; ``next(timeout)`` does the same one at a time (None on timeout);
    ``take(timeout)`` hands a Message the caller releases itself (several may be held);
    ``take_many(max_n, timeout)`` hands every dgram ready (a Batch) in one pass.
    Raises ServerGoneError once the server has gone and the queued dgrams are consumed.

    ``spin`` is how long a client polls the ring before it blocks: a number of seconds, or
    None (default) for an adaptive spin between 50 us and 2 ms: long while it catches the
    next dgram and is not preempted (a core is free), short when events are rare or the
    machine is busy.
    """

    def __init__(self, tag: str, group: str = "monitor", mode: str = "shared", *,
                 queue_depth: int = 0, name: str = "", directory: str | os.PathLike[str] |
                 None = None, spin: float | None = None, attach_timeout: float = 5.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.tag = validate_tag(tag)
        self.group, self.mode, self.queue_depth = group, mode, queue_depth
        self.name = name or f"{os.path.basename(sys.argv[0] or 'python')}:{os.getpid()}"
        self.socket_path = socket_path(tag, directory)
        self.spin = spin
        self._spin_limit = SPIN_MIN if spin is None else spin
        if spin is None and len(os.sched_getaffinity(0)) > 1:
            self._spin_limit = SPIN_MAX  # until preemption says the cores are busy
        self.attach_timeout = attach_timeout
        self.id = 0
        self.depth = 0
        self._sock: socket.socket | None = None
        self._wake_fd = -1
        self._mm: mmap.mmap | None = None
        self._region_mm: mmap.mmap | None = None
        # unreleased entries in ring order, after the one ``next`` holds (if any): _cur is
        # (its ring position, its slot's seq word, its seq, the counter it goes to if intact)
        self._held: deque[Message | Batch | _Skipped] = deque()
        self._current: Message | None = None
        self._cur: tuple[int, int, int, int] | None = None
        self._fence = threading.Lock()  # see _barrier
        self._fenced = False
        self._free_checked = -1.0  # when _core_free last looked, and what it saw
        self._free = False
        self._stall_total = 0
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
        wake_fd = -1
        try:
            os.ftruncate(region_fd, CLIENT_REGION_SIZE)
            self._region_mm = mmap.mmap(region_fd, CLIENT_REGION_SIZE)
            # wake-ups come on an eventfd (one write by the server, one read here)
            wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            req = encode("attach", group=self.group, mode=self.mode, queue_depth=self.queue_depth,
                         pid=os.getpid(), name=self.name)
            socket.send_fds(sock, [req], [region_fd, wake_fd])
        except BaseException:
            sock.close()
            if wake_fd >= 0:
                os.close(wake_fd)
            self._close_maps()
            raise
        finally:
            os.close(region_fd)
        self._sock = sock
        self._wake_fd = wake_fd
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
        self._roots = self._factory.roots
        self._source = self._factory.source
        self._read = self._tail = self._sleeps = 0
        self._counts = [0] * 8
        self._n_events = lay.n_events
        self._poller = select.poll()
        assert self._sock is not None
        self._poller.register(self._sock, select.POLLIN)
        self._poller.register(self._wake_fd, select.POLLIN)

    def close(self) -> None:
        """Detach: the server takes back every buffer this client held or had queued."""
        self._current = None
        self._cur = None
        self._held.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._wake_fd >= 0:
            os.close(self._wake_fd)
            self._wake_fd = -1
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

    def _claim(self) -> tuple[int, int, int, Dgram] | None:
        """Claim the next ready ring entry: ``(pos, slot, seq, dgram)``, or None if none is
        ready. Entries the server took back are counted and passed over."""
        w = self._words
        while True:
            read = self._read
            behind = w[self._head_word] - read
            if behind <= 0:
                return None
            if behind > 4 and self._pass_over(read):  # (catching up)
                continue
            self._read = read + 1
            self._region[C_READ] = read + 1  # claim it, then (after a barrier) check it is
            if self._fenced:                 # ours: the server takes back only what is not
                self._fenced = False         # claimed (_barrier, inlined)
                self._fence.release()
            else:
                self._fenced = True
                self._fence.acquire()
            entry = w[self._ring_base + (read & self._ring_mask)]
            slot = entry & SLOT_MASK
            seq = entry >> 16
            sw = self._seq_words[slot]
            if w[sw] == seq:  # neither taken back from us (entry) nor from all (seq)
                buf = self._views[slot]
                ns, sec, env, key = _unpack_keyed(buf)
                hit = self._roots.get(key)  # (DgramFactory.make, inlined)
                if hit is not None and hit[1] == w[sw + T_SIZE]:
                    dg = _new_dgram(Dgram)
                    dg.buf = buf
                    dg.offset = dg.file_offset = 0
                    dg.nanoseconds = ns
                    dg.seconds = sec
                    dg.env = env
                    dg.root = hit[0]
                    dg.source = self._source
                    return read, slot, seq, dg
            got = self._unusual(read, slot, seq)  # taken back, new or odd header
            if got is not None:
                return got

    def _pass_over(self, read: int) -> bool:
        """Pass over (without claiming them) the entries from ``read`` on that the server
        took back for good, while more than 4 are ready; whether there were any."""
        w = self._words
        head_word, ring_base, mask = self._head_word, self._ring_base, self._ring_mask
        passed = 0
        while w[head_word] - read > 4:
            entry = w[ring_base + (read & mask)]
            slot = entry & SLOT_MASK
            seq = entry >> 16
            now_seq = w[self._seq_words[slot]]
            if now_seq == seq or seq == 1 or now_seq == seq + 1:  # ours, or no verdict yet
                break
            read += 1
            passed += 1
            self._bump(C_SKIPPED if slot < self._n_events else C_TSKIPPED)
        if passed:
            self._passed(read, passed)
        return passed > 0

    def _unusual(self, pos: int, slot: int, seq: int) -> tuple[int, int, int, Dgram] | None:
        """Entry ``pos``, just claimed, is not a valid dgram of the usual layout: one made
        the careful way, or None (taken back, or unreadable: counted and released)."""
        w = self._words
        got = self._resolve(pos)
        if got is not None:
            slot, seq = got
            sw = self._seq_words[slot]
            try:
                return pos, slot, seq, self._factory.make(self._views[slot], w[sw + T_SIZE])
            except XtcError:  # not a dgram we can read: counted as lost
                self._bump(C_OVERWRITTEN if slot < self._n_events else C_TSKIPPED)
        else:
            self._bump(C_SKIPPED if slot < self._n_events else C_TSKIPPED)
        self._held.append(_SKIPPED)
        self._advance()
        return None

    def _resolve(self, pos: int) -> tuple[int, int] | None:
        """Entry ``pos``, claimed, as ``(slot, seq)`` if it is ours, or None if the server
        took it back. While the server is deciding (a tentative mark: it saw no claim yet
        when it marked the entry, and looks again after a barrier) we wait for its verdict:
        it comes within the server's locked section, microseconds. So the client counts an
        entry ``skipped`` exactly when the server counts it ``taken_back``."""
        w = self._words
        deadline = 0.0
        while True:
            entry = w[self._ring_base + (pos & self._ring_mask)]
            slot = entry & SLOT_MASK
            seq = entry >> 16
            now_seq = w[self._seq_words[slot]]
            if now_seq == seq and seq >= 2:
                return slot, seq
            if seq != 1 and now_seq != seq + 1:  # a verdict: taken back
                return None
            now = time.perf_counter()
            if not deadline:
                deadline = now + 1.0
            elif now > deadline:  # no verdict in a second: the server is gone or stuck
                return None

    def _passed(self, read: int, n: int) -> None:
        """``n`` entries before ``read`` were passed over: read and released."""
        self._read = read
        self._region[C_READ] = read
        self._held.append(_Skipped(n))
        self._advance()

    def _claim_many(self, max_n: int) -> Batch | None:
        """Claim every ready entry (up to ``max_n``) with one store; None if none is ready or
        all were taken back."""
        w = self._words
        read = self._read
        n = w[self._head_word] - read
        if n <= 0:
            return None
        if n > max_n:
            n = max_n
        end = read + n
        self._read = end
        self._region[C_READ] = end  # claim them all, then check each is still ours
        self._barrier()
        ring_base, mask, seq_words, views = (self._ring_base, self._ring_mask, self._seq_words,
                                             self._views)
        roots, source = self._roots, self._source
        dgrams: list[Dgram] = []
        slots: list[int] = []
        seqs: list[int] = []
        for pos in range(read, end):
            entry = w[ring_base + (pos & mask)]
            slot = entry & SLOT_MASK
            seq = entry >> 16
            sw = seq_words[slot]
            if w[sw] != seq:
                got = self._resolve(pos)
                if got is None:
                    self._bump(C_SKIPPED if slot < self._n_events else C_TSKIPPED)
                    continue
                slot, seq = got
                sw = seq_words[slot]
            buf = views[slot]
            ns, sec, env, key = _unpack_keyed(buf)
            hit = roots.get(key)
            if hit is not None and hit[1] == w[sw + T_SIZE]:
                dg = _new_dgram(Dgram)
                dg.buf = buf
                dg.offset = dg.file_offset = 0
                dg.nanoseconds = ns
                dg.seconds = sec
                dg.env = env
                dg.root = hit[0]
                dg.source = source
            else:
                try:
                    dg = self._factory.make(buf, w[sw + T_SIZE])
                except XtcError:
                    self._bump(C_OVERWRITTEN if slot < self._n_events else C_TSKIPPED)
                    continue
            dgrams.append(dg)
            slots.append(slot)
            seqs.append(seq)
        batch = Batch(self, n, dgrams, slots, seqs)
        self._held.append(batch)
        if not dgrams:
            batch.released = True
            self._advance()
            return None
        return batch

    def _barrier(self) -> None:
        """A full memory barrier: our stores so far are visible before our next loads.

        Acquiring or releasing a lock executes a locked instruction (a full barrier on
        x86-64); one of the two per call, alternately, costs half a round trip.
        """
        if self._fenced:
            self._fenced = False
            self._fence.release()
        else:
            self._fenced = True
            self._fence.acquire()

    def _bump(self, word: int) -> None:
        counts = self._counts
        counts[word] += 1
        self._region[word] = counts[word]

    def _count_release(self, slot: int, seq: int) -> int:
        """The counter a released entry goes to (delivered, or lost if reused meanwhile)."""
        intact = self._words[self._seq_words[slot]] == seq
        if slot < self._n_events:
            return C_DELIVERED if intact else C_OVERWRITTEN
        return C_TRANSITIONS if intact else C_TSKIPPED

    def _release(self, msg: Message) -> None:
        if msg.released or self._sock is None:
            return
        msg.released = True
        self._bump(self._count_release(msg.slot, msg.seq))
        self._advance()

    def _release_batch(self, batch: Batch) -> None:
        if batch.released or self._sock is None:
            return
        batch.released = True
        counts = self._counts
        before = counts[:]
        count = self._count_release
        for slot, seq in zip(batch.slots, batch.seqs, strict=True):
            counts[count(slot, seq)] += 1
        region = self._region
        for word, (old, new) in enumerate(zip(before, counts, strict=True)):
            if old != new:
                region[word] = new
        self._advance()

    def _release_current(self) -> None:
        """Release the entry the last ``next`` handed out (it is the oldest one held)."""
        assert self._cur is not None
        pos, sw, seq, word = self._cur
        self._cur = None
        self._bump(word if self._words[sw] == seq else _LOST[word])
        tail = pos + 1
        held = self._held
        while held and held[0].released:
            tail += held.popleft().n
        self._tail = tail
        self._region[C_TAIL] = tail

    def _advance(self) -> None:
        if self._cur is not None:  # the oldest entry is still out: the tail cannot move
            return
        held = self._held
        tail = self._tail
        while held and held[0].released:
            tail += held.popleft().n
        if tail != self._tail:
            self._tail = tail
            self._region[C_TAIL] = tail

    def _wait(self, deadline: float | None) -> bool:
        """Spin, then block, until an entry is ready (True) or ``deadline`` (False).

        Raises ServerGoneError if the server has gone and nothing is left to read.
        """
        w, head_word = self._words, self._head_word
        if w[head_word] > self._read:
            return True
        start = t = time.perf_counter()
        limit = self._spin_limit
        adaptive = self.spin is None
        if adaptive and limit > SPIN_MIN and not self._core_free(start):
            limit = SPIN_MIN  # the cores are busy: a spinning client only delays others
        spin_end = start + limit if deadline is None or deadline > start + limit else deadline
        preempted = False
        while t < spin_end:
            if w[head_word] > self._read:
                if preempted and adaptive:  # the core is not free: spin less
                    self._spin_limit = max(SPIN_MIN, limit / 2)
                return True
            now = time.perf_counter()
            if now - t > _PREEMPTED:  # another task ran meanwhile
                preempted = True
            t = now
        if adaptive and preempted:
            self._spin_limit = limit = max(SPIN_MIN, limit / 2)
        while True:
            now = time.perf_counter()
            left = _REPOLL if deadline is None else min(_REPOLL, deadline - now)
            if left > 0:  # ask for a wake-up, then (after a barrier) look once more
                self._sleeps += 1
                self._region[C_SLEEP] = self._sleeps
                self._barrier()
            if w[head_word] > self._read:
                if adaptive and not preempted:
                    self._adapt(time.perf_counter() - start, limit)
                return True
            if w[H_STATE] == STATE_CLOSED:
                self._gone = True
            if self._gone:
                raise ServerGoneError(f"the server of tag {self.tag!r} has gone")
            if left <= 0:
                if adaptive:
                    self._spin_limit = max(SPIN_MIN, limit / 2)
                return False
            ready = self._poller.poll(left * 1000)
            if ready:
                self._drain(ready)
            if w[head_word] > self._read:  # woken: look before asking again
                if adaptive and not preempted:
                    self._adapt(time.perf_counter() - start, limit)
                return True

    def _core_free(self, now: float) -> bool:
        """Whether a core seems free for spinning: tasks waited for a CPU less than 5 % of
        the time since the last look (the ``total`` stall time of /proc/pressure/cpu; its
        ``avg10`` is used after a long gap only, as it lags a change by tens of seconds);
        without PSI, the load average below the CPUs we may use, less one. Looked at twice
        a second at most."""
        since = now - self._free_checked
        if since < 0.5:
            return self._free
        try:
            with open("/proc/pressure/cpu", "rb") as fh:
                some = fh.readline().split()  # some avg10=.. avg60=.. avg300=.. total=us
            total = int(some[4].split(b"=")[1])
            if self._stall_total and since < 10.0:
                self._free = (total - self._stall_total) * 1e-6 < 0.05 * since
            else:
                self._free = float(some[1].split(b"=")[1]) < 5.0
            self._stall_total = total
        except (OSError, IndexError, ValueError):
            self._free = os.getloadavg()[0] < len(os.sched_getaffinity(0)) - 1
        self._free_checked = now
        return self._free

    def _adapt(self, waited: float, limit: float) -> None:
        """After a spin that did not catch the entry: a longer spin would have caught it
        (and the core seemed free): spin longer; entries are rare: spin less."""
        self._spin_limit = (min(SPIN_MAX, max(2 * limit, 1.5 * waited)) if waited < SPIN_MAX
                            else max(SPIN_MIN, limit / 2))

    def _drain(self, ready: list[tuple[int, int]]) -> None:
        assert self._sock is not None
        sock_fd = self._sock.fileno()
        for fd, _ in ready:
            if fd != sock_fd:
                try:  # noqa: SIM105 - a try is cheaper than contextlib.suppress
                    os.eventfd_read(fd)  # reset the wake-up count
                except BlockingIOError:
                    pass
                continue
            while True:
                try:
                    data = self._sock.recv(MAX_MESSAGE, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    self._gone = True
                    break

    def take(self, timeout: float | None = None) -> Message | None:
        """The next buffer (the caller releases it), or None after ``timeout`` seconds."""
        if self._sock is None:
            raise ShmemError("client is not attached")
        deadline = None if timeout is None else time.perf_counter() + timeout
        while True:
            got = self._claim()
            if got is not None:
                msg = Message(self, *got)
                self._held.append(msg)
                return msg
            if not self._wait(deadline):
                return None

    def take_many(self, max_n: int = 1024, timeout: float | None = None) -> Batch | None:
        """Every dgram ready in the ring, up to ``max_n``, in one pass (one claim, one
        release): a Batch the caller releases; None after ``timeout`` seconds."""
        if self._sock is None:
            raise ShmemError("client is not attached")
        if max_n < 1:
            raise ValueError("max_n must be >= 1")
        deadline = None if timeout is None else time.perf_counter() + timeout
        while True:
            batch = self._claim_many(max_n)
            if batch is not None:
                return batch
            if not self._wait(deadline):
                return None

    def next(self, timeout: float | None = None) -> Dgram | None:
        """The next dgram, releasing the one handed by the previous ``next``; None on timeout."""
        cur = self._cur
        if cur is not None and not self._held:
            # The hot path, inlined: release the previous entry (the oldest one out) ...
            pos, sw, seq, word = cur
            w, region, counts = self._words, self._region, self._counts
            if w[sw] != seq:
                word = _LOST[word]
            counts[word] = n = counts[word] + 1
            region[word] = n
            self._cur = None
            self._tail = pos = pos + 1
            region[C_TAIL] = pos
            # ... and claim the next one if it is ready (as _claim does)
            read = self._read
            if 0 < w[self._head_word] - read <= 4:
                self._read = read + 1
                region[C_READ] = read + 1
                if self._fenced:  # _barrier, inlined
                    self._fenced = False
                    self._fence.release()
                else:
                    self._fenced = True
                    self._fence.acquire()
                entry = w[self._ring_base + (read & self._ring_mask)]
                slot = entry & SLOT_MASK
                seq = entry >> 16
                sw = self._seq_words[slot]
                if w[sw] == seq:
                    buf = self._views[slot]
                    ns, sec, env, key = _unpack_keyed(buf)
                    hit = self._roots.get(key)  # (DgramFactory.make, inlined)
                    if hit is not None and hit[1] == w[sw + T_SIZE]:
                        dg = _new_dgram(Dgram)
                        dg.buf = buf
                        dg.offset = dg.file_offset = 0
                        dg.nanoseconds = ns
                        dg.seconds = sec
                        dg.env = env
                        dg.root = hit[0]
                        dg.source = self._source
                        self._cur = (read, sw, seq, C_DELIVERED if slot < self._n_events
                                     else C_TRANSITIONS)
                        return dg
                got = self._unusual(read, slot, seq)  # taken back, new or odd header
                if got is not None:
                    return self._hold(got)
        if self._sock is None:
            raise ShmemError("client is not attached")
        if self._cur is not None:
            self._release_current()
        elif self._current is not None:
            self._release(self._current)
            self._current = None
        if self._held:  # buffers taken with take() are still out: keep them in ring order
            msg = self.take(timeout)
            if msg is None:
                return None
            self._current = msg
            return msg.dgram
        deadline = None
        while True:
            got = self._claim()
            if got is not None:
                return self._hold(got)
            if deadline is None and timeout is not None:
                deadline = time.perf_counter() + timeout
            if not self._wait(deadline):
                return None
            if self._held:  # only entries taken back were ready (now released)
                self._advance()

    def _hold(self, got: tuple[int, int, int, Dgram]) -> Dgram:
        """Remember a claimed entry as the one ``next`` hands out; its dgram."""
        pos, slot, seq, dg = got
        self._cur = (pos, self._seq_words[slot], seq,
                     C_DELIVERED if slot < self._n_events else C_TRANSITIONS)
        return dg

    def __iter__(self) -> ShmemClient:
        return self

    def __next__(self) -> Dgram:
        dg = self.next()
        assert dg is not None
        return dg

    def release(self) -> None:
        """Release every buffer this client holds."""
        if self._cur is not None and self._sock is not None:
            self._release_current()
        self._current = None
        for rec in list(self._held):
            if not rec.released:
                rec.release()  # type: ignore[union-attr]

    def statistics(self) -> dict[str, int]:
        """This client's own counters (the server adds the drops it made; see status)."""
        c = self._counts
        held = (self._cur is not None) + sum(
            len(r.dgrams) if isinstance(r, Batch) else 1
            for r in self._held if not r.released)
        return {"delivered": c[C_DELIVERED], "skipped": c[C_SKIPPED],
                "overwritten": c[C_OVERWRITTEN], "transitions": c[C_TRANSITIONS],
                "transitions_skipped": c[C_TSKIPPED], "held": held,
                "read": self._read, "released": self._tail, "sleeps": self._sleeps}


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
