"""Evaluation of a parsed expression over named inputs (numbers or numpy arrays, elementwise).

Only the AST is walked: there is no Python ``eval``, no attribute access, and names are looked up
in the inputs mapping alone (``det.field`` as a key, or as nested mappings). Arithmetic is float
math; ``**`` that overflows is an error, division by zero gives inf or NaN as in NumPy, and no
NumPy warning escapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ._lexer import ExpressionError
from ._parser import Call, Chain, Const, Logic, Name, Node, Power, Unary, parse

Value = Any  # a float64 or bool ndarray (0-d for scalars)
MISSING = object()


def lookup(inputs: Mapping[str, Any], name: str) -> Any:
    """``inputs[name]``, or the walk through nested mappings for a dotted name; else MISSING."""
    if name in inputs:
        return inputs[name]
    node: Any = inputs
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def _input(name: str, raw: Any, pos: int) -> Value:
    if raw is MISSING:
        raise ExpressionError(f"unknown name '{name}'", pos)
    if isinstance(raw, Mapping):
        fields = ", ".join(f"{name}.{k}" for k in list(raw)[:3])
        raise ExpressionError(f"'{name}' is a group of values; name one, e.g. {fields}", pos)
    try:
        value = np.asarray(raw)
    except (TypeError, ValueError):
        value = np.asarray(None)
    if value.dtype.kind == "b":
        return value
    if value.dtype.kind not in "iuf":
        raise ExpressionError(f"input '{name}' is not a number or numeric array", pos)
    return value.astype(np.float64, copy=False)


def _num(v: Value) -> Value:
    return v.astype(np.float64) if v.dtype.kind == "b" else v


def _truth(v: Value) -> Value:
    return v if v.dtype.kind == "b" else v != 0


def _check_shapes(a: Value, b: Value, pos: int) -> None:
    """Elementwise operations may combine equal shapes or scalars, never build outer products."""
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ExpressionError(f"array shapes {a.shape} and {b.shape} do not match", pos) from None
    if np.prod(shape, dtype=np.int64) > max(a.size, b.size):
        raise ExpressionError(
            f"array shapes {a.shape} and {b.shape} would broadcast to a larger array {shape}", pos
        )


_ARITH: dict[str, Callable[[Value, Value], Value]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "%": np.remainder,
}
_COMPARE: dict[str, Callable[[Value, Value], Value]] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_ELEMENTWISE: dict[str, Callable[[Value], Value]] = {
    "abs": np.abs,
    "sqrt": np.sqrt,
    "log": np.log,
    "exp": np.exp,
    "sin": np.sin,
    "cos": np.cos,
}


def _reduce(func: str, v: Value) -> Value:
    """NaN-aware reduction of all elements to one number (NaN when none is a number)."""
    values = v[~np.isnan(v)]
    if func == "sum":
        return np.asarray(values.sum())
    if values.size == 0:
        return np.asarray(np.nan)
    if func == "mean":
        return np.asarray(values.mean())
    return np.asarray(values.min() if func == "min" else values.max())


def _call(node: Call, inputs: Mapping[str, Any]) -> Value:
    args = [_eval(a, inputs) for a in node.args]
    if node.func in _ELEMENTWISE:
        return _ELEMENTWISE[node.func](_num(args[0]))
    if node.func == "where":
        cond, a, b = args
        for x, y in ((cond, a), (cond, b), (a, b)):
            _check_shapes(x, y, node.pos)
        return np.where(_truth(cond), _num(a), _num(b))
    if len(args) == 1:  # min, max, mean, sum of one array
        return _reduce(node.func, _num(args[0]))
    if node.func in ("mean", "sum"):
        raise ExpressionError(f"{node.func}() takes 1 argument", node.pos)  # parser prevents
    result = _num(args[0])
    for other in args[1:]:
        _check_shapes(result, other, node.pos)
        result = (np.minimum if node.func == "min" else np.maximum)(result, _num(other))
    return result


def _eval(node: Node, inputs: Mapping[str, Any]) -> Value:
    if isinstance(node, Const):
        return np.asarray(node.value if isinstance(node.value, bool) else float(node.value))
    if isinstance(node, Name):
        return _input(node.name, lookup(inputs, node.name), node.pos)
    if isinstance(node, Unary):
        v = _eval(node.operand, inputs)
        if node.op == "not":
            return np.logical_not(_truth(v))
        return -_num(v) if node.op == "-" else _num(v)
    if isinstance(node, Power):
        base, exponent = _num(_eval(node.base, inputs)), _num(_eval(node.exponent, inputs))
        _check_shapes(base, exponent, node.pos)
        result = np.power(base, exponent)
        overflow = np.isinf(result) & np.isfinite(base) & np.isfinite(exponent) & (base != 0)
        if np.any(overflow):
            raise ExpressionError("'**' result is too large", node.pos)
        return result
    if isinstance(node, Chain):
        left = _eval(node.first, inputs)
        if node.rest[0][0] in _COMPARE:
            verdict: Value = np.asarray(True)
            for op, pos, operand in node.rest:
                right = _eval(operand, inputs)
                _check_shapes(left, right, pos)
                _check_shapes(verdict, right, pos)
                verdict = verdict & _COMPARE[op](_num(left), _num(right))
                left = right
            return verdict
        for op, pos, operand in node.rest:
            right = _eval(operand, inputs)
            _check_shapes(left, right, pos)
            left = _ARITH[op](_num(left), _num(right))
        return left
    if isinstance(node, Logic):
        values = [_truth(_eval(v, inputs)) for v in node.operands]
        combine = np.logical_and if node.op == "and" else np.logical_or
        verdict = values[0]
        for v in values[1:]:
            _check_shapes(verdict, v, node.pos)
            verdict = combine(verdict, v)
        return verdict
    if isinstance(node, Call):
        return _call(node, inputs)
    raise ExpressionError(f"cannot evaluate {type(node).__name__}")  # unreachable


def _names(node: Node, out: dict[str, int]) -> None:
    if isinstance(node, Name):
        out.setdefault(node.name, node.pos)
    elif isinstance(node, Unary):
        _names(node.operand, out)
    elif isinstance(node, Power):
        _names(node.base, out)
        _names(node.exponent, out)
    elif isinstance(node, Chain):
        _names(node.first, out)
        for _, _, operand in node.rest:
            _names(operand, out)
    elif isinstance(node, Logic | Call):
        for child in node.operands if isinstance(node, Logic) else node.args:
            _names(child, out)


class Expression:
    """A compiled expression: ``names`` lists the inputs it reads, in order of appearance."""

    def __init__(self, text: str, tree: Node, names: tuple[str, ...]) -> None:
        self.text = text
        self.tree = tree
        self.names = names

    def evaluate(self, inputs: Mapping[str, Any]) -> Any:
        """The value over ``inputs``: a float or bool for scalars, else a numpy array."""
        if not isinstance(inputs, Mapping):
            raise ExpressionError("inputs must be a mapping of names to values")
        with np.errstate(all="ignore"):
            result = _eval(self.tree, inputs)
        return result.item() if result.ndim == 0 else result

    def __call__(self, *values: Any) -> Any:
        """Evaluate with positional values, one per name in ``names``."""
        if len(values) != len(self.names):
            raise ExpressionError(f"expected {len(self.names)} values ({', '.join(self.names)})")
        return self.evaluate(dict(zip(self.names, values, strict=True)))

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def compile_expression(text: str, allowed_names: Iterable[str] | None = None) -> Expression:
    """Parse ``text`` once for repeated evaluation.

    ``allowed_names`` (any collection of names), if given, makes a name outside it an error now
    rather than at evaluation.
    """
    tree = parse(text)
    found: dict[str, int] = {}
    _names(tree, found)
    if allowed_names is not None:
        allowed = set(allowed_names)
        for name, pos in found.items():
            if name not in allowed:
                raise ExpressionError(f"unknown name '{name}'", pos)
    return Expression(text, tree, tuple(found))
