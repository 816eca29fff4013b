"""Declarative descriptions of operations, for GUIs (parameter forms) and graph validators (port
types), and the one place where user-entered parameters are checked.

An :class:`OpSpec` names an operation's inputs, outputs and parameters; ``spec.make(**params)``
checks the parameters and returns the operation: a callable for ``map`` and ``filter`` kinds, an
accumulator for ``accumulator``. Every problem is reported as a :class:`ParamError` whose message
starts with the operation name and talks about the parameters the user typed.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

PortType = Literal["scalar", "bool", "array1d", "waveform", "image", "array", "dict", "any"]
PORT_TYPES: Final[tuple[str, ...]] = get_args(PortType)
ParamKind = Literal["int", "float", "bool", "str", "choice", "expression"]
OpKind = Literal["map", "filter", "accumulator"]


class ParamError(ValueError):
    """A parameter a user gave is missing, unknown, of the wrong type or out of range."""


class UnknownOperationError(KeyError):
    """No operation of that name; the message suggests the closest name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown operation"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()
"""Default of a parameter that has none: the user must give it."""

# Which output types an input of a given type accepts (besides its own type).
_ACCEPTS: Final[dict[str, frozenset[str]]] = {
    "scalar": frozenset({"bool"}),
    "array1d": frozenset({"waveform"}),
    "waveform": frozenset({"array1d"}),
    "array": frozenset({"array1d", "waveform", "image"}),
}


def port_accepts(input_type: str, output_type: str) -> bool:
    """Whether an input port of ``input_type`` may be fed by an output of ``output_type``."""
    if "any" in (input_type, output_type):
        return True
    return input_type == output_type or output_type in _ACCEPTS.get(input_type, frozenset())


@dataclass(frozen=True)
class Port:
    """A named, typed input or output of an operation."""

    name: str
    type: PortType
    doc: str = ""
    optional: bool = False

    def __post_init__(self) -> None:
        if self.type not in PORT_TYPES:
            raise ValueError(f"port {self.name}: unknown type {self.type!r}")


def ports(*names: str, type: PortType = "scalar") -> tuple[Port, ...]:
    """Several ports of one type, e.g. ``ports("sum", "mean")``."""
    return tuple(Port(name, type) for name in names)


