"""`GET /__space/health`: 200 once every micro of the app is ready, 503 before; no credential."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

HEALTH_PATH = "/__space/health"


def add_routes(app: web.Application, states: Callable[[], Mapping[str, str]]) -> None:
    """`states()` gives each micro's state by name (`ready`, `starting`...)."""

    async def health(request: web.Request) -> web.Response:
        current = dict(states())
        if all(state == "ready" for state in current.values()):
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "starting", "micros": current}, status=503)

    app.router.add_get(HEALTH_PATH, health)
