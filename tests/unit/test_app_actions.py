"""App Actions: reading a micro's declaration, typing the text inputs, and reaching the micro."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from runtime.actions.app_actions import (
    ActionError,
    ActionInput,
    AppAction,
    AppActions,
    coerce_inputs,
    parse_declaration,
)
from runtime.serve.proxy import Proxy
from runtime.supervisor.manager import State


def test_a_declaration_is_read_leniently_and_says_what_it_left_out() -> None:
    declared = {
        "actions": [
            {
                "name": "add",
                "title": "Add",
                "path": "add",
                "input": [
                    {"name": "n", "type": "number"},
                    {"name": "note", "type": "weird", "optional": True},
                ],
            },
            {"name": "plural", "path": "/p", "inputs": [{"name": "x", "type": "boolean"}]},
            {"title": "no name"},
            {"name": "bad-input", "path": "/b", "input": [{"type": "string"}]},
        ]
    }
    actions, skipped = parse_declaration("api", declared)
    assert actions == [
        AppAction(
            "api",
            "add",
            "Add",
            "/add",
            (ActionInput("n", "number"), ActionInput("note", "string", True)),
        ),
        AppAction("api", "plural", "plural", "/p", (ActionInput("x", "boolean"),)),
    ]
    assert skipped == [
        "entry 3 has no name or no path, so it is left out",
        'action "bad-input" is left out: an input has no name',
    ]
    assert parse_declaration("api", ["not", "an", "object"]) == (
        [],
        ['the answer is not {"actions": [...]}'],
    )


ACTION = AppAction(
    "api",
    "add",
    "Add",
    "/add",
    (
        ActionInput("n", "number"),
        ActionInput("note", "string", True),
        ActionInput("flag", "boolean", True),
    ),
)


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"n": "2"}, {"n": 2, "flag": False}),
        ({"n": "2.5", "note": "x"}, {"n": 2.5, "note": "x", "flag": False}),
        ({"n": "-3", "flag": "on"}, {"n": -3, "flag": True}),
        ({"n": "1e3", "note": "  "}, {"n": 1000.0, "flag": False}),
        ({"n": "4.0", "flag": "No"}, {"n": 4.0, "flag": False}),
    ],
)
def test_inputs_are_typed_as_declared(given: dict[str, str], sent: dict[str, object]) -> None:
    assert coerce_inputs(ACTION, given) == sent


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({}, 'needs the input "n"'),
        ({"n": "two"}, "must be a number"),
        ({"n": "1", "zz": "1"}, "has no input 'zz'"),
        ({"n": "1", "flag": "maybe"}, "must be true or false"),
    ],
)
def test_bad_inputs_are_refused_naming_the_input(given: dict[str, str], said: str) -> None:
    with pytest.raises(ActionError, match=said):
        coerce_inputs(ACTION, given)


class SwappedRunner:
    """A micro in the middle of a reload: first the old process's address, already gone; the
    swap to the next one comes while the caller waits for a change."""

    def __init__(self, addresses: list[tuple[str, int]]) -> None:
        self.name = "api"
        self.addresses = addresses
        self.state = State.READY
        self.swaps = 0
        self.gate_proof: dict[str, str] = {}

    @property
    def address(self) -> tuple[str, int]:
        return self.addresses[0]

    def serves(self, address: tuple[str, int]) -> bool:
        return address == self.addresses[0]

    async def wait_changed(self, timeout: float) -> bool:
        if len(self.addresses) > 1:
            self.addresses.pop(0)
            self.swaps += 1
            return True
        await asyncio.sleep(timeout)
        return False


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_action_sent_during_a_reload_goes_to_the_new_process(aiohttp_server) -> None:
    async def declare(request: web.Request) -> web.Response:
        return web.json_response({"actions": [{"name": "ping", "path": "/ping"}]})

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"pong": await request.json()})

    micro = web.Application()
    micro.router.add_get("/__space/actions", declare)
    micro.router.add_post("/ping", ping)
    server = await aiohttp_server(micro)
    live = ("127.0.0.1", server.port)
    proxy = Proxy()
    await proxy.start()
    try:
        runners = {
            "listing": SwappedRunner([("127.0.0.1", closed_port()), live]),
            "run": SwappedRunner([("127.0.0.1", closed_port()), live]),
        }
        current = runners["listing"]
        actions = AppActions(
            lambda app, micro: current, lambda app: ["api"], proxy, ready_wait=1.0, timeout=5.0
        )
        listing = await actions.listing("app")
        assert [a.name for a in listing.actions] == ["ping"] and not listing.problems
        assert current.swaps == 1
        current = runners["run"]
        answer = await actions.run("app", "ping", {})
        assert (answer.status, answer.data) == (200, {"pong": {}})
        assert current.swaps == 1
    finally:
        await proxy.close()
