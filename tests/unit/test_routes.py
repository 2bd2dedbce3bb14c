"""Path normalisation, route patterns and the mount table: the gate's view of a request path."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.auth.routes import (
    BadPath,
    MountTable,
    PublicRoutes,
    RoutePattern,
    compile_pattern,
    normalise_path,
)

# --- normalise_path ------------------------------------------------------------------------

NORMALISED = [
    # already canonical: returned as is
    ("/", "/"),
    ("/a", "/a"),
    ("/api/v1/items/123", "/api/v1/items/123"),
    ("/a/b/", "/a/b/"),
    ("/a.b/c.d", "/a.b/c.d"),
    ("/a+b", "/a+b"),
    ("/a:b@c", "/a:b@c"),
    ("/a;b", "/a;b"),
    ("/a;jsessionid=1/b", "/a;jsessionid=1/b"),
    # repeated slashes
    ("//", "/"),
    ("///a", "/a"),
    ("/a//b", "/a/b"),
    ("/a///b//", "/a/b/"),
    # dot segments (RFC 3986), trailing ones keep the folder's slash
    ("/.", "/"),
    ("/./", "/"),
    ("/a/./b", "/a/b"),
    ("/a/.", "/a/"),
    ("/a/..", "/"),
    ("/a/b/..", "/a/"),
    ("/a/b/../c", "/a/c"),
    ("/a/b/../../c", "/c"),
    ("/a/b/./../c/./d/", "/a/c/d/"),
    ("/public/../admin", "/admin"),
    ("/public/./../admin", "/admin"),
    ("//public//../admin", "/admin"),
    ("/a//../b", "/b"),
    ("/a/b/..//", "/a/"),
    # names that only look like dot segments
    ("/...", "/..."),
    ("/a/.../b", "/a/.../b"),
    ("/.well-known/x", "/.well-known/x"),
    ("/a/.hidden", "/a/.hidden"),
    ("/a..", "/a.."),
    ("/a.;b", "/a.;b"),
    # encoded dot segments are decoded once, then resolved
    ("/%2e", "/"),
    ("/a/%2e%2e/b", "/b"),
    ("/a/%2E%2e/b", "/b"),
    ("/a/.%2e/b", "/b"),
    ("/public/%2e%2e/admin", "/admin"),
    ("/public/%2E%2E/%2e/admin/", "/admin/"),
    ("/a/b/%2E/", "/a/b/"),
    ("/x/%2e%2e%2e", "/x/..."),
    ("/a%2e%2e", "/a.."),
    # twice encoded: decoded once only, so the micro gets exactly what was checked
    ("/%252e%252e/admin", "/%252e%252e/admin"),
    ("/a/%252e%252e/../b", "/a/b"),
    ("/%25%32%65", "/%252e"),
    ("/%252F", "/%252F"),
    ("/%25", "/%25"),
    # unreserved escapes decoded, the others upper-cased
    ("/%61%62%63", "/abc"),
    ("/%41%5a%30%39", "/AZ09"),
    ("/%7e%5F%2D", "/~_-"),
    ("/%7euser/", "/~user/"),
    ("/a%3ab", "/a%3Ab"),
    ("/a%3Ab", "/a%3Ab"),
    ("/a%20b", "/a%20b"),
    ("/a%0ab", "/a%0Ab"),
    ("/%3b", "/%3B"),
    ("/%41dmin/secret", "/Admin/secret"),
    ("/%61dmin/secret", "/admin/secret"),
    # unicode: UTF-8 escapes with upper-case hex, however it arrived
    ("/café", "/caf%C3%A9"),
    ("/caf%c3%a9", "/caf%C3%A9"),
    ("/日本/x", "/%E6%97%A5%E6%9C%AC/x"),
    ("/\udcff", "/%FF"),  # a non-UTF-8 byte, as a server decodes it with surrogateescape
]

REFUSED = [
    ("", "does not start with /"),
    ("a/b", "does not start with /"),
    ("*", "does not start with /"),
    ("http://host/a", "does not start with /"),
    # encoded slash
    ("/a%2Fb", "encoded slash"),
    ("/a%2fb", "encoded slash"),
    ("/%2e%2e%2fadmin", "encoded slash"),
    ("/a/..%2f", "encoded slash"),
    # a raw fragment mark: a URL parser after the gate would cut the path there
    ("/secret#.png", "raw #"),
    ("/#", "raw #"),
    # backslashes, raw or encoded
    ("/a\\b", "backslash"),
    ("/..\\admin", "backslash"),
    ("/a%5cb", "encoded backslash"),
    ("/a%5Cb", "encoded backslash"),
    # NUL and other control characters
    ("/a\x00b", "NUL"),
    ("/a%00b", "NUL"),
    ("/a\nb", "control character"),
    ("/a\rb", "control character"),
    ("/a\tb", "control character"),
    ("/a\x7fb", "control character"),
    # climbing above the root
    ("/..", "above the root"),
    ("/../admin", "above the root"),
    ("/a/../..", "above the root"),
    ("/./..", "above the root"),
    ("/%2e%2e", "above the root"),
    ("/%2E%2E/admin", "above the root"),
    ("/a/%2e%2e/%2e%2e/b", "above the root"),
    ("//..//..", "above the root"),
    # dot segments with parameters (Tomcat resolves them)
    ("/..;/admin", "parameters"),
    ("/.;x/y", "parameters"),
    ("/.;", "parameters"),
    ("/a/..;", "parameters"),
    ("/a/..;jsessionid=x/b", "parameters"),
    ("/a/%2e%2e;/b", "parameters"),
    ("/%2e;x", "parameters"),
    ("/a/..%3B/b", "parameters"),
    ("/a/..%3b/b", "parameters"),
    ("/a/%2e%2e%3b/b", "parameters"),
    ("/a/%2E%2E%3Bjsessionid=1/b", "parameters"),
    ("/.%3B/x", "parameters"),
    ("/%2e%3b", "parameters"),
    ("/a/..%3B", "parameters"),
    # invalid escapes
    ("/%", "invalid percent escape"),
    ("/%4", "invalid percent escape"),
    ("/%zz", "invalid percent escape"),
    ("/%g1", "invalid percent escape"),
    ("/%%41", "invalid percent escape"),
    ("/a%2", "invalid percent escape"),
    # a lone surrogate that stands for no byte
    ("/\ud800", "cannot be encoded"),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALISED)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise_path(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), NORMALISED)
def test_normalised_is_a_fixed_point(raw: str, expected: str) -> None:
    assert normalise_path(expected) == expected


@pytest.mark.parametrize(("raw", "reason"), REFUSED)
def test_refused(raw: str, reason: str) -> None:
    with pytest.raises(BadPath) as caught:
        normalise_path(raw)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


def test_plain_path_is_returned_unchanged() -> None:
    raw = "/api/v1/items/123"
    assert normalise_path(raw) is raw


ALPHABET = "/.%2ef;\\aA5Cc0"


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=24).map(lambda s: "/" + s))
def test_normalise_is_idempotent_and_clean(raw: str) -> None:
    try:
        once = normalise_path(raw)
    except BadPath:
        return
    assert normalise_path(once) == once
    assert once.startswith("/")
    assert "//" not in once
    segments = once.split("/")
    assert "." not in segments and ".." not in segments
    assert not any(s.split(";", 1)[0].split("%3B", 1)[0] in (".", "..") for s in segments)
    assert "\\" not in once and "%2F" not in once.upper() and "%5C" not in once.upper()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=16).map(lambda s: "/" + s))
def test_normalise_any_text_is_idempotent(raw: str) -> None:
    try:
        once = normalise_path(raw)
    except BadPath:
        return
    assert normalise_path(once) == once
    assert once.isascii()


# --- patterns ------------------------------------------------------------------------------

MATCHES = [
    # "*" and "/*": everything
    ("*", "/", True),
    ("*", "/anything/at/all", True),
    ("/*", "/", True),
    ("/*", "/x/y.png", True),
    # a star at the end: anything after it, slashes included
    ("/public/*", "/public/", True),
    ("/public/*", "/public/a", True),
    ("/public/*", "/public/a/b", True),
    ("/public/*", "/public", False),
    ("/public/*", "/publicx", False),
    ("/public/*", "/publicx/a", False),
    ("/public/*", "/admin/public/x", False),
    ("api/*", "/api/x", True),
    ("api/*", "/api", False),
    ("/api/submit*", "/api/submit", True),
    ("/api/submit*", "/api/submit/x", True),
    ("/api/submit*", "/api/submitted", True),
    ("/api/submit*", "/api/subm", False),
    ("/api/submit*", "/api", False),
    ("/api/trpc/deta*", "/api/trpc/deta.getItems", True),
    ("/a/b*", "/a/b", True),
    # a star elsewhere: within one segment
    ("/*.png", "/logo.png", True),
    ("/*.png", "/img/logo.png", False),
    ("/*.png", "/logo.png.txt", False),
    ("/*.png", "/logopng", False),
    ("/*.png", "/logo.PNG", False),
    ("/api/*/docs", "/api/v1/docs", True),
    ("/api/*/docs", "/api/v1/docs/", True),
    ("/api/*/docs", "/api/v1/v2/docs", False),
    ("/api/*/docs", "/api/docs", False),
    ("/api/*/docs", "/api/v1/docs/x", False),
    ("/v/*/public/*", "/v/1/public/a/b", True),
    ("/v/*/public/*", "/v/1/2/public/a", False),
    # no star: exact, one trailing slash not significant
    ("/manifest.json", "/manifest.json", True),
    ("/manifest.json", "/manifest.json/", True),
    ("/manifest.json", "/manifest.jsonx", False),
    ("/manifest.json", "/manifestXjson", False),
    ("/manifest.json", "/Manifest.json", False),
    ("/manifest.json", "/x/manifest.json", False),
    ("manifest.json", "/manifest.json", True),
    ("/docs/", "/docs", True),
    ("/docs/", "/docs/", True),
    ("/docs/", "/docs/x", False),
    ("/ws", "/ws", True),
    ("/ws", "/ws/x", False),
    ("/ws", "/wss", False),
    ("/", "/", True),
    ("/", "/x", False),
    # literals are read like a path
    ("/a:b", "/a%3Ab", True),
    ("/a%3ab", "/a:b", True),
    ("/a:b", "/a%3Bb", False),
    ("/café", "/caf%C3%A9", True),
    ("/%7Euser", "/~user", True),
    ("/a%2Ab", "/a*b", True),
    ("/a%2Ab", "/axb", False),
    ("/100%", "/100%25", True),
    ("/a%2Fb", "/a%2Fb", False),
    # regex characters are literal
    ("/a.b", "/aXb", False),
    ("/(?!(dashboard|list|api))*", "/dashboard", False),
    ("/(?!(dashboard|list|api))*", "/(?!(dashboard|list|api))/x", True),
    ("/a+", "/aa", False),
    ("/[ab]", "/a", False),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), MATCHES)
def test_pattern(pattern: str, path: str, expected: bool) -> None:
    assert compile_pattern(pattern).matches(path) is expected
    assert PublicRoutes([pattern]).matches(path) is expected


RESTRICTS = [
    # every letter case, and a `/x/*` pattern at `/x` itself (a router mounted there answers it)
    ("/admin/*", "/admin", True),
    ("/admin/*", "/ADMIN", True),
    ("/admin/*", "/admin/", True),
    ("/Admin/*", "/aDMIN/users/7", True),
    ("admin/*", "/admin", True),
    ("/a/*/b/*", "/a/x/b", True),
    ("/admin/*", "/administrator", False),
    ("/admin/*", "/admi", False),
    ("/admin/*", "/", False),
    ("/api/submit*", "/api", False),
    ("/*", "/", True),
    ("/docs", "/DOCS/", True),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), RESTRICTS)
def test_restricts_is_wider_than_matches(pattern: str, path: str, expected: bool) -> None:
    compiled = compile_pattern(pattern)
    assert compiled.restricts(path) is expected
    if compiled.matches(path):
        assert compiled.restricts(path)  # wherever a pattern admits, its limits hold


def test_pattern_is_compiled_once() -> None:
    assert compile_pattern("/public/*") is compile_pattern("/public/*")
    assert isinstance(compile_pattern("/x"), RoutePattern)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/manifest.json", True),
        ("/assets/app.js", True),
        ("/logo.png", True),
        ("/api/v2/docs", True),
        ("/assets", False),
        ("/admin", False),
        ("/", False),
        ("/img/logo.png", False),
    ],
)
def test_public_routes_combined(path: str, expected: bool) -> None:
    routes = PublicRoutes(["/manifest.json", "/assets/*", "/*.png", "api/*/docs"])
    assert routes.matches(path) is expected


def test_public_routes_values() -> None:
    assert not PublicRoutes()
    assert not PublicRoutes().matches("/")
    assert PublicRoutes(["/a"]) == PublicRoutes([compile_pattern("/a")])
    assert hash(PublicRoutes(["/a", "/b/*"])) == hash(PublicRoutes(["/a", "/b/*"]))
    assert PublicRoutes(["/a"]) != PublicRoutes(["/b"])


# --- mounts --------------------------------------------------------------------------------

MOUNTS = MountTable({"/": "www", "/api": "api", "api/v2/": "v2", "/admin": "admin"})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ("www", "/")),
        ("/index.html", ("www", "/index.html")),
        ("/api/x", ("api", "/x")),
        ("/api/x/y/", ("api", "/x/y/")),
        ("/api", ("api", "/")),
        ("/api/", ("api", "/")),
        ("/apix", ("www", "/apix")),
        ("/apix/y", ("www", "/apix/y")),
        ("/api/v2", ("v2", "/")),
        ("/api/v2/x", ("v2", "/x")),
        ("/api/v2x", ("api", "/v2x")),
        ("/api/v3/x", ("api", "/v3/x")),
        ("/admin/__space/x", ("admin", "/__space/x")),
        ("/x/api", ("www", "/x/api")),
    ],
)
def test_mount_resolution(path: str, expected: tuple[str, str]) -> None:
    assert MOUNTS.resolve(path) == expected


def test_no_primary_means_no_match() -> None:
    table = MountTable({"/api": "api"})
    assert table.resolve("/api/x") == ("api", "/x")
    assert table.resolve("/other") is None
    assert table.resolve("/") is None
    assert MountTable({}).resolve("/") is None


def test_mount_table_lists_mounts_and_refuses_clashes() -> None:
    assert MountTable({"/": "a", "b/": "b"}).mounts == {"/": "a", "/b": "b"}
    with pytest.raises(ValueError, match="share the path"):
        MountTable({"/api": "a", "/api/": "b"})
