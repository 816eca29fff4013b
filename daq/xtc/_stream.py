"""Writing one recorded stream: big-data chunks plus the small-data file, renamed when complete."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._decode import walk
from ._dgram import Dgram
from ._direct import DirectOut
from ._files import INPROGRESS, chunk_name, smd_dir, smd_name, xtc_dir
from ._names import Alg, Field, Names, decode_names
from ._smd import SmdGenerator, add_to_root, convert_rows
from ._types import NAMES_ID_CHUNKINFO, NAMES_ID_RUNINFO, DataType, TransitionId, TypeId
from ._writer import EncodedDgram, NamesBlock, ShapesDataBlock, writev_all

DEFAULT_CHUNK_BYTES = 1 << 31  #: a new chunk starts at the first Enable past this size
RECORDER_NODE_BASE = 0xF00  #: node ids 0xF00 + stream hold the recorder's own Names


def chunkinfo_names(node_id: int) -> Names:
    return Names.create("chunkinfo", "chunkinfo",
                        [Field("chunkid", DataType.UINT32), Field("filename", DataType.CHARSTR, 1)],
                        node_id=node_id, index=NAMES_ID_CHUNKINFO, alg=Alg.of("chunkinfo", 0, 0, 1))


def runinfo_names(node_id: int) -> Names:
    return Names.create("runinfo", "runinfo",
                        [Field("expt", DataType.CHARSTR, 1), Field("runnum", DataType.UINT32)],
                        node_id=node_id, index=NAMES_ID_RUNINFO, alg=Alg.of("runinfo", 0, 0, 1))


class _Out:
    """One output file with a write-behind buffer for small dgrams; tracks its logical size."""

    FLUSH_AT = 1 << 20

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1
        self.size = 0
        self._pending = bytearray()

    def open(self) -> None:
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot create {self.path}: {exc.strerror}") from None

    def write(self, parts: list, size: int) -> None:
        if size >= 1 << 16:
            self.flush()
            self._write_now(parts)
        else:
            for p in parts:
                self._pending += p
            if len(self._pending) >= self.FLUSH_AT:
                self.flush()
        self.size += size

    def _write_now(self, parts: list) -> None:
        try:
            writev_all(self.fd, parts)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write {self.path}: {exc.strerror}") from None

    def flush(self) -> None:
        if self._pending:
            self._write_now([self._pending])
            self._pending = bytearray()

    def close(self) -> None:
        if self.fd >= 0:
            try:
                self.flush()
            finally:
                os.close(self.fd)
                self.fd = -1


class StreamWriter:
    """Records one stream (one event builder's output) of a run, per the XTC2 file rules.

    Files are written as ``<name>.inprogress``: chunk 000 begins with the Configure; when a chunk
    has grown past ``chunk_bytes`` the next Enable carries ``chunkinfo`` (id and name of the next
    chunk), is written to the old chunk, and the next chunk begins with offsets from 0. The small
    data stay in one file. ``close(complete=True)`` renames everything to its final name; a run
    that did not end cleanly keeps its ``.inprogress`` names so it never looks complete.
    """

    def __init__(self, root: str | os.PathLike[str], expt: str, run: int, stream: int, *,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES, inline_limit: int = 1024,
                 direct: bool = False) -> None:
        self.root = Path(root)
        self.expt = expt
        self.run = run
        self.stream = stream
        self.chunk_bytes = chunk_bytes
        self.chunk = 0
        self.dgrams = 0
        self.events = 0
        self.closed_chunks: list[Path] = []
        self.direct = direct  #: big files through O_DIRECT staging buffers (see ``_direct``)
        self._disk_wait = 0.0  # of closed chunks
        self._smd_gen = SmdGenerator(inline_limit)
        self._chunkinfo = chunkinfo_names(RECORDER_NODE_BASE + stream)
        self._big: _Out | DirectOut | None = None
        self._smd: _Out | None = None

    @property
    def big_path(self) -> Path:
        return xtc_dir(self.root, self.expt) / chunk_name(self.expt, self.run, self.stream,
                                                          self.chunk)

    @property
    def smd_path(self) -> Path:
        return smd_dir(self.root, self.expt) / smd_name(self.expt, self.run, self.stream)

    @property
    def disk_wait(self) -> float:
        """Seconds spent waiting for the disk (direct I/O staging buffers all busy)."""
        return self._disk_wait + (self._big.waited if isinstance(self._big, DirectOut) else 0.0)

    @property
    def bytes_written(self) -> int:
        return sum(p.stat().st_size for p in self.closed_chunks if p.exists()) + (
            self._big.size if self._big else 0)

    def open(self) -> None:
        for d in (xtc_dir(self.root, self.expt), smd_dir(self.root, self.expt)):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot create data folder {d}: {exc.strerror}") \
                    from None
        for final in (self.big_path, self.smd_path):
            if final.exists():
                raise FileExistsError(f"{final} already exists: run {self.run} of "
                                      f"{self.expt} was recorded before")
        self._big = self._new_big()
        self._smd = _Out(Path(str(self.smd_path) + INPROGRESS))
        self._smd.open()

    def __enter__(self) -> StreamWriter:
        self.open()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(complete=exc_type is None)

    def write(self, dg: Dgram) -> int:
        """Append a dgram to the current chunk and its entry to the small data; returns its
        offset in the chunk."""
        if self._big is None or self._smd is None:
            raise RuntimeError("StreamWriter.write before open()")
        service = dg.service
        encoded: EncodedDgram | None = None
        switch = False
        if service == TransitionId.Configure and not _has_names(dg, "chunkinfo"):
            encoded = add_to_root(dg, [NamesBlock(self._chunkinfo)])
        elif service == TransitionId.Enable and self._big.size >= self.chunk_bytes:
            switch = True
            nxt = chunk_name(self.expt, self.run, self.stream, self.chunk + 1)
            encoded = add_to_root(dg, [ShapesDataBlock(
                self._chunkinfo, {"chunkid": self.chunk + 1, "filename": nxt})])
        if encoded is not None:
            dg = Dgram(encoded.tobytes(), source=str(self._big.path))
        offset = self._big.size
        self._big.write([dg.memoryview()], dg.size)
        smd = self._smd_gen.convert(dg, offset)
        self._smd.write(smd.parts, smd.size)
        self.dgrams += 1
        if service == TransitionId.L1Accept:
            self.events += 1
        else:
            self.flush()
        if switch:
            self._next_chunk()
        return offset

    def write_rows(self, rows: np.ndarray) -> int:
        """Append N L1Accepts given as the rows of an (N, size) uint8 array (a built batch):
        one write for the big file and one for the small data. Returns the first offset."""
        if self._big is None or self._smd is None:
            raise RuntimeError("StreamWriter.write_rows before open()")
        offset = self._big.size
        smd = convert_rows(self._smd_gen, rows, offset)
        if smd is None:  # layouts differ: one at a time
            for row in rows:
                self.write(Dgram(memoryview(row)))
            return offset
        n = len(rows)
        self._big.write([np.ascontiguousarray(rows).data.cast("B")], rows.nbytes)
        self._smd.write([smd.data.cast("B")], smd.nbytes)
        self.dgrams += n
        self.events += n
        return offset

    def flush(self, wait: bool = True) -> None:
        """Push buffered bytes to the files (so live readers see them); ``wait=False`` lets a
        direct-I/O big file finish in the background."""
        if isinstance(self._big, DirectOut):
            self._big.flush(wait)
        elif self._big:
            self._big.flush()
        if self._smd:
            self._smd.flush()

    def _next_chunk(self) -> None:
        assert self._big is not None
        self._big.close()
        if isinstance(self._big, DirectOut):
            self._disk_wait += self._big.waited
        final = Path(str(self._big.path)[: -len(INPROGRESS)])
        os.rename(self._big.path, final)
        self.closed_chunks.append(final)
        self.chunk += 1
        self._big = self._new_big()

    def _new_big(self) -> _Out | DirectOut:
        path = Path(str(self.big_path) + INPROGRESS)
        out = DirectOut(path) if self.direct else _Out(path)
        out.open()
        return out

    def close(self, complete: bool = True) -> list[Path]:
        """Close the files; with ``complete`` rename them to their final names. Returns paths."""
        out: list[Path] = list(self.closed_chunks)
        for f in (self._big, self._smd):
            if f is None:
                continue
            f.close()
            path = f.path
            if complete:
                final = Path(str(path)[: -len(INPROGRESS)])
                os.rename(path, final)
                path = final
            out.append(path)
        self._big = self._smd = None
        return out


def _has_names(dg: Dgram, det_name: str) -> bool:
    for hdr, _ in walk(dg):
        if hdr.type_id == TypeId.Names:
            names = decode_names(dg.buf, hdr.offset, hdr.extent, hdr.src, dg.source)
            if names.det_name == det_name:
                return True
    return False
