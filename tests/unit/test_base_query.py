"""Deta Base query semantics: a table of items, queries and whether they match."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.cloud.base import query as query_module
from runtime.cloud.base.errors import BAD_QUERY, BadQuery, BaseError
from runtime.cloud.base.query import (
    MAX_OBJECT_CONDITIONS,
    MAX_QUERY_OBJECTS,
    KeyRange,
    compile_query,
    key_range,
    prefix_end,
    strict_equal,
)

USER = {
    "key": "user-a",
    "name": "Beverly",
    "age": 51,
    "score": 7.5,
    "active": True,
    "nick": None,
    "email": "beverly@deta.sh",
    "tags": ["berlin", "paris", 3, True, {"x": 1}],
    "nums": [1, 2, 3],
    "profile": {"age": 22, "town": {"name": "Copernicus"}, "langs": ["go", "py"]},
    "empty": "",
}

# (query, expected match against USER)
CASES: list[tuple[Any, bool]] = [
    # empty queries match everything
    (None, True),
    ([], True),
    ({}, True),
    ([{}], True),
    ([{}, {"name": "nobody"}], True),
    # equality, strictly typed
    ({"name": "Beverly"}, True),
    ({"name": "beverly"}, False),
    ({"age": 51}, True),
    ({"age": 51.0}, True),
    ({"age": "51"}, False),
    ({"active": True}, True),
    ({"active": 1}, False),
    ({"age": True}, False),
    ({"nick": None}, True),
    ({"missing": None}, False),
    ({"empty": ""}, True),
    ({"key": "user-a"}, True),
    ({"key": "user-b"}, False),
    # deep equality on lists and objects
    ({"nums": [1, 2, 3]}, True),
    ({"nums": [3, 2, 1]}, False),
    ({"nums": [1, 2]}, False),
    ({"tags": ["berlin", "paris", 3, 1, {"x": 1}]}, False),  # 1 is not True
    ({"profile.town": {"name": "Copernicus"}}, True),
    ({"profile.town": {"name": "Copernicus", "zip": 1}}, False),
    # nesting
    ({"profile.age": 22}, True),
    ({"profile.town.name": "Copernicus"}, True),
    ({"profile.town.name.x": "Copernicus"}, False),
    ({"profile.nothing": 1}, False),
    ({"name.first": "Beverly"}, False),
    ({"nums.0": 1}, False),  # paths never index lists
    # ?ne
    ({"age?ne": 51}, False),
    ({"age?ne": 50}, True),
    ({"age?ne": "51"}, True),
    ({"missing?ne": 1}, True),
    ({"nums?ne": [1, 2, 3]}, False),
    ({"key?ne": "user-a"}, False),
    # ordering, numbers and strings only, never across types
    ({"age?lt": 52}, True),
    ({"age?lt": 51}, False),
    ({"age?lte": 51}, True),
    ({"age?gt": 50}, True),
    ({"age?gt": 51}, False),
    ({"age?gte": 51}, True),
    ({"score?gt": 7}, True),
    ({"age?lt": "zzz"}, False),
    ({"name?gt": "A"}, True),
    ({"name?lt": "Bf"}, True),
    ({"name?gt": 0}, False),
    ({"active?gt": 0}, False),  # bool is not a number
    ({"missing?lt": 100}, False),
    ({"profile.age?gte": 22}, True),
    # aliases
    ({"age?<": 52}, True),
    ({"age?>": 52}, False),
    ({"age?<=": 51}, True),
    ({"age?>=": 52}, False),
    ({"key?>": "user-"}, True),
    # ?r inclusive
    ({"age?r": [51, 60]}, True),
    ({"age?r": [40, 51]}, True),
    ({"age?r": [52, 60]}, False),
    ({"age?r": [60, 40]}, False),
    ({"name?r": ["A", "C"]}, True),
    ({"name?r": ["C", "D"]}, False),
    ({"age?r": ["a", "z"]}, False),
    ({"key?r": ["user-a", "user-z"]}, True),
    # ?pfx
    ({"name?pfx": "Bev"}, True),
    ({"name?pfx": "bev"}, False),
    ({"name?pfx": ""}, True),
    ({"age?pfx": "5"}, False),
    ({"key?pfx": "user"}, True),
    ({"key?pfx": "users"}, False),
    ({"missing?pfx": ""}, False),
    # ?contains: substring on strings, membership on lists
    ({"email?contains": "@deta.sh"}, True),
    ({"email?contains": "@email.com"}, False),
    ({"tags?contains": "berlin"}, True),
    ({"tags?contains": "ber"}, False),
    ({"tags?contains": 3}, True),
    ({"tags?contains": True}, True),
    ({"nums?contains": True}, False),  # 1 is not True
    ({"tags?contains": {"x": 1}}, True),
    ({"profile.langs?contains": "py"}, True),
    ({"age?contains": 5}, False),
    ({"age?contains": "5"}, False),
    ({"missing?contains": "a"}, False),
    ({"profile?contains": "age"}, False),  # not a list or string
    # ?not_contains and its alias are exact negations, so a missing field matches
    ({"email?not_contains": "@deta.sh"}, False),
    ({"email?not_contains": "@email.com"}, True),
    ({"tags?not_contains": "rome"}, True),
    ({"tags?!contains": "paris"}, False),
    ({"missing?not_contains": "a"}, True),
    ({"age?not_contains": 5}, True),
    # AND within an object
    ({"name": "Beverly", "age": 51}, True),
    ({"name": "Beverly", "age": 50}, False),
    ({"age?gt": 40, "age?lt": 60, "active": True}, True),
    ({"age?gt": 40, "age?lt": 50}, False),
    # OR across objects
    ([{"name": "x"}, {"age": 51}], True),
    ([{"name": "x"}, {"age": 50}], False),
    ([{"age?lte": 30}, {"age?gte": 40}], True),
    ([{"age?lte": 30}, {"age?gte": 60}], False),
    ([{"key?pfx": "user", "age": 1}, {"key?pfx": "user", "active": True}], True),
]


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
def test_query_matches(query: Any, expected: bool) -> None:
    assert compile_query(query)(USER) is expected


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 60


INVALID: list[Any] = [
    {"age?eq": 1},
    {"age?like": 1},
    {"age?": 1},
    {"age?NE": 1},
    {"age?!ne": 1},
    {"age?lt": [1]},
    {"age?lt": None},
    {"age?gte": True},
    {"age?gt": {"a": 1}},
    {"age?r": [1]},
    {"age?r": [1, 2, 3]},
    {"age?r": [1, "2"]},
    {"age?r": 5},
    {"age?r": [True, False]},
    {"name?pfx": 1},
    {"name?pfx": None},
    {"a..b": 1},
    {".a": 1},
    {"": 1},
    {"key": 1},
    {"key?r": ["a", 1]},
    {"key?contains": "a"},
    {"key?not_contains": "a"},
    {"key?!contains": "a"},
    {"key": "a", "key?pfx": "b"},
    [{"key?pfx": "a"}, {"key?pfx": "b"}],
    [{"key?pfx": "a"}, {"key?gt": "a"}],
    "name",
    [["name", 1]],
    [{"a": 1}, 2],
    5,
]


@pytest.mark.parametrize("query", INVALID, ids=[repr(q) for q in INVALID])
def test_invalid_query_is_a_400(query: Any) -> None:
    with pytest.raises(BaseError) as caught:
        compile_query(query)
    assert caught.value.status == 400
    assert caught.value.messages and all(caught.value.messages)


# Deta answered every query it refused with the same two words, and the SDKs' own tests hold
# them to it; what was wrong is space-dev's detail, kept beside the answer.
DETAILS: list[tuple[Any, str]] = [
    ({"title?": "x"}, 'Invalid query operator "?" in "title?"'),
    ({"title??": "x"}, 'Invalid query operator "??" in "title??"'),
    ({"?": "x"}, 'Invalid query operator "?" in "?"'),
    ({"title?sounds_like": "x"}, 'Invalid query operator "?sounds_like" in "title?sounds_like"'),
    ({"key?": "k1"}, 'Invalid query operator "?" in "key?"'),
    ({"key?like": "k1"}, 'Invalid query operator "?like" in "key?like"'),
    ({"title?pfx": 3}, '"title?pfx" needs a string'),
    ({"key?pfx": 3}, '"key?pfx" needs a string'),
    ({"size?r": []}, '"size?r" needs a list of two numbers or two strings'),
    ({"size?r": [4]}, '"size?r" needs a list of two numbers or two strings'),
    ({"key?r": []}, '"key?r" needs a list of two numbers or two strings'),
    ({"key?r": ["k1"]}, '"key?r" needs a list of two numbers or two strings'),
    ({"key?r": "k1 to k9"}, '"key?r" needs a list of two numbers or two strings'),
    ({"key?>": 3}, '"key?>": keys are strings, so the value must be a string'),
    ({"key?>=": 3}, '"key?>=": keys are strings, so the value must be a string'),
    ({"key?<": 3}, '"key?<": keys are strings, so the value must be a string'),
    ({"key?<=": 3}, '"key?<=": keys are strings, so the value must be a string'),
    ({"key?contains": "k"}, "contains and not_contains are not supported on key"),
    ({"key": "k1", "key?gt": "k0"}, "A query object may hold only one condition on key"),
    ({"a..b": 1}, 'Invalid field "a..b" in query: empty path segment'),
    ("title", "A query must be a list of objects"),
    ([{"a": 1}, 2], "A query must be a list of objects"),
    ([{"n": n} for n in range(26)], "A query may OR at most 25 objects; this one has 26"),
    ({f"f{i}": i for i in range(26)}, "at most 25 conditions; object 0 has 26"),
    ([{"key?lte": "k1"}, {"key": "k1"}], "every OR'ed object must hold the same condition on key"),
    ([{"key?lte": "k1"}, {"key?lte": "k2"}], "the same condition on key"),
    ([{"age": 30}, {"key?lte": "k2"}], "object 0 has none"),
]


@pytest.mark.parametrize(("query", "detail"), DETAILS, ids=[repr(c[0])[:60] for c in DETAILS])
def test_every_refused_query_says_bad_query_as_deta_did_with_our_detail_beside(
    query: Any, detail: str
) -> None:
    with pytest.raises(BadQuery) as caught:
        compile_query(query)
    assert caught.value.status == 400
    assert caught.value.messages == [BAD_QUERY] == ["Bad query"]
    assert detail in caught.value.detail


@pytest.mark.parametrize("query", INVALID, ids=[repr(q) for q in INVALID])
def test_every_invalid_query_has_a_detail(query: Any) -> None:
    with pytest.raises(BadQuery) as caught:
        compile_query(query)
    assert caught.value.detail and caught.value.messages == ["Bad query"]


def test_unknown_operator_message_names_the_field() -> None:
    with pytest.raises(BadQuery) as caught:
        compile_query({"age?like": 1})
    assert '"?like" in "age?like"' in caught.value.detail


# --- conditions on key across OR'ed objects ----------------------------------------------------
#
# Deta read a condition on key as the slice of keys to scan, so OR'ed objects could only share
# one: when any object has a condition on key, every object must have that same one (operator
# and value); objects without any are fine only when none has one.

KEY_ACROSS_OR: list[tuple[Any, bool]] = [
    ([{"key": "k1"}], True),
    ([{"key?pfx": "k"}, {"key?pfx": "k", "n": 1}], True),
    ([{"key?>=": "k1", "n?gt": 40}, {"key?>=": "k1", "n?lt": 20}], True),
    ([{"key?gte": "k1"}, {"key?>=": "k1"}], True),  # an alias is the same operator
    ([{"key?r": ["a", "c"]}, {"key?r": ["a", "c"], "n": 2}], True),
    ([{"key?ne": "k1", "a": 1}, {"key?ne": "k1", "b": 1}], True),
    ([{"n": 1}, {"m": 2}], True),  # no object constrains the key
    ([{"n": 27}, {"key?lte": "k2"}], False),  # one object does, another does not
    ([{"key?lte": "k2"}, {"n": 27}], False),
    ([{"key": "k1"}, {}], False),  # the empty object matches any key
    ([{"key": "k1"}, {"key": "k2"}], False),  # two keys: two queries, or `key?r`
    ([{"key?pfx": "a"}, {"key?pfx": "b"}], False),
    ([{"key?lte": "k1"}, {"key": "k1"}], False),  # same value, another operator
    ([{"key?r": ["a", "c"]}, {"key?r": ["a", "d"]}], False),
    ([{"n": 27, "key": "k2", "key?>": "k3"}, {"key?<=": "k2"}], False),
]


@pytest.mark.parametrize(("query", "valid"), KEY_ACROSS_OR, ids=[repr(c[0]) for c in KEY_ACROSS_OR])
def test_ored_objects_share_one_condition_on_key_or_none_has_one(query: Any, valid: bool) -> None:
    if valid:
        compile_query(query)
        return
    with pytest.raises(BadQuery) as caught:
        compile_query(query)
    assert caught.value.messages == ["Bad query"]


def test_query_does_not_mutate_and_tolerates_odd_items() -> None:
    match = compile_query({"a.b?contains": "x"})
    assert match({"a": {"b": ["x"]}})
    assert not match({"a": ["b"]})
    assert not match({})


KEY_RANGES: list[tuple[Any, KeyRange | None]] = [
    (None, None),
    ({"name": "x"}, None),
    ({"key": "a"}, KeyRange("a", True, "a", True)),
    ({"key?pfx": "ab"}, KeyRange("ab", True, "ac", False)),
    ({"key?pfx": ""}, None),
    ({"key?gt": "m"}, KeyRange(lo="m", lo_inclusive=False)),
    ({"key?>=": "m"}, KeyRange(lo="m", lo_inclusive=True)),
    ({"key?<": "m"}, KeyRange(hi="m", hi_inclusive=False)),
    ({"key?lte": "m"}, KeyRange(hi="m", hi_inclusive=True)),
    ({"key?r": ["b", "d"]}, KeyRange("b", True, "d", True)),
    ({"key?ne": "b"}, None),
    ([{"key?pfx": "a", "x": 1}, {"key?pfx": "a"}], KeyRange("a", True, "b", False)),
    ([{"key?pfx": "a", "x": 1}, {"key?pfx": "a", "y": 2}], KeyRange("a", True, "b", False)),
]


@pytest.mark.parametrize(("query", "expected"), KEY_RANGES, ids=[repr(c[0]) for c in KEY_RANGES])
def test_key_range(query: Any, expected: KeyRange | None) -> None:
    assert key_range(query) == expected


@pytest.mark.parametrize(
    ("prefix", "end"),
    [("a", "b"), ("az", "a{"), ("a\U0010ffff", "b"), ("\U0010ffff", None), ("\ud7ff", "\ue000")],
)
def test_prefix_end_bounds_every_extension(prefix: str, end: str | None) -> None:
    assert prefix_end(prefix) == end
    if end is not None:
        assert prefix + "\U0010ffff" * 3 < end


# --- the size limits -------------------------------------------------------------------------


def test_the_limits_are_detas_25_objects_and_ours_25_conditions() -> None:
    assert (MAX_QUERY_OBJECTS, MAX_OBJECT_CONDITIONS) == (25, 25)
    item = {"key": "k", "n": 24, **{f"f{i}": i for i in range(25)}}
    assert compile_query([{"n": n} for n in range(25)])(item)
    assert compile_query({f"f{i}": i for i in range(25)})(item)
    assert compile_query([{f"f{i}?gte": 0 for i in range(25)}] * 25)(item)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ([{"n": n} for n in range(26)], r"at most 25 objects; this one has 26\. Split it"),
        ([{}] * 100_000, "this one has 100000"),
        ({f"f{i}": i for i in range(26)}, "at most 25 conditions; object 0 has 26"),
        ([{"n": 1}] * 3 + [{f"f{i}": i for i in range(40)}], "object 3 has 40"),
    ],
)
def test_a_query_over_the_limits_is_a_400_before_any_condition_is_read(
    query: Any, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(field: str, value: Any) -> None:
        raise AssertionError(f"{field} was read")

    monkeypatch.setattr(query_module, "_parse_condition", never)
    with pytest.raises(BadQuery) as caught:
        compile_query(query)
    assert caught.value.status == 400 and caught.value.messages == ["Bad query"]
    assert re.search(message, caught.value.detail)


# --- the compiled tests keep the strict semantics --------------------------------------------


def _reference(op: str, got: Any, want: Any) -> bool:
    """The semantics, written plainly: what the compiled tests must agree with."""
    missing = got is query_module._MISSING
    if op in ("eq", "ne"):
        equal = not missing and strict_equal(got, want)
        return equal if op == "eq" else not equal
    if isinstance(got, str):
        contains = isinstance(want, str) and want in got
    elif isinstance(got, list):
        contains = any(strict_equal(member, want) for member in got)
    else:
        contains = False
    return contains if op == "contains" else not contains


SCALARS = st.sampled_from([None, True, False, 0, 1, -0.0, 0.0, 1.0, 2, 2.5, "", "a", "1", "ab"])
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2)
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(
    got=VALUES | st.just(None).map(lambda _: query_module._MISSING),
    want=VALUES,
    op=st.sampled_from(["eq", "ne", "contains", "not_contains"]),
)
def test_compiled_tests_agree_with_the_plain_semantics(got: Any, want: Any, op: str) -> None:
    field = "f" if op == "eq" else f"f?{op}"
    item = {} if got is query_module._MISSING else {"f": got}
    assert compile_query({field: want})(item) is _reference(op, got, want)
    # The same through the matcher of several conditions, which looks each path up once.
    assert compile_query([{field: want, "g?ne": 0}, {"h": 1}])(item) is _reference(op, got, want)


@pytest.mark.parametrize(
    ("members", "want", "expected"),
    [
        ([True, True], 1, False),
        ([True, 1.0], 1, True),
        ([False, 0], 0.0, True),
        ([False], -0.0, False),
        ([1, 0], True, False),
        ([1, True], True, True),
        ([[True]], [1], False),
        ([[True], [1]], [1], True),
        ([{"a": 1}], {"a": True}, False),
        (["1", None], 1, False),
        (["1", None], None, True),
    ],
)
def test_membership_is_strict_about_booleans_and_numbers(
    members: list[Any], want: Any, expected: bool
) -> None:
    assert compile_query({"l?contains": want})({"l": members}) is expected
    assert compile_query({"l?not_contains": want})({"l": members}) is not expected


def test_membership_of_a_scalar_never_compares_member_by_member_in_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """25 objects of 25 conditions against a list of 20,000 members stay cheap: the members are
    searched by C code (`in`, `count`), not by `strict_equal` one at a time."""
    calls = [0]

    def counted(a: Any, b: Any) -> bool:
        calls[0] += 1
        return strict_equal(a, b)

    monkeypatch.setattr(query_module, "strict_equal", counted)
    item = {"key": "k", **{f"l{i}": [*range(10_000), *map(str, range(10_000))] for i in range(5)}}
    wants = ["9999", 9999, 1, 0.0, "nowhere"]
    query = [
        {f"l{i}?contains": wants[i] for i in range(5)}
        | {f"l{i}?not_contains": True for i in range(5)}
        | {f"l{i}?ne": [] for i in range(5)}
        | {f"l{i}?not_contains": None for i in range(5)}
        | {f"l{i}?contains": 5 for i in range(4)}
        | {"n": n}
        for n in range(25)
    ]
    assert not compile_query(query)(item)
    assert compile_query(query)({**item, "n": 24, "l4": [*item["l4"], "nowhere"]})
    assert calls[0] == 0
