"""The one way an error raised by a handler of the runtime's pages becomes an answer: the status
the error carries, as `{"errors": [...]}` on the JSON API and as the problem page on a page."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from runtime.cloud.base.errors import BaseError
from runtime.errors import SpaceDevError
from runtime.web import csrf
from runtime.web.pages import problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Answered in JSON whatever the client accepts: the owner's API and the CLI's endpoints.
JSON_ONLY_PREFIXES = ("/__space/api/", "/__space/internal/")

log = logging.getLogger("space-dev")


class Unauthorized(SpaceDevError):
    """No credential, or not one this route takes (401)."""

    status = 401

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class Forbidden(SpaceDevError):
    """Signed in, as someone who may not do this (403); `user` is offered a way to switch."""

    status = 403

    def __init__(self, why: str, user: str = "") -> None:
        super().__init__("Forbidden", why)
        self.user = user


def problems(err: BaseException) -> list[str]:
    """An error's sentences, as `{"errors": [...]}` and the pages show them."""
    if isinstance(err, BaseError):
        return err.explained()  # the owner's page says which rule a query broke
    if isinstance(err, SpaceDevError):
        return [m for m in (err.message, err.hint) if m]
    return [str(err)]


def answer(request: web.Request, status: int, lines: list[str], user: str = "") -> web.Response:
    """`lines` (the first one a title) as JSON on the JSON API, and for everything else as the
    problem page a browser gets (or the same JSON for a program)."""
    if request.path.startswith(JSON_ONLY_PREFIXES):
        return web.json_response({"errors": lines}, status=status)
    return problem(request, status, lines[0], " ".join(lines[1:]), user=user)


def middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    """Answer what a handler raises: a user error with its own status and words; anything else
    with a 500 that names no code (the runtime's log says what happened, its traceback under
    --debug). aiohttp's own HTTP exceptions (redirects, 404s) pass through as they are."""

    @web.middleware
    async def error_answers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (web.HTTPException, ConnectionError):
            raise  # aiohttp's own answer, or nobody left to answer
        except (SpaceDevError, BaseError) as err:
            return answer(request, err.status, problems(err), getattr(err, "user", ""))
        except Exception as err:  # a bug: the visitor gets no code, the log gets the story
            log.error(
                "internal error answering %s %s: %s: %s (run with --debug for the traceback)",
                request.method,
                request.path,
                type(err).__name__,
                err,
            )
            log.debug("the traceback of that internal error", exc_info=err)
            return answer(
                request, 500, ["Internal error", "The runtime's log says what went wrong."]
            )

    return error_answers


def pages_middlewares() -> list[Callable[..., Awaitable[web.StreamResponse]]]:
    """The middlewares of an app origin's own pages, in order: the cross-site check first (it
    refuses a request before any handler runs), then the one path from an error to an answer."""
    return [csrf.middleware(), middleware()]
