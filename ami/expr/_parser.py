"""Recursive-descent parser: tokens to a small, immutable AST.

Grammar, loosest binding first (as in Python)::

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)*
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/" | "%") unary)*
    unary   := ("-" | "+") unary | power
    power   := atom ("**" unary)?
    atom    := number | "true" | "false" | name | function "(" expr ("," expr)* ")" | "(" expr ")"

Chains of one operator (``a + b - c``) become one n-ary node, so the tree is only as deep as the
nesting of parentheses, calls and prefix operators, which is bounded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ._lexer import (
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_NODES,
    ExpressionError,
    Token,
    tokenize,
)

# name -> (min args, max args)
FUNCTIONS: dict[str, tuple[int, int]] = {
    "abs": (1, 1),
    "sqrt": (1, 1),
    "log": (1, 1),
    "exp": (1, 1),
    "sin": (1, 1),
    "cos": (1, 1),
    "min": (1, 8),
    "max": (1, 8),
    "mean": (1, 1),
    "sum": (1, 1),
    "where": (3, 3),
}
COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})


@dataclass(frozen=True, slots=True)
class Const:
    value: float | bool
    pos: int


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-", "+" or "not"
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Power:
    base: Node
    exponent: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Chain:
    """``first op1 x1 op2 x2 ...`` for arithmetic (left to right) or comparisons (all must hold)."""

    first: Node
    rest: tuple[tuple[str, int, Node], ...]  # (operator, position, operand)


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # "and" / "or"
    operands: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Node, ...]
    pos: int


Node = Const | Name | Unary | Power | Chain | Logic | Call


def constant_value(node: Node) -> float | None:
    """The value of a subtree made only of numbers (float math), None if it has names."""
    if isinstance(node, Const):
        return float(node.value)
    if isinstance(node, Unary) and node.op in "+-":
        v = constant_value(node.operand)
        return None if v is None else (-v if node.op == "-" else v)
    if isinstance(node, Power):
        base, exponent = constant_value(node.base), constant_value(node.exponent)
        if base is None or exponent is None:
            return None
        try:
            return math.pow(base, exponent)
        except OverflowError:
            raise ExpressionError("'**' result is too large", node.pos) from None
        except ValueError:  # e.g. a negative number to a fractional power
            return math.nan
    return None


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0
        self.nodes = 0

    # -- helpers ---------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        return self.tok.kind in ("op", "keyword") and self.tok.text in texts

    def expect(self, text: str) -> Token:
        if not self.at(text):
            found = self.describe(self.tok)
            raise ExpressionError(f"expected '{text}' but found {found}", self.tok.pos)
        return self.advance()

    @staticmethod
    def describe(tok: Token) -> str:
        return "the end of the expression" if tok.kind == "end" else f"'{tok.text}'"

    def node(self, node: Node) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"expression is too complex (limit {MAX_NODES} terms)")
        return node

    def nest(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested too deeply (limit {MAX_DEPTH})", pos)

    # -- grammar ---------------------------------------------------------------------------
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExpressionError("the expression is empty", 0)
        node = self.expr()
        if self.tok.kind != "end":
            raise ExpressionError(f"unexpected {self.describe(self.tok)}", self.tok.pos)
        return node

    def expr(self) -> Node:
        self.nest(self.tok.pos)
        node = self.logic("or", self.logic_and)
        self.depth -= 1
        return node

    def logic_and(self) -> Node:
        return self.logic("and", self.logic_not)

    def logic(self, op: str, operand: Callable[[], Node]) -> Node:
        first = operand()
        if not self.at(op):
            return first
        pos = self.tok.pos
        operands = [first]
        while self.at(op):
            self.advance()
            operands.append(operand())
        return self.node(Logic(op, tuple(operands), pos))

    def logic_not(self) -> Node:
        if self.at("not"):
            tok = self.advance()
            self.nest(tok.pos)
            operand = self.logic_not()
            self.depth -= 1
            return self.node(Unary("not", operand, tok.pos))
        return self.compare()

    def chain(self, ops: frozenset[str], operand: Callable[[], Node]) -> Node:
        first = operand()
        rest = []
        while self.tok.kind == "op" and self.tok.text in ops:
            tok = self.advance()
            rest.append((tok.text, tok.pos, operand()))
        return first if not rest else self.node(Chain(first, tuple(rest)))

    def compare(self) -> Node:
        return self.chain(COMPARISONS, self.sum)

    def sum(self) -> Node:
        return self.chain(frozenset({"+", "-"}), self.product)

    def product(self) -> Node:
        return self.chain(frozenset({"*", "/", "%"}), self.unary)

    def unary(self) -> Node:
        if self.at("-", "+"):
            tok = self.advance()
            self.nest(tok.pos)
            operand = self.unary()
            self.depth -= 1
            return self.node(Unary(tok.text, operand, tok.pos))
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if not self.at("**"):
            return base
        tok = self.advance()
        self.nest(tok.pos)
        exponent = self.unary()
        self.depth -= 1
        e = constant_value(exponent)
        if e is not None and not abs(e) <= MAX_EXPONENT:
            raise ExpressionError(f"exponent {e:g} is too large (limit {MAX_EXPONENT:g})", tok.pos)
        node = Power(base, exponent, tok.pos)
        constant_value(node)  # a constant power that overflows is an error now, not at run time
        return self.node(node)

    def atom(self) -> Node:
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return self.node(Const(tok.value, tok.pos))
        if tok.kind == "keyword" and tok.text.lower() in ("true", "false"):
            self.advance()
            return self.node(Const(tok.text.lower() == "true", tok.pos))
        if tok.kind == "name":
            self.advance()
            if tok.text in FUNCTIONS:
                return self.call(tok)
            if self.at("("):
                known = ", ".join(sorted(FUNCTIONS))
                raise ExpressionError(f"unknown function '{tok.text}' (known: {known})", tok.pos)
            return self.node(Name(tok.text, tok.pos))
        if self.at("("):
            self.advance()
            node = self.expr()
            self.expect(")")
            return node
        found = self.describe(tok)
        raise ExpressionError(f"expected a number, a name or '(' but found {found}", tok.pos)

    def call(self, name: Token) -> Node:
        if not self.at("("):
            raise ExpressionError(f"'{name.text}' is a function: write {name.text}(...)", name.pos)
        self.advance()
        args = [self.expr()]
        while self.at(","):
            self.advance()
            args.append(self.expr())
        self.expect(")")
        lo, hi = FUNCTIONS[name.text]
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise ExpressionError(
                f"{name.text}() takes {want} argument{'s' if hi > 1 else ''}, got {len(args)}",
                name.pos,
            )
        return self.node(Call(name.text, tuple(args), name.pos))


def parse(text: str) -> Node:
    """The AST of ``text``; ExpressionError (with the position) if it is not a valid expression."""
    return _Parser(tokenize(text)).parse()
