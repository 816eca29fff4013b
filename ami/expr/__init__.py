"""The expression language of AMI's calculator and event filters.

``compile_expression("(roi_sum - bkg) / gasdet.energy")`` parses once; ``.evaluate(inputs)``
computes over a mapping of named numbers or numpy arrays, elementwise. Expressions are parsed by
their own tokenizer and recursive-descent parser and evaluated by walking the tree: no Python
``eval``, no attribute access, bounded length, nesting, size and exponents. Every problem is an
:class:`ExpressionError` that says where in the text it is.

Supported: numbers, ``true``/``false``, names (``det.field``), ``+ - * / % **``, unary minus,
parentheses, ``< <= > >= == !=`` (chainable), ``and or not``, and the functions
``abs sqrt log exp sin cos min max mean sum where``. ``min``/``max`` of one argument reduce it
(NaN-aware), of several compare elementwise; ``mean``/``sum`` reduce, ignoring NaN.
"""

from ._evaluate import Expression, compile_expression
from ._lexer import MAX_DEPTH, MAX_EXPONENT, MAX_LENGTH, MAX_NODES, ExpressionError
from ._parser import FUNCTIONS

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_NODES",
    "Expression",
    "ExpressionError",
    "compile_expression",
]
