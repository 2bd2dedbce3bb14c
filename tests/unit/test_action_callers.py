"""The runtime's own calls to a micro (scheduled actions, App Actions) where the micro lives now:
sent with the gate's proof, waiting while it starts, following it to a new process, and saying
why when it is down. A real aiohttp micro; the supervisor is `gate_fixtures.FakeRunner`.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from runtime.actions.app_actions import ActionError, AppActions
from runtime.actions.firing import EVENT_PATH, ActionFirer
from runtime.datadir.store import Store
from runtime.models import Action
from runtime.serve.proxy import Proxy
from runtime.supervisor.environment import GATE_PROOF_HEADER
from runtime.supervisor.manager import State
from runtime.supervisor.output import Printer
from tests.unit.gate_fixtures import PROOF, FakeRunner, closed_address

ACTION = Action(id="nightly", micro="api", name="Nightly")


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    made = Proxy()
    await made.start()
    yield made
    await made.close()


@pytest.fixture
async def micro(aiohttp_server: Any) -> tuple[tuple[str, int], list[dict[str, Any]]]:
    """A micro taking action events and App Actions; what it received."""
    received: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.text()
        received.append(
            {
                "method": request.method,
                "path": request.path,
                "proof": request.headers.get(GATE_PROOF_HEADER),
                "body": body,
            }
        )
        if '"slow"' in body:
            await asyncio.sleep(5)
        if request.path == "/__space/actions":
            return web.json_response(
                {
                    "actions": [
                        {"name": "add", "path": "add", "input": [{"name": "n", "type": "number"}]}
                    ]
                }
            )
        return web.json_response({"got": await request.text()}, status=201)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app)
    return ("127.0.0.1", server.port), received


def firer(
    runner: FakeRunner | None,
    proxy: Proxy,
    tmp_path: Path,
    *,
    ready_wait: float = 2.0,
    timeout: float = 2.0,
) -> tuple[ActionFirer, Store]:
    store = Store(tmp_path / "data")
    return ActionFirer(
        lambda app, name: runner,
        proxy,
        store,
        Printer(io.StringIO()),
        ready_wait=ready_wait,
        timeout=timeout,
    ), store


async def test_an_action_posts_its_event_with_the_gates_proof_and_is_kept(
    micro: Any, proxy: Proxy, tmp_path: Path
) -> None:
    address, received = micro
    fire, store = firer(FakeRunner("api", address), proxy, tmp_path)
    record = await fire.fire("app", ACTION, "manual")
    assert (record.status, record.trigger) == (201, "manual")
    assert received == [
        {
            "method": "POST",
            "path": EVENT_PATH,
            "proof": PROOF,
            "body": json.dumps({"event": {"id": "nightly", "trigger": "schedule"}}),
        }
    ]
    assert store.runs("app", "nightly")[0]["status"] == 201


async def test_an_action_waits_for_its_micro_to_start(
    micro: Any, proxy: Proxy, tmp_path: Path
) -> None:
    address, received = micro
    runner = FakeRunner("api", None, State.STARTING)
    fire, _ = firer(runner, proxy, tmp_path)
    pending = asyncio.ensure_future(fire.fire("app", ACTION, "schedule"))
    await asyncio.sleep(0.2)
    assert not pending.done() and received == []
    runner.set(State.READY, address)
    assert (await asyncio.wait_for(pending, 5)).status == 201


async def test_an_action_follows_its_micro_to_a_new_process(
    micro: Any, proxy: Proxy, tmp_path: Path
) -> None:
    address, received = micro
    runner = FakeRunner("api", closed_address())
    fire, _ = firer(runner, proxy, tmp_path)
    pending = asyncio.ensure_future(fire.fire("app", ACTION, "schedule"))
    await asyncio.sleep(0.2)
    assert not pending.done()
    runner.set(State.READY, address)
    assert (await asyncio.wait_for(pending, 5)).status == 201
    assert len(received) == 1


@pytest.mark.parametrize(
    ("state", "address", "said"),
    [
        (State.CRASHED, None, "error: api has crashed"),
        (State.STOPPED, None, "error: api is stopped"),
        (State.STARTING, None, "error: api was not ready within 0.2 s"),
        (State.READY, "closed", "error: could not connect to api"),
    ],
)
async def test_an_action_that_cannot_reach_its_micro_says_why(
    proxy: Proxy, tmp_path: Path, state: State, address: str | None, said: str
) -> None:
    runner = FakeRunner("api", closed_address() if address else None, state)
    fire, store = firer(runner, proxy, tmp_path, ready_wait=0.2)
    record = await fire.fire("app", ACTION, "schedule")
    assert record.status == said
    assert store.runs("app", "nightly")[0]["status"] == said


async def test_an_action_of_a_static_micro_and_one_that_never_answers(
    micro: Any, proxy: Proxy, tmp_path: Path
) -> None:
    fire, _ = firer(None, proxy, tmp_path)
    assert str((await fire.fire("app", ACTION, "schedule")).status).startswith(
        "error: api has no process"
    )
    address, _ = micro
    fire, _ = firer(FakeRunner("api", address), proxy, tmp_path, timeout=0.2)
    slow = await fire.fire("app", Action(id="slow", micro="api"), "schedule")
    assert slow.status == "error: no answer within 0.2 s"
    assert 200 <= slow.duration_ms < 2000


# --- App Actions ---------------------------------------------------------------------------------


def app_actions(runner: FakeRunner | None, proxy: Proxy, *, wait: float = 1.0) -> AppActions:
    return AppActions(
        lambda app, name: runner, lambda app: ["api"], proxy, ready_wait=wait, timeout=2.0
    )


async def test_app_actions_are_asked_and_run_with_the_gates_proof(micro: Any, proxy: Proxy) -> None:
    address, received = micro
    actions = app_actions(FakeRunner("api", address), proxy)
    listing = await actions.listing("app")
    assert [a.name for a in listing.actions] == ["add"] and not listing.problems
    answer = await actions.run("app", "add", {"n": "2"})
    assert (answer.status, answer.data) == (201, {"got": '{"n": 2}'})
    assert [(r["method"], r["path"], r["proof"]) for r in received] == [
        ("GET", "/__space/actions", PROOF),
        ("GET", "/__space/actions", PROOF),
        ("POST", "/add", PROOF),
    ]


async def test_app_actions_of_a_micro_that_is_down_say_why(micro: Any, proxy: Proxy) -> None:
    crashed = await app_actions(FakeRunner("api", None, State.CRASHED), proxy).listing("app")
    assert crashed.problems == {"api": "api has crashed"}
    starting = await app_actions(FakeRunner("api", None, State.STARTING), proxy).listing(
        "app", wait=0.1
    )
    assert starting.problems == {"api": "api is starting"}
    static = await app_actions(None, proxy).listing("app")
    assert "has no process" in static.problems["api"]
    with pytest.raises(ActionError, match="api has crashed"):
        await app_actions(FakeRunner("api", None, State.CRASHED), proxy).run("app", "add", {})


async def test_an_app_action_run_waits_for_a_starting_micro(micro: Any, proxy: Proxy) -> None:
    address, _ = micro
    runner = FakeRunner("api", None, State.STARTING)
    pending = asyncio.ensure_future(
        app_actions(runner, proxy, wait=5).run("app", "add", {"n": "1"})
    )
    await asyncio.sleep(0.2)
    assert not pending.done()
    runner.set(State.READY, address)
    assert (await asyncio.wait_for(pending, 5)).status == 201
