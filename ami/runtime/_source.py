"""Where a worker's dgrams come from: an XTC2 run on disk or a shared-memory server.

A :class:`Source` is opened in the process that reads it, yields ``daq.xtc.Dgram`` objects
(Configure first) through :meth:`Source.next`, which returns None when nothing arrived within
the timeout (so an idle worker still reports heartbeats) and raises StopIteration at the end.
"""

from __future__ import annotations

import importlib
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from daq.xtc import Dgram, TransitionId, XtcFileReader


class Source(Protocol):
    """The seam between workers and data: bounded, closable, never blocking forever."""

    live: bool  # True: events arrive in real time (idle heartbeats are reported by wall clock)

    def open(self) -> None: ...

    def next(self, timeout: float) -> Dgram | None:
        """The next dgram, None if none came within ``timeout`` s; StopIteration at the end."""

    def close(self) -> None: ...


def _run_files(spec: str) -> list[Path]:
    """The files of an ``xtc://`` spec: comma-separated files, or a folder's big-data chunks."""
    paths: list[Path] = []
    for part in spec.split(","):
        p = Path(part).expanduser()
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.name.endswith(".xtc2")
                           and not q.name.endswith(".smd.xtc2"))
            if not found:
                raise FileNotFoundError(f"no .xtc2 files in {p}")
            paths.extend(found)
        elif p.exists():  # a file, or a pipe a recorder writes into
            paths.append(p)
        else:
            raise FileNotFoundError(f"no such XTC2 file or folder: {p}")
    return paths


class XtcSource:
    """Recorded files, read in order; worker ``index`` of ``count`` takes events index,
    index + count, ... and every transition (each file's Configure included)."""

    live = False

    def __init__(self, files: list[Path], index: int = 0, count: int = 1) -> None:
        if not 0 <= index < count:
            raise ValueError(f"worker index {index} outside 0..{count - 1}")
        self.files = files
        self.index, self.count = index, count
        self._it: Iterator[Dgram] | None = None
        self._readers: list[XtcFileReader] = []

    def open(self) -> None:
        self._it = self._dgrams()

    def _dgrams(self) -> Iterator[Dgram]:
        n = 0
        for path in self.files:
            reader = XtcFileReader(path)
            self._readers.append(reader)
            with reader:
                for dgram in reader:
                    if dgram.service == TransitionId.L1Accept:
                        n += 1
                        if (n - 1) % self.count != self.index:
                            continue
                    yield dgram

    def next(self, timeout: float) -> Dgram | None:
        if self._it is None:
            self.open()
        assert self._it is not None
        return next(self._it)

    def close(self) -> None:
        if self._it is not None and hasattr(self._it, "close"):
            self._it.close()
        for reader in self._readers:
            reader.close()
        self._it = None


class ShmemSource:
    """A ``distributed`` client of a shared-memory server (``shmem.attach``): each event goes to
    one of the clients of the group. A reader thread feeds a small bounded queue."""

    live = True

    def __init__(self, tag: str, group: str = "ami", depth: int = 4) -> None:
        self.tag, self.group = tag, group
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._shmem: Any = None
        self._stop = threading.Event()
        self._end = object()
        self.error: str | None = None

    def open(self) -> None:
        try:
            shmem = importlib.import_module("shmem")
        except ImportError as exc:
            raise RuntimeError(f"shmem:// sources need the shmem package ({exc})") from None
        if getattr(shmem, "attach", None) is None:
            raise RuntimeError("shmem:// sources need shmem.attach(), which this shmem package "
                               "does not have")
        self._shmem = shmem
        self._thread = threading.Thread(target=self._read, name="shmem-reader", daemon=True)
        self._thread.start()

    def _attach(self) -> Any:
        """Attach, waiting for the server to exist (it may start after the workers, or
        restart): retries every half second until stopped."""
        errors = (self._shmem.ServerNotFoundError, self._shmem.ServerGoneError)
        while not self._stop.is_set():
            try:
                return self._shmem.attach(self.tag, group=self.group, mode="distributed")
            except errors:
                self._stop.wait(0.5)
        return None

    def _read(self) -> None:
        gone = self._shmem.ServerGoneError
        try:
            while not self._stop.is_set():
                client = self._client = self._attach()
                if client is None:
                    return
                try:
                    self._pump(client)
                except gone:
                    pass  # the server went away: attach again to the next one
                finally:
                    self._client = None
                    client.close()
        except Exception as exc:  # e.g. refused: the source ends with the reason
            self.error = str(exc)
        finally:
            self._put_end()

    def _pump(self, client: Any) -> None:
        while not self._stop.is_set():
            dgram = client.next(timeout=0.2)
            if dgram is None:
                continue
            # the client releases this buffer when it reads the next one: copy it out
            item = Dgram(bytes(dgram.memoryview()), source=f"shmem://{self.tag}")
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def _put_end(self) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(self._end, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self, timeout: float) -> Dgram | None:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is self._end:
            raise StopIteration
        return item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)  # the reader polls every 0.2 s and closes the client


def open_source(url: str, index: int = 0, count: int = 1) -> Source:
    """A source from its URL: ``xtc://FILES_OR_DIR`` or ``shmem://TAG`` (not opened yet)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise ValueError(f"source {url!r}: expected xtc://FILES_OR_DIR or shmem://TAG")
    if scheme == "xtc":
        return XtcSource(_run_files(rest), index, count)
    if scheme == "shmem":
        return ShmemSource(rest)
    raise ValueError(f"source {url!r}: unknown kind '{scheme}' (xtc or shmem)")
