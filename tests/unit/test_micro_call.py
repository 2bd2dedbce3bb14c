"""Calling a micro: the retry policy's table, an address as a URL and Host header (IPv6 in
brackets, over a real socket on ::1), and waits that end at the runner's change itself: a real
`MicroRunner` swapping processes on reload and seeing its process killed."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from runtime.actions.firing import ActionFirer
from runtime.datadir.store import Store
from runtime.models import Action
from runtime.serve.micro_call import (
    Failure,
    Next,
    after_failure,
    authority,
    host_literal,
    micro_url,
    wait_gone,
    wait_moved,
)
from runtime.serve.proxy import Proxy
from runtime.supervisor.manager import LaunchSpec, MicroRunner, State, Timings
from runtime.supervisor.output import Printer
from tests.unit.gate_fixtures import FakeRunner, closed_address

REFUSED, BROKEN = Failure.REFUSED, Failure.BROKEN


@pytest.mark.parametrize(
    ("failure", "time_left", "replayable", "resent", "died", "then"),
    [
        # Refused: nothing reached the micro, so it goes again while there is time, whatever it is.
        (REFUSED, True, False, False, False, Next.RETRY),
        (REFUSED, True, True, True, False, Next.RETRY),  # also after a resend
        (REFUSED, False, True, False, False, Next.GIVE_UP),
        # Broken: a safe request goes once more to the next process when its own died of it...
        (BROKEN, True, True, False, True, Next.RESEND),
        (BROKEN, False, True, False, True, Next.RESEND),  # it waits for the move up to the deadline
        # ...never one the micro may have acted on (a POST it read), never twice, never when a live
        # micro closed the connection (that was its answer).
        (BROKEN, True, False, False, True, Next.GIVE_UP),
        (BROKEN, True, True, True, True, Next.GIVE_UP),
        (BROKEN, True, True, False, False, Next.GIVE_UP),
    ],
)
def test_the_retry_policy(
    failure: Failure, time_left: bool, replayable: bool, resent: bool, died: bool, then: Next
) -> None:
    assert (
        after_failure(failure, time_left=time_left, replayable=replayable, resent=resent, died=died)
        is then
    )


@pytest.mark.parametrize(
    ("address", "host", "url"),
    [
        (("127.0.0.1", 8080), "127.0.0.1:8080", "http://127.0.0.1:8080/__space/v0/actions"),
        (("::1", 8080), "[::1]:8080", "http://[::1]:8080/__space/v0/actions"),
        (("fe80::1", 1), "[fe80::1]:1", "http://[fe80::1]:1/__space/v0/actions"),
        (("localhost", 3000), "localhost:3000", "http://localhost:3000/__space/v0/actions"),
    ],
)
def test_an_address_in_a_url_and_a_host_header(
    address: tuple[str, int], host: str, url: str
) -> None:
    assert authority(address) == host
    assert micro_url(address, "/__space/v0/actions") == url
    assert host_literal(address[0]) == host.rpartition(":")[0]


async def test_an_action_reaches_a_micro_that_listens_on_ipv6_loopback(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    seen: list[str] = []

    async def event(request: web.Request) -> web.Response:
        seen.append(request.headers["Host"])
        return web.Response(status=201)

    app = web.Application()
    app.router.add_post("/__space/v0/actions", event)
    server = await aiohttp_server(app, host="::1")
    proxy = Proxy()
    await proxy.start()
    try:
        runner = FakeRunner("api", ("::1", server.port))
        firer = ActionFirer(
            lambda app, micro: runner,
            proxy,
            Store(tmp_path / "data"),
            Printer(io.StringIO(), colour=False, live=False),
            ready_wait=2.0,
            timeout=2.0,
        )
        record = await firer.fire("app", Action(id="nightly", micro="api"), "schedule")
    finally:
        await proxy.close()
    assert record.status == 201
    assert seen == [f"[::1]:{server.port}"]


async def woken_at_once(waiter: asyncio.Future[bool]) -> float:
    """How long `waiter` took to finish after a change it waits for was made: it must take a
    few turns of the event loop, not a timer's tick."""
    changed = time.monotonic()
    for _ in range(5):
        if waiter.done():
            break
        await asyncio.sleep(0)
    assert waiter.done(), "the waiter did not wake at the change"
    assert waiter.result() is True
    return time.monotonic() - changed


async def test_a_wait_for_the_micro_to_move_ends_at_the_swap() -> None:
    old, new = closed_address(), closed_address()
    runner = FakeRunner("api", old)
    waiter = asyncio.ensure_future(wait_moved(runner, old, 5))
    await asyncio.sleep(0.05)
    runner.set(State.READY, old)  # a change that is no move: it keeps waiting
    await asyncio.sleep(0)
    assert not waiter.done()
    runner.set(State.READY, new)
    assert await woken_at_once(waiter) < 0.005
    # Positive control: with no change the wait ends at its timeout, saying so.
    assert await wait_moved(runner, new, 0.05) is False


def real_runner(tmp_path: Path) -> MicroRunner:
    # Behind a shell that waits for it, as `npm start` is: the server outlives a killed shell.
    command = f"{sys.executable} -m http.server $PORT --bind 127.0.0.1 & wait"
    timings = Timings(
        ready_timeout=20, backoff_start=5, backoff_max=5, healthy_after=60, stop_grace=1
    )
    return MicroRunner(
        "api",
        LaunchSpec(command, tmp_path, {}),
        Printer(io.StringIO(), colour=False, live=False),
        timings,
    )


async def ready(runner: MicroRunner) -> tuple[str, int]:
    runner.start()
    for _ in range(200):
        if runner.address is not None:
            return runner.address
        await runner.wait_changed(0.1)
    raise AssertionError(f"the micro did not start: {runner.state}")


async def test_a_real_runner_wakes_a_waiting_call_at_its_reload_swap(tmp_path: Path) -> None:
    runner = real_runner(tmp_path)
    try:
        old = await ready(runner)
        waiter = asyncio.ensure_future(wait_moved(runner, old, 30))
        await asyncio.sleep(0)
        assert await runner.reload("a test") is True  # returns right after the swap
        assert await woken_at_once(waiter) < 0.005
        assert runner.address not in (None, old)
    finally:
        await runner.stop()


async def test_a_real_runner_wakes_a_waiting_call_when_its_process_dies(tmp_path: Path) -> None:
    """At the exit itself: the server the shell started still holds the output pipe, so the
    supervisor hears of it only half a second later."""
    runner = real_runner(tmp_path)
    try:
        address = await ready(runner)
        gone = asyncio.ensure_future(wait_gone(runner, address, 30))
        await asyncio.sleep(0.05)
        assert not gone.done()  # positive control: a live process is still the one there
        began = time.monotonic()
        assert runner.pid is not None
        os.kill(runner.pid, signal.SIGKILL)
        assert await asyncio.wait_for(gone, 5) is True
        assert time.monotonic() - began < 0.25
        assert runner.address == address  # the supervisor has not noticed yet
    finally:
        await runner.stop()
