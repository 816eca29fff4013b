"""The server's record of each attached client and of each group (routing of events)."""

from __future__ import annotations

import contextlib
import mmap
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ._layout import (
    C_DELIVERED,
    C_OVERWRITTEN,
    C_READ,
    C_SKIPPED,
    C_TAIL,
    C_TRANSITIONS,
    C_TSKIPPED,
    CLIENT_REGION_SIZE,
    S_HEAD,
    S_WOKEN,
    SLOT_MASK,
    Layout,
)
from ._proto import WAKE


class Client:
    """One attached client: its ring in the segment, its region (read-only here), counters.

    ``out`` holds the ring entry (``seq << 16 | slot``) of every position from ``out_pos`` to
    ``head`` the server has not yet reaped, in ring order. An entry is taken back when its seq
    is not the slot's current one: seq 0 (taken back from this client alone) or an older seq
    (taken back from every client, or the slot since reused). Ints, not records: the producer
    appends one per event and reaps it later, so it must cost little.
    """

    def __init__(self, id: int, index: int, layout: Layout, region_fd: int, group: str,
                 mode: str, depth: int, pid: int, name: str, sock: socket.socket,
                 wake_fd: int = -1) -> None:
        try:
            self._mm = mmap.mmap(region_fd, CLIENT_REGION_SIZE, mmap.MAP_SHARED,
                                 mmap.PROT_READ)
        except BaseException:
            if wake_fd >= 0:
                os.close(wake_fd)
            raise
        finally:
            os.close(region_fd)
        self.region = memoryview(self._mm).cast("Q")
        self.id, self.index, self.group, self.mode = id, index, group, mode
        self.depth, self.pid, self.name, self.sock = depth, pid, name, sock
        self.n_events = layout.n_events
        self.ring_base = layout.ring_word(index)
        self.ring_mask = layout.ring_size - 1
        self.ring_events = layout.ring_size - 2 * layout.n_transitions
        self.evict_from = 0  # ring position where the search for an event to take back starts
        self.head_word = layout.client_word(index, S_HEAD)
        self.woken_word = layout.client_word(index, S_WOKEN)
        self.head = 0
        self.transition_entries = 0  # ring entries that are transitions (the rest: events)
        # the server may push events at ring positions below ``limit`` without looking at
        # the client's counters (an under-estimate: the client only ever makes more room)
        self.limit = 0
        self.woken = 0  # last wake-up request answered (mirrors S_WOKEN)
        self.checked = 0  # head when the wake-up request was last looked at
        self.out: deque[int] = deque()
        self.out_pos = 0  # ring position of out[0]
        self.dropped = self.taken_back = self.transitions_dropped = 0
        self.wakes = 0
        self.wake_fd = wake_fd
        self.attached_at = time.time()

    @property
    def events(self) -> int:
        """Event entries pushed."""
        return self.head - self.transition_entries

    @property
    def offered(self) -> int:
        """Events routed to this client: each was pushed (``events``) or dropped for it."""
        return self.events + self.dropped

    def tail(self) -> int:
        t = self.region[C_TAIL]
        return t if t <= self.head else self.head

    def read(self) -> int:
        r = self.region[C_READ]
        return r if r <= self.head else self.head

    def has_room(self) -> bool:
        """Fewer than ``depth`` events queued or held (transitions do not count), and ring
        space for one more event; the answer is remembered as a ``limit`` that each event
        pushed comes closer to, so a busy client's counters are read once per credit, not
        once per event."""
        head = self.head
        if head < self.limit:
            return True
        r = self.region
        tail = r[C_TAIL]
        room = self.depth - (head - self.transition_entries - self.taken_back - r[C_DELIVERED]
                             - r[C_OVERWRITTEN])
        ring = self.ring_events - (head - (tail if tail <= head else head))
        room = room if room < ring else ring
        self.limit = head + room
        return room > 0

    def ring_room(self) -> bool:
        """Ring space for one more event, keeping room for the transitions."""
        return self.head - self.tail() < self.ring_events

    def wake(self) -> None:
        self.wakes += 1
        try:
            if self.wake_fd >= 0:
                os.eventfd_write(self.wake_fd, 1)
            else:
                self.sock.send(WAKE, socket.MSG_DONTWAIT)
        except OSError:  # full (a wake-up is pending anyway) or gone (the loop sees EOF)
            pass

    def stats(self) -> dict[str, Any]:
        r = self.region
        tail, read = self.tail(), self.read()
        queued = held = held_all = 0
        for pos, entry in enumerate(self.out, self.out_pos):
            if pos < tail:
                continue
            slot = entry & SLOT_MASK
            if pos >= read:
                queued += slot < self.n_events
            else:
                held_all += 1
                held += slot < self.n_events
        skipped, overwritten = int(r[C_SKIPPED]), int(r[C_OVERWRITTEN])
        return {"id": self.id, "name": self.name, "pid": self.pid, "group": self.group,
                "mode": self.mode, "depth": self.depth, "offered": self.offered,
                "delivered": int(r[C_DELIVERED]),
                "dropped": self.dropped + skipped + overwritten,
                "dropped_no_room_or_buffer": self.dropped, "taken_back": self.taken_back,
                "skipped": skipped, "overwritten": overwritten, "queued": queued,
                "held": held, "held_buffers": held_all,
                "transitions": int(r[C_TRANSITIONS]),
                "transitions_dropped": self.transitions_dropped + int(r[C_TSKIPPED]),
                "wakes": self.wakes}

    def close(self) -> None:
        fd, self.wake_fd = self.wake_fd, -1
        if fd >= 0:
            os.close(fd)
        self.region.release()
        with contextlib.suppress(BufferError):
            self._mm.close()


class Group:
    """Clients sharing a name: ``shared`` (each gets every event it has room for) or
    ``distributed`` (each event to one member with room, round robin)."""

    def __init__(self, name: str, mode: str) -> None:
        self.name, self.mode = name, mode
        self.shared = mode == "shared"
        self.members: list[Client] = []
        self.rr = 0

    def add(self, t: Client) -> None:
        self.members.append(t)

    def remove(self, t: Client) -> None:
        self.members.remove(t)
        if self.rr >= len(self.members):
            self.rr = 0

    def route(self, targets: list[Client], make_room: Callable[[Client], bool]) -> None:
        """Append the members that get the next event; count the others' drops.

        A member without room gets it anyway if ``make_room`` could take back the oldest
        event still queued to it (the freshest data wins, as monitors want).
        """
        members = self.members
        if self.shared:
            for t in members:
                if t.head < t.limit or t.has_room() or make_room(t):
                    targets.append(t)
                else:
                    t.dropped += 1
            return
        n = len(members)
        start = self.rr
        for k in range(n):
            t = members[(start + k) % n]
            if t.has_room():
                targets.append(t)
                self.rr = (start + k + 1) % n
                return
        t = members[start % n]  # nobody has room: it is this member's turn
        self.rr = (start + 1) % n
        if make_room(t):
            targets.append(t)
        else:
            t.dropped += 1
