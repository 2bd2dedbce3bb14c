"""App Actions' pure parts: reading a micro's declaration, and typing the text inputs."""

from __future__ import annotations

import pytest

from runtime.cloud.app_actions import (
    ActionError,
    ActionInput,
    AppAction,
    coerce_inputs,
    parse_declaration,
)


def test_a_declaration_is_read_leniently_and_says_what_it_left_out() -> None:
    declared = {"actions": [
        {"name": "add", "title": "Add", "path": "add",
         "input": [{"name": "n", "type": "number"},
                   {"name": "note", "type": "weird", "optional": True}]},
        {"name": "plural", "path": "/p", "inputs": [{"name": "x", "type": "boolean"}]},
        {"title": "no name"},
        {"name": "bad-input", "path": "/b", "input": [{"type": "string"}]},
    ]}
    actions, skipped = parse_declaration("api", declared)
    assert actions == [
        AppAction("api", "add", "Add", "/add",
                  (ActionInput("n", "number"), ActionInput("note", "string", True))),
        AppAction("api", "plural", "plural", "/p", (ActionInput("x", "boolean"),)),
    ]
    assert skipped == ["entry 3 has no name or no path, so it is left out",
                       'action "bad-input" is left out: an input has no name']
    assert parse_declaration("api", ["not", "an", "object"]) == (
        [], ['the answer is not {"actions": [...]}'])


ACTION = AppAction("api", "add", "Add", "/add", (
    ActionInput("n", "number"), ActionInput("note", "string", True),
    ActionInput("flag", "boolean", True),
))


@pytest.mark.parametrize(("given", "sent"), [
    ({"n": "2"}, {"n": 2, "flag": False}),
    ({"n": "2.5", "note": "x"}, {"n": 2.5, "note": "x", "flag": False}),
    ({"n": "-3", "flag": "on"}, {"n": -3, "flag": True}),
    ({"n": "1e3", "note": "  "}, {"n": 1000.0, "flag": False}),
    ({"n": "4.0", "flag": "No"}, {"n": 4.0, "flag": False}),
])
def test_inputs_are_typed_as_declared(given: dict[str, str], sent: dict[str, object]) -> None:
    assert coerce_inputs(ACTION, given) == sent


@pytest.mark.parametrize(("given", "said"), [
    ({}, 'needs the input "n"'),
    ({"n": "two"}, "must be a number"),
    ({"n": "1", "zz": "1"}, "has no input 'zz'"),
    ({"n": "1", "flag": "maybe"}, "must be true or false"),
])
def test_bad_inputs_are_refused_naming_the_input(given: dict[str, str], said: str) -> None:
    with pytest.raises(ActionError, match=said):
        coerce_inputs(ACTION, given)
