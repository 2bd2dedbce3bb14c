"""Sign-in security against a real `space-dev up`: cookie flags, redirects, rate limit, CSRF,
logout and password changes that end sessions on the server, one-use links, and the data dir."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from itsdangerous import URLSafeSerializer

from runtime.auth.passwords import hash_password
from runtime.cli import control_client
from runtime.datadir.store import Store
from tests.integration.attack_env import Reply, send
from tests.integration.conftest import OWNER_PASSWORD, Up, run_up
from tests.integration.micros import PY_ECHO, write_app

PASSWORD = OWNER_PASSWORD
HTML = ("Accept", "text/html,application/xhtml+xml")
FORM = ("Content-Type", "application/x-www-form-urlencoded")


@dataclass
class Env:
    """The running runtime and where it keeps its data."""

    up: Up
    data_dir: Path
    root: Path

    @property
    def port(self) -> int:
        return self.up.port

    @property
    def origin(self) -> str:
        return self.up.url

    def get(self, target: str, *headers: tuple[str, str]) -> Reply:
        return send(self.port, "GET", target, headers)

    def post(
        self, target: str, fields: dict[str, str] | None = None, *headers: tuple[str, str]
    ) -> Reply:
        body = urllib.parse.urlencode(fields or {}).encode()
        return send(self.port, "POST", target, [FORM, *headers], body)

    def login(
        self, user: str, password: str, next_path: str = "/", *headers: tuple[str, str]
    ) -> Reply:
        fields = {"username": user, "password": password, "next": next_path}
        return self.post("/__space/login", fields, *headers)

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runtime", *args, "--data-dir", str(self.data_dir)],
            cwd=self.root,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
        )


def session_cookie(reply: Reply) -> str | None:
    """The `space_session` value a response sets, if any."""
    for header in reply.header_all("Set-Cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if "space_session" in jar:
            return jar["space_session"].value
    return None


def signed_in(env: Env, user: str, password: str) -> str:
    reply = env.login(user, password)
    assert reply.status == 303, (reply.status, reply.body[:200])
    cookie = session_cookie(reply)
    assert cookie
    return cookie


def as_session(cookie: str) -> tuple[str, str]:
    return ("Cookie", f"space_session={cookie}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("login")
    app = write_app(
        root / "app",
        """
        v: 0
        app_name: logintest
        micros:
          - name: site
            src: .
            engine: python3.9
            run: python echo.py
            presets:
              api_keys: true
        """,
        {"echo.py": PY_ECHO},
    )
    up = run_up(app, "--no-reload", "--no-schedule")
    try:
        up.wait_ready(60)
        yield Env(up, root / "data", root)
    finally:
        try:
            up.stop()
        except subprocess.TimeoutExpired:
            up.kill()


# --- the cookie ------------------------------------------------------------------------------


def test_session_cookie_flags(env: Env) -> None:
    old = signed_in(env, "dev", PASSWORD)
    reply = env.login("dev", PASSWORD, "/", as_session(old))
    assert reply.status == 303 and reply.header("Location") == "/"
    assert "no-store" in (reply.header("Cache-Control") or "")
    headers = [h for h in reply.header_all("Set-Cookie") if h.startswith("space_session=")]
    assert len(headers) == 1
    attributes = {
        part.strip().split("=", 1)[0].lower(): part.strip().partition("=")[2]
        for part in headers[0].split(";")[1:]
    }
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert attributes["max-age"] == str(7 * 24 * 3600)
    cookie = session_cookie(reply)
    assert cookie and cookie != old  # a sign-in always starts a new session (no fixation)
    assert "dev" not in cookie  # it names a session, not a user
    echo = json.loads(env.get("/x", as_session(cookie)).body)
    assert echo["headers"]["X-Space-User"] == "dev"


def test_wrong_password_sets_no_cookie(env: Env) -> None:
    reply = env.login("dev", "not the password")
    assert reply.status == 401
    assert session_cookie(reply) is None
    assert b"Wrong user name or password" in reply.body


# --- where `next` may send the browser ---------------------------------------------------------


def browser_destination(location: str, origin: str) -> str | None:
    """Where a browser (WHATWG URL parsing) goes for this Location: an origin, or None for a
    non-HTTP scheme. Tabs and line breaks are dropped and `\\` counts as `/`, as browsers do."""
    text = location.strip("".join(map(chr, range(0x21))))
    text = re.sub(r"[\t\n\r]", "", text).replace("\\", "/")
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", text)
    if scheme:
        if scheme.group(1).lower() not in ("http", "https"):
            return None
        rest = text[scheme.end() :].lstrip("/")
        host = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
        return f"{scheme.group(1).lower()}://{host}"
    if text.startswith("//"):
        host = re.split(r"[/?#]", text.lstrip("/"), maxsplit=1)[0].rpartition("@")[2]
        return f"http://{host}"
    return origin


OPEN_REDIRECTS = [
    "//evil.example",
    "///evil.example",
    "//evil.example/%2F..",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https://evil.example",
    "https:/evil.example",
    "http:evil.example",
    "HTTPS://evil.example/",
    "//@evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "",
]
# Paths a browser keeps on this origin whatever the runtime does with them: it does not decode
# %2F or %5C before resolving a Location, so `/` or the value itself are both safe answers.
ENCODED_LOOKALIKES = [
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%2F/evil.example",
    "/%09/evil.example",
]


@pytest.mark.parametrize("next_path", OPEN_REDIRECTS)
def test_next_off_this_origin_goes_to_root(env: Env, next_path: str) -> None:
    reply = env.login("dev", PASSWORD, next_path)
    assert reply.status == 303
    location = reply.header("Location")
    assert location == "/", location
    assert browser_destination(location, env.origin) == env.origin


@pytest.mark.parametrize("next_path", ENCODED_LOOKALIKES)
def test_encoded_lookalikes_stay_on_this_origin(env: Env, next_path: str) -> None:
    reply = env.login("dev", PASSWORD, next_path)
    assert reply.status == 303
    location = reply.header("Location") or ""
    assert location in ("/", next_path), location
    assert browser_destination(location, env.origin) == env.origin


@pytest.mark.parametrize("next_path", ["/", "/notes/7?tab=a%20b&x=1", "/__space/settings"])
def test_good_next_is_kept(env: Env, next_path: str) -> None:
    reply = env.login("dev", PASSWORD, next_path)
    assert reply.status == 303 and reply.header("Location") == next_path


def test_login_page_does_not_carry_a_bad_next(env: Env) -> None:
    reply = env.get("/__space/login?next=" + urllib.parse.quote("//evil.example", safe=""))
    assert reply.status == 200
    assert b'name="next" value="/"' in reply.body
    assert b"evil.example" not in reply.body


def test_navigation_is_sent_to_login_with_next(env: Env) -> None:
    reply = env.get("/notes/7?x=1", HTML)
    assert reply.status == 303
    location = reply.header("Location") or ""
    assert location.startswith("/__space/login?next=")
    next_value = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["next"][0]
    assert next_value == "/notes/7?x=1"


# --- rate limit --------------------------------------------------------------------------------


def test_five_failures_lock_the_name_even_for_the_right_password(env: Env) -> None:
    store = Store(env.data_dir)
    store.users.add("rl", hash_password("the right password"))
    for _ in range(5):
        assert env.login("rl", "a wrong password").status == 401
    reply = env.login("rl", "the right password")
    assert reply.status == 429
    assert session_cookie(reply) is None
    retry_after = int(reply.header("Retry-After") or "0")
    assert 1 <= retry_after <= 61
    assert env.login("rl", "a wrong password").status == 429
    # Another name is not locked with it.
    assert env.login("dev", PASSWORD).status == 303


# --- cross-site requests ---------------------------------------------------------------------

CROSS_SITE = {
    "origin-evil": [("Origin", "http://evil.example")],
    "origin-null": [("Origin", "null")],
    "origin-other-port": [("Origin", "http://127.0.0.1:1")],
    "origin-https": [("Origin", "https://127.0.0.1:{port}")],
    "origin-localhost": [("Origin", "http://localhost:{port}")],
    "sec-fetch-cross-site": [("Sec-Fetch-Site", "cross-site")],
    "own-origin-but-cross-site": [("Origin", "{origin}"), ("Sec-Fetch-Site", "cross-site")],
}


def _fill(headers: Sequence[tuple[str, str]], env: Env) -> list[tuple[str, str]]:
    return [(n, v.format(port=env.port, origin=env.origin)) for n, v in headers]


@pytest.mark.parametrize("headers", list(CROSS_SITE.values()), ids=list(CROSS_SITE))
def test_cross_site_login_is_refused(env: Env, headers: list[tuple[str, str]]) -> None:
    reply = env.login("dev", PASSWORD, "/", *_fill(headers, env))
    assert reply.status == 403
    assert session_cookie(reply) is None


def test_same_origin_login_from_a_browser_works(env: Env) -> None:
    reply = env.login(
        "dev", PASSWORD, "/", ("Origin", env.origin), ("Sec-Fetch-Site", "same-origin")
    )
    assert reply.status == 303 and session_cookie(reply)


@pytest.mark.parametrize("headers", list(CROSS_SITE.values()), ids=list(CROSS_SITE))
def test_cross_site_logout_is_refused(env: Env, headers: list[tuple[str, str]]) -> None:
    cookie = signed_in(env, "dev", PASSWORD)
    reply = env.post("/__space/logout", {}, as_session(cookie), *_fill(headers, env))
    assert reply.status == 403
    assert env.get("/x", as_session(cookie)).status == 200  # still signed in


# --- ending sessions ---------------------------------------------------------------------------


def test_logout_ends_the_session_on_the_server(env: Env) -> None:
    cookie = signed_in(env, "dev", PASSWORD)
    assert env.get("/x", as_session(cookie)).status == 200
    reply = env.post("/__space/logout", {}, as_session(cookie), ("Origin", env.origin))
    assert reply.status == 303 and reply.header("Location") == "/__space/login"
    cleared = [h for h in reply.header_all("Set-Cookie") if h.startswith("space_session=")]
    assert cleared and re.search(r"max-age=0|expires=thu, 01 jan 1970", cleared[0].lower())
    # The old cookie, replayed, is no session: the server forgot it.
    assert env.get("/x", as_session(cookie)).status == 401
    assert env.get("/x", as_session(cookie), HTML).status == 303
    store = Store(env.data_dir)
    sid = URLSafeSerializer(store.secret(), salt="session").loads(cookie)
    assert store.sessions.get(sid) is None


def test_password_change_from_the_cli_ends_that_users_sessions(env: Env) -> None:
    store = Store(env.data_dir)
    store.users.add("pat", hash_password("pat's first password"))
    pat = signed_in(env, "pat", "pat's first password")
    dev = signed_in(env, "dev", PASSWORD)
    assert env.get("/x", as_session(pat)).status == 403  # signed in, not the owner
    done = env.cli("users", "passwd", "pat", "--password-stdin", stdin="pat's second password\n")
    assert done.returncode == 0, done.stderr
    assert env.get("/x", as_session(pat)).status == 401  # no longer a session at all
    assert env.get("/x", as_session(dev)).status == 200  # other users keep theirs
    assert env.login("pat", "pat's first password").status == 401
    assert env.login("pat", "pat's second password").status == 303


def test_owner_password_change_ends_the_owners_sessions(env: Env) -> None:
    cookie = signed_in(env, "dev", PASSWORD)
    assert env.get("/x", as_session(cookie)).status == 200
    store = Store(env.data_dir)
    store.users.set_password_hash("dev", hash_password(PASSWORD))  # same password, new hash
    control_client.refresh(store)
    assert env.get("/x", as_session(cookie)).status == 401


def _tampered(cookie: str) -> dict[str, str]:
    payload, _, signature = cookie.partition(".")
    middle = len(signature) // 2
    flip = "A" if signature[middle] != "A" else "B"
    return {
        "payload-changed": ("J" if payload[0] != "J" else "I") + payload[1:] + "." + signature,
        "signature-changed": payload + "." + signature[:middle] + flip + signature[middle + 1 :],
        "signature-removed": payload,
        "signature-empty": payload + ".",
        "truncated": cookie[: len(cookie) // 2],
        "extra-part": cookie + ".x",
        "empty": "",
        "quoted": f'"{cookie}x"',
        "not-base64": "%%%.%%%",
        "json": '{"sid":"x"}',
        "very-long": "a" * 4000 + "." + "b" * 27,
    }


def test_a_tampered_cookie_is_not_a_session(env: Env) -> None:
    cookie = signed_in(env, "dev", PASSWORD)
    for name, value in _tampered(cookie).items():
        page = env.get("/x", ("Cookie", f"space_session={value}"), HTML)
        assert page.status == 303, (name, page.status)
        assert (page.header("Location") or "").startswith("/__space/login?next=")
        api = env.get("/x", ("Cookie", f"space_session={value}"))
        assert api.status == 401, (name, api.status)
    assert env.get("/x", as_session(cookie)).status == 200  # the real one still works


# --- the one-use sign-in link ------------------------------------------------------------------


def test_login_link_works_once(env: Env) -> None:
    match = env.up.wait_for(r"sign in as dev: (\S+)")
    link = urllib.parse.urlsplit(match.group(1))
    # Printed with localhost for 127.0.0.1; both names are answered.
    printed = env.origin.replace("//127.0.0.1:", "//localhost:")
    assert f"{link.scheme}://{link.netloc}" == printed and link.path == "/__space/login"
    target = f"{link.path}?{link.query}&next=%2Flanding"
    first = env.get(target)
    assert first.status == 303 and first.header("Location") == "/landing"
    cookie = session_cookie(first)
    assert cookie and env.get("/x", as_session(cookie)).status == 200
    again = env.get(target)
    assert again.status == 400 and session_cookie(again) is None
    token = urllib.parse.parse_qs(link.query)["token"][0]
    forged = env.get("/__space/login?token=" + urllib.parse.quote(token[:-2] + "xx"))
    assert forged.status == 400 and session_cookie(forged) is None


# --- what the data dir keeps -------------------------------------------------------------------


def test_data_dir_holds_no_plaintext_password_or_key(env: Env) -> None:
    made = env.cli("keys", "create", "--name", "grep-me", "--app", "logintest")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["api_key"]
    own = "my-own-key-value-0123456789"
    made = env.cli("keys", "create", "--name", "own-value", "--value", own, "--app", "logintest")
    assert made.returncode == 0, made.stderr
    store = Store(env.data_dir)
    store.users.add("grace", hash_password("grace's secret words"))
    secrets = [PASSWORD, key, key.split(".", 1)[1], own, "grace's secret words"]
    files = [p for p in env.data_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret!r} is in {path.name}"
    assert PASSWORD not in env.up.output  # set from the environment: never printed


def test_signing_secret_file_is_private(env: Env) -> None:
    secret = env.data_dir / "secret"
    assert secret.is_file()
    assert secret.stat().st_mode & 0o777 == 0o600
