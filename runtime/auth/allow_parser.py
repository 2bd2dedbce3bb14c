"""The `allow` language: a tokenizer and recursive-descent parser, text -> allow.py nodes."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from runtime.auth.allow import (
    MAX_DEPTH,
    And,
    Const,
    Equals,
    Expr,
    ExpressionError,
    InGroup,
    Not,
    Or,
    Str,
    Text,
    Var,
)

_TOKEN = re.compile(
    r"(?P<space>\s+)|(?P<op>==|!=|&&|\|\||!|\(|\))"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_.-]*)?)|(?P<quote>[\"'])"
)
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}
_NAMES = ("clientType", "user", "groups.NAME", "true", "false")
_WORD_HINTS = {
    "and": "use && for and",
    "or": "use || for or",
    "not": "use ! for not",
    "null": "compare with a text instead; a missing value equals nothing",
    "none": "compare with a text instead; a missing value equals nothing",
}
_CHAR_HINTS = {"=": "use == to compare", "&": "use && for and", "|": "use || for or"}

Token = tuple[str, str, int]  # kind ("op", "name", "text", "end"), text or value, column


def _tokens(source: str) -> list[Token]:
    out: list[Token] = []
    pos, end = 0, len(source)
    while pos < end:
        m = _TOKEN.match(source, pos)
        if m is None:
            char = source[pos]
            hint = _CHAR_HINTS.get(char)
            raise ExpressionError(
                f"unexpected {char!r}" + (f"; {hint}" if hint else ""), pos + 1, source=source
            )
        kind = m.lastgroup
        if kind == "quote":
            pos = _string(source, pos, out)
            continue
        if kind != "space":
            out.append((kind or "", m.group(), pos + 1))
        pos = m.end()
    out.append(("end", "", end + 1))
    return out


def _string(source: str, start: int, out: list[Token]) -> int:
    quote, pos = source[start], start + 1
    chars: list[str] = []
    while pos < len(source):
        char = source[pos]
        if char == quote:
            out.append(("text", "".join(chars), start + 1))
            return pos + 1
        if char == "\\":
            escaped = _ESCAPES.get(source[pos + 1 : pos + 2])
            if escaped is None:
                raise ExpressionError(
                    f"unknown escape {source[pos : pos + 2]!r} in a string; "
                    "use \\\\, \\\", \\', \\n or \\t",
                    pos + 1,
                    source=source,
                )
            chars.append(escaped)
            pos += 2
            continue
        chars.append(char)
        pos += 1
    raise ExpressionError(f"this string has no closing {quote}", start + 1, source=source)


def _unknown_name(name: str, column: int, source: str) -> ExpressionError:
    if name.lower() in _WORD_HINTS:
        return ExpressionError(
            f'unknown name "{name}"; {_WORD_HINTS[name.lower()]}', column, source=source
        )
    if name == "groups" or name == "groups.":
        return ExpressionError(
            "write groups.NAME to ask whether the user is in group NAME", column, source=source
        )
    lowered = {n.lower(): n for n in _NAMES}
    close = (
        [lowered[name.lower()]]
        if name.lower() in lowered
        else difflib.get_close_matches(
            name.split(".")[0] + (".NAME" if "." in name else ""), _NAMES, n=1, cutoff=0.6
        )
    )
    if close == ["groups.NAME"] and "." in name and name.split(".", 1)[1]:
        close = ["groups." + name.split(".", 1)[1]]
    suggestion = f'; did you mean "{close[0]}"?' if close else ""
    return ExpressionError(
        f'unknown name "{name}"{suggestion} (known: clientType, user, groups.NAME, true, false)',
        column,
        source=source,
    )


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokens(source)
        self.pos = 0
        self.depth = 0

    def error(self, message: str, column: int) -> ExpressionError:
        return ExpressionError(message, column, source=self.source)

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def boolean(self, node: Text | Expr, column: int, role: str) -> Expr:
        if isinstance(node, Expr):
            return node
        example = f'{node} == "..."' if isinstance(node, Var) else f"clientType == {node}"
        raise self.error(
            f"{role} needs true/false, but {node} is text; compare it: {example}", column
        )

    def parse(self) -> Expr:
        kind, _, column = self.peek()
        if kind == "end":
            raise self.error("the expression is empty", column)
        node = self.boolean(*self.or_(), role="the expression")
        kind, text, column = self.peek()
        if kind != "end":
            hint = _WORD_HINTS.get(text.lower(), "") if kind == "name" else ""
            message = f"unexpected {text!r} after a complete expression"
            raise self.error(f"{message}; {hint}" if hint else message, column)
        return node

    def or_(self) -> tuple[Text | Expr, int]:
        return self.chain("||", self.and_, Or)

    def and_(self) -> tuple[Text | Expr, int]:
        return self.chain("&&", self.compare, And)

    def chain(
        self, op: str, operand: Callable[[], tuple[Text | Expr, int]], kind: type[And | Or]
    ) -> tuple[Text | Expr, int]:
        first, column = operand()
        if self.peek()[1] != op or self.peek()[0] != "op":
            return first, column
        items = [self.boolean(first, column, f"{op}")]
        while self.peek()[0] == "op" and self.peek()[1] == op:
            self.take()
            node, at = operand()
            items.append(self.boolean(node, at, op))
        return kind(tuple(items)), column

    def compare(self) -> tuple[Text | Expr, int]:
        left, column = self.unary()
        kind, op, at = self.peek()
        if kind != "op" or op not in ("==", "!="):
            return left, column
        self.take()
        right, right_at = self.unary()
        if isinstance(left, Text) != isinstance(right, Text):
            raise self.error(
                f"{op} compares text with text or true/false with true/false, "
                f"not {left} with {right}",
                at,
            )
        kind2, op2, at2 = self.peek()
        if kind2 == "op" and op2 in ("==", "!="):
            raise self.error("comparisons do not chain; add parentheses", at2)
        return Equals(left, right, negated=op == "!="), column

    def nest(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the expression nests deeper than {MAX_DEPTH} levels", column)

    def unary(self) -> tuple[Text | Expr, int]:
        kind, text, column = self.peek()
        if kind == "op" and text == "!":
            self.take()
            self.nest(column)
            operand, at = self.unary()
            self.depth -= 1
            return Not(self.boolean(operand, at, "!")), column
        return self.atom()

    def atom(self) -> tuple[Text | Expr, int]:
        kind, text, column = self.take()
        if kind == "text":
            return Str(text), column
        if kind == "name":
            if text in ("clientType", "user"):
                return Var(text), column  # type: ignore[arg-type]
            if text in ("true", "false"):
                return Const(text == "true"), column
            if text.startswith("groups.") and len(text) > len("groups."):
                return InGroup(text[len("groups.") :]), column
            raise _unknown_name(text, column, self.source)
        if kind == "op" and text == "(":
            self.nest(column)
            node, _ = self.or_()
            self.depth -= 1
            close_kind, close, at = self.take()
            if close_kind != "op" or close != ")":
                found = f"{close!r}" if close_kind != "end" else "the end"
                raise self.error(f"expected ) to close the ( at column {column}, found {found}", at)
            return node, column
        found = "the end of the expression" if kind == "end" else repr(text)
        raise self.error(f"expected a value, a name or ( but found {found}", column)


def parse_allow(text: str) -> Expr:
    """Parse an `allow` expression once into a tree, or raise ExpressionError."""
    return _Parser(text).parse()
