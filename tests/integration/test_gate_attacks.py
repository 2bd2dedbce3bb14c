"""The gate under attack: a corpus of raw requests that must be refused before any micro sees them.

The runtime, its apps and the raw HTTP client are in `attack_env`. Each refused request is checked
twice: by the answer, and by the echo micros' own record. The positive controls show the same
requests, with a credential or on a real public route, do reach the micro, with exactly the
normalised path and no client-sent identity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from runtime.auth.routes import normalise_path
from tests.integration.attack_env import (
    API_ROUTES,
    KEY_COOKIE,
    MARKER,
    GateEnv,
    gate_env,
    received_records,
    received_with_marker,
)

__all__ = ["gate_env"]  # the fixture, imported to be found by pytest


# --- the attack corpus ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """One request that must be refused: expected statuses, and never seen by a micro."""

    id: str
    target: str | bytes
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    statuses: frozenset[int] = frozenset({401})
    port: str = "gate"
    body: bytes = b""


def A(
    id: str,
    target: str | bytes,
    *headers: tuple[str, str],
    method: str = "GET",
    status: int | tuple[int, ...] = 401,
    port: str = "gate",
    body: bytes = b"",
) -> Attack:
    """Shorthand for one row of the corpus."""
    statuses = frozenset(status if isinstance(status, tuple) else (status,))
    return Attack(id, target, tuple(headers), method, statuses, port, body)


SESSION = ("Cookie", "space_session={session}")
EVE = ("Cookie", "space_session={eve_session}")
KEY = ("X-Space-App-Key", "{key}")
HTML = ("Accept", "text/html,application/xhtml+xml")
WS = (
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
)

ATTACKS: list[Attack] = [
    # Dot segments: raw, encoded once (decoded and resolved), encoded twice (kept literal).
    A("dots-raw", "/api/public/../x"),
    A("dots-encoded", "/api/public/%2e%2e/x"),
    A("dots-encoded-upper", "/api/public/%2E%2E/x"),
    A("dots-half-encoded", "/api/public/.%2e/x"),
    A("dot-encoded-then-dots", "/api/public/%2e/../x"),
    A("dots-double-encoded-private", "/api/x/%252e%252e/public/a"),
    A("dots-encoded-into-admin", "/api/public/%2e%2e/%2e%2e/admin/x"),
    A("dots-into-admin", "/api/public/../../admin/x"),
    A("dots-above-root", "/api/public/../../../x", status=400),
    A("dots-encoded-above-root", "/api/public/%2e%2e/%2e%2e/%2e%2e/x", status=400),
    A("dots-to-micro-root", "/api/public/.."),
    A("dots-two-levels", "/api/public/a/../../x"),
    A("dots-glued-to-public", "/api/public../x"),
    A("dots-iis-unicode", "/api/public/%u002e%u002e/x", status=400),
    # Encoded slashes and backslashes.
    A("slash-encoded-upper", "/api/public%2F..%2Fx", status=400),
    A("slash-encoded-lower", "/api/public%2f..%2fx", status=400),
    A("slash-encoded-after-dots", "/api/public/..%2Fx", status=400),
    A("slash-double-encoded", "/api/public%252F..%252Fx"),
    A("backslash-raw", "/api/public\\..\\x", status=400),
    A("backslash-raw-after-dots", "/api/public/..\\x", status=400),
    A("backslash-encoded-upper", "/api/public%5C..%5Cx", status=400),
    A("backslash-encoded-lower", "/api/public%5c..%5cx", status=400),
    # `;` parameters.
    A("semicolon-dots", "/api/public/..;/x", status=400),
    A("semicolon-dot", "/api/public/.;/../x", status=400),
    A("semicolon-after-open", "/api/open;x"),
    A("semicolon-trailing-open", "/api/open;"),
    A("semicolon-encoded-open", "/api/open%3Bx"),
    A("semicolon-after-public", "/api/public;/x"),
    A("semicolon-private-prefix", "/api/x;/public/a"),
    # Repeated slashes.
    A("double-slash-start", "//api/x"),
    A("double-slash-then-dots", "/api//public/../x"),
    A("double-slash-before-dots", "/api/public//../x"),
    A("many-slashes", "///api///x"),
    # Case: mounts and public routes are case-sensitive.
    A("case-mount", "/API/public/x"),
    A("case-mount-mixed", "/Api/open"),
    A("case-public", "/api/PUBLIC/x"),
    A("case-public-title", "/api/Public/x"),
    A("case-open", "/api/OPEN"),
    A("case-png", "/api/x.PNG"),
    # NUL, overlong UTF-8, raw non-ASCII.
    A("nul-encoded", "/api/public/%00/../x", status=400),
    A("nul-encoded-open", "/api/open%00", status=400),
    A("nul-raw", b"/api/open\x00", status=400),
    A("overlong-dots", "/api/%c0%ae%c0%ae/x"),
    A("overlong-slash", "/api/public%c0%af..%c0%afx"),
    A("raw-non-ascii", b"/api/\xc0\xae\xc0\xae/x", status=400),
    # The query string plays no part.
    A("query-public-path", "/api/x?/public/a"),
    A("query-public-param", "/api/x?next=/public/a"),
    A("query-png", "/api/x?.png"),
    A("query-open", "/api/x?/open"),
    A("query-encoded-question", "/api/x%3F/public/a"),
    A("fragment-public-path", "/api/x#/public/a", status=400),
    A("fragment-after-png", "/api/x.png#", status=400),
    # Absolute-form and asterisk-form targets.
    A("absolute-form-evil", "http://evil.example/api/x", status=(400, 401)),
    A("absolute-form-public-dots", "http://evil.example/api/public/../x", status=(400, 401)),
    A("absolute-form-own-host", "{gate_origin}/api/x", status=(400, 401)),
    A("absolute-form-https", "https://evil.example/admin/x", status=(400, 401)),
    A("asterisk-form", "*", method="OPTIONS", status=(400, 404)),
    # API keys where they do not count.
    A("key-on-admin", "/admin/x", KEY),
    A("key-on-static-primary", "/", KEY),
    A("key-x-api-key-on-admin", "/admin/x", ("X-API-Key", "{key}")),
    A("key-cookie-on-admin", "/admin/x", ("Cookie", f"{KEY_COOKIE}={{key}}")),
    A("key-of-other-app", "/api/x", ("X-Space-App-Key", "{other_key}")),
    A("key-of-other-app-x-api-key", "/api/x", ("X-API-Key", "{other_key}")),
    A("key-of-gate-on-other-app", "/x", KEY, port="other"),
    A("key-revoked", "/api/x", ("X-Space-App-Key", "{revoked_key}")),
    A("key-disabled", "/api/x", ("X-Space-App-Key", "{disabled_key}")),
    A("key-disabled-cookie", "/api/x", ("Cookie", f"{KEY_COOKIE}={{disabled_key}}")),
    A("key-empty", "/api/x", ("X-Space-App-Key", "")),
    A("key-prefix-only", "/api/x", ("X-Space-App-Key", "{key_prefix}")),
    A("key-with-suffix", "/api/x", ("X-Space-App-Key", "{key}x")),
    A("key-case-swapped", "/api/x", ("X-Space-App-Key", "{key_swapcase}")),
    A("key-in-query", "/api/x?api_key={key}"),
    A("key-as-bearer", "/api/x", ("Authorization", "Bearer {key}")),
    A("key-underscore-header", "/api/x", ("X_Space_App_Key", "{key}")),
    A("key-wrong-with-session", "/api/x", ("X-Space-App-Key", "not-a-key"), SESSION),
    A("key-other-app-with-session", "/api/x", ("X-Space-App-Key", "{other_key}"), SESSION),
    A("key-disabled-with-session", "/admin/x", ("X-API-Key", "{disabled_key}"), SESSION),
    A("key-empty-with-session", "/admin/x", ("X-Space-App-Key", ""), SESSION),
    A(
        "key-cookie-wrong-with-session",
        "/api/x",
        ("Cookie", f"{KEY_COOKIE}=nope; space_session={{session}}"),
    ),
    A("key-first-header-wrong", "/api/x", ("X-Space-App-Key", "nope"), ("X-API-Key", "{key}")),
    A("key-duplicate-first-wrong", "/api/x", ("X-Space-App-Key", "nope"), KEY),
    # Spoofed identity, no credential.
    A("spoof-space-user", "/api/x", ("X-Space-User", "dev")),
    A("spoof-space-auth", "/api/x", ("X-Space-Auth", "session"), ("X-Space-User", "dev")),
    A("spoof-space-auth-public", "/admin/x", ("X-Space-Auth", "public")),
    A("spoof-underscore", "/api/x", ("X_Space_User", "dev"), ("X_Space_Auth", "session")),
    A("spoof-odd-case", "/admin/x", ("x-sPACE-uSER", "dev"), ("X-SPACE-AUTH", "session")),
    A("spoof-key-name", "/api/x", ("X-Space-Key-Name", "good"), ("X-Space-Client-Type", "ci")),
    A("spoof-forwarded-user", "/api/x", ("X-Forwarded-User", "dev")),
    A("spoof-forwarded-for", "/admin/x", ("X-Forwarded-For", "127.0.0.1")),
    A("spoof-forwarded", "/admin/x", ("Forwarded", "for=127.0.0.1;host=localhost")),
    A("spoof-original-url", "/api/x", ("X-Original-URL", "/public/a")),
    # Sessions that are not (or no longer) sessions.
    A("session-forged", "/api/x", ("Cookie", "space_session=forged")),
    A("session-tampered", "/admin/x", ("Cookie", "space_session={tampered}")),
    A("session-after-logout", "/api/x", ("Cookie", "space_session={logged_out}")),
    A("session-unknown-id-real-secret", "/api/x", ("Cookie", "space_session={forged_real_secret}")),
    A("session-signed-for-other-purpose", "/api/x", ("Cookie", "space_session={wrong_salt}")),
    A("session-expired", "/admin/x", ("Cookie", "space_session={expired}")),
    A("session-of-removed-user", "/admin/x", ("Cookie", "space_session={removed_user}")),
    A("session-forged-browser", "/admin/x", ("Cookie", "space_session=forged"), HTML, status=303),
    # A signed-in user who is not the owner.
    A("non-owner-api", "/api/x", EVE, status=403),
    A("non-owner-admin", "/admin/x", EVE, status=403),
    A("non-owner-static", "/", EVE, status=403),
    A("non-owner-spoofing-owner", "/admin/x", EVE, ("X-Space-User", "dev"), status=403),
    # A micro's own /__space/ paths, even for the owner.
    A("actions-no-credential", "/api/__space/v0/actions", method="POST", status=404, body=b"{}"),
    A("actions-with-session", "/api/__space/v0/actions", SESSION, method="POST", status=404),
    A("actions-with-key", "/api/__space/v0/actions", KEY, method="POST", status=404),
    A("actions-encoded", "/api/%5F%5Fspace/v0/actions", SESSION, method="POST", status=404),
    A("actions-double-slash", "/api//__space/v0/actions", SESSION, method="POST", status=404),
    A("actions-via-dots", "/api/public/../__space/v0/actions", SESSION, method="POST", status=404),
    A("actions-on-admin", "/admin/__space/v0/actions", SESSION, method="POST", status=404),
    A("actions-on-public-micro-path", "/api/__space", status=404),
    A("internal-refresh-no-token", "/__space/internal/refresh", method="POST", status=401),
    # WebSocket upgrades and other methods pass the same gate.
    A("websocket-no-credential", "/api/ws", *WS),
    A("websocket-key-on-admin", "/admin/ws", KEY, *WS),
    A("websocket-spoofed-user", "/admin/ws", ("X-Space-User", "dev"), *WS),
    A("head-no-credential", "/api/x", method="HEAD"),
    A("head-browser", "/admin/x", HTML, method="HEAD", status=303),
    A("options-no-credential", "/api/x", method="OPTIONS"),
    A(
        "options-preflight",
        "/admin/x",
        ("Origin", "http://evil.example"),
        ("Access-Control-Request-Method", "DELETE"),
        method="OPTIONS",
    ),
    A("post-no-credential", "/api/x", method="POST", body=b'{"a": 1}'),
    A("delete-no-credential", "/admin/x", method="DELETE"),
    A("trace-no-credential", "/api/x", method="TRACE"),
    A("propfind-no-credential", "/admin/x", method="PROPFIND"),
    A("browser-navigation", "/api/x", HTML, status=303),
    # A route rule restricts in every letter case: micros such as Express route case-insensitively.
    A("rule-case-upper", "/api/ADMIN/users", SESSION, method="DELETE", status=403),
    A("rule-case-title", "/api/Admin/users", SESSION, status=403),
    A("rule-case-encoded", "/api/%41dmin/users", SESSION, status=403),
    A("rule-case-encoded-lower", "/api/%61DMIN/users", SESSION, method="POST", status=403),
    A("rule-case-exact", "/api/admin/users", SESSION, status=403),
    A("rule-allow-upper-owner", "/api/ALICE/x", SESSION, status=403),
    A("rule-allow-title-owner", "/api/Alice/notes", SESSION, method="PUT", status=403),
    # ...but admits only in the case it names: alice is let in at /alice/*, nowhere else.
    A(
        "rule-allow-upper-alice",
        "/api/ALICE/x",
        ("Cookie", "space_session={alice_session}"),
        status=403,
    ),
    A(
        "rule-allow-alice-elsewhere",
        "/api/x",
        ("Cookie", "space_session={alice_session}"),
        status=403,
    ),
    # Dot segments with `;` parameters, encoded: Tomcat-style servers resolve them all the same.
    A("semicolon-dots-encoded", "/api/public/..%3B/x", status=400),
    A("semicolon-dots-encoded-lower", "/api/public/..%3b/x", status=400),
    A("semicolon-dots-all-encoded", "/api/public/%2e%2e%3b/x", status=400),
    A("semicolon-dots-encoded-param", "/api/public/..%3Bjsessionid=1/x", status=400),
    A("semicolon-dot-encoded", "/api/public/.%3B/../x", status=400),
    A("semicolon-dot-all-encoded", "/api/public/%2E%3B/x", status=400),
    # A session cookie from another origin changes nothing, whatever the method is called.
    *(
        A(
            f"cross-site-{m.lower()}",
            "/admin/x",
            SESSION,
            ("Origin", "http://evil.example"),
            method=m,
            status=403,
        )
        for m in (
            "POST",
            "PUT",
            "PATCH",
            "DELETE",
            "PROPFIND",
            "PROPPATCH",
            "MKCOL",
            "LOCK",
            "UNLOCK",
            "COPY",
            "MOVE",
            "TRACE",
            "SEARCH",
            "PURGE",
        )
    ),
    A(
        "cross-site-fetch-site-mkcol",
        "/admin/x",
        SESSION,
        ("Sec-Fetch-Site", "cross-site"),
        method="MKCOL",
        status=403,
    ),
    A(
        "cross-site-other-port",
        "/admin/x",
        SESSION,
        ("Origin", "http://127.0.0.1:1"),
        method="LOCK",
        status=403,
    ),
    # Another local page (any port of 127.0.0.1 is the same site, so the Lax cookie goes along)
    # loading a private resource into itself: a script, an image, a frame, a fetch.
    *(
        A(
            f"embedded-{dest}-{site}",
            "/admin/x.js",
            SESSION,
            ("Sec-Fetch-Site", site),
            ("Sec-Fetch-Mode", mode),
            ("Sec-Fetch-Dest", dest),
            status=403,
        )
        for site in ("same-site", "cross-site")
        for mode, dest in (
            ("no-cors", "script"),
            ("no-cors", "image"),
            ("cors", "empty"),
            ("navigate", "iframe"),
            ("navigate", "object"),
            ("no-cors", "style"),
        )
    ),
    A(
        "embedded-key-cookie",
        "/api/x.js",
        ("Cookie", f"{KEY_COOKIE}={{key}}"),
        ("Sec-Fetch-Site", "same-site"),
        ("Sec-Fetch-Mode", "no-cors"),
        ("Sec-Fetch-Dest", "script"),
        status=403,
    ),
    # DNS rebinding: a page of another name that now resolves to 127.0.0.1 is not this app.
    A("host-rebound", "/admin/x", SESSION, ("Host", "evil.example"), status=421),
    A("host-rebound-with-port", "/api/x", KEY, ("Host", "evil.example:{gate_port}"), status=421),
    A("host-rebound-public", "/api/open", ("Host", "rebind.evil.example"), status=421),
    A("host-rebound-login", "/__space/login", ("Host", "evil.example"), status=421),
    A("host-rebound-settings", "/__space/settings", SESSION, ("Host", "evil.example"), status=421),
    A(
        "host-rebound-api",
        "/__space/api/keys",
        SESSION,
        ("Host", "evil.example"),
        method="POST",
        body=b'{"name": "x"}',
        status=421,
    ),
    A(
        "host-localhost-lookalike",
        "/admin/x",
        SESSION,
        ("Host", "localhost.evil.example"),
        status=421,
    ),
    A("host-ip-lookalike", "/admin/x", SESSION, ("Host", "127.0.0.1.nip.io"), status=421),
    A("host-decimal-ip", "/admin/x", SESSION, ("Host", "2130706433"), status=421),
    A("host-empty", "/admin/x", SESSION, ("Host", ""), status=(400, 421)),
]


def test_corpus_is_large_and_ids_are_unique() -> None:
    ids = [a.id for a in ATTACKS]
    assert len(ids) == len(set(ids))
    assert len(ATTACKS) >= 60


@pytest.mark.parametrize("attack", [pytest.param(a, id=a.id) for a in ATTACKS])
def test_attack_is_refused(gate_env: GateEnv, attack: Attack) -> None:
    marker = f"attack-{attack.id}"
    reply = gate_env.request(
        attack.port, attack.method, attack.target, [*attack.headers, (MARKER, marker)], attack.body
    )
    assert reply.status in attack.statuses, (reply.status, reply.body[:300])
    assert reply.echo is None, f"a micro answered: {reply.body[:300]!r}"
    assert not received_with_marker(gate_env.log, MARKER, marker), "a micro received it"
    if reply.status == 303:
        assert (reply.header("Location") or "").startswith("/__space/login?next=")
    if reply.status == 401 and attack.method != "HEAD":
        assert json.loads(reply.body) == {"errors": ["Unauthorized"]}


# --- raw `#` in the request target ----------------------------------------------------------

FRAGMENT_SMUGGLING = [
    pytest.param("/api/secret#.png", id="fragment-star-png"),
    pytest.param("/api/#.png", id="fragment-star-png-micro-root"),
    pytest.param("/api/docs/a#/raw", id="fragment-inside-star-segment"),
]


@pytest.mark.parametrize("target", FRAGMENT_SMUGGLING)
def test_raw_fragment_cannot_smuggle_a_private_path(gate_env: GateEnv, target: str) -> None:
    marker = f"fragment-{target}"
    reply = gate_env.request("gate", "GET", target, [(MARKER, marker)])
    records = received_with_marker(gate_env.log, MARKER, marker)
    if not records:
        assert reply.status in (400, 401), reply
        return
    # If it is let through, the micro must see the very path that was found public.
    path = records[0]["path"]
    assert "#" in path or "%23" in path, f"the micro received {path!r}"
    assert API_ROUTES.matches(path.partition("?")[0])


# --- positive controls ---------------------------------------------------------------------

SPOOFED = (
    ("X-Space-User", "mallory"),
    ("X_Space_Auth", "spoofed-auth"),
    ("x-space-key-name", "spoofed-key"),
    ("X-SPACE-CLIENT-TYPE", "spoofed-type"),
    ("X-Forwarded-For", "6.6.6.6"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "gopher"),
    ("X_Forwarded_User", "mallory"),
    ("X-Space-Gate", "a-proof-the-client-made-up"),
)
SPOOFED_VALUES = frozenset(v for _, v in SPOOFED)


@dataclass(frozen=True)
class Allowed:
    """A request that must reach the micro, and what the micro must receive."""

    id: str
    target: str
    path: str  # what the micro receives, query included
    auth: str  # X-Space-Auth
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[str, ...] = ()
    micro: str = "api"
    user: str | None = None
    key_name: str | None = None
    port: str = "gate"


ALLOWED = [
    Allowed("public-tilde-decoded", "/api/public/%7Ea", "/public/~a", "public"),
    Allowed("public-dots-resolved", "/api/public/x/../a", "/public/a", "public"),
    Allowed("public-slashes-merged", "/api//public//a", "/public/a", "public"),
    Allowed("public-encoded-letter", "/api/%70ublic/a", "/public/a", "public"),
    Allowed(
        "public-double-encoded-kept", "/api/public/%252e%252e/x", "/public/%252e%252e/x", "public"
    ),
    Allowed(
        "public-overlong-kept", "/api/public/%c0%ae%c0%ae/x", "/public/%C0%AE%C0%AE/x", "public"
    ),
    Allowed("public-open", "/api/open", "/open", "public"),
    Allowed("public-open-slash", "/api/open/", "/open/", "public"),
    Allowed("public-png", "/api/logo.png", "/logo.png", "public"),
    Allowed("public-docs-raw", "/api/docs/v1/raw", "/docs/v1/raw", "public"),
    Allowed("public-query-intact", "/api/public/a?q=a%20b&x=1", "/public/a?q=a%20b&x=1", "public"),
    Allowed(
        "public-wins-over-bad-key",
        "/api/open",
        "/open",
        "public",
        headers=(("X-Space-App-Key", "not-a-key"),),
    ),
    Allowed(
        "public-for-non-owner",
        "/api/public/a",
        "/public/a",
        "public",
        cookies=("space_session={eve_session}",),
    ),
    Allowed("key-header", "/api/x", "/x", "api-key", headers=(KEY,), key_name="good"),
    Allowed(
        "key-x-api-key",
        "/api/x/../y",
        "/y",
        "api-key",
        headers=(("X-API-Key", "{key}"),),
        key_name="good",
    ),
    Allowed(
        "key-cookie", "/api/x", "/x", "api-key", cookies=(f"{KEY_COOKIE}={{key}}",), key_name="good"
    ),
    Allowed("key-mount-root", "/api", "/", "api-key", headers=(KEY,), key_name="good"),
    Allowed(
        "key-of-other-app-at-home",
        "/x",
        "/x",
        "api-key",
        headers=(("X-Space-App-Key", "{other_key}"),),
        micro="svc",
        key_name="theirs",
        port="other",
    ),
    Allowed(
        "session-api",
        "/api/x?y=1",
        "/x?y=1",
        "session",
        cookies=("space_session={session}",),
        user="dev",
    ),
    Allowed(
        "session-admin",
        "/admin/a/b",
        "/a/b",
        "session",
        cookies=("space_session={session}",),
        micro="admin",
        user="dev",
    ),
    Allowed(
        "session-dots-across-mounts",
        "/api/../admin/x",
        "/x",
        "session",
        cookies=("space_session={session}",),
        micro="admin",
        user="dev",
    ),
    Allowed(
        "session-hop-by-hop-cannot-drop-identity",
        "/api/x",
        "/x",
        "session",
        headers=(("Connection", "X-Space-Auth, X-Space-User, X-Forwarded-For"),),
        cookies=("space_session={session}",),
        user="dev",
    ),
    Allowed(
        "session-other-app",
        "/y",
        "/y",
        "session",
        cookies=("space_session={session}",),
        micro="svc",
        user="dev",
        port="other",
    ),
    # A link from another local app's page is a top-level navigation: it passes.
    Allowed(
        "session-link-from-another-local-page",
        "/admin/x",
        "/x",
        "session",
        headers=(
            ("Sec-Fetch-Site", "same-site"),
            ("Sec-Fetch-Mode", "navigate"),
            ("Sec-Fetch-Dest", "document"),
        ),
        cookies=("space_session={session}",),
        micro="admin",
        user="dev",
    ),
    # The app's own page loading its own script.
    Allowed(
        "session-own-page-script",
        "/admin/x.js",
        "/x.js",
        "session",
        headers=(
            ("Sec-Fetch-Site", "same-origin"),
            ("Sec-Fetch-Mode", "no-cors"),
            ("Sec-Fetch-Dest", "script"),
        ),
        cookies=("space_session={session}",),
        micro="admin",
        user="dev",
    ),
    # A key in a header is no ambient credential: another page may use it to load things.
    Allowed(
        "key-header-embedded",
        "/api/x.js",
        "/x.js",
        "api-key",
        headers=(KEY, ("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Mode", "cors")),
        key_name="good",
    ),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ALLOWED])
def test_allowed_request_reaches_the_micro_exactly(gate_env: GateEnv, case: Allowed) -> None:
    marker = f"allowed-{case.id}"
    cookies = "; ".join(["theme=dark", *case.cookies, "lang=en"])
    headers = [*case.headers, *SPOOFED, ("Cookie", cookies), (MARKER, marker)]
    reply = gate_env.request(case.port, "GET", case.target, headers)
    assert reply.status == 200, (reply.status, reply.body[:300])
    echo = reply.echo
    assert echo is not None
    assert received_with_marker(gate_env.log, MARKER, marker), "not in the micro's log"
    assert echo["micro"] == case.micro
    assert echo["path"] == case.path
    if case.auth == "public":
        assert API_ROUTES.matches(echo["path"].partition("?")[0])
    got = _lower_headers(echo["headers"])
    assert got["x-space-auth"] == [case.auth]
    assert got.get("x-space-user") == ([case.user] if case.user else None)
    assert got.get("x-space-key-name") == ([case.key_name] if case.key_name else None)
    if case.key_name:
        assert got["x-space-client-type"] == ["ci"]
    _assert_no_client_identity(got, gate_env)
    assert got["x-forwarded-for"] == ["127.0.0.1"]
    assert got["x-forwarded-host"] == [f"127.0.0.1:{gate_env.ports[case.port]}"]
    assert got["x-forwarded-proto"] == ["http"]
    # Other cookies are kept, in order; credentials are not.
    assert got["cookie"] == ["theme=dark; lang=en"]


def _lower_headers(pairs: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name.lower(), []).append(value)
    return out


def _assert_no_client_identity(got: Mapping[str, list[str]], env: GateEnv) -> None:
    """No credential and no client-sent identity header reaches a micro."""
    allowed = {
        "x-space-auth",
        "x-space-user",
        "x-space-key-name",
        "x-space-client-type",
        "x-space-gate",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
    }
    for name, values in got.items():
        reserved = name.replace("_", "-")
        if reserved.startswith(("x-space-", "x-forwarded-")):
            assert name in allowed, f"the micro received {name}"
            assert len(values) == 1, f"{name} twice: {values}"
        assert not SPOOFED_VALUES.intersection(values), f"a client value in {name}: {values}"
        assert name not in ("x-api-key", "authorization", "forwarded")
        secrets = [env.creds[k] for k in ("key", "other_key", "session", "eve_session")]
        for value in values:
            assert not any(s in value for s in secrets), f"a credential in {name}"
            assert "space_session" not in value and KEY_COOKIE not in value


def test_websocket_upgrade_with_credential_is_forwarded(gate_env: GateEnv) -> None:
    """Control for the WebSocket attacks: with a key the upgrade reaches the (non-WS) micro."""
    marker = "allowed-websocket"
    gate_env.request("gate", "GET", "/api/ws", [KEY, *WS, (MARKER, marker)])
    records = received_with_marker(gate_env.log, MARKER, marker)
    assert records and records[0]["path"] == "/ws"
    got = _lower_headers(records[0]["headers"])
    assert got["x-space-auth"] == ["api-key"]
    _assert_no_client_identity(got, gate_env)


def test_no_request_reached_a_micro_unseen(gate_env: GateEnv) -> None:
    """Every request a micro logged in this module was sent as an allowed one, or is public."""
    for record in received_records(gate_env.log):
        headers = _lower_headers(record["headers"])
        marker = (headers.get(MARKER.lower()) or [""])[0]
        if headers.get("x-space-auth") == ["public"]:
            assert record["micro"] == "api" and API_ROUTES.matches(record["path"].split("?")[0])
            continue
        assert not marker.startswith("attack-"), record


# --- findings where the micro gets something other than what was authorised -------------------


def test_micro_receives_exactly_the_authorised_path_and_query(gate_env: GateEnv) -> None:
    target = "/api/public/a%2Cb%3Ac?next=%2Fx%2F..&y=%3B"
    marker = "exact-path"
    reply = gate_env.request("gate", "GET", target, [(MARKER, marker)])
    echo = reply.echo
    assert echo is not None
    raw_path, _, query = target.partition("?")
    assert echo["path"] == normalise_path(raw_path)[len("/api") :] + "?" + query


def test_session_cookie_is_not_forwarded_whatever_the_separator(gate_env: GateEnv) -> None:
    marker = "cookie-comma"
    reply = gate_env.request(
        "gate",
        "GET",
        "/api/x",
        [
            ("Cookie", "theme=dark, space_session={session}"),
            (MARKER, marker),
        ],
    )
    records = received_with_marker(gate_env.log, MARKER, marker)
    if not records:
        assert reply.status == 401
        return
    cookies = _lower_headers(records[0]["headers"]).get("cookie", [])
    assert not any("space_session" in c for c in cookies), cookies


def test_a_key_cookie_of_one_app_does_not_reach_another_apps_micro(gate_env: GateEnv) -> None:
    marker = "cookie-cross-app"
    reply = gate_env.request(
        "other",
        "GET",
        "/x",
        [
            ("X-Space-App-Key", "{other_key}"),
            ("Cookie", f"theme=dark; {KEY_COOKIE}={{key}}"),
            (MARKER, marker),
        ],
    )
    assert reply.status == 200
    records = received_with_marker(gate_env.log, MARKER, marker)
    assert records
    cookies = _lower_headers(records[0]["headers"]).get("cookie", [])
    assert cookies == ["theme=dark"], cookies