@dataclass(frozen=True)
class Param:
    """A parameter as a form shows it: kind, default, limits (inclusive), choices, help text.

    ``nullable`` parameters may be None (meaning "not set", e.g. no upper threshold).
    """

    name: str
    kind: ParamKind
    default: Any = REQUIRED
    doc: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    finite: bool = True  # False lets a float parameter be NaN or infinite (e.g. a fill value)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, op: str, value: Any) -> Any:
        """``value`` converted to the parameter's kind, or ParamError."""
        if value is None:
            if self.nullable:
                return None
            raise ParamError(f"{op}: {self.name} must be given (it cannot be empty)")
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ParamError(f"{op}: {self.name} must be true or false, got {value!r}")
            return value
        if self.kind in ("str", "expression"):
            if not isinstance(value, str):
                raise ParamError(f"{op}: {self.name} must be text, got {value!r}")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                options = ", ".join(repr(c) for c in self.choices)
                raise ParamError(f"{op}: {self.name} must be one of {options}, got {value!r}")
            return value
        number = self._number(op, value)
        if self.min is not None and number < self.min:
            raise ParamError(f"{op}: {self.name} ({number}) must be at least {self.min}")
        if self.max is not None and number > self.max:
            raise ParamError(f"{op}: {self.name} ({number}) must be at most {self.max}")
        return number

    def _number(self, op: str, value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            what = "a whole number" if self.kind == "int" else "a number"
            raise ParamError(f"{op}: {self.name} must be {what}, got {value!r}")
        number = float(value)
        if self.kind == "int":
            if not isinstance(value, numbers.Integral) and not number.is_integer():
                raise ParamError(f"{op}: {self.name} must be a whole number, got {value!r}")
            return int(number)
        if self.finite and not math.isfinite(number):
            raise ParamError(f"{op}: {self.name} must be a finite number, got {value!r}")
        return number


@dataclass(frozen=True)
class OpSpec:
    """Everything a GUI or validator needs to know about one operation.

    ``factory`` receives the checked parameters as keywords. For ``map`` operations it returns
    ``f(*inputs)`` giving one value per output (a tuple when there are several); ``filter``
    operations return ``f(*inputs) -> bool``; ``accumulator`` operations return an accumulator,
    whose ``update`` takes the first input (a tuple of all inputs when there are several).
    """

    name: str
    category: str
    kind: OpKind
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    params: tuple[Param, ...]
    factory: Callable[..., Any]
    doc: str = ""
    variadic: bool = False  # inputs are named by a parameter (e.g. an expression's names)
    selects_outputs: bool = False
    """The factory also takes ``outputs``, the names of the outputs something reads; the op then
    need only compute those and gives placeholders (None or NaN) for the others."""

    @classmethod
    def map(
        cls,
        name: str,
        category: str,
        factory: Callable[..., Any],
        doc: str,
        *,
        inputs: tuple[Port, ...],
        outputs: tuple[Port, ...],
        params: tuple[Param, ...] = (),
        selects_outputs: bool = False,
    ) -> OpSpec:
        """A ``map`` operation: one value per output from each event's inputs."""
        return cls(name, category, "map", inputs, outputs, params, factory, doc,
                   selects_outputs=selects_outputs)

    @classmethod
    def accumulator(
        cls,
        name: str,
        factory: Callable[..., Any],
        doc: str,
        *,
        inputs: tuple[Port, ...] = (Port("value", "any"),),
        output: Port,
        params: tuple[Param, ...] = (),
    ) -> OpSpec:
        """An ``accumulator`` operation (category "accumulate")."""
        return cls(name, "accumulate", "accumulator", inputs, (output,), params, factory, doc)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def check(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The full parameter set with defaults filled in, each value checked; or ParamError."""
        known = {p.name for p in self.params}
        for name in params:
            if name not in known:
                hint = difflib.get_close_matches(name, sorted(known), n=1)
                did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
                names = ", ".join(p.name for p in self.params) or "none"
                raise ParamError(
                    f"{self.name}: unknown parameter '{name}'{did_you_mean} (known: {names})"
                )
        checked = {}
        for p in self.params:
            if p.name in params:
                checked[p.name] = p.check(self.name, params[p.name])
            elif p.required:
                raise ParamError(f"{self.name}: parameter '{p.name}' is required")
            else:
                checked[p.name] = p.default
        return checked

    def make(self, **params: Any) -> Any:
        """Build the operation; ParamError (naming the operation) if the parameters are wrong."""
        return self.make_for(None, **params)

    def make_for(self, outputs: Iterable[str] | None, /, **params: Any) -> Any:
        """Like :meth:`make`, for a graph that reads only ``outputs`` (None: all of them).

        An operation that :attr:`selects_outputs` then skips the work behind the other outputs
        and gives placeholders (None or NaN) for them; the others ignore ``outputs``.
        """
        checked = self.check(params)
        if self.selects_outputs and outputs is not None:
            names = frozenset(outputs)
            unknown = names - {p.name for p in self.outputs}
            if unknown:
                raise ValueError(f"{self.name}: no output {', '.join(sorted(unknown))}")
            checked = {**checked, "outputs": names}
        try:
            return self.factory(**checked)
        except ParamError:
            raise
        except ValueError as exc:
            raise ParamError(f"{self.name}: {exc}") from exc


@dataclass
class Registry:
    """Operations by name, in registration order."""

    _specs: dict[str, OpSpec] = field(default_factory=dict)

    def register(self, spec: OpSpec) -> OpSpec:
        if spec.name in self._specs:
            raise ValueError(f"operation '{spec.name}' is already registered")
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> OpSpec:
        try:
            return self._specs[name]
        except KeyError:
            hint = difflib.get_close_matches(name, list(self._specs), n=1)
            did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
            raise UnknownOperationError(f"unknown operation '{name}'{did_you_mean}") from None

    def all(self) -> list[OpSpec]:
        return list(self._specs.values())

    def names(self) -> list[str]:
        return list(self._specs)

    def by_category(self) -> dict[str, list[OpSpec]]:
        out: dict[str, list[OpSpec]] = {}
        for spec in self._specs.values():
            out.setdefault(spec.category, []).append(spec)
        return out

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    @classmethod
    def of(cls, specs: Iterable[OpSpec]) -> Registry:
        registry = cls()
        for spec in specs:
            registry.register(spec)
        return registry
