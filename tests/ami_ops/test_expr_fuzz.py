"""Fuzzing the expression language: random text and token soups only ever give a value or an
ExpressionError, quickly, and nothing is executed, imported or opened on the way."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ami.expr import ExpressionError, compile_expression

INPUTS = {
    "a": np.array([1.0, -2.0, 0.0]),
    "b": 2.5,
    "det": {"x": np.array([0.5, 1.5, 2.5]), "on": True},
    "c.d": 7,
}
TOKENS = [
    "a", "b", "det.x", "det.on", "c.d", "det", "zz", "1", "0", "2.5", "1e3", "9", ".5",
    "+", "-", "*", "/", "%", "**", "(", ")", ",", "<", "<=", ">", ">=", "==", "!=",
    "and", "or", "not", "true", "false", "abs", "sqrt", "log", "exp", "sin", "cos", "min",
    "max", "mean", "sum", "where", "__import__", "__class__", "os", "eval", "exec", "import",
    "lambda", ".", "[", "]", "'", '"', "=", ":", ";", "@", "\\", "\n", "\x00",
]  # fmt: skip
ALPHABET = "ab.dex019 +-*/%()<>=!,_'\"[]:;@\\\nnotrsqlgimwh\x00é"
FORBIDDEN_EVENTS = ("exec", "compile", "import", "open", "os.system", "subprocess.Popen")


class _Watch:
    """Audit-hook recorder, armed only around the code under test."""

    armed = False
    seen: list[str] = []

    @classmethod
    def hook(cls, event: str, _args: Any) -> None:
        if cls.armed and event.startswith(FORBIDDEN_EVENTS):
            cls.seen.append(event)


sys.addaudithook(_Watch.hook)  # hooks cannot be removed; this one is inert unless armed


def check(text: str) -> None:
    _Watch.seen.clear()
    start = time.perf_counter()
    _Watch.armed = True
    try:
        compile_expression(text).evaluate(INPUTS)
    except ExpressionError as exc:
        assert str(exc)
    finally:
        _Watch.armed = False
    assert time.perf_counter() - start < 0.5, text
    assert not _Watch.seen, (text, _Watch.seen)


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(alphabet=ALPHABET, max_size=120))
def test_random_text_only_raises_expression_error(text: str) -> None:
    check(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.sampled_from([" ", ""]))
def test_token_soup_only_raises_expression_error(tokens: list[str], sep: str) -> None:
    check(sep.join(tokens))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_unicode_only_raises_expression_error(text: str) -> None:
    check(text)


def test_the_watch_would_see_python_compiling_code() -> None:
    _Watch.seen.clear()
    _Watch.armed = True
    try:
        compile("1 + 1", "<watch>", "eval")
    finally:
        _Watch.armed = False
    assert "compile" in _Watch.seen


def test_hostile_classics_are_refused_fast() -> None:
    for text in (
        "__import__('os').system('true')",
        "().__class__.__bases__",
        "9**9**9**9",
        "(" * 10_000 + ")" * 10_000,
        "a" * 5000,
        "-" * 999 + "1",
        "exp(" * 300,
    ):
        check(text)
