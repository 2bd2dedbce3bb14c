"""Endpoints for the `space-dev` CLI talking to the running runtime, guarded by a per-run token."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from aiohttp import web

TOKEN_HEADER = "X-Space-Dev-Token"
REFRESH_PATH = "/__space/internal/refresh"


def add_routes(app: web.Application, token: str, refresh: Callable[[], object]) -> None:
    """`POST /__space/internal/refresh`: re-read the data dir now; 204 once done."""

    async def handle_refresh(request: web.Request) -> web.Response:
        sent = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(sent.encode(), token.encode()):
            return web.json_response({"errors": ["Unauthorized"]}, status=401)
        refresh()
        return web.Response(status=204)

    app.router.add_post(REFRESH_PATH, handle_refresh)
