"""The segment file: created, locked and pre-faulted by the server, mapped read-only by clients.

The server holds an exclusive ``flock`` on the segment for its lifetime. The kernel drops the
lock when the process dies (even by ``kill -9``), so a segment whose lock can be taken belongs
to a crashed server: it is removed at the next start. The header also records the server pid
and a random generation number, which clients check against the attach reply.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import secrets
from pathlib import Path

from ._errors import ShmemError, TagInUseError
from ._layout import (
    H_GENERATION,
    H_MAGIC,
    H_PID,
    H_STATE,
    H_VERSION,
    MAGIC_WORD,
    STATE_CLOSED,
    STATE_OPEN,
    VERSION,
    Layout,
)


def _owner_pid(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8 * (H_PID + 1))
        return int.from_bytes(head[8 * H_PID: 8 * H_PID + 8], "little") if len(head) >= 24 else 0
    except OSError:
        return 0


def remove_if_stale(path: Path, extra: tuple[Path, ...] = ()) -> bool:
    """Remove ``path`` (and ``extra`` files) if no live server holds its lock.

    Returns True if something stale was removed; raises TagInUseError if a server is alive.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        for p in extra:
            if p.exists() or p.is_symlink():
                p.unlink(missing_ok=True)
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TagInUseError(f"{path} is in use by a live server (pid {_owner_pid(path)})") \
                from None
        path.unlink(missing_ok=True)
        for p in extra:
            p.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


class ServerSegment:
    """The server's read-write mapping of its segment."""

    def __init__(self, path: Path, layout: Layout, mode: int = 0o600) -> None:
        self.path = path
        self.layout = layout
        self.mode = mode
        self.generation = 0
        self.stale_removed = False
        self.mm: mmap.mmap | None = None
        self.words: memoryview | None = None
        self._fd = -1
        self._ino = 0

    def create(self, extra: tuple[Path, ...] = ()) -> None:
        self.stale_removed = remove_if_stale(self.path, extra)
        size = self.layout.total
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, self.mode)
        except FileExistsError:
            raise TagInUseError(f"{self.path} was created by another server meanwhile") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.fchmod(fd, self.mode)
            os.posix_fallocate(fd, 0, size)  # allocate every page now ...
            self.mm = mmap.mmap(fd, size, mmap.MAP_SHARED | mmap.MAP_POPULATE,
                                mmap.PROT_READ | mmap.PROT_WRITE)  # ... and map them all
        except BaseException:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise
        self._fd = fd
        self._ino = os.fstat(fd).st_ino
        words = memoryview(self.mm)[: self.layout.control_size].cast("Q")
        self.words = words
        for k, v in self.layout.header_words().items():
            words[k] = v
        self.generation = secrets.randbits(62) + 1
        words[H_VERSION] = VERSION
        words[H_PID] = os.getpid()
        words[H_GENERATION] = self.generation
        words[H_STATE] = STATE_OPEN
        words[H_MAGIC] = MAGIC_WORD

    def buffer(self, slot: int) -> memoryview:
        assert self.mm is not None
        off = self.layout.buffer_offset(slot)
        return memoryview(self.mm)[off: off + self.layout.capacity(slot)]

    def close(self) -> None:
        if self.words is not None:
            self.words[H_STATE] = STATE_CLOSED
            self.words.release()
            self.words = None
        if self._fd >= 0:
            try:  # unlink only the file we created (not a successor's)
                if os.stat(self.path).st_ino == self._ino:
                    self.path.unlink()
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = -1
        if self.mm is not None:
            with contextlib.suppress(BufferError):  # a view is still out: unmapped later
                self.mm.close()
            self.mm = None


def open_readonly(path: Path, generation: int) -> tuple[mmap.mmap, Layout]:
    """Map a server's segment read-only, checking it is the one the server announced."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ShmemError(f"cannot open segment {path}: {exc}") from None
    try:
        size = os.fstat(fd).st_size
        mm = mmap.mmap(fd, size, mmap.MAP_SHARED | mmap.MAP_POPULATE, mmap.PROT_READ)
    finally:
        os.close(fd)
    words = memoryview(mm)[:256].cast("Q")
    try:
        layout = Layout.from_header(words)
        if words[H_GENERATION] != generation or layout.total != size:
            raise ValueError("it is not the segment the server announced")
    except ValueError as exc:
        words.release()
        mm.close()
        raise ShmemError(f"{path}: {exc}") from None
    words.release()
    return mm, layout
