"""What every simulated detector has: identity, declared fields, ``read(shot)``, ground truth.

Parameters are frozen dataclasses (``Params`` subclasses) validated on construction; a bad value
raises ``ConfigError`` naming the detector and the key. Construction is cheap: the heavy
precomputation (pixel maps, noise bank) happens in ``prepare()``, which ``read`` calls on first
use. Every value a detector produces is a pure function of (seed, name, segment, shot).

``read_batch(shots, out)`` reads a batch of ``SHOT_DTYPE`` records into rows of ``out``; row i is
bit for bit what ``read`` returns for shot i. The default loops over ``read``; the light kinds
(timing, BLD, digitizers) override it with one vectorised kernel that ``read`` also runs.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar

import numpy as np

from daq.timing import SHOT_DTYPE, ConfigError, Shot, mix_key
from daq.xtc import Alg, Field, datatype_of

__all__ = ["Detector", "FieldSpec", "Params", "batch_columns", "build_params", "shot_columns"]

_NAME_RE = re.compile(r"^[0-9A-Za-z_]+$")
P = TypeVar("P", bound="Params")


@dataclass(frozen=True)
class FieldSpec:
    """One data field of a detector: name, numpy dtype and shape (``()`` for a scalar)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...] = ()

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def to_xtc(self, alg: Alg) -> Field:
        """The XTC2 Names entry for this field."""
        return Field(self.name, datatype_of(self.dtype), self.rank, alg)


class ParamError(ValueError):
    """Raised by ``Params.__post_init__``; ``build_params`` adds the detector's name."""


@dataclass(frozen=True)
class Params:
    """Parameters every detector takes: ``seed``, ``segment``, ``det_id`` (serial number)."""

    seed: int = 0
    segment: int = 0
    det_id: str | None = None

    def __post_init__(self) -> None:
        self.check_int("seed", 0, (1 << 64) - 1)
        self.check_int("segment", 0, (1 << 32) - 1)
        if self.det_id is not None and not isinstance(self.det_id, str):
            raise ParamError(f"parameter 'det_id': expected a str, got {self.det_id!r}")

    # -- checks used by subclasses -------------------------------------------------------------
    def check_int(self, key: str, lo: int, hi: int | None = None) -> None:
        v = getattr(self, key)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ParamError(f"parameter {key!r}: expected an int, got {v!r}")
        if v < lo or (hi is not None and v > hi):
            rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise ParamError(f"parameter {key!r}: {v} is outside {rng}")

    def check_float(
        self, key: str, lo: float, hi: float | None = None, *, open_lo: bool = False
    ) -> None:
        v = getattr(self, key)
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise ParamError(f"parameter {key!r}: expected a number, got {v!r}")
        bad_lo = v <= lo if open_lo else v < lo
        if not np.isfinite(v) or bad_lo or (hi is not None and v > hi):
            lo_s = f"> {lo}" if open_lo else f">= {lo}"
            rng = f"{lo_s} and <= {hi}" if hi is not None else lo_s
            raise ParamError(f"parameter {key!r}: {v} must be {rng}")

    def check_fraction(self, key: str) -> None:
        self.check_float(key, 0.0, 1.0)


def build_params(cls: type[P], context: str, given: Mapping[str, Any]) -> P:
    """``cls(**given)`` with unknown keys and bad values reported as ``ConfigError``."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(
            f"{context}: unknown parameter {unknown[0]!r}; known: {', '.join(sorted(known))}"
        )
    try:
        return cls(**given)
    except ParamError as exc:
        raise ConfigError(f"{context}: {exc}") from None


def shot_columns(shot: Shot) -> tuple[np.ndarray, np.ndarray]:
    """The pulse id (uint64) and wire flags (uint8) of one shot, as 1-element kernel inputs."""
    return np.array((shot.pulse_id,), np.uint64), np.array((shot.flags,), np.uint8)


def batch_columns(shots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pulse ids (uint64) and wire flags (uint8) of a SHOT_DTYPE batch, contiguous."""
    return (
        np.ascontiguousarray(shots["pulse_id"], dtype=np.uint64),
        np.ascontiguousarray(shots["flags"], dtype=np.uint8),
    )


