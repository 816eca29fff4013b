"""The producer side: a segment of buffers, the routing of each dgram, the drop policy."""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from daq.xtc import DGRAM_HEADER_SIZE, Dgram, EncodedDgram, TransitionId

from ._cache import TransitionCache
from ._clients import Client, Group
from ._control import ControlLoop
from ._layout import (
    C_SLEEP,
    H_EVENTS,
    H_TRANSITIONS,
    S_ID,
    S_WOKEN,
    SLOT_MASK,
    T_SEQ,
    T_SERVICE,
    T_SIZE,
    TENTATIVE,
    Layout,
    segment_path,
    socket_path,
    validate_tag,
)
from ._segment import ServerSegment

log = logging.getLogger("shmem")

_HEAD = struct.Struct("<III8xI")  # ns, s, env, (src, damage, contains), extent
_unpack_head = _HEAD.unpack_from
_L1 = int(TransitionId.L1Accept)
_SEQ_MASK = (1 << 48) - 1
_BYTES = (bytes, bytearray)  # (a constant: ``bytes | bytearray`` is built at each use)


def _source(dgram: Any) -> tuple[Any, int, int, int, int]:
    """(what to copy, size, ns, s, env) of a dgram handed to ``put``; checks its size."""
    if isinstance(dgram, EncodedDgram):
        head = dgram.parts[0] if len(dgram.parts[0]) >= DGRAM_HEADER_SIZE \
            else dgram.tobytes()[:DGRAM_HEADER_SIZE]
        ns, sec, env, extent = _HEAD.unpack_from(head)
        return dgram, 12 + extent, ns, sec, env
    if isinstance(dgram, Dgram):
        mv = memoryview(dgram.buf)[dgram.offset:]
    else:
        mv = memoryview(dgram)
        if mv.itemsize != 1 or mv.ndim != 1:
            mv = mv.cast("B")
    if len(mv) < DGRAM_HEADER_SIZE:
        raise ValueError(f"{len(mv)} bytes cannot hold a dgram")
    ns, sec, env, extent = _HEAD.unpack_from(mv)
    size = 12 + extent
    if size > len(mv):
        raise ValueError(f"dgram of {size} bytes in a {len(mv)}-byte buffer")
    return mv[:size], size, ns, sec, env


