"""The recorder sink: turns an event builder's output into run files.

The Configure is kept and written at the start of each run's first chunk; BeginRun opens the
stream files of that run (its run number comes from the runinfo in the BeginRun), EndRun closes
and renames them. Errors (unwritable root, full disk) are raised as ``RecordingError`` naming the
path, and the files of a run that failed keep their ``.inprogress`` names.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from daq.xtc import Decoder, Dgram, TransitionId
from daq.xtc._stream import StreamWriter

log = logging.getLogger("daq.record")


class RecordingError(RuntimeError):
    """Recording failed; the message names the file or folder."""


class Sink(Protocol):
    """What an event builder hands built dgrams to (recorder, shared-memory ring). A sink may
    also offer ``put_rows(rows)`` for a batch of L1Accepts (an (N, size) uint8 array of
    dgrams); without it the builder puts the rows one by one."""

    def put(self, dgram: Dgram) -> None: ...

    def close(self, complete: bool = False) -> None: ...


class Recorder:
    """Writes one builder's stream of every run to ``<root>/<expt>/xtc/...``."""

    def __init__(self, root: str | Path, expt: str, stream: int, *,
                 chunk_bytes: int = 1 << 31, inline_limit: int = 1024,
                 direct: bool = False) -> None:
        self.root = Path(root)
        self.expt = expt
        self.stream = stream
        self.chunk_bytes = chunk_bytes
        self.inline_limit = inline_limit
        self.direct = direct
        self.writer: StreamWriter | None = None
        self.run: int | None = None
        self.failed: str | None = None
        self._configure: bytes | None = None
        self._decoder = Decoder()
        self.bytes = 0
        self._disk_wait = 0.0  # of closed runs
        self.files: list[Path] = []

    def put(self, dgram: Dgram) -> None:
        service = dgram.service
        if service == TransitionId.Configure:
            self._configure = bytes(dgram.memoryview())
            self._decoder = Decoder()
            self._decoder.decode(dgram)
            return
        if service == TransitionId.BeginRun:
            self._begin_run(dgram)
        if self.writer is None:
            return
        try:
            self.writer.write(dgram)
        except OSError as exc:
            self._fail(f"cannot write run {self.run}: {exc}")
        self.bytes += dgram.size
        if service == TransitionId.EndRun:
            self._disk_wait += self.writer.disk_wait
            try:
                self.files = self.writer.close(complete=True)
            except OSError as exc:
                self._fail(f"cannot close run {self.run}: {exc}")
            log.info("run %s stream %d closed: %s", self.run, self.stream,
                     ", ".join(p.name for p in self.files))
            self.writer = None

    @property
    def disk_wait(self) -> float:
        """Seconds this recorder waited for the disk (all direct-I/O buffers busy), all runs."""
        return self._disk_wait + (self.writer.disk_wait if self.writer is not None else 0.0)

    def put_rows(self, rows: np.ndarray) -> None:
        """A built batch of L1Accepts: appended with one write to each file."""
        if self.writer is None:
            return
        try:
            self.writer.write_rows(rows)
        except OSError as exc:
            self._fail(f"cannot write run {self.run}: {exc}")
        self.bytes += rows.nbytes

    def _begin_run(self, dgram: Dgram) -> None:
        if self.writer is not None:  # a BeginRun without EndRun: close what was open
            self.writer.close(complete=False)
            self.writer = None
        event = self._decoder.decode(dgram)
        run = event.get("runinfo", "runnum")
        if run is None:
            self._fail("BeginRun carries no runinfo: cannot name the run files")
        self.run = int(run)
        self.failed = None
        writer = StreamWriter(self.root, self.expt, self.run, self.stream,
                              chunk_bytes=self.chunk_bytes, inline_limit=self.inline_limit,
                              direct=self.direct)
        try:
            writer.open()
            if self._configure is not None:
                writer.write(Dgram(self._configure))
        except OSError as exc:
            writer.close(complete=False)
            self._fail(str(exc))
        self.writer = writer

    def _fail(self, message: str) -> None:
        self.failed = message
        if self.writer is not None:
            with contextlib.suppress(OSError):
                self.writer.close(complete=False)
            self.writer = None
        raise RecordingError(message)

    def flush(self) -> None:
        """Periodic: queue what was written so far (a direct-I/O file finishes it behind)."""
        if self.writer is not None:
            try:
                self.writer.flush(wait=False)
            except OSError as exc:
                self._fail(f"cannot write run {self.run}: {exc}")

    def close(self, complete: bool = False) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                writer.close(complete=complete)
            except OSError as exc:
                raise RecordingError(f"cannot close run {self.run}: {exc}") from None
