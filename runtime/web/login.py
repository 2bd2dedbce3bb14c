"""Sign in and out: the login page, the form, one-use links, and the session cookie."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from aiohttp import web

from runtime.auth.credentials import SESSION_COOKIE, SESSION_MAX_AGE, Credentials
from runtime.auth.failures import client_of
from runtime.auth.passwords import verify_password
from runtime.datadir.accounts import LoginLimiter, LoginLinks
from runtime.datadir.store import Store
from runtime.serve.forwarded import request_cookie
from runtime.web.pages import page

LOGIN_PATH = "/__space/login"


def safe_next(value: str | None) -> str:
    """`next` if it is a path on this origin, else `/`: no open redirect (`//host`, `/\\host`)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


class Login:
    """The login handlers of one app origin; the limiter and links are shared by the runtime."""

    def __init__(
        self,
        app_name: str,
        store: Store,
        credentials: Credentials,
        limiter: LoginLimiter,
        links: LoginLinks,
        on_change: Callable[[], None],
    ) -> None:
        self._app = app_name
        self._store = store
        self._credentials = credentials
        self._limiter = limiter
        self._links = links
        self._on_change = on_change

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(LOGIN_PATH, self.show)
        app.router.add_post(LOGIN_PATH, self.submit)
        app.router.add_post("/__space/logout", self.logout)

    async def show(self, request: web.Request) -> web.StreamResponse:
        next_path = safe_next(request.query.get("next"))
        token = request.query.get("token")
        if token is not None and request.method == "HEAD":
            # Link checkers and mail scanners send HEAD before anyone clicks: it must not use
            # the link up (a HEAD changes nothing, RFC 9110 9.3.2).
            return self._page(next_path, "", "")
        if token is not None:
            user = self._links.consume(token)
            if user is not None and self._store.users.get(user) is not None:
                return self._signed_in(user, next_path)
            return self._page(
                next_path,
                "",
                "This sign-in link is not valid any more: links "
                "work once, for ten minutes. Sign in with your password.",
                400,
            )
        return self._page(next_path, "", "")

    async def submit(self, request: web.Request) -> web.StreamResponse:
        try:
            form = await request.post()
        except (ValueError, LookupError):
            # Anyone may post here: a body that is not a form (bytes that are not UTF-8, an
            # unknown charset, multipart without its boundary) is their mistake, not a crash.
            return self._page(
                "/",
                "",
                "The sign-in form could not be read: send it as "
                "application/x-www-form-urlencoded, in UTF-8.",
                400,
            )
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        next_path = safe_next(str(form.get("next", "")) or None)
        client = client_of(request.remote)
        wait = self._limiter.retry_after(username, client)
        if wait:
            return self._page(
                next_path,
                username,
                f"Too many failed attempts for {username} from this address. Try again in "
                f"{wait} s.",
                429,
                {"Retry-After": str(wait)},
            )
        user = self._store.users.get(username) if username else None
        stored = user.password_hash if user else _DUMMY_HASH
        # Counted as a failure until proven right, so tries sent in parallel cannot all slip in
        # while scrypt runs.
        self._limiter.failed(username, client)
        # scrypt takes tens of milliseconds: keep the event loop serving other requests.
        ok = await asyncio.get_running_loop().run_in_executor(
            None, verify_password, password, stored
        )
        if not ok or user is None:
            return self._page(next_path, username, "Wrong user name or password.", 401)
        self._limiter.succeeded(username, client)
        return self._signed_in(user.name, next_path)

    async def logout(self, request: web.Request) -> web.StreamResponse:
        cookie = request_cookie(request.headers, SESSION_COOKIE)
        if cookie:
            sid = self._credentials.session_id(cookie)
            if sid:
                self._store.sessions.delete(sid)
                self._on_change()
        try:
            form = await request.post()
        except (ValueError, LookupError):
            form = None
        # From a page that refused this user: the login page leads back there, for another one.
        back = safe_next(str(form.get("next", ""))) if form is not None else "/"
        target = LOGIN_PATH if back == "/" else f"{LOGIN_PATH}?next={quote(back, safe='/')}"
        response = _see_other(target)
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    def _signed_in(self, user: str, next_path: str) -> web.StreamResponse:
        sid = self._store.sessions.create(user)
        self._on_change()
        response = _see_other(next_path)
        response.set_cookie(
            SESSION_COOKIE,
            self._credentials.sign_session(sid),
            max_age=SESSION_MAX_AGE,
            path="/",
            httponly=True,
            samesite="Lax",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def _page(
        self,
        next_path: str,
        username: str,
        error: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        return page(
            "login.html",
            status=status,
            headers=headers,
            title="Sign in",
            app=self._app,
            next=next_path,
            username=username,
            error=error,
        )


# Verified when the user does not exist, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def _see_other(location: str) -> web.Response:
    """A 303 answered with a cookie set or dropped: returned, as aiohttp wants an answer (its
    HTTP exceptions are raised, and returning one is deprecated)."""
    return web.Response(status=303, headers={"Location": location})
