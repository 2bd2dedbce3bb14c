"""Deta Base queries: the JSON query language compiled into a predicate over items.

A query is a list of objects whose results are OR'ed; the fields of one object are AND'ed; an
empty list (or None, or `[{}]`) matches every item. A field is a dotted path (`a.b.c` reaches into
nested objects, never into lists) optionally followed by `?op`.

Decisions where Deta's documentation is silent, kept in one place:
- Types are strict, as JSON has them: a number never equals or orders against a string, `true` is
  not `1`, and `[1]` is not `[true]`. Ordering (`?lt ?gt ?lte ?gte ?r`) needs two numbers or two
  strings; strings order by code point, which is also UTF-8 byte order, the order of keys.
- A missing field (or a path through a non-object) matches nothing, except that `?ne` and
  `?not_contains` are the exact negations of equality and `?contains`, so they match it.
- `?contains` is a substring test when both sides are strings and a membership test (with the
  same strict equality) when the field is a list; anything else is no match. Deta documented list
  membership for strings only; other values are allowed here rather than refused.
- A field is split at its first `?`; an unknown operator is a 400, never a silent equality test.
- On `key`, as Deta documents: values must be strings, `?contains`/`?not_contains` are refused,
  one object may hold one key condition, and all objects that hold one must hold the same one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.cloud.base.errors import BaseError

Item = dict[str, Any]
Predicate = Callable[[Item], bool]

OPERATORS = frozenset(
    {"eq", "ne", "lt", "gt", "lte", "gte", "pfx", "r", "contains", "not_contains"}
)
ALIASES = {"!contains": "not_contains", "<": "lt", ">": "gt", "<=": "lte", ">=": "gte"}
ORDERING = frozenset({"lt", "gt", "lte", "gte"})

_MISSING: Any = object()


@dataclass(frozen=True)
class Condition:
    """One field of a query object: the path, the operator ("eq" when none) and the value."""

    field: str  # as written, for messages
    path: tuple[str, ...]
    op: str
    value: Any


@dataclass(frozen=True)
class KeyRange:
    """Bounds every matching key lies within, so storage can read only that slice of keys."""

    lo: str | None = None
    lo_inclusive: bool = True
    hi: str | None = None
    hi_inclusive: bool = True


def kind(value: Any) -> str:
    """The JSON type of a value, with bool apart from number."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "other"


def strict_equal(a: Any, b: Any) -> bool:
    """JSON equality: deep for lists and objects, never across types (Python has `True == 1`)."""
    ka = kind(a)
    if ka != kind(b):
        return False
    if ka == "list":
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "object":
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def lookup(item: Item, path: tuple[str, ...]) -> Any:
    """The value at a dotted path, or `_MISSING` when a step is absent or not an object."""
    value: Any = item
    for part in path:
        if not isinstance(value, dict):
            return _MISSING
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def parse_query(query: Any) -> list[list[Condition]]:
    """Validate a query and return its OR'ed groups of AND'ed conditions; raise a 400 if invalid."""
    if query is None:
        return []
    if isinstance(query, dict):
        query = [query]
    if not isinstance(query, list):
        raise BaseError(400, "A query must be a list of objects")
    groups = []
    for entry in query:
        if not isinstance(entry, dict):
            raise BaseError(400, "A query must be a list of objects")
        groups.append([_parse_condition(field, value) for field, value in entry.items()])
    _check_key_conditions(groups)
    return groups


def _parse_condition(field: str, value: Any) -> Condition:
    name, mark, op = field.partition("?")
    if not mark:
        op = "eq"
    op = ALIASES.get(op, op)
    if op not in OPERATORS or (mark and op == "eq"):
        raise BaseError(400, f'Invalid query operator "?{field.partition("?")[2]}" in "{field}"')
    path = tuple(name.split("."))
    if not all(path):
        raise BaseError(400, f'Invalid field "{name}" in query: empty path segment')
    kv = kind(value)
    if kv == "other":
        raise BaseError(400, f'Invalid value for "{field}" in query')
    if op in ORDERING and kv not in ("number", "string"):
        raise BaseError(400, f'"{field}" needs a number or a string')
    if op == "pfx" and kv != "string":
        raise BaseError(400, f'"{field}" needs a string')
    if op == "r" and not (
        kv == "list" and len(value) == 2 and kind(value[0]) == kind(value[1])
        and kind(value[0]) in ("number", "string")
    ):
        raise BaseError(400, f'"{field}" needs a list of two numbers or two strings')
    if path == ("key",):
        if op in ("contains", "not_contains"):
            raise BaseError(400, f'"{field}": contains and not_contains are not supported on key')
        values = value if op == "r" else [value]
        if not all(isinstance(v, str) for v in values):
            raise BaseError(400, f'"{field}": keys are strings, so the value must be a string')
    return Condition(field, path, op, value)


