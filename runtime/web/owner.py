"""The owner-only guard of the runtime's pages and JSON API: sign in first, and only the owner
gets in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import quote

from aiohttp import web

from runtime.auth.credentials import SESSION_COOKIE, Credentials
from runtime.models import Principal
from runtime.serve.forwarded import request_cookie
from runtime.web.error_answers import Forbidden, Unauthorized
from runtime.web.pages import wants_html

Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WithCredentials(Protocol):
    """What the guard needs of an app's SettingsContext: who the sessions belong to."""

    @property
    def credentials(self) -> Credentials: ...


def session_of(ctx: WithCredentials, request: web.Request) -> Principal | None:
    """The signed-in user of the request's session cookie (never an API key: keys cannot
    manage keys)."""
    cookie = request_cookie(request.headers, SESSION_COOKIE)
    return ctx.credentials.session(cookie) if cookie else None


def owner_only(
    ctx: WithCredentials, what: str, back: str | None = None
) -> Callable[[Handler], Route]:
    """Wrap a handler so that only the owner's session reaches it. Without a session, a page
    (`back` given) sends a browser to sign in, then back to the page asked for, or to `back`
    after a form; anything else gets 401. A signed-in non-owner gets 403 saying they cannot see
    `what`. The error middleware turns both into the answer."""

    def wrap(handler: Handler) -> Route:
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = session_of(ctx, request)
            if principal is None:
                if back is not None and request.method in ("GET", "HEAD"):
                    target = request.rel_url.raw_path_qs
                    raise web.HTTPSeeOther(f"/__space/login?next={quote(target, safe='/')}")
                if back is not None and wants_html(request):
                    raise web.HTTPSeeOther(f"/__space/login?next={quote(back)}")
                raise Unauthorized()
            if not principal.owner:
                raise Forbidden(
                    f"You are signed in as {principal.user}, but only the owner may "
                    f"see and change {what}.",
                    principal.user or "",
                )
            return await handler(request, principal)

        return guarded

    return wrap
