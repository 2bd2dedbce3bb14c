"""Endpoints for the `space-dev` CLI talking to the running runtime, guarded by a per-run token."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable

from aiohttp import web

from runtime.web.actions import RunAction, run_answer

TOKEN_HEADER = "X-Space-Dev-Token"
REFRESH_PATH = "/__space/internal/refresh"
ACTIONS_PATH = "/__space/internal/actions/"


def add_routes(app: web.Application, token: str, refresh: Callable[[], object],
               app_name: str, run_action: RunAction) -> None:
    """`POST /__space/internal/refresh`: re-read the data dir now; 204 once done.

    `POST /__space/internal/actions/{id}` with `{"app": NAME}` (default: this origin's app): run
    the action now (`space-dev trigger`) and answer its run.
    """

    def allowed(request: web.Request) -> bool:
        sent = request.headers.get(TOKEN_HEADER, "")
        # surrogateescape: a header that was not UTF-8 is a wrong token, not a crash.
        return hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), token.encode())

    async def handle_refresh(request: web.Request) -> web.Response:
        if not allowed(request):
            return web.json_response({"errors": ["Unauthorized"]}, status=401)
        refresh()
        return web.Response(status=204)

    async def handle_action(request: web.Request) -> web.Response:
        if not allowed(request):
            return web.json_response({"errors": ["Unauthorized"]}, status=401)
        try:
            body = json.loads(await request.read() or b"{}")
        except (ValueError, UnicodeDecodeError):
            body = None
        target = body.get("app", app_name) if isinstance(body, dict) else None
        if not isinstance(target, str):
            return web.json_response(
                {"errors": ['the body must be a JSON object such as {"app": "NAME"}']}, status=400)
        return await run_answer(run_action, target, request.match_info["id"])

    app.router.add_post(REFRESH_PATH, handle_refresh)
    app.router.add_post(ACTIONS_PATH + "{id}", handle_action)
