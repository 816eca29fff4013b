"""One detector's frames of a recorded run, found in place in memory-mapped files (no copy).

Reading an event copies its whole dgram out of the page cache (``pread``), which for a large
detector costs as much as the dark statistics themselves. :class:`MappedFrames` maps every
file of the run once and decodes each event's dgram where it lies, so a frame is an offset into
the mapped file; frames are handed out in batches per file, ready for the dark-sum kernel
(:meth:`calib.DarkAccumulator.add_frames`). Dgrams have any size, so a frame may start at an
odd byte: such frames come as an unaligned view (numba reads them as fast). A frame that is not
contiguous is copied into a side buffer instead (never seen in files the DAQ writes).

Decoding a dgram costs ~20 us in Python, a fifth of what summing a 1 MB frame costs. Events of
one stream are nearly always laid out alike, so each stream keeps the layout of the last event
decoded (:class:`_Layout`): the xtc headers read on the way to the detector's ShapesData (the
siblings before it and its ancestors), its Shapes and Data headers and the shapes themselves.
An event of the same size whose bytes match at all those places has its frame at the same
place; anything else is decoded in full.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from daq.xtc import DGRAM_HEADER_SIZE, Decoder, Dgram, NamesLookup

from ._errors import CalibError
from ._run import RunIndex


@dataclass
class FrameBatch:
    """Frames of events ``indices`` at element ``offsets`` into the 1-D array ``data``."""

    data: np.ndarray
    offsets: list[int] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)


_XTC = struct.Struct("<IHHI")  # src, damage, contains (TypeId in the low 12 bits), extent
_PARENT, _SHAPESDATA, _SHAPES = 0, 1, 2


@dataclass(frozen=True)
class _Layout:
    """Where the frame lies in events laid out like the one this was taken from."""

    size: int  # dgram size
    checks: tuple[tuple[int, bytes], ...]  # (offset in the dgram, bytes expected there)
    frame: int  # byte offset of the frame in the dgram
    nbytes: int  # frame size

    def matches(self, mm: mmap.mmap, start: int, size: int) -> bool:
        if size != self.size:
            return False
        for o, b in self.checks:  # noqa: SIM110 - a plain loop: ~1 us less per event than all()
            if mm[start + o:start + o + len(b)] != b:
                return False
        return True


def _layout(mm: mmap.mmap, start: int, size: int, target: int, frame: int,
            nbytes: int) -> _Layout | None:
    """The layout of the dgram at ``start`` whose ShapesData xtc is at ``target`` (file
    offsets), or None if the headers do not lead there as expected."""
    checks: list[tuple[int, bytes]] = []
    off, end = start + DGRAM_HEADER_SIZE, start + size  # children of the root xtc
    while off + 12 <= end:
        _src, _dmg, contains, extent = _XTC.unpack_from(mm, off)
        if extent < 12 or off + extent > end:
            return None
        checks.append((off - start, mm[off:off + 12]))
        if off == target:
            break
        if contains & 0xFFF == _PARENT and off < target < off + extent:
            off, end = off + 12, off + extent  # descend
        else:
            off += extent
    else:
        return None
    if contains & 0xFFF != _SHAPESDATA:
        return None
    first = off + 12  # its two children, Shapes and Data in either order
    _, _, a_cont, a_ext = _XTC.unpack_from(mm, first)
    second = first + a_ext
    if a_ext < 12 or second + 12 > off + extent:
        return None
    b_ext = _XTC.unpack_from(mm, second)[3]
    shapes, s_ext = (first, a_ext) if a_cont & 0xFFF == _SHAPES else (second, b_ext)
    checks += [(first - start, mm[first:first + 12]), (second - start, mm[second:second + 12]),
               (shapes + 12 - start, mm[shapes + 12:shapes + s_ext])]  # and the shapes
    return _Layout(size, tuple(checks), frame - start, nbytes)


class MappedFrames:
    """Frames of ``det_name:field`` in a run, located in memory-mapped files; a context manager.

    ``batches(events, size)`` yields :class:`FrameBatch` es of up to ``size`` frames, one file
    each (events without the field are skipped, as are their numbers). Arrays handed out are
    views of the mappings: valid until :meth:`close`.
    """

    def __init__(self, index: RunIndex, det_name: str, field_name: str = "raw") -> None:
        self.index = index
        self.det_name = det_name
        self.field = field_name
        self._decoders = {s: Decoder(NamesLookup.from_configure(dg))
                          for s, dg in index.configures.items()}
        self._maps: dict[Path, tuple[mmap.mmap, np.ndarray]] = {}
        self._layouts: dict[int, _Layout] = {}  # per stream
        self.shape: tuple[int, ...] | None = None
        self.dtype: np.dtype | None = None
        self.decoded = 0  # events decoded in full (the rest matched a layout)

    def __enter__(self) -> MappedFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        mms = [mm for mm, _ in self._maps.values()]
        self._maps = {}  # drops our views of the mappings
        for mm in mms:
            with contextlib.suppress(BufferError):  # a caller still holds a view: the
                mm.close()  # mapping goes when the view does

    def _bytes(self, path: Path) -> np.ndarray:
        entry = self._maps.get(path)
        if entry is None:
            with open(path, "rb") as fh:
                mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            if hasattr(mm, "madvise"):
                mm.madvise(mmap.MADV_SEQUENTIAL)
            entry = self._maps[path] = (mm, np.frombuffer(mm, np.uint8))
        return entry[1]

    def _locate(self, i: int) -> tuple[Path, int, np.ndarray | None] | None:
        """(file, byte offset of the frame in it, None) of event ``i``; the frame as an array
        instead of None when it cannot be used in place; None without the field."""
        ref = self.index.events[i]
        entry = self._maps.get(ref.path)
        if entry is None:
            self._bytes(ref.path)
            entry = self._maps[ref.path]
        mm, buf = entry
        lay = self._layouts.get(ref.stream)
        if lay is not None and lay.matches(mm, ref.offset, ref.size):
            return ref.path, ref.offset + lay.frame, None
        self.decoded += 1
        dg = Dgram(buf, ref.offset, source=str(ref.path), file_offset=ref.offset)
        event = self._decoders[ref.stream].decode(dg)
        item = next((d for d in event.items if d.det_name == self.det_name
                     and self.field in d.values), None)
        if item is None:
            return None
        arr = np.asarray(item.values[self.field])
        if self.shape is None:
            self.shape, self.dtype = arr.shape, arr.dtype
        elif arr.shape != self.shape or arr.dtype != self.dtype:
            raise CalibError(f"event {i}: {self.det_name}:{self.field} is {arr.dtype} "
                             f"{arr.shape}, earlier events {self.dtype} {self.shape}")
        frame = arr.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
        if not arr.flags.c_contiguous:
            self._layouts.pop(ref.stream, None)
            return ref.path, -1, arr
        lay = _layout(mm, ref.offset, ref.size, item.offset, frame, arr.nbytes)
        if lay is None:
            self._layouts.pop(ref.stream, None)
        else:
            self._layouts[ref.stream] = lay
        return ref.path, frame, None

    def batches(self, events: Iterable[int], size: int) -> Generator[FrameBatch, None, None]:
        """Batches of up to ``size`` frames from one file each, over ``events``."""
        pending: dict[tuple[Path, int], FrameBatch] = {}
        copies: FrameBatch | None = None
        for i in events:
            found = self._locate(i)
            if found is None:
                continue
            path, start, arr = found
            if arr is None:
                assert self.dtype is not None
                itemsize = self.dtype.itemsize
                key = (path, start % itemsize)  # dgrams of odd sizes: frames at odd offsets
                batch = pending.get(key)
                if batch is None:
                    base = self._maps[path][1][key[1]:]
                    batch = pending[key] = FrameBatch(  # unaligned views if need be
                        base[:base.size - base.size % itemsize].view(self.dtype))
                batch.offsets.append(start // itemsize)
                batch.indices.append(i)
            else:  # copy into a side buffer of whole frames
                if copies is None:
                    copies = FrameBatch(np.empty(size * arr.size, arr.dtype))
                k = len(copies.offsets)
                copies.data[k * arr.size:(k + 1) * arr.size] = arr.reshape(-1)
                copies.offsets.append(k * arr.size)
                copies.indices.append(i)
                batch = copies
            if len(batch.offsets) >= size:
                yield batch
                if batch is copies:
                    copies = None
                else:
                    del pending[key]
        yield from pending.values()
        if copies is not None:
            yield copies
