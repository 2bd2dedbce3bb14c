"""Deta Base updates: a table of PATCH bodies and the items they give, or the 400 they get."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from runtime.cloud.base.errors import BaseError
from runtime.cloud.base.update import apply_update, check_update

PROFILE: dict[str, Any] = {"age": 32, "active": False, "hometown": "pittsburgh", "deep": {"x": 1}}
ITEM: dict[str, Any] = {
    "key": "user-a",
    "username": "jimmy",
    "profile": PROFILE,
    "on_mobile": True,
    "likes": ["anime"],
    "purchases": 1,
    "ratio": 0.5,
    "label": "x",
}

REMOVED: Any = object()

# (update, the fields of the result that differ from ITEM: their value, or REMOVED)
CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"set": {"username": "tim"}}, {"username": "tim"}),
    ({"set": {"new": {"a": [1]}}}, {"new": {"a": [1]}}),
    ({"set": {"profile.age": 33}}, {"profile": {**PROFILE, "age": 33}}),
    ({"set": {"profile.email": "j@deta.sh"}}, {"profile": {**PROFILE, "email": "j@deta.sh"}}),
    ({"set": {"profile.deep.y": 2}}, {"profile": {**PROFILE, "deep": {"x": 1, "y": 2}}}),
    ({"set": {"likes": None}}, {"likes": None}),
    ({"set": {"__expires": 1700000000}}, {"__expires": 1700000000}),
    ({"increment": {"purchases": 2}}, {"purchases": 3}),
    ({"increment": {"purchases": -5}}, {"purchases": -4}),
    ({"increment": {"purchases": 0.5}}, {"purchases": 1.5}),
    ({"increment": {"ratio": 1}}, {"ratio": 1.5}),
    ({"increment": {"visits": 1}}, {"visits": 1}),
    ({"increment": {"profile.age": 1}}, {"profile": {**PROFILE, "age": 33}}),
    ({"append": {"likes": ["ramen", "momo"]}}, {"likes": ["anime", "ramen", "momo"]}),
    ({"append": {"likes": "ramen"}}, {"likes": ["anime", "ramen"]}),
    ({"append": {"likes": [["nested"]]}}, {"likes": ["anime", ["nested"]]}),
    ({"append": {"likes": []}}, {}),
    ({"append": {"fresh": 1}}, {"fresh": [1]}),
    ({"prepend": {"likes": ["action", "comedy"]}}, {"likes": ["action", "comedy", "anime"]}),
    ({"prepend": {"likes": "x"}}, {"likes": ["x", "anime"]}),
    ({"delete": ["on_mobile"]}, {"on_mobile": REMOVED}),
    ({"delete": ["profile.hometown"]}, {"profile": {"age": 32, "active": False, "deep": {"x": 1}}}),
    ({"delete": ["nothing", "profile.nothing", "nothing.deeper"]}, {}),
    ({"delete": ["on_mobile", "on_mobile"]}, {"on_mobile": REMOVED}),
    ({"delete": ["profile.age", "profile"]}, {"profile": REMOVED}),
    # Deta's documented example, all at once
    (
        {
            "set": {"profile.age": 33, "profile.active": True, "profile.email": "jimmy@deta.sh"},
            "increment": {"purchases": 2},
            "append": {"likes": ["ramen"]},
            "delete": ["profile.hometown", "on_mobile"],
        },
        {
            "profile": {"age": 33, "active": True, "email": "jimmy@deta.sh", "deep": {"x": 1}},
            "purchases": 3,
            "likes": ["anime", "ramen"],
            "on_mobile": REMOVED,
        },
    ),
    # empty sections next to a real one, as every SDK sends them
    (
        {"set": {"label": "y"}, "increment": {}, "append": {}, "prepend": {}, "delete": []},
        {"label": "y"},
    ),
    ({"set": None, "delete": ["label"]}, {"label": REMOVED}),
]


@pytest.mark.parametrize(("updates", "changes"), CASES, ids=[repr(c[0]) for c in CASES])
def test_update_gives_item(updates: dict[str, Any], changes: dict[str, Any]) -> None:
    before = copy.deepcopy(ITEM)
    expected = copy.deepcopy(ITEM)
    for name, value in changes.items():
        if value is REMOVED:
            del expected[name]
        else:
            expected[name] = value
    assert apply_update(ITEM, updates) == expected
    assert ITEM == before  # the input is never mutated


def test_result_shares_nothing_with_input_or_update() -> None:
    value = {"a": [1]}
    result = apply_update(ITEM, {"set": {"new": value}, "append": {"likes": [{"b": 1}]}})
    result["profile"]["age"] = 99
    result["new"]["a"].append(2)
    assert ITEM["profile"]["age"] == 32
    assert value == {"a": [1]}


def test_increment_keeps_integers_integers() -> None:
    result = apply_update({"key": "k", "n": 1}, {"increment": {"n": 2}})
    assert result["n"] == 3 and isinstance(result["n"], int)


ERRORS: list[tuple[Any, str]] = [
    ({}, "at least one"),
    ({"set": {}, "increment": {}, "append": {}, "prepend": {}, "delete": []}, "at least one"),
    (None, "JSON object"),
    ([], "JSON object"),
    ({"replace": {"a": 1}}, "Unknown update operation"),
    ({"set": [1]}, '"set" must be an object'),
    ({"increment": "a"}, '"increment" must be an object'),
    ({"delete": "a"}, '"delete" must be a list'),
    ({"delete": [1]}, '"delete" must be a list'),
    ({"set": {"key": "other"}}, "key of an item"),
    ({"delete": ["key"]}, "key of an item"),
    ({"set": {"key.sub": 1}}, "key of an item"),
    ({"increment": {"key": 1}}, "key of an item"),
    ({"append": {"key": "x"}}, "key of an item"),
    ({"set": {"a": 1}, "delete": ["a"]}, "Conflicting"),
    ({"set": {"a": 1}, "increment": {"a": 1}}, "Conflicting"),
    ({"append": {"likes": 1}, "prepend": {"likes": 2}}, "Conflicting"),
    ({"set": {"profile": {}}, "delete": ["profile.age"]}, "Conflicting"),
    ({"set": {"profile": {}, "profile.age": 1}}, "Conflicting"),
    ({"set": {"profile.age": 1}, "delete": ["profile"]}, "Conflicting"),
    ({"delete": ["profile", "profile.age"], "set": {"profile.zz": 1}}, "Conflicting"),
    ({"set": {"a..b": 1}}, "empty path segment"),
    ({"delete": [""]}, "empty path segment"),
    ({"set": {"nothing.age": 1}}, '"nothing" does not exist'),
    ({"set": {"username.first": "j"}}, '"username" does not exist or is not an object'),
    ({"set": {"profile.nothing.x": 1}}, '"profile.nothing" does not exist'),
    ({"increment": {"nothing.n": 1}}, '"nothing" does not exist'),
    ({"append": {"nothing.l": 1}}, '"nothing" does not exist'),
    ({"increment": {"purchases": "2"}}, "non-number"),
    ({"increment": {"purchases": True}}, "non-number"),
    ({"increment": {"purchases": None}}, "non-number"),
    ({"increment": {"username": 1}}, "not a number"),
    ({"increment": {"on_mobile": 1}}, "not a number"),
    ({"increment": {"likes": 1}}, "not a number"),
    ({"append": {"username": "x"}}, "not a list"),
    ({"prepend": {"profile": ["x"]}}, "not a list"),
    ({"append": {"purchases": [1]}}, "not a list"),
]


@pytest.mark.parametrize(("updates", "message"), ERRORS, ids=[repr(e[0]) for e in ERRORS])
def test_invalid_update_is_a_400(updates: Any, message: str) -> None:
    before = copy.deepcopy(ITEM)
    with pytest.raises(BaseError) as caught:
        apply_update(ITEM, updates)
    assert caught.value.status == 400
    assert message in caught.value.messages[0]
    assert ITEM == before


def test_check_update_needs_no_item_and_orders_steps() -> None:
    updates = {"delete": ["d"], "append": {"c": 1}, "set": {"a": 1}, "increment": {"b": 2}}
    steps = check_update(updates)
    assert [op for op, _, _ in steps] == ["set", "increment", "append", "delete"]
    assert steps[0][1] == ("a",)


def test_there_are_enough_cases() -> None:
    assert len(CASES) + len(ERRORS) >= 25
