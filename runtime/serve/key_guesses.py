"""Slows down guessing API keys: a client whose requests keep carrying a wrong key gets 429 for
its next wrong ones, while a right key from it still passes at once.

The gate calls it when it refuses a request for its key (one that is no key of the app): the
failures are counted per client address in memory (`auth/failures.py`), and nothing is done
for any other request.
"""

from __future__ import annotations

from aiohttp import web

from runtime.auth.failures import FailureCounter, client_of
from runtime.web.pages import problem


class KeyGuesses:
    """The failed key tries of every client of the runtime's apps."""

    def __init__(self, failures: FailureCounter) -> None:
        self._failures = failures

    def wrong_key(self, request: web.Request) -> web.Response | None:
        """Count a refused wrong key; the 429 to answer instead of the refusal once the client
        has failed too often (each try still counts, so a client that keeps on stays slowed)."""
        client = client_of(request.remote)
        slowed = self._failures.retry_after(client) > 0
        self._failures.failed(client)
        if not slowed:
            return None
        wait = self._failures.retry_after(client)
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