class Detector(ABC):
    """A simulated detector segment: declared fields, ``read(shot)``, and its ground truth.

    Subclasses set ``kind`` (the registry name and default ``det_type``), ``params_class`` and
    ``alg``, and implement ``fields`` and ``read``.
    """

    kind: ClassVar[str]
    params_class: ClassVar[type[Params]] = Params
    alg: ClassVar[Alg] = Alg.of("raw", 1, 0, 0)

    def __init__(self, name: str, params: Params | None = None, **kwargs: Any) -> None:
        context = f"{self.kind} {name!r}"
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigError(f"{context}: detector names must match [0-9A-Za-z_]+")
        if params is None:
            params = build_params(self.params_class, context, kwargs)
        elif kwargs:
            raise ConfigError(f"{context}: give params or keyword parameters, not both")
        elif not isinstance(params, self.params_class):
            raise ConfigError(f"{context}: params must be {self.params_class.__name__}")
        self.params = params
        self.det_name = name
        self.det_type = self.kind
        self.segment = params.segment
        self.det_id = params.det_id if params.det_id is not None else self._default_det_id()
        self._key = mix_key(params.seed, self.kind, name, params.segment)

    def _default_det_id(self) -> str:
        serial = mix_key(self.params.seed, self.kind, self.det_name) & 0xFFFFFFFF
        return f"{self.kind}_{serial:08x}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.det_name!r}, segment={self.segment})"

    # -- interface -----------------------------------------------------------------------------
    @property
    @abstractmethod
    def fields(self) -> tuple[FieldSpec, ...]:
        """The data fields ``read`` returns, in order."""

    @abstractmethod
    def read(self, shot: Shot, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """This detector's data for ``shot``: ``{field: ndarray or numpy scalar}``.

        ``out`` (from ``allocate()``) receives array fields in place, to avoid allocations.
        """

    def read_batch(self, shots: np.ndarray, out: dict[str, np.ndarray]) -> None:
        """Read N shots (a 1-D ``SHOT_DTYPE`` array) into row i of every ``out[field]``.

        ``out`` maps every field name to an array of shape ``(N, *field.shape)`` (``(N,)`` for a
        scalar) and the field's dtype; it may be a strided or unaligned view (columns of a batch
        of dgrams): it is written in place, never rebound. Row i equals ``read(shot_i)``. This
        default reads shot by shot; kinds that matter at high rate override it.
        """
        self._check_batch(shots, out)
        scratch = self.allocate()
        for i, rec in enumerate(shots):
            for name, value in self.read(Shot.from_record(rec), scratch).items():
                out[name][i] = value

    def prepare(self) -> None:  # noqa: B027 (optional hook, a no-op for light detectors)
        """Do the heavy, deterministic precomputation now instead of on the first read."""

    def allocate(self) -> dict[str, np.ndarray]:
        """Reusable output buffers for the array fields."""
        return {f.name: np.empty(f.shape, f.dtype) for f in self.fields if f.shape}

    def truth(self) -> dict[str, np.ndarray]:
        """Per-detector ground truth (calibration constants and the like)."""
        return {}

    def truth_event(self, shot: Shot) -> dict[str, Any]:
        """Per-event ground truth (the noiseless signal) for tests."""
        return {}

    def xtc_fields(self) -> list[Field]:
        """The XTC2 Names entries of this detector's fields."""
        return [f.to_xtc(self.alg) for f in self.fields]

    def config(self) -> dict[str, Any]:
        """The parameters as plain data (for a Configure record or a log)."""
        return asdict(self.params)

    # -- helpers -------------------------------------------------------------------------------
    def _check_batch(self, shots: np.ndarray, out: dict[str, np.ndarray]) -> None:
        """ValueError unless ``shots`` is a 1-D SHOT_DTYPE array and ``out`` fits it."""
        if shots.dtype != SHOT_DTYPE or shots.ndim != 1:
            raise ValueError(f"{self.det_name}: shots must be a 1-D SHOT_DTYPE array")
        n = shots.shape[0]
        for spec in self.fields:
            buf = out.get(spec.name)
            if buf is None:
                raise ValueError(f"{self.det_name}: out has no field {spec.name!r}")
            if buf.shape != (n, *spec.shape) or buf.dtype != spec.dtype:
                raise ValueError(
                    f"{self.det_name}: out[{spec.name!r}] must be {spec.dtype} "
                    f"{(n, *spec.shape)}, got {buf.dtype} {buf.shape}"
                )

    def _buffer(self, out: dict[str, np.ndarray] | None, spec: FieldSpec) -> np.ndarray:
        if out is None:
            return np.empty(spec.shape, spec.dtype)
        buf = out[spec.name]
        if buf.shape != spec.shape or buf.dtype != spec.dtype or not buf.flags.c_contiguous:
            raise ValueError(
                f"{self.det_name}: out[{spec.name!r}] must be C-contiguous {spec.dtype} "
                f"{spec.shape}, got {buf.dtype} {buf.shape}"
            )
        return buf
