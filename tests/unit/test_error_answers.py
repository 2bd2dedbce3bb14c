"""The error middleware of the runtime's pages on a real aiohttp app (with the cross-site
middleware before it, as app.py builds it): each error type's status and words, as JSON on the
API and as the problem page on a page; a bug's 500 that shows no code; the owner guard's 401/403."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from markupsafe import escape

from runtime.actions.scheduler import AlreadyRunning, UnknownAction
from runtime.auth.credentials import SESSION_COOKIE, Credentials
from runtime.auth.passwords import hash_password
from runtime.cloud.base.errors import BadQuery, BaseError
from runtime.cloud.drive.errors import BadName, NoSuchUpload, TooLarge, UploadBusy
from runtime.datadir.accounts import ensure_owner
from runtime.datadir.store import Store
from runtime.errors import Conflict, DataDirError, NotFound, SpaceDevError
from runtime.models import Principal
from runtime.web import error_answers
from runtime.web.error_answers import Forbidden, Unauthorized
from runtime.web.owner import owner_only

API = "/__space/api/test"
INTERNAL = "/__space/internal/test"
PAGE = "/__space/settings/test"
HTML = {"Accept": "text/html"}
# What a bug's exception says: it must never reach the visitor.
SECRET = "password=hunter2 at /home/dev/app/secret.py"

ERRORS: list[tuple[BaseException, int, list[str]]] = [
    (
        SpaceDevError("the body must be a JSON object", 'e.g. {"name": "ci"}'),
        400,
        ["the body must be a JSON object", 'e.g. {"name": "ci"}'],
    ),
    (SpaceDevError("`name` must be a string"), 400, ["`name` must be a string"]),
    (NotFound("The Drive photos has no file a.png"), 404, ["The Drive photos has no file a.png"]),
    (
        Conflict("a key named ci already exists", "pick another name"),
        409,
        ["a key named ci already exists", "pick another name"],
    ),
    (
        DataDirError("keys.json is not valid JSON", "fix or remove it"),
        500,
        ["keys.json is not valid JSON", "fix or remove it"],
    ),
    (
        UnknownAction('app notes has no action "x"', "its actions are: cleanup"),
        404,
        ['app notes has no action "x"', "its actions are: cleanup"],
    ),
    (
        AlreadyRunning('action "x" of app notes is still running', "wait"),
        409,
        ['action "x" of app notes is still running', "wait"],
    ),
    (TooLarge("The item is larger than 2 MB"), 413, ["The item is larger than 2 MB"]),
    (BadName("a file name cannot end with /"), 400, ["a file name cannot end with /"]),
    (NoSuchUpload("no such upload"), 404, ["no such upload"]),
    (UploadBusy("the upload is being completed"), 409, ["the upload is being completed"]),
    (BadQuery("`age?lt` needs a number"), 400, ["Bad query: `age?lt` needs a number"]),
    (BaseError(404, "Key not found"), 404, ["Key not found"]),
    (Unauthorized(), 401, ["Unauthorized"]),
    (Forbidden("Only the owner may do that."), 403, ["Forbidden", "Only the owner may do that."]),
]


Raise = Callable[[], BaseException]


def _raising(make: Raise) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise make()

    return handler


async def _client(aiohttp_client: Any, make: Raise) -> TestClient:
    app = web.Application(middlewares=error_answers.pages_middlewares())
    for path in (API, INTERNAL, PAGE):
        app.router.add_route("*", path, _raising(make))
    return await aiohttp_client(app)


@pytest.mark.parametrize(
    ("error", "status", "lines"), ERRORS, ids=[type(e).__name__ for e, _, _ in ERRORS]
)
async def test_each_error_answers_its_status_and_words(
    aiohttp_client: Any, error: BaseException, status: int, lines: list[str]
) -> None:
    client = await _client(aiohttp_client, lambda: error)
    for path in (API, INTERNAL):  # JSON whatever the client accepts
        for headers in ({}, HTML):
            resp = await client.get(path, headers=headers)
            assert (resp.status, await resp.json()) == (status, {"errors": lines}), path
    # A page: the problem page for a browser, its title and detail as JSON for a program.
    resp = await client.get(PAGE)
    assert (resp.status, await resp.json()) == (
        status,
        {"errors": [lines[0], *([" ".join(lines[1:])] if lines[1:] else [])]},
    )
    resp = await client.get(PAGE, headers=HTML)
    text = await resp.text()
    assert resp.status == status and resp.content_type == "text/html"
    assert f"<h1>{escape(lines[0])}</h1>" in text
    assert all(escape(line) in text for line in lines)
    assert resp.headers["Cache-Control"] == "no-store"


async def test_forbidden_offers_the_signed_in_user_a_way_out(aiohttp_client: Any) -> None:
    client = await _client(aiohttp_client, lambda: Forbidden("Not yours.", "eve"))
    text = await (await client.get(PAGE, headers=HTML)).text()
    assert 'action="/__space/logout"' in text and "eve" in text


@pytest.mark.parametrize("path", [API, INTERNAL, PAGE])
async def test_a_bug_is_a_500_that_shows_no_code(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.INFO, "space-dev")
    client = await _client(aiohttp_client, lambda: KeyError(SECRET))
    for headers in ({}, HTML):
        resp = await client.post(path, headers=headers)
        body = await resp.text()
        assert resp.status == 500 and "Internal error" in body
        wanted = "text/html" if path == PAGE and headers else "application/json"
        assert resp.content_type == wanted
        for leak in ("Traceback", "KeyError", "hunter2", "secret.py", "error_answers.py"):
            assert leak not in body, leak
    # The log names what happened, in one line: the traceback only at debug level.
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info is None for r in errors)
    said = errors[0].getMessage()
    assert f"POST {path}" in said and "KeyError" in said and "--debug" in said
    assert not [r for r in caplog.records if r.levelno == logging.DEBUG]


async def test_under_debug_the_log_has_the_traceback(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "space-dev")
    client = await _client(aiohttp_client, lambda: ZeroDivisionError("division by zero"))
    resp = await client.get(API)
    assert resp.status == 500 and "Traceback" not in await resp.text()
    traced = [r for r in caplog.records if r.exc_info]
    assert len(traced) == 1 and traced[0].levelno == logging.DEBUG
    assert isinstance(traced[0].exc_info[1], ZeroDivisionError)  # type: ignore[index]
    assert "in handler" in caplog.text  # the traceback names the handler that failed


async def test_aiohttp_answers_pass_through(aiohttp_client: Any) -> None:
    client = await _client(aiohttp_client, lambda: web.HTTPSeeOther("/__space/login"))
    resp = await client.get(PAGE, allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/__space/login")


async def test_the_cross_site_check_still_comes_first(aiohttp_client: Any) -> None:
    ran: list[str] = []

    def make() -> BaseException:
        ran.append("handler")
        return SpaceDevError("reached the handler")

    client = await _client(aiohttp_client, make)
    app = client.app
    assert app is not None and len(app.middlewares) == 2
    refused = await client.post(API, headers={"Origin": "http://evil.example"})
    assert refused.status == 403 and ran == []
    assert (await refused.json())["errors"][0] == "Cross-site request refused"
    same = await client.post(API, headers={"Origin": str(client.make_url("")).rstrip("/")})
    assert same.status == 400 and ran == ["handler"]  # the positive control


# --- the one owner guard -------------------------------------------------------------------------


class _Ctx:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials


@pytest.fixture
async def guarded(aiohttp_client: Any, tmp_path: Path) -> tuple[TestClient, dict[str, str]]:
    store = Store(tmp_path / "runtime")
    ensure_owner(store, "the owner's password")
    store.users.add("eve", hash_password("eve's password"))
    credentials = Credentials(store)
    cookies = {
        who: f"{SESSION_COOKIE}={credentials.sign_session(store.sessions.create(who))}"
        for who in ("dev", "eve")
    }
    credentials.reload()

    async def handler(request: web.Request, principal: Principal) -> web.Response:
        return web.json_response({"user": principal.user})

    app = web.Application(middlewares=error_answers.pages_middlewares())
    ctx = _Ctx(credentials)
    app.router.add_route("*", API, owner_only(ctx, "the test")(handler))
    app.router.add_route("*", PAGE, owner_only(ctx, "the test", PAGE)(handler))
    return await aiohttp_client(app), cookies


async def test_one_owner_guard_for_the_api_and_the_pages(
    guarded: tuple[TestClient, dict[str, str]],
) -> None:
    client, cookies = guarded
    for path in (API, PAGE):
        owner = await client.get(path, headers={"Cookie": cookies["dev"]})
        assert (owner.status, await owner.json()) == (200, {"user": "dev"})
        eve = await client.get(path, headers={"Cookie": cookies["eve"]})
        assert (eve.status, await eve.json()) == (
            403,
            {
                "errors": [
                    "Forbidden",
                    "You are signed in as eve, but only the owner may see and change the test.",
                ]
            },
        )
    # Without a session: the API says 401; a page sends a browser to sign in.
    assert (await client.get(API, headers=HTML)).status == 401
    page = await client.get(PAGE, allow_redirects=False)
    assert (page.status, page.headers["Location"]) == (303, f"/__space/login?next={PAGE}")
    program = await client.post(PAGE)
    assert (program.status, await program.json()) == (401, {"errors": ["Unauthorized"]})
