"""The `allow` rule language of route rules: its tree of frozen nodes and their evaluation.

Names `clientType`, `user`, `groups.NAME`, `true`, `false`; string literals in single or double
quotes (a backslash escapes a backslash or a quote; backslash-n and backslash-t are a newline and
a tab); `==`, `!=`, `&&`, `||`, `!` and parentheses, with precedence `!` > `==`/`!=` > `&&` > `||`.
An expression is parsed once, at load time, into a tree of frozen nodes; types are checked then:

- `==` and `!=` compare text with text or true/false with true/false, and do not chain;
  `&&`, `||` and `!` take true/false only (`clientType && x` is an error with a hint).
- Null (a session's `clientType`, a key's `user`) equals nothing, not even null, and `a != b` is
  always `!(a == b)`: `clientType != "guest"` is true for a session.
- Nesting deeper than MAX_DEPTH (parentheses and `!`) is an error, not a RecursionError; `&&` and
  `||` chains are flat lists, so long ones cost no depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from runtime.errors import SpaceDevError

MAX_DEPTH = 100


class ExpressionError(SpaceDevError):
    """An `allow` expression that does not parse: what, at which column (1-based), and where."""

    def __init__(
        self,
        message: str,
        column: int,
        *,
        source: str = "",
        line: int | None = None,
        where: str = "",
    ) -> None:
        self.reason = message
        self.column = column
        self.source = source
        self.line = line
        self.where = where
        place = f"line {line}: " if line is not None else ""
        place += f"{where}: " if where else ""
        shown = source.replace("\n", " ").replace("\t", " ")  # keep the caret under its column
        hint = f"  {shown}\n  {' ' * (column - 1)}^" if source else ""
        super().__init__(f"{place}allow expression, column {column}: {message}", hint)


# --- the expression tree -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """What an expression sees of the caller."""

    client_type: str | None = None
    user: str | None = None
    groups: frozenset[str] = frozenset()


class Expr:
    """A parsed true/false expression."""

    __slots__ = ()

    def evaluate(self, ctx: Context) -> bool:
        """Whether the caller described by ctx passes."""
        raise NotImplementedError

    def mentions_user(self) -> bool:
        """Whether `user` appears anywhere in the expression."""
        return False


class Text:
    """A text-valued term: a literal or a variable (`clientType`, `user`), possibly null."""

    __slots__ = ()

    def value(self, ctx: Context) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Str(Text):
    text: str

    def value(self, ctx: Context) -> str | None:
        return self.text

    def __str__(self) -> str:
        return '"' + self.text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Var(Text):
    name: Literal["clientType", "user"]

    def value(self, ctx: Context) -> str | None:
        return ctx.client_type if self.name == "clientType" else ctx.user

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Const(Expr):
    truth: bool

    def evaluate(self, ctx: Context) -> bool:
        return self.truth

    def __str__(self) -> str:
        return "true" if self.truth else "false"


@dataclass(frozen=True, slots=True)
class InGroup(Expr):
    group: str

    def evaluate(self, ctx: Context) -> bool:
        return self.group in ctx.groups

    def __str__(self) -> str:
        return f"groups.{self.group}"


@dataclass(frozen=True, slots=True)
class Not(Expr):
    operand: Expr

    def evaluate(self, ctx: Context) -> bool:
        return not self.operand.evaluate(ctx)

    def mentions_user(self) -> bool:
        return self.operand.mentions_user()

    def __str__(self) -> str:
        return f"(!{self.operand})"


@dataclass(frozen=True, slots=True)
class And(Expr):
    operands: tuple[Expr, ...]

    def evaluate(self, ctx: Context) -> bool:
        return all(o.evaluate(ctx) for o in self.operands)

    def mentions_user(self) -> bool:
        return any(o.mentions_user() for o in self.operands)

    def __str__(self) -> str:
        return "(" + " && ".join(map(str, self.operands)) + ")"


@dataclass(frozen=True, slots=True)
class Or(Expr):
    operands: tuple[Expr, ...]

    def evaluate(self, ctx: Context) -> bool:
        return any(o.evaluate(ctx) for o in self.operands)

    def mentions_user(self) -> bool:
        return any(o.mentions_user() for o in self.operands)

    def __str__(self) -> str:
        return "(" + " || ".join(map(str, self.operands)) + ")"


@dataclass(frozen=True, slots=True)
class Equals(Expr):
    """`==` (or `!=` when negated) between two text terms or two true/false expressions."""

    left: Text | Expr
    right: Text | Expr
    negated: bool = False

    def evaluate(self, ctx: Context) -> bool:
        left, right = self.left, self.right
        if isinstance(left, Text) and isinstance(right, Text):
            a, b = left.value(ctx), right.value(ctx)
            same = a is not None and b is not None and a == b
        else:
            same = left.evaluate(ctx) == right.evaluate(ctx)  # type: ignore[union-attr]
        return same != self.negated

    def mentions_user(self) -> bool:
        return any(
            (isinstance(t, Var) and t.name == "user") or (isinstance(t, Expr) and t.mentions_user())
            for t in (self.left, self.right)
        )

    def __str__(self) -> str:
        return f"({self.left} {'!=' if self.negated else '=='} {self.right})"
