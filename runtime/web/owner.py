"""The owner-only guard of the settings pages: sign in first, and only the owner gets in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from runtime.models import Principal
from runtime.web.api import SettingsContext, session_of
from runtime.web.pages import problem, wants_html

Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def owner_only(ctx: SettingsContext, what: str, back: str) -> Callable[[Handler], Route]:
    """Wrap a page's handler: a visitor is sent to sign in (then back to the page asked for,
    or to `back` after a form), a signed-in non-owner gets 403 saying they cannot see `what`."""

    def wrap(handler: Handler) -> Route:
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = session_of(ctx, request)
            if principal is None:
                if request.method in ("GET", "HEAD"):
                    target = request.rel_url.raw_path_qs
                    raise web.HTTPSeeOther(f"/__space/login?next={quote(target, safe='/')}")
                if wants_html(request):
                    raise web.HTTPSeeOther(f"/__space/login?next={quote(back)}")
                return web.json_response({"errors": ["Unauthorized"]}, status=401)
            if not principal.owner:
                return problem(request, 403, "Forbidden",
                               f"You are signed in as {principal.user}, but only the owner may "
                               f"see and change {what}.", user=principal.user or "")
            return await handler(request, principal)

        return guarded

    return wrap
