"""The control API: the endpoints the `space-dev` CLI calls on the running runtime (its client is
`cli/control_client.py`), guarded by a per-run token."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from runtime.cloud.app_actions import AppActions
from runtime.errors import SpaceDevError
from runtime.web.actions import RunAction, run_answer
from runtime.web.error_answers import Unauthorized

TOKEN_HEADER = "X-Space-Dev-Token"
REFRESH_PATH = "/__space/internal/refresh"
ACTIONS_PATH = "/__space/internal/actions/"
APP_ACTIONS_PATH = "/__space/internal/app-actions"
STATUS_PATH = "/__space/internal/status"
SAID_MAX = 300  # characters of a CLI command's line shown in `up`'s terminal
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def add_routes(app: web.Application, token: str, refresh: Callable[[], object],
               app_name: str, run_action: RunAction, app_actions: AppActions,
               status: Callable[[], dict[str, Any]] | None = None,
               say: Callable[[str], object] | None = None) -> None:
    """`POST /__space/internal/refresh`: re-read the data dir now; 204 once done. With
    `{"said": TEXT}`, what the command did is one line in `up`'s terminal (`say`).

    `POST /__space/internal/status`: every app's micros, their states and URLs
    (`space-dev status`, `space-dev open`).

    `POST /__space/internal/actions/{id}` with `{"app": NAME}` (default: this origin's app): run
    the action now (`space-dev trigger`) and answer its run.

    `POST /__space/internal/app-actions` with `{"app": NAME}`: the app's App Actions
    (`space-dev actions list`); `POST .../app-actions/{name}` with `{"app": NAME, "inputs":
    {K: V}}`: run one (`space-dev actions run`) and answer what the micro gave back.
    """

    def allowed(request: web.Request) -> bool:
        sent = request.headers.get(TOKEN_HEADER, "")
        # surrogateescape: a header that was not UTF-8 is a wrong token, not a crash.
        return hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), token.encode())

    async def handle_refresh(request: web.Request) -> web.Response:
        if not allowed(request):
            raise Unauthorized()
        refresh()
        body = await _json_object(request)
        said = body.get("said") if body is not None else None
        if say is not None and isinstance(said, str) and said.strip():
            # From the token's holder, yet shown in a terminal: no escape sequence gets through.
            say(_CONTROL.sub(" ", said).strip()[:SAID_MAX])
        return web.Response(status=204)

    async def handle_status(request: web.Request) -> web.Response:
        if not allowed(request):
            raise Unauthorized()
        return web.json_response(status() if status is not None else {"apps": []})

    async def handle_action(request: web.Request) -> web.Response:
        if not allowed(request):
            raise Unauthorized()
        body = await _json_object(request)
        target = _target_app(body, app_name)
        if body is None or target is None:
            raise _bad_body()
        return await run_answer(run_action, target, request.match_info["id"])

    async def handle_app_actions(request: web.Request) -> web.Response:
        if not allowed(request):
            raise Unauthorized()
        body = await _json_object(request)
        target = _target_app(body, app_name)
        if body is None or target is None:
            raise _bad_body()
        name = request.match_info.get("name")
        if name is None:
            listing = await app_actions.listing(target, wait=2.0)
            return web.json_response({"actions": [a.as_dict() for a in listing.actions],
                                      "problems": listing.problems})
        inputs = body.get("inputs", {})
        if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
            raise SpaceDevError('"inputs" must be an object of text values')
        answer = await app_actions.run(target, name, inputs)  # an ActionError answers 400
        return web.json_response(answer.as_dict())

    app.router.add_post(REFRESH_PATH, handle_refresh)
    app.router.add_post(STATUS_PATH, handle_status)
    app.router.add_post(ACTIONS_PATH + "{id}", handle_action)
    app.router.add_post(APP_ACTIONS_PATH, handle_app_actions)
    app.router.add_post(APP_ACTIONS_PATH + "/{name}", handle_app_actions)


def _target_app(body: dict[str, Any] | None, default: str) -> str | None:
    """The app a CLI call names (default: this origin's), or None when it names no text."""
    target = body.get("app", default) if body is not None else None
    return target if isinstance(target, str) else None


def _bad_body() -> SpaceDevError:
    return SpaceDevError('the body must be a JSON object such as {"app": "NAME"}')


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    """The request body as a JSON object (an empty body is `{}`), or None."""
    try:
        body = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None
