"""Accumulator states on the wire: one msgpack header frame, then one raw frame per array.

No pickle: the header holds only numbers, strings, lists and dicts; arrays travel as their raw
bytes (zero-copy views on the sending side) with dtype and shape in the header, and only numeric
dtypes are accepted back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

from ._accumulate import (
    Accumulator,
    ExponentialMovingAverage,
    Latest,
    MeanN,
    RunningMean,
    RunningSum,
)
from ._buffer import BinnedMean, RollingBuffer
from ._histogram import Histogram1D, Histogram2D

STATE_VERSION = 1

ACCUMULATOR_KINDS: dict[str, type[Any]] = {
    cls.kind: cls
    for cls in (
        MeanN,
        RunningMean,
        RunningSum,
        ExponentialMovingAverage,
        Histogram1D,
        Histogram2D,
        RollingBuffer,
        BinnedMean,
        Latest,
    )
}
_NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex: never object or void


def encode_state(acc: Accumulator) -> list[bytes | memoryview]:
    """Frames for ``acc``: ``[msgpack header, raw array bytes, ...]`` (send with copy=False)."""
    header, arrays = acc.to_state()
    contiguous = [np.asarray(a, order="C") for a in arrays]  # keeps 0-d arrays 0-d
    envelope = {
        "version": STATE_VERSION,
        "kind": acc.kind,
        "state": header,
        "arrays": [[a.dtype.str, list(a.shape)] for a in contiguous],
    }
    frames: list[bytes | memoryview] = [msgpack.packb(envelope, use_bin_type=True)]
    frames.extend(a.reshape(-1).view(np.uint8).data for a in contiguous)
    return frames


def decode_state(frames: Sequence[Any]) -> Accumulator:
    """Rebuild an accumulator from :func:`encode_state` frames; ValueError on anything odd."""
    if not frames:
        raise ValueError("accumulator state: no frames")
    try:
        envelope = msgpack.unpackb(frames[0], raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise ValueError(f"accumulator state: unreadable header ({exc})") from None
    if not isinstance(envelope, dict) or envelope.get("version") != STATE_VERSION:
        raise ValueError(f"accumulator state: expected a version {STATE_VERSION} header")
    cls = ACCUMULATOR_KINDS.get(envelope.get("kind"))  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"accumulator state: unknown kind {envelope.get('kind')!r}")
    specs, header = envelope.get("arrays"), envelope.get("state")
    if not isinstance(specs, list) or not isinstance(header, dict):
        raise ValueError("accumulator state: malformed header")
    if len(specs) != len(frames) - 1:
        raise ValueError(
            f"accumulator state: {len(specs)} arrays announced, {len(frames) - 1} sent"
        )
    arrays = [_array(spec, frame) for spec, frame in zip(specs, frames[1:], strict=True)]
    try:
        acc: Accumulator = cls.from_state(header, arrays)
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"accumulator state: bad {cls.kind} state ({exc!r})") from None
    return acc


def _array(spec: Any, frame: Any) -> np.ndarray:
    try:
        dtype_str, shape = spec
        dtype = np.dtype(str(dtype_str))
        shape = tuple(int(n) for n in shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"accumulator state: bad array description {spec!r}") from exc
    if dtype.kind not in _NUMERIC_KINDS or any(n < 0 for n in shape):
        raise ValueError(f"accumulator state: refusing array of dtype {dtype} shape {shape}")
    buffer = memoryview(frame).cast("B")
    if buffer.nbytes != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"accumulator state: {buffer.nbytes} bytes for {dtype} {shape}")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)
