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
  one object may hold one key condition, and when one object holds one, every OR'ed object must
  hold that same one (Deta's SDK tests refuse `[{"age": 27}, {"key?lte": "k"}]` too).
- Size: at most 25 objects (Deta answered more with "Bad query"), and at most 25 conditions in
  one object (Deta set no documented number; ours keeps a query at 625 conditions), checked
  before any condition is read, so a query's cost per item is bounded.
- Every refusal is `BadQuery`: the API answers Deta's 400 `{"errors": ["Bad query"]}`, and the
  rule the query broke is its `detail`.

A query is compiled once per request (`prepare_query`): each distinct path is looked up once per
item, and each test is specialised to its value, so the common cases run at C speed (`in` on a
list, `==` on strings) rather than through `strict_equal` member by member.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from runtime.cloud.base.errors import BadQuery

Item = dict[str, Any]
Predicate = Callable[[Item], bool]

OPERATORS = frozenset(
    {"eq", "ne", "lt", "gt", "lte", "gte", "pfx", "r", "contains", "not_contains"}
)
ALIASES = {"!contains": "not_contains", "<": "lt", ">": "gt", "<=": "lte", ">=": "gte"}
ORDERING = frozenset({"lt", "gt", "lte", "gte"})
MAX_QUERY_OBJECTS = 25
MAX_OBJECT_CONDITIONS = 25

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


@dataclass(frozen=True)
class PreparedQuery:
    """A query compiled once: the test for an item and the keys it can match."""

    matches: Predicate
    key_range: KeyRange | None
    groups: list[list[Condition]]  # OR'ed groups of AND'ed conditions, as parsed


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
    """Validate a query; return its OR'ed groups of AND'ed conditions, or raise BadQuery."""
    if query is None:
        return []
    if isinstance(query, dict):
        query = [query]
    if not isinstance(query, list):
        raise BadQuery("A query must be a list of objects")
    check_query_size(query)
    groups = []
    for entry in query:
        if not isinstance(entry, dict):
            raise BadQuery("A query must be a list of objects")
        groups.append([_parse_condition(field, value) for field, value in entry.items()])
    _check_key_conditions(groups)
    return groups


def check_query_size(query: Any) -> None:
    """Refuse a query of more objects, or an object of more conditions, than the limits."""
    objects = [query] if isinstance(query, dict) else query
    if not isinstance(objects, list):
        return  # not a query at all: parse_query says so
    if len(objects) > MAX_QUERY_OBJECTS:
        raise BadQuery(
            f"A query may OR at most {MAX_QUERY_OBJECTS} objects; this one has {len(objects)}. "
            "Split it into several queries, or match a shared prefix or range instead.",
        )
    for number, entry in enumerate(objects):
        if isinstance(entry, dict) and len(entry) > MAX_OBJECT_CONDITIONS:
            raise BadQuery(
                f"A query object may hold at most {MAX_OBJECT_CONDITIONS} conditions; object "
                f"{number} has {len(entry)}; test the rest in the app's own code.",
            )


def _parse_condition(field: str, value: Any) -> Condition:
    name, mark, op = field.partition("?")
    if not mark:
        op = "eq"
    op = ALIASES.get(op, op)
    if op not in OPERATORS or (mark and op == "eq"):
        raise BadQuery(f'Invalid query operator "?{field.partition("?")[2]}" in "{field}"')
    path = tuple(name.split("."))
    if not all(path):
        raise BadQuery(f'Invalid field "{name}" in query: empty path segment')
    kv = kind(value)
    if kv == "other":
        raise BadQuery(f'Invalid value for "{field}" in query')
    if op in ORDERING and kv not in ("number", "string"):
        raise BadQuery(f'"{field}" needs a number or a string')
    if op == "pfx" and kv != "string":
        raise BadQuery(f'"{field}" needs a string')
    if op == "r" and not (
        kv == "list"
        and len(value) == 2
        and kind(value[0]) == kind(value[1])
        and kind(value[0]) in ("number", "string")
    ):
        raise BadQuery(f'"{field}" needs a list of two numbers or two strings')
    if path == ("key",):
        if op in ("contains", "not_contains"):
            raise BadQuery(f'"{field}": contains and not_contains are not supported on key')
        values = value if op == "r" else [value]
        if not all(isinstance(v, str) for v in values):
            raise BadQuery(f'"{field}": keys are strings, so the value must be a string')
    return Condition(field, path, op, value)


def _check_key_conditions(groups: list[list[Condition]]) -> None:
    """One condition on key per object; when any object has one, every object has that one."""
    keyed: list[Condition | None] = []
    for group in groups:
        on_key = [c for c in group if c.path == ("key",)]
        if len(on_key) > 1:
            raise BadQuery("A query object may hold only one condition on key")
        keyed.append(on_key[0] if on_key else None)
    first = next((c for c in keyed if c is not None), None)
    if first is None:
        return
    for number, condition in enumerate(keyed):
        if condition is None or (condition.op, condition.value) != (first.op, first.value):
            has = "none" if condition is None else json.dumps({condition.field: condition.value})
            raise BadQuery(
                f"every OR'ed object must hold the same condition on key (a query reads one "
                f"slice of keys): object {keyed.index(first)} holds "
                f"{json.dumps({first.field: first.value})}, object {number} has {has}; send one "
                "query per condition on key"
            )


def prepare_query(query: Any) -> PreparedQuery:
    """The query compiled once for a whole scan; raise BadQuery if it is invalid."""
    groups = parse_query(query)
    return PreparedQuery(_matcher(groups), _key_range(groups), groups)


def compile_query(query: Any) -> Predicate:
    """A predicate telling whether an item matches the query; raise BadQuery if invalid."""
    return prepare_query(query).matches


def _matcher(groups: list[list[Condition]]) -> Predicate:
    if not groups or any(not group for group in groups):
        return _always
    if len(groups) == 1 and len(groups[0]) == 1:
        (only,) = groups[0]
        path, test = only.path, _test(only)
        return lambda item: test(lookup(item, path))
    # Each path is looked up once per item, however many conditions read it.
    paths = list(dict.fromkeys(c.path for group in groups for c in group))
    slot = {path: number for number, path in enumerate(paths)}
    compiled = [[(slot[c.path], _test(c)) for c in group] for group in groups]

    def match(item: Item) -> bool:
        values = [lookup(item, path) for path in paths]
        for group in compiled:
            for number, test in group:
                if not test(values[number]):
                    break
            else:
                return True
        return False

    return match


def _always(item: Item) -> bool:
    return True


def _test(condition: Condition) -> Callable[[Any], bool]:
    return _TESTS[condition.op](condition.value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _eq(want: Any) -> Callable[[Any], bool]:
    # One test per kind of value; `_MISSING` fails every one of them.
    if want is None or isinstance(want, bool):
        return lambda got: got is want
    if isinstance(want, str):
        return lambda got: isinstance(got, str) and got == want
    if _is_number(want):
        return lambda got: _is_number(got) and got == want
    # A list or an object: Python's `==` (C, deep) first; it also holds for `True == 1`, so the
    # strict comparison settles the few that pass it.
    return lambda got: got is not _MISSING and got == want and strict_equal(got, want)


def _ne(want: Any) -> Callable[[Any], bool]:
    eq = _eq(want)
    return lambda got: not eq(got)


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Callable[[Any], bool]]:
    def build(want: Any) -> Callable[[Any], bool]:
        if isinstance(want, str):
            return lambda got: isinstance(got, str) and compare(got, want)
        return lambda got: _is_number(got) and compare(got, want)

    return build


def _range(want: list[Any]) -> Callable[[Any], bool]:
    lo, hi = want
    if isinstance(lo, str):
        return lambda got: isinstance(got, str) and lo <= got <= hi
    return lambda got: _is_number(got) and lo <= got <= hi


def _pfx(want: str) -> Callable[[Any], bool]:
    return lambda got: isinstance(got, str) and got.startswith(want)


def _contains(want: Any) -> Callable[[Any], bool]:
    member = _member_test(want)

    def test(got: Any) -> bool:
        if isinstance(got, str):
            return isinstance(want, str) and want in got
        if isinstance(got, list):
            return member(got)
        return False

    return test


def _member_test(want: Any) -> Callable[[list[Any]], bool]:
    """Whether a list holds a member strictly equal to `want`, without a Python-level loop for
    strings, null, booleans and numbers."""
    if want is None or isinstance(want, str):
        return lambda got: want in got  # only a string equals a string, only null null
    if isinstance(want, bool):
        return lambda got: any(map(operator.is_, got, repeat(want)))
    if _is_number(want):
        if want not in (0, 1):
            return lambda got: want in got  # no boolean equals it

        # `True == 1` and `False == 0`: a number is there if more members equal it than the
        # booleans that do.
        twin = bool(want)
        return lambda got: got.count(want) > sum(map(operator.is_, got, repeat(twin)))
    return lambda got: want in got and any(strict_equal(member, want) for member in got)


def _not_contains(want: Any) -> Callable[[Any], bool]:
    contains = _contains(want)
    return lambda got: not contains(got)


_TESTS: dict[str, Callable[[Any], Callable[[Any], bool]]] = {
    "eq": _eq,
    "ne": _ne,
    "lt": _ordered(operator.lt),
    "gt": _ordered(operator.gt),
    "lte": _ordered(operator.le),
    "gte": _ordered(operator.ge),
    "r": _range,
    "pfx": _pfx,
    "contains": _contains,
    "not_contains": _not_contains,
}


def key_range(query: Any) -> KeyRange | None:
    """The key bounds a valid query implies, or None when any key may match."""
    return _key_range(parse_query(query))


def _key_range(groups: list[list[Condition]]) -> KeyRange | None:
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
