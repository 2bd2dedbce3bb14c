"""Cross-site protection: the rules the gate applies to micros' requests, and the middleware that
applies them to the runtime's own pages and APIs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from runtime.auth.credentials import SESSION_COOKIE
from runtime.serve.forwarded import request_cookie
from runtime.web.health import HEALTH_PATH
from runtime.web.pages import problem

# Methods that change nothing by HTTP's rules (RFC 9110 9.2.1). Every other one may: POST and
# DELETE, and also WebDAV's MKCOL, LOCK, PROPPATCH... or a name a micro made up.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def changes_state(method: str) -> bool:
    """Whether a request with this method may change something on the server."""
    return method not in SAFE_METHODS


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def same_origin(request: web.Request) -> bool:
    """False when a browser tells us the request comes from another site or origin.

    Browsers send `Origin` on every cross-origin POST and `Sec-Fetch-Site` on every request; a
    request with neither comes from a program (curl, the CLI), which holds its own credential.
    """
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return False
    return request.headers.get("Sec-Fetch-Site", "").lower() != "cross-site"


# Where a page of another origin may take the visitor with their session: to a page of the app,
# as a link does. Loading one of its resources into that page (a script, an image, a frame, a
# fetch) is refused: every port of 127.0.0.1 is the same site, so the Lax cookie goes along.
_TOP_LEVEL = frozenset({"document", ""})


def loaded_from_elsewhere(request: web.Request) -> bool:
    """Whether a browser says this is another origin's page loading one of our resources (Fetch
    Metadata: `Sec-Fetch-Site` same-site or cross-site, and not a top-level navigation)."""
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    if site not in ("same-site", "cross-site"):
        return False  # our own page, a typed address or bookmark, or not a browser at all
    headers = request.headers
    navigates = headers.get("Sec-Fetch-Mode", "").lower() == "navigate"
    return not navigates or headers.get("Sec-Fetch-Dest", "").lower() not in _TOP_LEVEL


def middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse (403) to any of the runtime's own handlers (the app of its pages; the gate checks
    the micros' requests itself) a cross-site state-changing request, and another origin's page
    loading one of them with the owner's session cookie: the gate's rule for micros, so that an
    `<img>` can neither read a private Drive file nor set off an export or a query."""

    @web.middleware
    async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
        if changes_state(request.method) and not same_origin(request):
            return problem(
                request,
                403,
                "Cross-site request refused",
                "This form must be sent from the app's own pages.",
            )
        if _takes_the_session(request) and loaded_from_elsewhere(request):
            return problem(
                request,
                403,
                "Cross-site request refused",
                "A page of another origin cannot load the runtime's pages or data with your "
                "session. Open the link itself instead.",
            )
        return await handler(request)

    return csrf


def _takes_the_session(request: web.Request) -> bool:
    """Whether the request carries the session cookie to a handler that may act on it (every one
    but the health check, which takes no credential)."""
    return request.path != HEALTH_PATH and bool(request_cookie(request.headers, SESSION_COOKIE))
