"""Where everything lives in a segment: header, per-client areas, slot table, rings, buffers.

Pure arithmetic, no I/O: both the server and the clients derive the same offsets from the
numbers stored in the header. Every counter is a little-endian u64 at an 8-byte boundary, so a
reader never sees a torn value on x86-64.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"XFSHM\x00\x01\x00"
VERSION = 2
PAGE = 4096
MAX_TAG = 64
DEFAULT_DIR = "/dev/shm"
PREFIX = "xfelshm-"

_TAG_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

# header: u64 words (index into the u64 view of the segment)
H_MAGIC, H_VERSION, H_PID, H_GENERATION, H_STATE = 0, 1, 2, 3, 4
H_N_EVENTS, H_N_TRANSITIONS, H_BUFFER_SIZE, H_TRANSITION_SIZE = 5, 6, 7, 8
H_MAX_CLIENTS, H_RING_SIZE, H_TOTAL = 9, 10, 11
H_EVENTS, H_TRANSITIONS = 12, 13  # produced counters (for anyone looking)
HEADER_WORDS = 32
STATE_OPEN, STATE_CLOSED = 1, 2

# server-written area of one client (8 words = one cache line)
S_HEAD, S_WOKEN, S_ID = 0, 1, 2
CLIENT_WORDS = 8

# client-written region (a memfd the client passes over the control socket): the words the
# client writes per event share the first cache line; the wake-up request, which the server
# reads at every put, has a line of its own, so reading it costs no cache miss while the client
# is busy.
C_READ, C_TAIL, C_DELIVERED, C_SKIPPED, C_OVERWRITTEN, C_TRANSITIONS, C_TSKIPPED = range(7)
C_SLEEP = 8
CLIENT_REGION_SIZE = PAGE

# slot table: seq, size, service, spare
SLOT_WORDS = 4
T_SEQ, T_SIZE, T_SERVICE = 0, 1, 2

SLOT_BITS = 16  # ring entry = seq << 16 | slot
SLOT_MASK = (1 << SLOT_BITS) - 1
# Valid seqs are even and >= 2. A ring entry with seq 1 is being taken back (the server decides
# whether the client claimed it first), with seq 0 it was taken back. A slot seq one above the
# entry's is a take-back being decided, any other mismatch one done.
TENTATIVE = 1 << SLOT_BITS


def validate_tag(tag: str) -> str:
    """A tag names files in a shared folder: letters, digits, ``_.-``, no leading dot."""
    if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG:
        raise ValueError(f"tag must be 1..{MAX_TAG} characters, got {tag!r}")
    if tag.startswith(".") or not _TAG_RE.match(tag):
        raise ValueError(f"tag {tag!r} must match [A-Za-z0-9_.-]+ and not start with a dot")
    return tag


def segment_path(tag: str, directory: str | os.PathLike[str] | None = None) -> Path:
    return Path(directory or DEFAULT_DIR) / f"{PREFIX}{validate_tag(tag)}"


def socket_path(tag: str, directory: str | os.PathLike[str] | None = None) -> Path:
    return Path(directory or DEFAULT_DIR) / f"{PREFIX}{validate_tag(tag)}.sock"


def _round(n: int, to: int = PAGE) -> int:
    return (n + to - 1) // to * to


@dataclass(frozen=True)
class Layout:
    """Offsets (bytes) of every part of a segment with these dimensions."""

    n_events: int
    n_transitions: int
    buffer_size: int
    transition_size: int
    max_clients: int
    ring_size: int

    def __post_init__(self) -> None:
        if self.n_events < 1 or self.n_transitions < 4:
            raise ValueError("need at least 1 event buffer and 4 transition buffers")
        if self.n_slots > SLOT_MASK:
            raise ValueError(f"at most {SLOT_MASK} buffers")
        if self.buffer_size < 64 or self.transition_size < 64:
            raise ValueError("buffers must hold at least 64 bytes")
        if self.max_clients < 1:
            raise ValueError("max_clients must be >= 1")
        if self.ring_size & (self.ring_size - 1) or self.ring_size < 2 * self.n_slots:
            raise ValueError("ring_size must be a power of two >= 2 x the buffer count")

    @property
    def n_slots(self) -> int:
        return self.n_events + self.n_transitions

    @property
    def clients_offset(self) -> int:
        return HEADER_WORDS * 8

    @property
    def slots_offset(self) -> int:
        return self.clients_offset + self.max_clients * CLIENT_WORDS * 8

    @property
    def rings_offset(self) -> int:
        return self.slots_offset + self.n_slots * SLOT_WORDS * 8

    @property
    def control_size(self) -> int:
        """Bytes before the first buffer (header, client areas, slot table, rings)."""
        return _round(self.rings_offset + self.max_clients * self.ring_size * 8)

    @property
    def event_stride(self) -> int:
        return _round(self.buffer_size, 64)

    @property
    def transition_stride(self) -> int:
        return _round(self.transition_size, 64)

    @property
    def transitions_offset(self) -> int:
        return _round(self.control_size + self.n_events * self.event_stride)

    @property
    def total(self) -> int:
        return _round(self.transitions_offset + self.n_transitions * self.transition_stride)

    def buffer_offset(self, slot: int) -> int:
        if slot < self.n_events:
            return self.control_size + slot * self.event_stride
        return self.transitions_offset + (slot - self.n_events) * self.transition_stride

    def capacity(self, slot: int) -> int:
        return self.buffer_size if slot < self.n_events else self.transition_size

    # word indices in the u64 view of the control part
    def client_word(self, client: int, word: int) -> int:
        return (self.clients_offset >> 3) + client * CLIENT_WORDS + word

    def slot_word(self, slot: int, word: int) -> int:
        return (self.slots_offset >> 3) + slot * SLOT_WORDS + word

    def ring_word(self, client: int) -> int:
        return (self.rings_offset >> 3) + client * self.ring_size

    def header_words(self) -> dict[int, int]:
        return {H_N_EVENTS: self.n_events, H_N_TRANSITIONS: self.n_transitions,
                H_BUFFER_SIZE: self.buffer_size, H_TRANSITION_SIZE: self.transition_size,
                H_MAX_CLIENTS: self.max_clients, H_RING_SIZE: self.ring_size,
                H_TOTAL: self.total}

    @classmethod
    def from_header(cls, words: memoryview) -> Layout:
        if struct.pack("<Q", words[H_MAGIC]) != MAGIC or words[H_VERSION] != VERSION:
            raise ValueError("not a shmem segment of this version")
        return cls(int(words[H_N_EVENTS]), int(words[H_N_TRANSITIONS]),
                   int(words[H_BUFFER_SIZE]), int(words[H_TRANSITION_SIZE]),
                   int(words[H_MAX_CLIENTS]), int(words[H_RING_SIZE]))


MAGIC_WORD = struct.unpack("<Q", MAGIC)[0]
