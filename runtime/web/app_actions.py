"""The owner's App Actions: a page under the settings page listing each `provide_actions`
micro's actions with a form for their inputs, its JSON twin, and the CLI's endpoints."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from runtime.cloud.app_actions import AppActions
from runtime.errors import SpaceDevError
from runtime.models import Principal
from runtime.web.api import SettingsContext, session_of
from runtime.web.pages import page, problem, wants_html

PAGE_PATH = "/__space/settings/app-actions"
API_PATH = "/__space/api/app-actions"
INTERNAL_PATH = "/__space/internal/app-actions"
INPUT_FIELD = "input."  # form field prefix, so an input can be called anything
TOKEN_HEADER = "X-Space-Dev-Token"

Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AppActionsPage:
    """Listing and running one app's App Actions, for the owner and for the CLI."""

    def __init__(self, ctx: SettingsContext, by_app: Callable[[str], AppActions | None],
                 token: str) -> None:
        self._ctx = ctx
        found = by_app(ctx.app.name)
        assert found is not None
        self._actions = found
        self._by_app = by_app  # the CLI's endpoints serve every app, from the first origin
        self._token = token

    def add_routes(self, app: web.Application) -> None:
        guard = self._owner_only
        app.router.add_get(PAGE_PATH, guard(self.show))
        app.router.add_post(f"{PAGE_PATH}/run", guard(self.run_form))
        app.router.add_get(API_PATH, guard(self.list_json))
        app.router.add_post(f"{API_PATH}/{{micro}}/{{name}}", guard(self.run_json))
        app.router.add_post(INTERNAL_PATH, self.internal_list)
        app.router.add_post(f"{INTERNAL_PATH}/run", self.internal_run)

    def _owner_only(self, handler: Handler) -> Route:
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = session_of(self._ctx, request)
            if principal is None:
                if request.method in ("GET", "HEAD") or wants_html(request):
                    raise web.HTTPSeeOther(f"/__space/login?next={quote(PAGE_PATH)}")
                return web.json_response({"errors": ["Unauthorized"]}, status=401)
            if not principal.owner:
                return problem(request, 403, "Forbidden", f"You are signed in as "
                               f"{principal.user}, but only the owner may run an app's actions.")
            return await handler(request, principal)

        return guarded

    async def _render(self, principal: Principal, **result: Any) -> web.Response:
        actions, errors = await self._actions.list()
        return page("app_actions.html", title=f"{self._ctx.app.name} app actions",
                    app_name=self._ctx.app.name, user=principal.user or "",
                    providers=self._actions.providers(), actions=actions, errors=errors,
                    result=result or None)

    async def show(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        return await self._render(principal)

    async def run_form(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        form = await request.post()
        given = {k.removeprefix(INPUT_FIELD): str(v) for k, v in form.items()
                 if k.startswith(INPUT_FIELD)}
        micro, name = str(form.get("micro", "")), str(form.get("name", ""))
        try:
            _, status, answer = await self._actions.run(name, given, micro or None)
        except SpaceDevError as err:
            return await self._render(principal, micro=micro, name=name, error=str(err))
        return await self._render(principal, micro=micro, name=name, status=status,
                                  answer=_pretty(answer))

    async def list_json(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        actions, errors = await self._actions.list()
        return web.json_response({"actions": [a.as_dict() for a in actions], "errors": errors})

    async def run_json(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        body = await _json_body(request)
        inputs = body.get("inputs", {}) if isinstance(body, dict) else None
        return await self._run_answer(request.match_info["name"], inputs,
                                      request.match_info["micro"])

    def _internal_target(self, request: web.Request,
                         body: Any) -> tuple[AppActions | None, web.Response | None]:
        if not self._allowed(request):
            return None, web.json_response({"errors": ["Unauthorized"]}, status=401)
        if not isinstance(body, dict):
            return None, web.json_response({"errors": ["the body must be a JSON object"]},
                                           status=400)
        app = body.get("app") or self._ctx.app.name
        actions = self._by_app(app) if isinstance(app, str) else None
        if actions is None:
            return None, web.json_response({"errors": [f"no app {app!r} is running"]},
                                           status=404)
        return actions, None

    async def internal_list(self, request: web.Request) -> web.StreamResponse:
        target, refused = self._internal_target(request, await _json_body(request))
        if target is None:
            return refused  # type: ignore[return-value]
        actions, errors = await target.list()
        return web.json_response({"actions": [a.as_dict() for a in actions], "errors": errors,
                                  "providers": target.providers()})

    async def internal_run(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        target, refused = self._internal_target(request, body)
        if target is None:
            return refused  # type: ignore[return-value]
        if not isinstance(body.get("name"), str):
            return web.json_response({"errors": ['the body must be {"name": ..., "inputs": {}}']},
                                     status=400)
        micro = body.get("micro")
        return await self._run_answer(body["name"], body.get("inputs", {}),
                                      micro if isinstance(micro, str) else None, target)

    async def _run_answer(self, name: str, inputs: Any, micro: str | None,
                          target: AppActions | None = None) -> web.Response:
        if not isinstance(inputs, dict):
            return web.json_response({"errors": ["inputs must be a JSON object"]}, status=400)
        given = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in inputs.items()}
        try:
            action, status, answer = await (target or self._actions).run(name, given, micro)
        except SpaceDevError as err:
            return web.json_response({"errors": [e for e in (err.message, err.hint) if e]},
                                     status=404 if "no app action" in err.message else 409)
        return web.json_response({"micro": action.micro, "name": action.name, "status": status,
                                  "answer": answer})

    def _allowed(self, request: web.Request) -> bool:
        sent = request.headers.get(TOKEN_HEADER, "")
        return hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), self._token.encode())


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None


def _pretty(answer: str) -> str:
    """A JSON answer indented, anything else as it came."""
    try:
        return json.dumps(json.loads(answer), indent=2)
    except ValueError:
        return answer
