"""Spreadsheet formulas: a lark grammar (no ``eval``), exact ``Decimal`` arithmetic.

``parse(text)`` gives a :class:`Formula` (its tree and the cells it reads, ranges
expanded); ``Formula.evaluate(lookup)`` computes it against the other cells' values.
Errors are values, as in a spreadsheet: ``#DIV/0!``, ``#VALUE!``, ``#NAME?``, ``#NUM!``,
``#CYCLE``; a formula reading a cell in error takes that error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from functools import cache

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

GRAMMAR = r"""
?start: "=" comparison
?comparison: sum
    | sum COMPARE sum               -> compare
?sum: product
    | sum "+" product               -> add
    | sum "-" product               -> sub
?product: power
    | product "*" power             -> mul
    | product "/" power             -> div
?power: unary
    | unary "^" power               -> pow
?unary: atom
    | "-" unary                     -> neg
    | "+" unary
?atom: NUMBER                       -> number
    | NAME                          -> cell
    | NAME ":" NAME                 -> range
    | NAME "(" [comparison ("," comparison)*] ")" -> call
    | "(" comparison ")"
COMPARE: ">=" | "<=" | "<>" | "=" | ">" | "<"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
%import common.WS
%ignore WS
"""

MAX_RANGE_CELLS = 100_000
"""A range, or a formula's cells in all, larger than this is refused when it is stored."""

FUNCTIONS = frozenset({"SUM", "AVG", "AVERAGE", "MIN", "MAX", "ROUND", "IF"})
_CELL = re.compile(r"^([A-Z]{1,3})([1-9][0-9]{0,6})$")
_PRECISION = 50
"""Significant digits of every operation: sums and products of stored numbers are exact."""

Value = Decimal | bool | None
"""A cell's value: a number, a comparison's result, or None (an empty cell)."""


class FormulaSyntaxError(ValueError):
    """A formula that cannot be stored (bad syntax, unknown function, huge range)."""


