"""`/__space/settings/app-actions`: the App Actions of the app's micros, each with a form; a run
shows the micro's answer under its form. Plain forms: it works without JavaScript."""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from runtime.actions.app_actions import ActionError, AppActions
from runtime.models import Principal
from runtime.web.api import SettingsContext
from runtime.web.owner import owner_only
from runtime.web.pages import page

APP_ACTIONS_PATH = "/__space/settings/app-actions"
INPUT_FIELD = "input."  # form field prefix, so an input can be called anything
LIST_WAIT_S = 2.0  # a micro still starting gets this long to say what it offers
SHOWN_LIMIT = 64 * 1024  # an answer is shown up to here: a page must stay a page


class AppActionsPage:
    """The page, and the form each action posts to."""

    def __init__(self, ctx: SettingsContext, actions: Callable[[], AppActions]) -> None:
        self._ctx = ctx
        self._actions = actions

    def add_routes(self, app: web.Application) -> None:
        guard = owner_only(self._ctx, "an app's actions", APP_ACTIONS_PATH)
        app.router.add_get(APP_ACTIONS_PATH, guard(self.show))
        app.router.add_get(f"{APP_ACTIONS_PATH}/{{name}}", guard(self.show_one))
        app.router.add_post(f"{APP_ACTIONS_PATH}/{{name}}", guard(self.run))

    async def show(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        return await self._render(principal)

    async def show_one(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        # The address a run's answer was shown at, reloaded: the page, at that action.
        name = request.match_info["name"]
        raise web.HTTPSeeOther(f"{APP_ACTIONS_PATH}#action-{name}")

    async def run(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        name = request.match_info["name"]
        form = await request.post()
        given = {
            k.removeprefix(INPUT_FIELD): str(v)
            for k, v in form.items()
            if k.startswith(INPUT_FIELD)
        }
        try:
            answer = await self._actions().run(self._ctx.app.name, name, given)
        except ActionError as err:
            error = " ".join(p for p in (err.message, err.hint) if p)
            return await self._render(principal, status=400, ran=name, error=error, given=given)
        shown = (
            answer.data
            if isinstance(answer.data, str)
            else json.dumps(answer.data, indent=2, ensure_ascii=False)
        )
        if len(shown) > SHOWN_LIMIT:
            shown = shown[:SHOWN_LIMIT] + f"\n... (cut here: {len(shown):,} characters in all)"
        return await self._render(
            principal,
            ran=name,
            given=given,
            answer={
                "status": answer.status,
                "ok": 200 <= answer.status < 300,
                "type": answer.output,
                "text": shown,
            },
        )

    async def _render(
        self,
        principal: Principal,
        *,
        status: int = 200,
        ran: str = "",
        error: str = "",
        given: dict[str, str] | None = None,
        answer: dict[str, object] | None = None,
    ) -> web.Response:
        listing = await self._actions().listing(self._ctx.app.name, wait=LIST_WAIT_S)
        providing = [m.name for m in self._ctx.app.spacefile.micros if m.provide_actions]
        return page(
            "app_actions.html",
            status=status,
            title=f"{self._ctx.app.name} actions",
            app_name=self._ctx.app.name,
            user=principal.user or "",
            providing=providing,
            actions=listing.actions,
            problems=listing.problems,
            ran=ran,
            error=error,
            given=given or {},
            answer=answer,
            field=INPUT_FIELD,
            path=APP_ACTIONS_PATH,
        )
