"""Tokens of the expression language, and the limits that keep hostile text harmless."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final, Literal

MAX_LENGTH: Final = 1000  # characters
MAX_DEPTH: Final = 50  # nesting of parentheses, calls and prefix operators
MAX_NODES: Final = 300  # operands and operators
MAX_EXPONENT: Final = 1000.0  # largest |exponent| of a constant power


class ExpressionError(ValueError):
    """Anything wrong with an expression: syntax, limits, names, or evaluation.

    ``position`` is the 0-based index in the text where the problem is, when known; the message
    shows it as a 1-based column.
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        self.reason = message
        super().__init__(message if position is None else f"{message} (at column {position + 1})")


TokenKind = Literal["number", "name", "op", "keyword", "end"]


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    pos: int
    value: float = 0.0


KEYWORDS: Final = frozenset({"and", "or", "not", "true", "false", "True", "False"})
OPERATORS: Final = ("**", "<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",")

_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_SPACE = re.compile(r"[ \t\r\n]+")


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token; ExpressionError on anything else."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters long (limit {MAX_LENGTH})")
    dunder = text.find("__")
    if dunder >= 0:
        raise ExpressionError("'__' is not allowed in expressions", dunder)
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if m := _SPACE.match(text, pos):
            pos = m.end()
            continue
        if m := _NUMBER.match(text, pos):
            value = float(m.group())
            if not math.isfinite(value):
                raise ExpressionError(f"number {m.group()} is too large", pos)
            tokens.append(Token("number", m.group(), pos, value))
        elif m := _NAME.match(text, pos):
            word = m.group()
            tokens.append(Token("keyword" if word in KEYWORDS else "name", word, pos))
        else:
            op = next((o for o in OPERATORS if text.startswith(o, pos)), None)
            if op is None:
                raise ExpressionError(f"unexpected character {text[pos]!r}", pos)
            tokens.append(Token("op", op, pos))
            pos += len(op)
            continue
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens
