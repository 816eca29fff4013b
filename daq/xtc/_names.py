"""Self-description: a detector's Names block (NameInfo + one Name per field), and its NamesId."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any

from ._errors import XtcError
from ._types import (
    MAX_RANK,
    NAME_SIZE,
    NAME_STR_SIZE,
    NAMEINFO_SIZE,
    XTC_HEADER_SIZE,
    DataType,
    TypeId,
    names_id,
)

_DET_NAME_RE = re.compile(r"^[0-9A-Za-z_]+$")
_FIELD_NAME_RE = re.compile(r"^[0-9A-Za-z_.:]+$")
_XTC_HEADER = struct.Struct("<IHHI")
_U32 = struct.Struct("<I")


def _version(major: int, minor: int, micro: int) -> int:
    for part in (major, minor, micro):
        if not 0 <= part <= 0xFF:
            raise ValueError(f"alg version part {part} does not fit in 8 bits")
    return (major << 16) | (minor << 8) | micro


@dataclass(frozen=True)
class Alg:
    """An algorithm name and its version (packed ``major << 16 | minor << 8 | micro``)."""

    name: str
    version: int = 0

    @classmethod
    def of(cls, name: str, major: int = 0, minor: int = 0, micro: int = 0) -> Alg:
        return cls(name, _version(major, minor, micro))

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        v = self.version
        return (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF


@dataclass(frozen=True)
class Field:
    """One field of a detector: name, element type and rank (0 = scalar)."""

    name: str
    type: DataType
    rank: int = 0
    alg: Alg = field(default_factory=lambda: Alg(""))

    def __post_init__(self) -> None:
        if not isinstance(self.type, DataType):
            object.__setattr__(self, "type", DataType(self.type))
        if not 0 <= self.rank <= MAX_RANK:
            raise ValueError(f"field {self.name!r}: rank {self.rank} outside 0..{MAX_RANK}")
        if self.type is DataType.CHARSTR and self.rank != 1:
            raise ValueError(f"field {self.name!r}: CHARSTR is always rank 1, got {self.rank}")
        if self.type in (DataType.ENUMVAL, DataType.ENUMDICT):
            if self.rank != 0:
                raise ValueError(f"field {self.name!r}: enum fields are scalars")
            if ":" not in self.name:
                raise ValueError(
                    f"field {self.name!r}: enum fields are named 'field:EnumName' / "
                    "'Label:EnumName'"
                )

    @property
    def is_array(self) -> bool:
        return self.rank > 0


@dataclass(frozen=True)
class Names:
    """A detector segment x algorithm description, identified by its NamesId.

    ``names_id`` is the packed ``(node_id << 8) | index`` value stored as the src of the Names xtc
    and of every ShapesData that uses it.
    """

    det_name: str
    det_type: str
    det_id: str
    alg: Alg
    segment: int
    names_id: int
    fields: tuple[Field, ...]

    @classmethod
    def create(
        cls,
        det_name: str,
        det_type: str,
        fields: list[Field] | tuple[Field, ...],
        *,
        node_id: int,
        index: int,
        det_id: str = "",
        alg: Alg | None = None,
        segment: int = 0,
        check_names: bool = True,
    ) -> Names:
        """Declare a detector: validates names and packs the NamesId from node id and index."""
        if check_names:
            if not _DET_NAME_RE.match(det_name):
                raise ValueError(f"detName {det_name!r} must match [0-9A-Za-z_]+")
            for f in fields:
                if not _FIELD_NAME_RE.match(f.name):
                    raise ValueError(f"field name {f.name!r} must match [0-9A-Za-z_.:]+")
        seen: set[str] = set()
        for f in fields:
            if f.name in seen:
                raise ValueError(f"detector {det_name!r}: field {f.name!r} declared twice")
            seen.add(f.name)
        for label, text in (("detName", det_name), ("detType", det_type), ("detId", det_id)):
            if len(text.encode()) >= NAME_STR_SIZE:
                raise ValueError(f"{label} {text!r} is longer than {NAME_STR_SIZE - 1} bytes")
        return cls(
            det_name=det_name,
            det_type=det_type,
            det_id=det_id,
            alg=alg or Alg("raw"),
            segment=segment,
            names_id=names_id(node_id, index),
            fields=tuple(fields),
        )

    @property
    def node_id(self) -> int:
        return (self.names_id >> 8) & 0xFFF

    @property
    def index(self) -> int:
        return self.names_id & 0xFF

    @property
    def num_arrays(self) -> int:
        return sum(1 for f in self.fields if f.rank > 0)

    @property
    def extent(self) -> int:
        return XTC_HEADER_SIZE + NAMEINFO_SIZE + NAME_SIZE * len(self.fields)

    def encode(self) -> bytes:
        """The whole Names xtc (header + NameInfo + Names), as the reference writer lays it out."""
        out = bytearray(self.extent)
        _XTC_HEADER.pack_into(out, 0, self.names_id, 0, int(TypeId.Names), self.extent)
        p = XTC_HEADER_SIZE
        _U32.pack_into(out, p, self.num_arrays)
        _put_str(out, p + 4, self.det_type)
        _put_str(out, p + 4 + NAME_STR_SIZE, self.det_name)
        _put_str(out, p + 4 + 2 * NAME_STR_SIZE, self.det_id)
        _put_str(out, p + 4 + 3 * NAME_STR_SIZE, self.alg.name)
        _U32.pack_into(out, p + 4 + 4 * NAME_STR_SIZE, self.alg.version)
        _U32.pack_into(out, p + 8 + 4 * NAME_STR_SIZE, self.segment)
        p += NAMEINFO_SIZE
        for f in self.fields:
            _put_str(out, p, f.alg.name)
            _U32.pack_into(out, p + NAME_STR_SIZE, f.alg.version)
            _put_str(out, p + NAME_STR_SIZE + 4, f.name)
            _U32.pack_into(out, p + 2 * NAME_STR_SIZE + 4, int(f.type))
            _U32.pack_into(out, p + 2 * NAME_STR_SIZE + 8, f.rank)
            p += NAME_SIZE
        return bytes(out)


def _put_str(buf: bytearray, offset: int, text: str) -> None:
    raw = text.encode()
    if len(raw) >= NAME_STR_SIZE:
        raise ValueError(f"string {text!r} is longer than {NAME_STR_SIZE - 1} bytes")
    buf[offset : offset + len(raw)] = raw


def _get_str(buf: Any, offset: int) -> str:
    raw = bytes(buf[offset : offset + NAME_STR_SIZE])
    end = raw.find(b"\0")
    if end >= 0:
        raw = raw[:end]
    return raw.decode("utf-8", errors="replace")


def decode_names(buf: Any, offset: int, extent: int, src: int,
                 source: str = "<buffer>") -> Names:
    """Decode a Names xtc whose header starts at ``offset``; raises XtcError if malformed."""
    payload = extent - XTC_HEADER_SIZE
    if payload < NAMEINFO_SIZE or (payload - NAMEINFO_SIZE) % NAME_SIZE:
        raise XtcError(
            f"Names payload of {payload} bytes is not NameInfo ({NAMEINFO_SIZE}) + "
            f"a whole number of Name ({NAME_SIZE})",
            source=source, offset=offset, rule="names-size",
        )
    p = offset + XTC_HEADER_SIZE
    det_type = _get_str(buf, p + 4)
    det_name = _get_str(buf, p + 4 + NAME_STR_SIZE)
    det_id = _get_str(buf, p + 4 + 2 * NAME_STR_SIZE)
    alg = Alg(_get_str(buf, p + 4 + 3 * NAME_STR_SIZE),
              _U32.unpack_from(buf, p + 4 + 4 * NAME_STR_SIZE)[0])
    segment = _U32.unpack_from(buf, p + 8 + 4 * NAME_STR_SIZE)[0]
    fields = []
    q = p + NAMEINFO_SIZE
    for _ in range((payload - NAMEINFO_SIZE) // NAME_SIZE):
        f_alg = Alg(_get_str(buf, q), _U32.unpack_from(buf, q + NAME_STR_SIZE)[0])
        name = _get_str(buf, q + NAME_STR_SIZE + 4)
        type_code = _U32.unpack_from(buf, q + 2 * NAME_STR_SIZE + 4)[0]
        rank = _U32.unpack_from(buf, q + 2 * NAME_STR_SIZE + 8)[0]
        if type_code > max(DataType):
            raise XtcError(f"field {name!r} has unknown type {type_code}",
                           source=source, offset=q, rule="field-type")
        if rank > MAX_RANK:
            raise XtcError(f"field {name!r} has rank {rank} > {MAX_RANK}",
                           source=source, offset=q, rule="field-rank")
        fields.append(_raw_field(name, DataType(type_code), rank, f_alg))
        q += NAME_SIZE
    return Names(det_name, det_type, det_id, alg, segment, src & 0x0FFFFFFF, tuple(fields))


def _raw_field(name: str, dtype: DataType, rank: int, alg: Alg) -> Field:
    """A Field as found in a file: no naming-convention checks (readers accept what exists)."""
    f = object.__new__(Field)
    object.__setattr__(f, "name", name)
    object.__setattr__(f, "type", dtype)
    object.__setattr__(f, "rank", rank)
    object.__setattr__(f, "alg", alg)
    return f
