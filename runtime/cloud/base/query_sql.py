"""Deta Base queries as an SQL pre-filter: a condition SQLite tests on the stored JSON text, true
for every item the query matches, so only the items it lets through are read and tested in Python.

The filter may let through items the query does not match (the Python test settles them), never
the reverse, so it never changes an answer. Each condition gives two fragments over the row's
`value` (the item as ASCII JSON, as `store._encode` writes it):

- `maybe`: true whenever the condition holds (None when nothing cheap is known: always true).
- `surely`: true only when the condition holds (None: never known), used for the negations
  `?ne` and `?not_contains`, which are then `NOT surely`.

What makes them safe:
- Strings are found in the raw text first: JSON escapes each character on its own, so a string
  equal to, starting with or containing `s` is stored with `s`'s escaped text inside it. `instr`
  is a byte search, much cheaper than reading the JSON.
- Types come from `json_type`, which tells `true` from `1` and `1` from `"1"`; a missing field or
  a path through a non-object is NULL there, read as no type, so no fragment is ever NULL (NOT
  stays a negation) and SQLite stops at the first false part of an AND (a NULL would have it
  compute every part).
- A path is handed to SQLite only when its segments are printable ASCII without `"` or `\\`:
  SQLite compares a path's labels with the keys as written in the text, and only such keys are
  written as they are.
- Numbers are compared with a margin (SQLite parses decimal text its own way; Python's int is
  unbounded), strings decoded by SQLite only where a NUL (SQLite stops at it) or a surrogate
  escape cannot be in the item.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from runtime.cloud.base.query import Condition

_PLAIN_SEGMENT = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]+")  # printable ASCII but `"` and `\`
_NUL = "\\u0000"  # as the stored text escapes it
_SURROGATE = "\\ud"  # the start of every escaped surrogate (and of U+D000-U+D7FF, harmlessly)
_INT_EXACT = 2**53
_NUMBER = "ifnull(json_type(value, ?), '') IN ('integer', 'real')"
_TEXT = "ifnull(json_type(value, ?), '') = 'text'"


@dataclass
class Fragment:
    """SQL text with its `?` parameters, in order."""

    sql: str
    params: list[Any] = field(default_factory=list)


def prefilter(groups: list[list[Condition]]) -> Fragment | None:
    """The pre-filter of a parsed query (OR of ANDs), or None when it would let every item
    through (no cheap test is known, or the query matches everything)."""
    if not groups or any(not group for group in groups):
        return None
    if not all(_bindable(c.value) for group in groups for c in group):
        return None  # a lone surrogate: SQLite cannot be handed the text
    ored = []
    for group in groups:
        anded = [f for f in (maybe(c) for c in group) if f is not None]
        if not anded:
            return None  # this object may match anything, so the whole query may
        ored.append(_join(anded, " AND "))
    return _join(ored, " OR ")


def maybe(condition: Condition) -> Fragment | None:
    """True for every item the condition matches (None: no cheap test, always true)."""
    op, want = condition.op, condition.value
    path = json_path(condition.path)
    if op == "ne":
        sure = _surely_equal(path, want)
        return None if sure is None else _not(sure)
    if op == "not_contains":
        sure = _surely_contains(path, want)
        return None if sure is None else _not(sure)
    if op == "eq":
        found = _maybe_equal(path, want)
    elif op == "pfx":
        found = _all(_text_in_value('"' + _escaped(want)), _typed(path, "text"))
    elif op == "contains":
        found = _maybe_contains(path, want)
    else:  # ordering and ?r
        low, high = (want[0], want[1]) if op == "r" else _ordered_bounds(op, want)
        found = _between(path, low, high, strict_low=op == "gt", strict_high=op == "lt")
    return found


def json_path(path: tuple[str, ...]) -> str | None:
    """The SQLite JSON path of a field, or None when SQLite could misread one of its keys."""
    if not all(_PLAIN_SEGMENT.fullmatch(part) for part in path):
        return None
    return "$" + "".join(f'."{part}"' for part in path)


# --- the tests -------------------------------------------------------------------------------


def _maybe_equal(path: str | None, want: Any) -> Fragment | None:
    if want is None or isinstance(want, bool):
        token = json.dumps(want)  # null, true, false: written as such, wherever they are
        return _all(_text_in_value(token), _typed(path, token))
    if isinstance(want, str):
        return _all(_text_in_value(json.dumps(want)), _typed(path, "text"))
    if isinstance(want, int | float):
        return _number_between(path, want, want)
    return _typed(path, "array" if isinstance(want, list) else "object")


def _surely_equal(path: str | None, want: Any) -> Fragment | None:
    if path is None:
        return None
    if want is None or isinstance(want, bool):
        return _typed(path, json.dumps(want))
    if isinstance(want, str):
        return Fragment(
            f"({_TEXT} AND json_extract(value, ?) = ? AND instr(value, ?) = 0)",
            [path, path, want, _NUL],
        )
    if isinstance(want, int) and abs(want) <= _INT_EXACT:
        # Whole numbers SQLite reads exactly; a larger one it reads as a real, which no
        # number this small equals.
        return Fragment(
            "(ifnull(json_type(value, ?), '') = 'integer' AND json_extract(value, ?) = ?)",
            [path, path, want],
        )
    return None


def _maybe_contains(path: str | None, want: Any) -> Fragment | None:
    if isinstance(want, str):
        # In a string or as a member of a list: its escaped text is in the item's either way.
        return _all(_text_in_value(_escaped(want)), _typed(path, "text", "array"))
    if want is None or isinstance(want, bool):
        return _all(_text_in_value(json.dumps(want)), _typed(path, "array"))
    return _typed(path, "array")


def _surely_contains(path: str | None, want: Any) -> Fragment | None:
    if path is None or not isinstance(want, str):
        return None
    return Fragment(
        f"({_TEXT} AND instr(json_extract(value, ?), ?) > 0 AND instr(value, ?) = 0)",
        [path, path, want, _NUL],
    )


def _ordered_bounds(op: str, want: Any) -> tuple[Any, Any]:
    return (want, None) if op in ("gt", "gte") else (None, want)


def _between(
    path: str | None, low: Any, high: Any, *, strict_low: bool, strict_high: bool
) -> Fragment | None:
    if isinstance(low if low is not None else high, str):
        return _text_between(path, low, high, strict_low, strict_high)
    return _number_between(path, low, high)


def _text_between(
    path: str | None, low: str | None, high: str | None, strict_low: bool, strict_high: bool
) -> Fragment | None:
    if path is None:
        return None
    tests, params = [], []
    if low is not None:
        tests.append(f"json_extract(value, ?) {'>' if strict_low else '>='} ?")
        params += [path, low]
    if high is not None:
        tests.append(f"json_extract(value, ?) {'<' if strict_high else '<='} ?")
        params += [path, high]
    # SQLite stops a decoded string at a NUL and keeps a lone surrogate as bytes of its own:
    # such items are let through to Python.
    return Fragment(
        f"({_TEXT} AND (instr(value, ?) > 0 OR instr(value, ?) > 0 OR ({' AND '.join(tests)})))",
        [path, _NUL, _SURROGATE, *params],
    )


def _number_between(path: str | None, low: Any, high: Any) -> Fragment | None:
    if path is None:
        return None
    tests, params = [], []
    for bound, sign, compare in ((low, -1, ">="), (high, 1, "<=")):
        if bound is None:
            continue
        try:
            value = float(bound)
        except OverflowError:
            return _typed(path, "integer", "real")
        if not math.isfinite(value):
            return _typed(path, "integer", "real")
        # Room for SQLite's own reading of decimal text and for ints past a float's precision.
        margin = abs(value) * 1e-9 + 1e-300
        tests.append(f"json_extract(value, ?) {compare} ?")
        params += [path, value + sign * margin]
    return Fragment(f"({_NUMBER} AND {' AND '.join(tests)})", [path, *params])


# --- pieces ----------------------------------------------------------------------------------


def _escaped(text: str) -> str:
    """`text` as the stored JSON writes it inside quotes."""
    return json.dumps(text)[1:-1]


def _text_in_value(text: str) -> Fragment:
    return Fragment("instr(value, ?) > 0", [text])


def _typed(path: str | None, *types: str) -> Fragment | None:
    if path is None:
        return None
    marks = ", ".join("?" for _ in types)
    return Fragment(f"ifnull(json_type(value, ?), '') IN ({marks})", [path, *types])


def _all(*parts: Fragment | None) -> Fragment | None:
    present = [part for part in parts if part is not None]
    return _join(present, " AND ") if present else None


def _not(sure: Fragment) -> Fragment:
    return Fragment(f"NOT ({sure.sql})", sure.params)


def _join(parts: list[Fragment], glue: str) -> Fragment:
    if len(parts) == 1:
        return parts[0]
    return Fragment(
        "(" + glue.join(part.sql for part in parts) + ")",
        [param for part in parts for param in part.params],
    )


def _bindable(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(_bindable(member) for member in value)
    if isinstance(value, dict):
        return all(_bindable(k) and _bindable(v) for k, v in value.items())
    return True