class CellError(Exception):
    """A spreadsheet error value (``#DIV/0!`` ...) raised while evaluating."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", maybe_placeholders=True)


def normalise_ref(ref: str) -> str:
    """``ref`` upper-cased if it names a cell (``a1`` -> ``A1``); ValueError otherwise."""
    upper = ref.strip().upper()
    if not _CELL.match(upper):
        raise ValueError(f"{ref!r} is not a cell reference like A1 or BC12")
    return upper


def column_number(letters: str) -> int:
    """``A`` -> 1, ``Z`` -> 26, ``AA`` -> 27."""
    number = 0
    for char in letters:
        number = number * 26 + ord(char) - 64
    return number


def column_letters(number: int) -> str:
    """The inverse of :func:`column_number`."""
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def expand_range(first: str, last: str) -> list[str]:
    """Every cell of the rectangle ``first:last``, row by row."""
    a, b = _CELL.match(first), _CELL.match(last)
    assert a and b
    cols = sorted((column_number(a[1]), column_number(b[1])))
    rows = sorted((int(a[2]), int(b[2])))
    size = (cols[1] - cols[0] + 1) * (rows[1] - rows[0] + 1)
    if size > MAX_RANGE_CELLS:
        raise FormulaSyntaxError(
            f"range {first}:{last} has {size} cells (at most {MAX_RANGE_CELLS})"
        )
    return [
        f"{column_letters(c)}{r}"
        for r in range(rows[0], rows[1] + 1)
        for c in range(cols[0], cols[1] + 1)
    ]


@dataclass(frozen=True)
class Formula:
    """A parsed formula: its text, tree and the cells it reads."""

    text: str
    tree: Tree[Token]
    references: tuple[str, ...]

    def evaluate(self, lookup: Callable[[str], Value]) -> Decimal:
        """The formula's value; ``lookup(ref)`` gives another cell's value (raising
        :class:`CellError` for a cell in error). Raises :class:`CellError`."""
        with localcontext() as context:
            context.prec = _PRECISION
            try:
                return _number(_Evaluator(lookup).eval(self.tree))
            except (InvalidOperation, OverflowError):
                raise CellError("#NUM!") from None


def parse(text: str) -> Formula:
    """Parse ``=...``; :class:`FormulaSyntaxError` names what is wrong and where."""
    source = text.strip()
    if not source.startswith("="):
        raise FormulaSyntaxError("a formula starts with '=', e.g. =SUM(A1:A3)*2")
    try:
        tree = _parser().parse(source)
    except UnexpectedInput as exc:
        raise FormulaSyntaxError(
            f"formula syntax error at column {exc.column}: {source[:80]!r}"
        ) from None
    except LarkError as exc:
        raise FormulaSyntaxError(f"formula syntax error: {exc}") from None
    tree = tree if isinstance(tree, Tree) else Tree("number", [tree])
    return Formula(source, tree, _bounded_references(tree))


def _bounded_references(tree: Tree[Token]) -> tuple[str, ...]:
    """The distinct cells read, refused beyond :data:`MAX_RANGE_CELLS` in all: each one is
    a stored dependency row, and many ranges each under the limit would add up."""
    seen: dict[str, None] = {}
    for ref in _references(tree):
        seen[ref] = None
        if len(seen) > MAX_RANGE_CELLS:
            raise FormulaSyntaxError(
                f"a formula reads {MAX_RANGE_CELLS:,} cells at most (ranges included)"
            )
    return tuple(seen)


def _references(tree: Tree[Token]) -> Iterator[str]:
    """The cells a tree reads (ranges expanded); unknown functions and names refused."""
    for node in tree.iter_subtrees():
        if node.data == "cell":
            yield _cell_name(node.children[0])
        elif node.data == "range":
            yield from expand_range(_cell_name(node.children[0]), _cell_name(node.children[1]))
        elif node.data == "call":
            name = str(node.children[0]).upper()
            if name not in FUNCTIONS:
                raise FormulaSyntaxError(
                    f"unknown function {name}: use {', '.join(sorted(FUNCTIONS))}"
                )


def _cell_name(token: Tree[Token] | Token | None) -> str:
    try:
        return normalise_ref(str(token))
    except ValueError:
        raise FormulaSyntaxError(f"{token} is not a cell reference like A1") from None


def _number(value: Value) -> Decimal:
    """A value in arithmetic: empty is 0, TRUE is 1."""
    if value is None:
        return Decimal(0)
    if isinstance(value, bool):
        return Decimal(int(value))
    return value


class _Evaluator:
    """Walks a formula tree; IF evaluates only the branch it takes."""

    def __init__(self, lookup: Callable[[str], Value]) -> None:
        self.lookup = lookup

    def eval(self, node: Tree[Token] | Token | None) -> Value:
        if isinstance(node, Token) or node is None:
            raise CellError("#VALUE!")
        handler = getattr(self, f"_{node.data}", None)
        if handler is None:  # a passthrough rule ("+" unary, parentheses)
            return self.eval(node.children[0])
        result: Value = handler(*node.children)
        return result

    def _number(self, token: Token) -> Value:
        return Decimal(str(token))

    def _cell(self, token: Token) -> Value:
        return self.lookup(_cell_name(token))

    def _range(self, first: Token, last: Token) -> Value:
        raise CellError("#VALUE!")  # a range only means something inside a function

    def _neg(self, a: Tree[Token]) -> Value:
        return -_number(self.eval(a))

    def _add(self, a: Tree[Token], b: Tree[Token]) -> Value:
        return _number(self.eval(a)) + _number(self.eval(b))

    def _sub(self, a: Tree[Token], b: Tree[Token]) -> Value:
        return _number(self.eval(a)) - _number(self.eval(b))

    def _mul(self, a: Tree[Token], b: Tree[Token]) -> Value:
        return _number(self.eval(a)) * _number(self.eval(b))

    def _div(self, a: Tree[Token], b: Tree[Token]) -> Value:
        numerator, denominator = _number(self.eval(a)), _number(self.eval(b))
        if denominator == 0:
            raise CellError("#DIV/0!")
        return numerator / denominator

    def _pow(self, a: Tree[Token], b: Tree[Token]) -> Value:
        base, exponent = _number(self.eval(a)), _number(self.eval(b))
        if base == 0 and exponent < 0:
            raise CellError("#DIV/0!")
        if base < 0 and exponent != exponent.to_integral_value():
            raise CellError("#NUM!")
        return base**exponent

    def _compare(self, a: Tree[Token], op: Token, b: Tree[Token]) -> Value:
        left, right = _number(self.eval(a)), _number(self.eval(b))
        return {
            "=": left == right,
            "<>": left != right,
            "<": left < right,
            ">": left > right,
            "<=": left <= right,
            ">=": left >= right,
        }[str(op)]

    def _call(self, name: Token, *args: Tree[Token] | None) -> Value:
        function = str(name).upper()
        present = [a for a in args if a is not None]
        if function == "IF":
            return self._if(present)
        if function == "ROUND":
            return self._round(present)
        values = [v for a in present for v in self._spread(a) if v is not None]
        numbers = [_number(v) for v in values]
        if function == "SUM":
            return sum(numbers, Decimal(0))
        if function in ("AVG", "AVERAGE"):
            if not numbers:
                raise CellError("#DIV/0!")
            return sum(numbers, Decimal(0)) / len(numbers)
        if function == "MIN":
            return min(numbers, default=Decimal(0))
        if function == "MAX":
            return max(numbers, default=Decimal(0))
        raise CellError("#NAME?")

    def _spread(self, node: Tree[Token]) -> list[Value]:
        """An argument's values: every cell of a range, or the one value."""
        if node.data == "range":
            first, last = (_cell_name(c) for c in node.children)
            return [self.lookup(ref) for ref in expand_range(first, last)]
        return [self.eval(node)]

    def _if(self, args: list[Tree[Token]]) -> Value:
        if len(args) not in (2, 3):
            raise CellError("#VALUE!")
        if _number(self.eval(args[0])) != 0:
            return self.eval(args[1])
        return self.eval(args[2]) if len(args) == 3 else False

    def _round(self, args: list[Tree[Token]]) -> Value:
        if len(args) not in (1, 2):
            raise CellError("#VALUE!")
        digits = int(_number(self.eval(args[1]))) if len(args) == 2 else 0
        exponent = Decimal(1).scaleb(-digits)
        return _number(self.eval(args[0])).quantize(exponent, rounding=ROUND_HALF_UP)
