"""Text dumps in the reference reader's format (``xtcreader [-d]``), line for line."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._decode import Decoder, FieldLayout, field_value, layout, shapes_and_data, walk
from ._dgram import Dgram
from ._names import Names, decode_names
from ._types import NUMPY_DTYPE, DataType, TransitionId, TypeId

DEFAULT_WORDS = 3  #: array elements printed per field, as the reference reader's ``-w`` default


def header_line(number: int, dg: Dgram) -> str:
    return (f"event {number}, {TransitionId.name_of(dg.service):>11} transition: "
            f" time 0x{dg.seconds:08x}.0x{dg.nanoseconds:08x}, "
            f" env 0x{dg.env:08x}, payloadSize {dg.payload_size} damage 0x{dg.damage:x} "
            f"extent {dg.root.extent}")


def names_lines(names: Names) -> Iterator[str]:
    yield (f"*** DetName: {names.det_name}, Segment {names.segment}, DetType: {names.det_type}, "
           f"DetId: {names.det_id}, Alg: {names.alg.name}, Version: 0x{names.alg.version:06x}, "
           f"namesid: 0x{names.names_id:x}, Names:")
    for f in names.fields:
        yield f"Name: '{f.name}' Type: {int(f.type)} Rank: {f.rank}"


def _c_int(value: Any, signed_32: bool) -> str:
    v = int(value)
    if signed_32:  # the reference prints 32-bit and narrower integers with %d
        v = (v + (1 << 31)) % (1 << 32) - (1 << 31)
    return str(v)


def _fmt_float(value: Any) -> str:
    v = float(value)
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    if math.isinf(v):
        return "-inf" if v < 0 else "inf"
    return f"{v:.6f}"


def _fmt(f_type: DataType, value: Any) -> str:
    if f_type in (DataType.FLOAT, DataType.DOUBLE):
        return _fmt_float(value)
    return _c_int(value, f_type not in (DataType.UINT64, DataType.INT64))


def value_lines(index: int, fl: FieldLayout, value: Any, rank: int,
                words: int = DEFAULT_WORDS) -> Iterator[str]:
    yield f"{index}: '{fl.name}' rank {rank}, type {int(fl.type)}"
    if fl.type is DataType.CHARSTR:
        yield f"'{fl.name}': \"{value}\""
    elif fl.type is DataType.ENUMDICT and rank > 0:
        yield f"'{fl.name}': enumdict with rank?!?"
    elif rank > 0:
        flat = np.asarray(value).reshape(-1)[:words]
        dims = " ".join(str(d) for d in fl.shape)
        vals = "".join(" " + _fmt(fl.type, v) for v in flat)
        yield f"'{fl.name}' (shape: {dims}): {vals}"
    else:
        yield f"'{fl.name}': {_fmt(fl.type, value)}"


def dgram_lines(number: int, dg: Dgram, decoder: Decoder, detail: bool,
                words: int = DEFAULT_WORDS) -> Iterator[str]:
    """The lines the reference reader prints for one dgram (with ``-d``: every Names/value)."""
    yield header_line(number, dg)
    if not detail:
        return
    for hdr, _seg in walk(dg):
        if hdr.type_id == TypeId.Names:
            names = decode_names(dg.buf, hdr.offset, hdr.extent, hdr.src, dg.source)
            decoder.lookup[names.names_id] = names
            yield from names_lines(names)
        elif hdr.type_id == TypeId.ShapesData:
            names_found = decoder.lookup.get(hdr.value)
            if names_found is None:
                raise dg.error(f"namesid 0x{hdr.value:x} not found in NamesLookup", hdr.offset,
                               "unknown-namesid")
            shapes_hdr, data_hdr = shapes_and_data(dg, hdr)
            shapes = None
            if shapes_hdr is not None and shapes_hdr.extent > 12:
                shapes = np.frombuffer(dg.buf, np.dtype("<u4"),
                                       (shapes_hdr.extent - 12) // 4,
                                       shapes_hdr.payload).reshape(-1, 5)
            fields = layout(names_found, shapes, data_hdr.extent - 12, dg, hdr.offset)
            yield f"Found {len(names_found.fields)} names for namesid 0x{hdr.value:x}"
            for i, (f, fl) in enumerate(zip(names_found.fields, fields, strict=True)):
                value = field_value(dg.buf, data_hdr.payload, fl)
                yield from value_lines(i, fl, value, f.rank, words)


__all__ = ["NUMPY_DTYPE", "dgram_lines", "header_line"]
