"""Frames on the wire: one msgpack header frame, then raw frames (arrays, accumulator states).

Arrays anywhere in a header's values travel as their own frame (sent with ``copy=False``) and are
marked ``{"__nd__": [frame, dtype, shape]}``; accumulators are marked ``{"__acc__": [frame,
count]}`` over the frames of :func:`ami.ops.encode_state`. No pickle: only numeric dtypes are
accepted back, and sizes are checked before anything is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

from ami.ops import decode_state, encode_state

MAX_DEPTH = 16
_NUMERIC = "biufc"


class WireError(ValueError):
    """Frames that do not decode into a valid message."""


def _is_accumulator(value: Any) -> bool:
    return hasattr(value, "to_state") and hasattr(value, "kind") and hasattr(value, "merge")


def pack(header: dict[str, Any]) -> list[Any]:
    """``[msgpack header, raw frames...]`` for a header whose values may hold arrays."""
    frames: list[Any] = [b""]

    def walk(value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("message nested too deeply")
        if isinstance(value, np.ndarray):
            a = np.ascontiguousarray(value)
            if a.dtype.kind not in _NUMERIC:
                raise WireError(f"cannot send an array of dtype {a.dtype}")
            frames.append(a.reshape(-1).view(np.uint8).data if a.size else b"")
            return {"__nd__": [len(frames) - 1, a.dtype.str, list(a.shape)]}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            return {str(k): walk(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v, depth + 1) for v in value]
        if _is_accumulator(value):
            start = len(frames)
            frames.extend(encode_state(value))
            return {"__acc__": [start, len(frames) - start]}
        return value

    body = walk(header, 0)
    frames[0] = msgpack.packb(body, use_bin_type=True)
    return frames


def unpack(frames: Sequence[Any], *, max_header: int = 1 << 20,
           max_array: int = 1 << 31) -> dict[str, Any]:
    """The header of :func:`pack` frames with arrays and accumulators rebuilt; WireError."""
    if not frames:
        raise WireError("empty message")
    head = memoryview(frames[0]).cast("B")
    if head.nbytes > max_header:
        raise WireError(f"header of {head.nbytes} bytes is larger than {max_header}")
    try:
        body = msgpack.unpackb(head, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException) as exc:
        raise WireError(f"unreadable header ({exc})") from None
    if not isinstance(body, dict):
        raise WireError("a message header must be a map")
    used: set[int] = set()

    def frame(i: Any) -> memoryview:
        if not isinstance(i, int) or not 0 < i < len(frames) or i in used:
            raise WireError(f"bad frame reference {i!r}")
        used.add(i)
        return memoryview(frames[i]).cast("B")

    def walk(value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("message nested too deeply")
        if isinstance(value, dict):
            if len(value) == 1 and "__nd__" in value:
                return _array(value["__nd__"], frame, max_array)
            if len(value) == 1 and "__acc__" in value:
                return _accumulator(value["__acc__"], frames, frame)
            return {k: walk(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, depth + 1) for v in value]
        return value

    out = walk(body, 0)
    if len(used) != len(frames) - 1:
        raise WireError(f"{len(frames) - 1} data frames sent, {len(used)} referenced")
    return out


def _array(spec: Any, frame: Any, max_array: int) -> np.ndarray:
    try:
        index, dtype_str, shape = spec
        dtype = np.dtype(str(dtype_str))
        shape = tuple(int(n) for n in shape)
    except (TypeError, ValueError) as exc:
        raise WireError(f"bad array description {spec!r}") from exc
    if dtype.kind not in _NUMERIC or any(n < 0 for n in shape) or len(shape) > 8:
        raise WireError(f"refusing array of dtype {dtype} shape {shape}")
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if nbytes > max_array:
        raise WireError(f"array of {nbytes} bytes is larger than {max_array}")
    buf = frame(index)
    if buf.nbytes != nbytes:
        raise WireError(f"{buf.nbytes} bytes for an array of {dtype} {shape}")
    return np.frombuffer(buf, dtype=dtype).reshape(shape) if nbytes else np.zeros(shape, dtype)


def _accumulator(spec: Any, frames: Sequence[Any], frame: Any) -> Any:
    if not (isinstance(spec, list) and len(spec) == 2 and all(isinstance(x, int) for x in spec)):
        raise WireError(f"bad accumulator reference {spec!r}")
    start, count = spec
    if count < 1:
        raise WireError(f"bad accumulator reference {spec!r}")
    parts = [frame(i) for i in range(start, start + count)]
    try:
        return decode_state(parts)
    except ValueError as exc:
        raise WireError(str(exc)) from None