class ShmemServer:
    """One tag's segment and control socket; the event builder's monitoring sink.

    ``put(dgram)`` copies a dgram into a free buffer (one copy) and queues it to clients; it
    never blocks. With no free buffer it takes back the oldest event still queued to a client
    (not yet read), else drops the new event; both are counted per client.
    """

    def __init__(self, tag: str, n_buffers: int = 16, buffer_size: int = 8 << 20, *,
                 n_transitions: int = 16, transition_size: int = 1 << 20,
                 max_clients: int = 16, queue_depth: int | None = None,
                 group_access: bool = False, directory: str | os.PathLike[str] | None = None,
                 ring_size: int = 1024) -> None:
        self.tag = validate_tag(tag)
        self.layout = Layout(n_buffers, n_transitions, buffer_size, transition_size,
                             max_clients, max(ring_size, 1 << (2 * (n_buffers + n_transitions)
                                                               - 1).bit_length()))
        self.default_depth = min(queue_depth or n_buffers, n_buffers)
        self.mode = 0o640 if group_access else 0o600
        self.segment_path = segment_path(tag, directory)
        self.socket_path = socket_path(tag, directory)
        self._lock = threading.Lock()
        self._fence = threading.Lock()  # see _barrier
        self._fenced = False
        self._segment: ServerSegment | None = None
        self._control: ControlLoop | None = None
        self.retired: deque[dict[str, Any]] = deque(maxlen=64)  #: last detached clients
        self._reset_state()

    def _reset_state(self) -> None:
        n = self.layout.n_slots
        self._seq = [0] * n
        self._users: list[dict[Client, int]] = [{} for _ in range(n)]  # slot -> client: pos
        self._cached = [False] * n
        self._free_ev = list(range(self.layout.n_events - 1, -1, -1))
        self._free_tr = list(range(n - 1, self.layout.n_events - 1, -1))
        self._inuse_ev: dict[int, None] = {}
        self._inuse_tr: dict[int, None] = {}
        self._cache = TransitionCache()
        self._events = 0
        self._seq_words = [self.layout.slot_word(k, T_SEQ) for k in range(n)]
        self._offsets = [self.layout.buffer_offset(k) for k in range(n)]
        self._event_size = self.layout.buffer_size
        self._groups: dict[str, Group] = {}
        self._group_list: tuple[Group, ...] = ()
        # the fast paths (see _regroup)
        self._fast_one: Client | None = None
        self._fast_group: Group | None = None
        self._fast_shared: tuple[Client, ...] = ()
        self._batch_members: tuple[Client, ...] = ()
        self._clients: list[Client] = []
        self._free_index = list(range(self.layout.max_clients - 1, -1, -1))
        self._next_id = 1
        self.counters = dict.fromkeys(
            ("transitions", "unrouted", "dropped", "taken_back", "take_back_races",
             "transitions_dropped", "oversize", "bad_messages", "refused", "attached",
             "detached"), 0)

    # ---- life cycle ------------------------------------------------------------------
    def open(self) -> ShmemServer:
        if self._segment is not None:
            return self
        if len(os.fsencode(self.socket_path)) > 107:
            raise ValueError(f"socket path {self.socket_path} is too long for AF_UNIX")
        self._reset_state()
        seg = ServerSegment(self.segment_path, self.layout, self.mode)
        seg.create(extra=(self.socket_path,))
        if seg.stale_removed:
            log.warning("removed a stale segment of tag %s left by a dead server", self.tag)
        self._segment = seg
        assert seg.mm is not None and seg.words is not None
        self._words: memoryview = seg.words
        self._mv = memoryview(seg.mm)
        self._control = ControlLoop(self, self.socket_path, 0o660 if self.mode == 0o640 else
                                    0o600)
        try:
            self._control.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._control is not None:
            self._control.stop()
            self._control = None
        with self._lock:
            for c in list(self._clients):
                self._remove(c)
        if self._segment is not None:
            self._mv.release()
            self._segment.close()
            self._segment = None

    def __enter__(self) -> ShmemServer:
        return self.open()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._segment is not None

    # ---- producer --------------------------------------------------------------------
    def put(self, dgram: Dgram | EncodedDgram | bytes | bytearray | memoryview) -> bool:
        """Queue one dgram to the clients; True if any client got it. Never blocks."""
        src: Any = dgram
        tp = type(src)
        if tp is bytes or tp is bytearray:  # the common case, without a memoryview
            try:
                ns, sec, env, extent = _unpack_head(src)
            except struct.error:
                raise ValueError(f"{len(src)} bytes cannot hold a dgram") from None
            size = 12 + extent
            if size != len(src):
                if size > len(src):
                    raise ValueError(f"dgram of {size} bytes in a {len(src)}-byte buffer")
                src = memoryview(src)[:size]
        else:
            src, size, ns, sec, env = _source(dgram)
        lock = self._lock  # (acquire/release: cheaper than a with statement)
        lock.acquire()
        try:
            if (env >> 24) & 0xF == _L1 and size <= self._event_size:
                # The fast path (docs/shmem.md): the event goes to one client (the only one,
                # or the one whose turn it is in the only group, distributed) that has room,
                # and a buffer is free. It routes as _put_event would, with less bookkeeping.
                t = self._fast_one
                if (g := self._fast_group) is not None:
                    t = g.members[g.rr]
                if t is not None:
                    if (t.head < t.limit or t.has_room()) and (self._free_ev or self._reaped()):
                        if g is not None:
                            g.rr = g.rr + 1 if g.rr + 1 < len(g.members) else 0
                        w = self._words
                        self._events = events = self._events + 1
                        w[H_EVENTS] = events
                        slot = self._free_ev.pop()
                        self._inuse_ev[slot] = None
                        seq_word = self._seq_words[slot]
                        seq = self._seq[slot]
                        w[seq_word] = seq + 1  # odd: being written
                        off = self._offsets[slot]
                        if type(src) is EncodedDgram:
                            src.pack_into(self._mv, off)
                        else:
                            self._mv[off: off + size] = src
                        w[seq_word + T_SIZE] = size
                        w[seq_word + T_SERVICE] = _L1
                        self._seq[slot] = seq = (seq + 2) & _SEQ_MASK
                        w[seq_word] = seq
                        entry = (seq << 16) | slot
                        pos = t.head
                        w[t.ring_base + (pos & t.ring_mask)] = entry
                        t.head = t.checked = pos + 1
                        w[t.head_word] = pos + 1
                        t.out.append(entry)
                        self._users[slot][t] = pos
                        # the wake-up (_wake for this client): a barrier, then its request
                        if self._fenced:
                            self._fenced = False
                            self._fence.release()
                        else:
                            self._fenced = True
                            self._fence.acquire()
                        sleep = t.region[C_SLEEP]
                        if sleep != t.woken:
                            t.woken = w[t.woken_word] = sleep
                            t.wake()
                        return True
                elif self._fast_shared and self._put_shared(src, size):
                    return True
            if self._segment is None:
                raise RuntimeError("server is not open")
            if (env >> 24) & 0xF != _L1:
                got = self._put_transition(src, size, (env >> 24) & 0xF, (sec << 32) | ns)
            else:
                got = self._put_event(src, size) is not None
            self._wake(self._clients)
        finally:
            lock.release()
        return got

    def put_many(self, dgrams: Iterable[Dgram | EncodedDgram | bytes | bytearray | memoryview]
                 ) -> int:
        """``put`` each dgram in turn under one lock, looking once at the end for clients
        waiting for a wake-up; returns how many dgrams some client got. Never blocks.

        Clients see the batch at its end (``head`` is stored once per client, then the
        wake-ups): pass a list, not a generator that waits for data, since the lock is held
        while the dgrams are read.
        """
        with self._lock:
            if self._segment is None:
                raise RuntimeError("server is not open")
            try:
                return self._put_many(dgrams)
            finally:  # also after a bad dgram: what was queued before it must be seen
                self._wake(self._clients)

    def _put_many(self, dgrams: Iterable[Any]) -> int:
        got = 0
        w = self._words
        # The fast path: every group shared, every member with room, a free buffer. Events
        # come in runs: at the start of a run each member's room credit is looked at, and the
        # run lasts as long as the smallest credit.
        members = self._batch_members
        free, inuse, all_users = self._free_ev, self._inuse_ev, self._users
        seqs, seq_words, offsets, mv = self._seq, self._seq_words, self._offsets, self._mv
        max_size = self.layout.buffer_size
        run = budget = 0  # events in this run, the most it may hold
        fast = 0  # events queued by the fast path (self._events is brought up to date at the end)
        try:
            for dgram in dgrams:
                if isinstance(dgram, _BYTES):
                    n = len(dgram)
                    if n < DGRAM_HEADER_SIZE:
                        raise ValueError(f"{n} bytes cannot hold a dgram")
                    ns, sec, env, extent = _HEAD.unpack_from(dgram)
                    size = 12 + extent
                    if size > n:
                        raise ValueError(f"dgram of {size} bytes in a {n}-byte buffer")
                    src: Any = dgram if size == n else memoryview(dgram)[:size]
                else:
                    src, size, ns, sec, env = _source(dgram)
                if run >= budget and members:  # a new run
                    run = 0
                    budget = min(t.limit - t.head if t.head < t.limit or t.has_room() else 0
                                 for t in members)
                if (env >> 24) & 0xF == _L1 and run < budget and size <= max_size \
                        and (free or self._reaped()):
                    slot = free.pop()
                    inuse[slot] = None
                    seq_word = seq_words[slot]
                    seq = seqs[slot]
                    w[seq_word] = seq + 1
                    off = offsets[slot]
                    if type(src) is EncodedDgram:
                        src.pack_into(mv, off)
                    else:
                        mv[off: off + size] = src
                    w[seq_word + T_SIZE] = size
                    w[seq_word + T_SERVICE] = _L1
                    seqs[slot] = seq = (seq + 2) & _SEQ_MASK
                    w[seq_word] = seq
                    entry = (seq << 16) | slot
                    users = all_users[slot]
                    for t in members:
                        pos = t.head
                        w[t.ring_base + (pos & t.ring_mask)] = entry
                        t.head = pos + 1
                        t.out.append(entry)
                        users[t] = pos
                    run += 1
                    fast += 1
                    continue
                run = budget = 0  # the general path may change the counters: end the run
                if (env >> 24) & 0xF != _L1:
                    if self._put_transition(src, size, (env >> 24) & 0xF, (sec << 32) | ns):
                        got += 1
                elif self._put_event(src, size) is not None:
                    got += 1
        finally:
            self._events += fast
            w[H_EVENTS] = self._events
            for t in self._clients:
                w[t.head_word] = t.head
        return got + fast

    def _put_shared(self, src: Any, size: int) -> bool:
        """put's fast path when every group is shared: if every client has room and a buffer
        is free, queue the event to each (as _put_event would) and return True."""
        members = self._fast_shared
        for t in members:
            if t.head >= t.limit and not t.has_room():
                return False
        if not (self._free_ev or self._reaped()):
            return False
        self._events += 1
        w = self._words
        w[H_EVENTS] = self._events
        slot = self._free_ev.pop()
        self._inuse_ev[slot] = None
        entry = (self._write(slot, src, size, _L1) << 16) | slot
        users = self._users[slot]
        for t in members:
            pos = t.head
            w[t.ring_base + (pos & t.ring_mask)] = entry
            t.head = pos + 1
            w[t.head_word] = pos + 1
            t.out.append(entry)
            users[t] = pos
        self._wake(self._clients)
        return True

    def _wake(self, clients: list[Client] | tuple[Client, ...]) -> None:
        """Wake the clients that asked for it and have new entries since they last asked
        (under the lock, after ``head`` was stored).

        The barrier makes the store of ``head`` visible before the requests are read. A
        client that asked before our store is seen here; one that asks after it (it stores,
        passes its own barrier, then reads ``head``) sees the entries itself. No wake-up is
        lost.
        """
        self._barrier()
        w = self._words
        for t in clients:
            head = t.head
            if head != t.checked:
                t.checked = head
                sleep = t.region[C_SLEEP]
                if sleep != t.woken:  # the client waits for a wake-up
                    t.woken = w[t.woken_word] = sleep
                    t.wake()

    def _barrier(self) -> None:
        """A full memory barrier: acquiring or releasing a lock executes a locked instruction
        (a full barrier on x86-64); one of the two per call, alternately (under the lock)."""
        if self._fenced:
            self._fenced = False
            self._fence.release()
        else:
            self._fenced = True
            self._fence.acquire()

    def _write(self, slot: int, src: Any, size: int, service: int) -> int:
        w = self._words
        seq = self._seq[slot]
        seq_word = self._seq_words[slot]
        w[seq_word] = seq + 1  # odd: being written
        off = self._offsets[slot]
        if type(src) is EncodedDgram:
            src.pack_into(self._mv, off)
        else:
            self._mv[off: off + size] = src
        w[seq_word + T_SIZE] = size
        w[seq_word + T_SERVICE] = service
        seq = (seq + 2) & _SEQ_MASK
        self._seq[slot] = seq
        w[seq_word] = seq
        return seq

    def _put_event(self, src: Any, size: int) -> list[Client] | None:
        """Queue an event to the clients routing picks; the targets, or None if none got it."""
        self._events += 1
        w = self._words
        w[H_EVENTS] = self._events
        targets: list[Client] = []
        for g in self._group_list:
            g.route(targets, self._make_room)
        if not targets:
            self.counters["unrouted"] += 1
            return None
        if size > self.layout.buffer_size:
            self.counters["oversize"] += 1
            log.warning("event of %d bytes exceeds the %d-byte buffers: dropped", size,
                        self.layout.buffer_size)
            slot = -1
        else:
            free = self._free_ev
            if free:
                slot = free.pop()
                self._inuse_ev[slot] = None
            else:
                slot = self._alloc(free, self._inuse_ev)
        if slot < 0:
            self.counters["dropped"] += 1
            for t in targets:
                t.dropped += 1
            return None
        # the copy (seq odd while it is written, then even): _write inlined
        seq_word = self._seq_words[slot]
        seq = self._seq[slot]
        w[seq_word] = seq + 1
        off = self._offsets[slot]
        if type(src) is EncodedDgram:
            src.pack_into(self._mv, off)
        else:
            self._mv[off: off + size] = src
        w[seq_word + T_SIZE] = size
        w[seq_word + T_SERVICE] = _L1
        seq = (seq + 2) & _SEQ_MASK
        self._seq[slot] = seq
        w[seq_word] = seq
        entry = (seq << 16) | slot
        users = self._users[slot]
        for t in targets:  # _push inlined
            pos = t.head
            w[t.ring_base + (pos & t.ring_mask)] = entry
            t.head = pos + 1
            w[t.head_word] = pos + 1
            t.out.append(entry)
            users[t] = pos
        return targets

    def _put_transition(self, src: Any, size: int, service: int, ts: int) -> bool:
        c = self.counters
        c["transitions"] += 1
        self._words[H_TRANSITIONS] = c["transitions"]
        slot = -1
        if size <= self.layout.transition_size:
            slot = self._alloc(self._free_tr, self._inuse_tr)
        else:
            c["oversize"] += 1
        if slot < 0:
            c["transitions_dropped"] += 1
            log.warning("transition %s (%d bytes) dropped: no transition buffer fits it",
                        TransitionId.name_of(service), size)
            for t in self._clients:
                t.transitions_dropped += 1
            return False
        seq = self._write(slot, src, size, service)
        cached, released = self._cache.push(service, ts, slot)
        self._cached[slot] = cached
        for s in released:
            self._cached[s] = False
            self._maybe_free(s)
        entry = (seq << 16) | slot
        ring = self.layout.ring_size
        for t in self._clients:
            if t.head - t.tail() < ring:
                self._push(t, slot, entry)
            else:
                t.transitions_dropped += 1
        self._maybe_free(slot)
        return bool(self._clients)

    def _push(self, t: Client, slot: int, entry: int) -> None:
        """Queue a transition (or a cached one at attach); the caller wakes the client."""
        w = self._words
        pos = t.head
        w[t.ring_base + (pos & t.ring_mask)] = entry
        t.head = pos + 1
        w[t.head_word] = pos + 1
        t.transition_entries += 1
        t.limit = 0  # ring space used: look at the client's counters before the next event
        t.out.append(entry)
        self._users[slot][t] = pos

    # ---- buffers ---------------------------------------------------------------------
    def _alloc(self, free: list[int], inuse: dict[int, None]) -> int:
        if not free:
            self._reap()
        if not free:
            self._take_back(inuse)
        if not free:
            return -1
        slot = free.pop()
        inuse[slot] = None
        return slot

    def _maybe_free(self, slot: int) -> None:
        if self._users[slot] or self._cached[slot]:
            return
        if slot < self.layout.n_events:
            if self._inuse_ev.pop(slot, 0) is None:
                self._free_ev.append(slot)
        elif self._inuse_tr.pop(slot, 0) is None:
            self._free_tr.append(slot)

    def _reap(self) -> None:
        """Free the buffers clients have released (their tail moved past them)."""
        all_users, cached, seqs = self._users, self._cached, self._seq
        n_events, inuse_ev, free_ev = self.layout.n_events, self._inuse_ev, self._free_ev
        for t in self._clients:
            n = t.tail() - t.out_pos
            if n <= 0:
                continue
            t.out_pos += n
            popleft = t.out.popleft
            for _ in range(n):
                entry = popleft()
                slot = entry & SLOT_MASK
                if entry >> 16 != seqs[slot]:  # taken back already
                    continue
                users = all_users[slot]
                del users[t]
                if users or cached[slot]:
                    continue
                if slot < n_events:  # _maybe_free inlined
                    if inuse_ev.pop(slot, 0) is None:
                        free_ev.append(slot)
                else:
                    self._maybe_free(slot)

    def _reaped(self) -> bool:
        """Reap; whether an event buffer is free now."""
        self._reap()
        return bool(self._free_ev)

    def _make_room(self, t: Client) -> bool:
        """Take back the oldest event queued (not yet read) to ``t``; False if none."""
        out = t.out
        if not out or not t.ring_room():
            return False
        first = t.out_pos
        w, seqs = self._words, self._seq
        n_events = self.layout.n_events
        for k in range(max(t.read(), t.evict_from) - first, len(out)):
            entry = out[k]
            slot = entry & SLOT_MASK
            if slot >= n_events or entry >> 16 != seqs[slot]:  # a transition, or taken back
                continue
            pos = first + k
            word = t.ring_base + (pos & t.ring_mask)
            old = w[word]
            w[word] = TENTATIVE | slot  # being taken back (a client that claimed it waits) ...
            self._barrier()  # (the store is visible before the load)
            if t.read() > pos:  # ... unless it already claimed it: it is the client's
                w[word] = old
                self.counters["take_back_races"] += 1
                return False
            w[word] = slot  # taken back: seq 0, which no entry carries
            out[k] = slot
            t.taken_back += 1
            t.evict_from = pos + 1
            self.counters["taken_back"] += 1
            del self._users[slot][t]
            self._maybe_free(slot)
            return True
        return False

    def _take_back(self, inuse: dict[int, None]) -> None:
        """Reuse the oldest buffer that is only queued (no client has started reading it)."""
        w = self._words
        for slot in inuse:
            users = self._users[slot]
            if self._cached[slot] or not users:
                continue
            if any(t.read() > pos for t, pos in users.items()):
                continue
            seq_word = self._seq_words[slot]
            seq = self._seq[slot]
            w[seq_word] = seq + 1  # being taken back (a client that claimed it waits) ...
            self._barrier()  # (the store is visible before the loads)
            if any(t.read() > pos for t, pos in users.items()):  # ... unless a client
                w[seq_word] = seq                                  # claimed it
                self.counters["take_back_races"] += 1
                continue
            # taken back: a seq no entry carries (the next write of the slot goes on from it);
            # the entries in the clients' ``out`` are stale now
            self._seq[slot] = seq = (seq + 2) & _SEQ_MASK
            w[seq_word] = seq
            for t in users:
                t.taken_back += 1
            users.clear()
            self.counters["taken_back"] += 1
            del inuse[slot]
            (self._free_ev if slot < self.layout.n_events else self._free_tr).append(slot)
            return

    # ---- clients (called by the control loop) ----------------------------------------
    def _attach(self, sock: Any, region_fd: int, group: str, mode: str, depth: int, pid: int,
                name: str, wake_fd: int = -1) -> tuple[Client | None, dict[str, Any]]:
        """Register a client (its cached transitions queued first), or say why not."""
        with self._lock:
            g = self._groups.get(group)
            error = ""
            if g is not None and g.mode != mode:
                error = f"group {group!r} is {g.mode}, not {mode}"
            elif not self._free_index:
                error = f"too many clients (max_clients={self.layout.max_clients})"
            if error:
                os.close(region_fd)
                if wake_fd >= 0:
                    os.close(wake_fd)
                self.counters["refused"] += 1
                return None, {"error": error}
            index = self._free_index.pop()
            depth = min(depth or self.default_depth, self.layout.n_events)
            try:
                t = Client(self._next_id, index, self.layout, region_fd, group, mode, depth,
                           pid, name, sock, wake_fd)
            except (OSError, ValueError) as exc:
                self._free_index.append(index)
                self.counters["refused"] += 1
                return None, {"error": f"bad client region: {exc}"}
            self._next_id += 1
            w = self._words
            w[t.head_word] = 0
            w[self.layout.client_word(index, S_WOKEN)] = 0
            w[self.layout.client_word(index, S_ID)] = t.id
            if g is None:
                g = self._groups[group] = Group(group, mode)
                self._group_list = tuple(self._groups.values())
            g.add(t)
            self._clients.append(t)
            self._regroup()
            for slot in self._cache.slots():  # the late joiner's first messages
                self._push(t, slot, (self._seq[slot] << 16) | slot)
            self.counters["attached"] += 1
            return t, {"id": t.id, "index": index, "depth": depth,
                       "segment": str(self.segment_path), "generation": self._generation()}

    def _regroup(self) -> None:
        """Choose the fast paths for these groups (docs/shmem.md): the only client (a lone
        member of a distributed group is routed as a shared one: it gets every event it has
        room for, or the oldest one queued to it is taken back), the only group if it is
        distributed, or every client if all groups are shared."""
        groups, clients = self._group_list, self._clients
        one = len(clients) == 1
        self._fast_one = clients[0] if one else None
        self._fast_group = groups[0] if len(groups) == 1 and not one \
            and not groups[0].shared else None
        shared = tuple(t for g in groups for t in g.members) \
            if all(g.shared for g in groups) else ()
        self._fast_shared = shared if not one else ()
        self._batch_members = (clients[0],) if one else shared

    def _generation(self) -> int:
        assert self._segment is not None
        return self._segment.generation

    def _detach(self, t: Client) -> None:
        with self._lock:
            if t in self._clients:
                self._remove(t)

    def _remove(self, t: Client) -> None:
        """Take back everything a client held or had queued (it left or died)."""
        self._clients.remove(t)
        g = self._groups[t.group]
        g.remove(t)
        if not g.members:
            del self._groups[t.group]
            self._group_list = tuple(self._groups.values())
        self._regroup()
        seqs = self._seq
        for entry in t.out:
            slot = entry & SLOT_MASK
            if entry >> 16 == seqs[slot]:  # not taken back
                del self._users[slot][t]
                self._maybe_free(slot)
        t.out.clear()
        if self._segment is not None:
            self._words[self.layout.client_word(t.index, S_ID)] = 0
        self._free_index.append(t.index)
        self.counters["detached"] += 1
        self.retired.append(t.stats())
        t.close()

    def statistics(self) -> dict[str, Any]:
        """Counters of the server and of every client (see docs/shmem.md)."""
        with self._lock:
            if self._segment is not None:
                self._reap()
            lay = self.layout
            return {
                "tag": self.tag, "pid": os.getpid(), "segment": str(self.segment_path),
                "n_buffers": lay.n_events, "buffer_size": lay.buffer_size,
                "n_transitions": lay.n_transitions, "transition_size": lay.transition_size,
                "max_clients": lay.max_clients, "free_buffers": len(self._free_ev),
                "free_transition_buffers": len(self._free_tr), "cached": len(self._cache),
                **self.counters, "events": self._events,
                "clients": [t.stats() for t in self._clients],
            }