def _check_key_conditions(groups: list[list[Condition]]) -> None:
    seen: tuple[str, Any] | None = None
    for group in groups:
        keyed = [c for c in group if c.path == ("key",)]
        if len(keyed) > 1:
            raise BaseError(400, "A query object may hold only one condition on key")
        if keyed:
            this = (keyed[0].op, keyed[0].value)
            if seen is not None and seen != this:
                raise BaseError(400, "OR'ed queries with different conditions on key are "
                                "not supported")
            seen = this


def compile_query(query: list[dict[str, Any]] | dict[str, Any] | None) -> Predicate:
    """A predicate telling whether an item matches the query; raise BaseError(400) if invalid."""
    groups = [[_compile(c) for c in group] for group in parse_query(query)]
    if not groups or any(not group for group in groups):
        return _always
    if len(groups) == 1 and len(groups[0]) == 1:
        return groups[0][0]

    def match(item: Item) -> bool:
        return any(all(test(item) for test in group) for group in groups)

    return match


def _always(item: Item) -> bool:
    return True


def _compile(condition: Condition) -> Predicate:
    path, op, want = condition.path, condition.op, condition.value
    test = _TESTS[op](want)

    def check(item: Item) -> bool:
        return test(lookup(item, path))

    return check


def _eq(want: Any) -> Callable[[Any], bool]:
    return lambda got: got is not _MISSING and strict_equal(got, want)


def _ne(want: Any) -> Callable[[Any], bool]:
    return lambda got: got is _MISSING or not strict_equal(got, want)


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Callable[[Any], bool]]:
    def build(want: Any) -> Callable[[Any], bool]:
        want_kind = kind(want)
        return lambda got: kind(got) == want_kind and compare(got, want)

    return build


def _range(want: list[Any]) -> Callable[[Any], bool]:
    lo, hi = want
    want_kind = kind(lo)
    return lambda got: kind(got) == want_kind and lo <= got <= hi


def _pfx(want: str) -> Callable[[Any], bool]:
    return lambda got: isinstance(got, str) and got.startswith(want)


def _contains(want: Any) -> Callable[[Any], bool]:
    def test(got: Any) -> bool:
        if isinstance(got, str):
            return isinstance(want, str) and want in got
        if isinstance(got, list):
            return any(strict_equal(member, want) for member in got)
        return False

    return test


def _not_contains(want: Any) -> Callable[[Any], bool]:
    contains = _contains(want)
    return lambda got: not contains(got)


_TESTS: dict[str, Callable[[Any], Callable[[Any], bool]]] = {
    "eq": _eq,
    "ne": _ne,
    "lt": _ordered(lambda a, b: a < b),
    "gt": _ordered(lambda a, b: a > b),
    "lte": _ordered(lambda a, b: a <= b),
    "gte": _ordered(lambda a, b: a >= b),
    "r": _range,
    "pfx": _pfx,
    "contains": _contains,
    "not_contains": _not_contains,
}


def key_range(query: list[dict[str, Any]] | dict[str, Any] | None) -> KeyRange | None:
    """The key bounds a valid query implies, or None when any key may match."""
    groups = parse_query(query)
    keyed = [next((c for c in group if c.path == ("key",)), None) for group in groups]
    if not keyed or any(c is None for c in keyed):
        return None
    condition = keyed[0]
    assert condition is not None
    op, value = condition.op, condition.value
    if op == "eq":
        return KeyRange(value, True, value, True)
    if op == "pfx":
        return KeyRange(value, True, prefix_end(value), False) if value else None
    if op == "r":
        return KeyRange(value[0], True, value[1], True)
    if op in ("gt", "gte"):
        return KeyRange(lo=value, lo_inclusive=op == "gte")
    if op in ("lt", "lte"):
        return KeyRange(hi=value, hi_inclusive=op == "lte")
    return None  # ?ne


def prefix_end(prefix: str) -> str | None:
    """The least string greater than every string starting with `prefix` (None if none is)."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be stored; skip past them
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None
