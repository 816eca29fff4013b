"""Sources: the detector fields a Configure announces, named ``<detName>:<field>`` and typed from
their rank (0 scalar, 1 array1d, 2 image, more: array).

When two Names blocks declare the same detector field (several algorithms or segments), the names
grow a ``:<alg>`` and/or ``:s<segment>`` suffix, only as far as needed to tell them apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from daq.xtc import NAMES_ID_CHUNKINFO, NAMES_ID_SMDINFO, DataType, Names

_RANK_TYPES = {0: "scalar", 1: "array1d", 2: "image"}
_SKIPPED_INDEXES = {NAMES_ID_CHUNKINFO, NAMES_ID_SMDINFO}  # file bookkeeping, not data


@dataclass(frozen=True)
class SourceInfo:
    """One source: where its values are in the data and the port type it feeds."""

    name: str
    type: str
    det_name: str
    det_type: str
    field: str
    alg: str
    segment: int
    names_id: int

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type,
            "det_name": self.det_name,
            "det_type": self.det_type,
            "field": self.field,
            "alg": self.alg,
            "segment": self.segment,
        }


def source_type(rank: int) -> str:
    """The port type of a field of this rank."""
    return _RANK_TYPES.get(rank, "array")


def sources_from_names(all_names: Iterable[Names]) -> dict[str, SourceInfo]:
    """Every numeric detector field as a source, by name (text fields are left out)."""
    groups: dict[tuple[str, str], list[tuple[Names, str, int]]] = {}
    for names in all_names:
        if names.index in _SKIPPED_INDEXES:
            continue
        for f in names.fields:
            if f.type is DataType.CHARSTR:
                continue
            groups.setdefault((names.det_name, f.name), []).append((names, f.name, f.rank))
    out: dict[str, SourceInfo] = {}
    for (det, fld), members in groups.items():
        algs = {n.alg.name for n, _, _ in members}
        segments = {n.segment for n, _, _ in members}
        for names, _, rank in members:
            name = f"{det}:{fld}"
            if len(members) > 1:
                if len(algs) > 1:
                    name += f":{names.alg.name}"
                if len(segments) > 1 or len(algs) == 1:
                    name += f":s{names.segment}"
            out[name] = SourceInfo(
                name, source_type(rank), det, names.det_type, fld, names.alg.name,
                names.segment, names.names_id,
            )
    return out
