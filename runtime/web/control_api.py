"""The control API: the endpoints the `space-dev` CLI calls on the running runtime (its client is
`cli/control_client.py`), guarded by a per-run token."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from runtime.actions.app_actions import AppActions
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


def add_routes(
    app: web.Application,
    token: str,
    refresh: Callable[[], object],
    app_name: str,
    run_action: RunAction,
    app_actions: AppActions,
    status: Callable[[], dict[str, Any]] | None = None,
    say: Callable[[str], object] | None = None,
) -> None:
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
    api = _ControlApi(token, refresh, app_name, run_action, app_actions, status, say)
    app.router.add_post(REFRESH_PATH, api.refresh)
    app.router.add_post(STATUS_PATH, api.status)
    app.router.add_post(ACTIONS_PATH + "{id}", api.action)
    app.router.add_post(APP_ACTIONS_PATH, api.app_actions)
    app.router.add_post(APP_ACTIONS_PATH + "/{name}", api.app_actions)


class _ControlApi:
    """The handlers of the CLI's calls (see `add_routes`), each refusing a wrong token first."""

    def __init__(
        self,
        token: str,
        refresh: Callable[[], object],
        app_name: str,
        run_action: RunAction,
        app_actions: AppActions,
        status: Callable[[], dict[str, Any]] | None,
        say: Callable[[str], object] | None,
    ) -> None:
        self._token = token.encode()
        self._refresh = refresh
        self._app_name = app_name
        self._run_action = run_action
        self._app_actions = app_actions
        self._status = status
        self._say = say

    def _check_token(self, request: web.Request) -> None:
        sent = request.headers.get(TOKEN_HEADER, "")
        # surrogateescape: a header that was not UTF-8 is a wrong token, not a crash.
        if not hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), self._token):
            raise Unauthorized()

    async def _target(self, request: web.Request) -> tuple[dict[str, Any], str]:
        """The body of a call that names an app, and that app; a 400 for any other body."""
        body = await _json_object(request)
        target = _target_app(body, self._app_name)
        if body is None or target is None:
            raise _bad_body()
        return body, target

    async def refresh(self, request: web.Request) -> web.Response:
        self._check_token(request)
        self._refresh()
        body = await _json_object(request)
        said = body.get("said") if body is not None else None
        if self._say is not None and isinstance(said, str) and said.strip():
            # From the token's holder, yet shown in a terminal: no escape sequence gets through.
            self._say(_CONTROL.sub(" ", said).strip()[:SAID_MAX])
        return web.Response(status=204)

    async def status(self, request: web.Request) -> web.Response:
        self._check_token(request)
        return web.json_response(self._status() if self._status is not None else {"apps": []})

    async def action(self, request: web.Request) -> web.Response:
        self._check_token(request)
        _, target = await self._target(request)
        return await run_answer(self._run_action, target, request.match_info["id"])

    async def app_actions(self, request: web.Request) -> web.Response:
        self._check_token(request)
        body, target = await self._target(request)
        name = request.match_info.get("name")
        if name is None:
            listing = await self._app_actions.listing(target, wait=2.0)
            return web.json_response(
                {"actions": [a.as_dict() for a in listing.actions], "problems": listing.problems}
            )
        inputs = body.get("inputs", {})
        if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
            raise SpaceDevError('"inputs" must be an object of text values')
        answer = await self._app_actions.run(target, name, inputs)  # an ActionError answers 400
        return web.json_response(answer.as_dict())


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
