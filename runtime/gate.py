"""The gate: normalise the path once, pick the micro, decide who may pass, forward what was checked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from runtime.auth.routes import BadPath, MountTable, normalise_path
from runtime.proxy import (
    Proxy,
    UpstreamFailed,
    UpstreamUnavailable,
    is_websocket,
    upstream_headers,
)
from runtime.static import StaticSite
from runtime.supervisor.manager import MicroRunner, State
from runtime.supervisor.output import Printer
from runtime.web.pages import problem

RUNTIME_PREFIX = "/__space"


@dataclass(frozen=True)
class Target:
    """One micro as the gate sees it: served by the runtime itself, or by a supervised process."""

    name: str
    static: StaticSite | None = None
    runner: MicroRunner | None = None


@dataclass(frozen=True)
class Routing:
    """Everything routing needs, swapped as one value when the Spacefile changes."""

    mounts: MountTable
    targets: Mapping[str, Target]


def is_runtime_path(path: str) -> bool:
    """Paths under /__space/ belong to the runtime and are never forwarded."""
    return path == RUNTIME_PREFIX or path.startswith(RUNTIME_PREFIX + "/")


def is_reserved_header(lower_name: str) -> bool:
    """Identity headers only the runtime may set; whatever a client sent under them is dropped."""
    name = lower_name.replace("_", "-")
    return (
        name.startswith("x-space-")
        or name.startswith("x-forwarded-")
        or name in ("forwarded", "x-real-ip")
    )


class Gate:
    """The handler for every request that is not the runtime's own."""

    def __init__(
        self,
        proxy: Proxy,
        routing: Callable[[], Routing | None],
        printer: Printer,
        request_wait: float,
    ) -> None:
        self._proxy = proxy
        self._routing = routing
        self._printer = printer
        self._request_wait = request_wait

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw_path, sep, query = request.raw_path.partition("?")
        try:
            path = normalise_path(raw_path)
        except BadPath as err:
            return problem(request, 400, "Bad request path", str(err))
        if is_runtime_path(path):
            return problem(request, 404, "Not found")
        routing = self._routing()
        if routing is None:
            return problem(request, 503, "Starting", "The app is starting; try again in a moment.")
        resolved = routing.mounts.resolve(path)
        if resolved is None:
            return problem(request, 404, "Not found", "No micro is mounted at this path.")
        micro, sub_path = resolved
        if is_runtime_path(sub_path):
            # A micro's own /__space/ paths (such as its action endpoint) are for the runtime only.
            return problem(request, 404, "Not found")
        target = routing.targets[micro]
        if target.static is not None:
            return await target.static.handle(request, sub_path)
        assert target.runner is not None
        headers = upstream_headers(request, self._dropped_headers(request), self._added_headers(request))
        path_qs = sub_path + sep + query
        return await self._forward(request, target.runner, path_qs, headers)

    def _dropped_headers(self, request: web.Request) -> list[str]:
        return [name.lower() for name in request.headers if is_reserved_header(name.lower())]

    def _added_headers(self, request: web.Request) -> list[tuple[str, str]]:
        return [
            ("X-Forwarded-For", request.remote or ""),
            ("X-Forwarded-Proto", request.scheme),
            ("X-Forwarded-Host", request.host),
            ("X-Space-Auth", "public"),
        ]

    async def _forward(
        self, request: web.Request, runner: MicroRunner, path_qs: str, headers: CIMultiDict[str]
    ) -> web.StreamResponse:
        deadline = time.monotonic() + self._request_wait
        forward = self._proxy.forward_websocket if is_websocket(request) else self._proxy.forward
        while True:
            address = await runner.wait_address(max(0.0, deadline - time.monotonic()))
            if address is None:
                return self._unavailable(request, runner)
            try:
                return await forward(request, address, path_qs, headers)
            except UpstreamFailed as err:
                return problem(
                    request, 502, f"The micro {runner.name} did not answer",
                    f"The connection closed before a response ({err}).",
                    self._printer.last_lines(runner.name, 30),
                )
            except UpstreamUnavailable:
                # The process behind `address` went away before anything was sent (a crash, or
                # the old side of a reload): ask again where the micro lives now.
                if time.monotonic() >= deadline:
                    return self._unavailable(request, runner)
                if runner.address == address:
                    await asyncio.sleep(0.05)  # let the supervisor notice the exit

    def _unavailable(self, request: web.Request, runner: MicroRunner) -> web.Response:
        state = runner.state
        if state is State.CRASHED:
            title = f"The micro {runner.name} has crashed"
            detail = "It is restarted automatically; fix the error below and save to try at once."
        elif state is State.STOPPED:
            title = f"The micro {runner.name} is stopped"
            detail = ""
        else:
            title = f"The micro {runner.name} is not ready"
            detail = f"It is {state.value} and did not answer within {self._request_wait:g} s."
        return problem(request, 502, title, detail, self._printer.last_lines(runner.name, 30))
