"""Slows down guessing API keys: a client whose requests keep carrying only wrong keys gets 429
for its next wrong ones, while a right key from it still passes at once.

Put in front of the gate, it counts what the gate refused: a 401 to a request whose keys (in the
app's key headers and cookies) are none of them a key of the app. Counted per client address in
memory (`auth/failures.py`); a key is checked as the gate checks it (a SHA-256 and a lookup), again
and only for a 401, so any other answer costs one comparison.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from runtime.auth.failures import FailureCounter, client_of
from runtime.auth.identity import Identity
from runtime.models import AuthConfig, Principal
from runtime.serve.forwarded import cookie_value
from runtime.web.pages import problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class KeyGuesses:
    """The failed key tries of every client of the runtime's apps."""

    def __init__(self, identity: Identity, failures: FailureCounter) -> None:
        self._identity = identity
        self._failures = failures

    def guard(self, app: str, auth: Callable[[], AuthConfig | None], gate: Handler) -> Handler:
        """`gate`, with wrong keys counted and slowed; `auth()` says where the app takes keys."""
        identity, failures = self._identity, self._failures

        async def guarded(request: web.Request) -> web.StreamResponse:
            response = await gate(request)
            if response.status != 401 or response.prepared:
                return response  # let through, refused otherwise, or the micro's answer sent
            config = auth()
            presented = _presented_keys(request, config) if config is not None else []
            if not presented:
                return response  # no key at all: a visitor before signing in
            if any(isinstance(identity.key(app, key), Principal) for key in presented):
                return response  # a right key refused here (a micro without api_keys)
            client = client_of(request.remote)
            slowed = failures.retry_after(client) > 0
            failures.failed(client)  # counted even when slowed: a client that keeps on stays so
            if not slowed:
                return response
            wait = failures.retry_after(client)
            refused = problem(
                request,
                429,
                "Too many requests with a wrong API key",
                f"Requests from this address carried a wrong API key too often: wait {wait} s "
                "before the next one. A right key is let through at once; check the key you "
                "send (`space-dev keys list` shows the ones that exist).",
            )
            refused.headers["Retry-After"] = str(wait)
            return refused

        return guarded


def _presented_keys(request: web.Request, auth: AuthConfig) -> list[str]:
    """Every key the request carries where the app takes keys, as the gate reads them."""
    headers = request.headers
    keys = [value.strip() for name in auth.key_headers for value in headers.getall(name, ())]
    if auth.key_cookies:
        cookies = "; ".join(headers.getall("Cookie", ()))
        keys += [value for name in auth.key_cookies
                 if (value := cookie_value(cookies, name)) is not None]
    return keys
