"""Strict validation of XTC2 files: what the reference reader checks, and much more.

Rules (each problem names file, byte offset and rule): readable structure (extents, children fill
their parent exactly, bounded nesting); the root is a Parent whose damage includes its contents'
damage; Names only in the Configure, each NamesId defined once; every ShapesData's NamesId defined
in the Configure and its Data exactly the size Names + Shapes give; timestamps never decrease;
transitions nest and pair (Configure > BeginRun > BeginStep > Enable > L1Accept); small-data
offsets point at big dgrams of the same time and size; no truncated tail.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._decode import Decoder, layout, shapes_and_data, walk
from ._dgram import Dgram
from ._errors import XtcError
from ._file import XtcFileReader
from ._files import INPROGRESS, big_path_for_smd, parse_name, smd_path_for_big
from ._names import decode_names
from ._smd import SmdIndex
from ._types import (
    BEGIN_END_PAIRS,
    SHAPE_SIZE,
    XTC_HEADER_SIZE,
    Level,
    TransitionId,
    TypeId,
)

_LEVEL_OF_BEGIN = {b: i + 1 for i, (b, _) in enumerate(BEGIN_END_PAIRS)}
_LEVEL_OF_END = {e: i + 1 for i, (_, e) in enumerate(BEGIN_END_PAIRS)}
_HEADER = struct.Struct("<IIIIHHI")
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Problem:
    source: str
    offset: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.source} at byte {self.offset}: {self.message} [{self.rule}]"


@dataclass
class Report:
    source: str
    dgrams: int = 0
    events: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, offset: int, rule: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(self.source, offset, rule, message))

    def add_error(self, err: XtcError) -> None:
        self.add(err.offset, err.rule, err.message)


def validate_file(path: str | os.PathLike[str], *, config: str | os.PathLike[str] | None = None,
                  check_smd: bool = True,
                  big: list[str | os.PathLike[str]] | None = None) -> Report:
    """Validate one big- or small-data file. ``config`` names the file whose Configure
    describes this one (chunks after the first). Small-data files are checked against their
    big files (``big``: the chunk files in order; by default found beside them)."""
    path = Path(path)
    report = Report(str(path))
    if not path.is_file():
        report.add(0, "missing", "no such file")
        return report
    decoder = Decoder()
    level = 0
    if config is not None:
        try:
            with XtcFileReader(config) as cfg:
                first = next(iter(cfg), None)
        except XtcError as err:
            report.add_error(err)
            return report
        if first is None or first.service != TransitionId.Configure:
            report.add(0, "configure-first", f"config file {config} does not start with a "
                       "Configure")
            return report
        decoder.lookup.add_configure(first)
        level = _LEVEL_OF_BEGIN[TransitionId.Enable]  # later chunks begin inside an Enable
    last_ts = -1
    is_smd = False
    reader = XtcFileReader(path, strict=True)
    try:
        for dg in reader:
            report.dgrams += 1
            service = dg.service
            where = dg.file_offset
            if report.dgrams == 1 and config is None and service != TransitionId.Configure:
                report.add(where, "configure-first", "the first dgram is "
                           f"{TransitionId.name_of(service)}, not a Configure")
            if service == TransitionId.L1Accept:
                report.events += 1
            if service > TransitionId.L1Accept or service == TransitionId.Unused_11:
                report.add(where, "transition-id", f"unknown transition id {service}")
            if (dg.env >> 28) & 3 == 3:
                report.add(where, "dgram-type", "dgram type 3 is undefined")
            if dg.timestamp < last_ts:
                report.add(where, "time-order", f"timestamp {dg.seconds:#x}.{dg.nanoseconds:#x} "
                           "is earlier than the previous dgram's")
            last_ts = max(last_ts, dg.timestamp)
            level = _check_transition(report, dg, level)
            try:
                is_smd |= _check_contents(report, dg, decoder)
            except XtcError as err:
                report.add_error(err)
    except XtcError as err:
        report.add_error(err)
    finally:
        reader.close()
    if level > 0:
        open_name = BEGIN_END_PAIRS[level - 1][0].name
        report.notes.append(f"file ends inside {open_name} (no matching end transition)")
    if check_smd and report.ok:
        info = parse_name(path)
        if is_smd:
            _check_smd(report, path, [Path(b) for b in big] if big else None)
        elif info is not None and info.chunk == 0 and not info.smd:
            smd = _existing(smd_path_for_big(path))
            if smd is not None:
                sub = Report(str(smd))
                _check_smd(sub, smd, None)
                report.problems.extend(sub.problems)
                report.notes.extend(sub.notes)
    return report


def _check_transition(report: Report, dg: Dgram, level: int) -> int:
    service = dg.service
    where = dg.file_offset
    name = TransitionId.name_of(service)
    if service in _LEVEL_OF_BEGIN:
        want = _LEVEL_OF_BEGIN[TransitionId(service)]
        if level != want - 1:
            report.add(where, "transition-nesting",
                       f"{name} at nesting level {level}; it must follow "
                       f"{BEGIN_END_PAIRS[want - 2][0].name if want > 1 else 'nothing'}")
        return want
    if service in _LEVEL_OF_END:
        want = _LEVEL_OF_END[TransitionId(service)]
        if level != want:
            report.add(where, "transition-nesting", f"{name} does not close an open "
                       f"{BEGIN_END_PAIRS[want - 1][0].name}")
        return want - 1
    if service == TransitionId.L1Accept and level != len(BEGIN_END_PAIRS):
        report.add(where, "transition-nesting", "L1Accept outside Enable ... Disable")
    if service == TransitionId.SlowUpdate and level == 0:
        report.add(where, "transition-nesting", "SlowUpdate before Configure")
    return level


def _check_contents(report: Report, dg: Dgram, decoder: Decoder) -> bool:
    """Structure, Names and ShapesData rules of one dgram; returns True if it has smdinfo."""
    is_configure = dg.service == TransitionId.Configure
    smd = False
    damage_or = 0
    base = dg.file_offset - dg.offset
    for hdr, _seg in walk(dg):
        damage_or |= hdr.damage
        tid = hdr.type_id
        at = base + hdr.offset
        if tid == TypeId.Parent:
            if dg.root.level == Level.Event and hdr.level == Level.Event:
                report.add(at, "event-nesting", "Event-level Parent inside a built event")
            continue
        if tid == TypeId.Names:
            if not is_configure:
                report.add(at, "names-outside-configure",
                           f"Names block in a {TransitionId.name_of(dg.service)}")
            declared = decode_names(dg.buf, hdr.offset, hdr.extent, hdr.src, dg.source)
            if declared.names_id in decoder.lookup and is_configure:
                report.add(at, "duplicate-namesid",
                           f"namesid {declared.names_id:#x} defined twice")
            decoder.lookup[declared.names_id] = declared
            smd |= declared.det_name == "smdinfo"
            continue
        if tid != TypeId.ShapesData:
            report.add(at, "type-id", f"TypeId {tid} where a Parent, Names or ShapesData belongs")
            continue
        names = decoder.lookup.get(hdr.value)
        if names is None:
            report.add(at, "unknown-namesid",
                       f"namesid {hdr.value:#x} not defined in the Configure")
            continue
        shapes_hdr, data_hdr = shapes_and_data(dg, hdr)
        shapes = None
        n_shapes = 0
        if shapes_hdr is not None:
            nbytes = shapes_hdr.extent - XTC_HEADER_SIZE
            if nbytes % SHAPE_SIZE:
                report.add(base + shapes_hdr.offset, "shapes-size",
                           f"Shapes payload of {nbytes} bytes is not whole 20-byte shapes")
                continue
            n_shapes = nbytes // SHAPE_SIZE
            if n_shapes:
                shapes = np.frombuffer(dg.buf, np.dtype("<u4"), n_shapes * 5,
                                       shapes_hdr.payload).reshape(-1, 5)
        if n_shapes != names.num_arrays:
            report.add(at, "shapes-count", f"{names.det_name}: {n_shapes} shapes for "
                       f"{names.num_arrays} array fields")
            continue
        data_size = data_hdr.extent - XTC_HEADER_SIZE
        fields = layout(names, shapes, data_size, dg, hdr.offset)
        need = fields[-1].offset + fields[-1].nbytes if fields else 0
        if need != data_size:
            report.add(at, "data-size", f"{names.det_name} ({names.alg.name}): Data holds "
                       f"{data_size} bytes, Names + Shapes give {need}")
    if damage_or & ~dg.damage & 0xFFF:
        report.add(dg.file_offset, "damage-or", f"root damage {dg.damage:#x} lacks contents' "
                   f"damage {damage_or:#x}")
    return smd


def _existing(path: Path) -> Path | None:
    if path.exists():
        return path
    alt = Path(str(path) + INPROGRESS)
    return alt if alt.exists() else None


def _check_smd(report: Report, smd_path: Path, big: list[Path] | None) -> None:
    """Every smd L1Accept must point at a big dgram with the same time, service and size."""
    try:
        with XtcFileReader(smd_path) as r:
            index = SmdIndex.from_dgrams(r)
    except XtcError as err:
        report.add_error(err)
        return
    handles: dict[int, object] = {}
    try:
        for entry in index.entries:
            fh = handles.get(entry.chunk)
            if fh is None:
                chunk_path: Path | None
                if big is not None:
                    chunk_path = big[entry.chunk] if entry.chunk < len(big) else None
                else:
                    try:
                        chunk_path = _existing(big_path_for_smd(smd_path, entry.chunk))
                    except ValueError:
                        chunk_path = None
                if chunk_path is None:
                    report.notes.append(f"big-data chunk {entry.chunk} of {smd_path} not found: "
                                        "offsets not checked")
                    return
                fh = handles[entry.chunk] = open(chunk_path, "rb")  # noqa: SIM115
            fh.seek(entry.offset)  # type: ignore[attr-defined]
            head = fh.read(24)  # type: ignore[attr-defined]
            if len(head) < 24:
                report.add(entry.smd_offset, "smd-offset", f"offset {entry.offset} is past the "
                           f"end of big-data chunk {entry.chunk}")
                continue
            ns, sec, env, _src, _dmg, _cont, extent = _HEADER.unpack(head)
            if (sec << 32 | ns) != entry.timestamp or 12 + extent != entry.size or \
                    (env >> 24) & 0xF != entry.service:
                report.add(entry.smd_offset, "smd-offset",
                           f"entry for time {entry.timestamp >> 32:#x}."
                           f"{entry.timestamp & 0xFFFFFFFF:#x} points at byte {entry.offset} of "
                           f"big-data chunk {entry.chunk}, where the dgram has time "
                           f"{sec:#x}.{ns:#x} and size {12 + extent} (expected {entry.size})")
    finally:
        for fh in handles.values():
            fh.close()  # type: ignore[attr-defined]
