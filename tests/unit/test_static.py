"""The static micro server: types, index pages, validators, ranges, and staying in its folder."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from runtime.serve.static import StaticSite, content_type

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]

# Lets a test hand the site any micro-relative path, as a buggy or bypassed gate might,
# since the HTTP client itself would tidy `..` and `//` away before sending.
SUB_PATH_HEADER = "X-Test-Sub-Path"


def _site_app(root: Path, mount: str = "") -> web.Application:
    """An app that mounts the site at `mount`, handing it the path below the mount, escaped."""
    site = StaticSite(root)

    async def handler(request: web.Request) -> web.StreamResponse:
        sub = request.headers.get(SUB_PATH_HEADER)
        if sub is None:
            sub = request.rel_url.raw_path[len(mount) :] or "/"
        return await site.handle(request, sub)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


@pytest.fixture
def site_root(tmp_path: Path) -> Path:
    root = tmp_path / "serve"
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "app.js").write_text("console.log(1)")
    (root / "mod.mjs").write_text("export {}")
    (root / "style.css").write_text("body{}")
    (root / "data.json").write_text("{}")
    (root / "pic.svg").write_text("<svg/>")
    (root / "site.webmanifest").write_text("{}")
    (root / "lib.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "photo.png").write_bytes(b"\x89PNG....")
    (root / "notes.txt").write_text("0123456789abcdef")
    (root / "archive.tar.gz").write_bytes(b"\x1f\x8b")
    (root / "blob").write_bytes(b"\x00\x01")
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "docs" / "deep" / "page.html").write_text("deep page")
    (root / "a b.txt").write_text("spaced")
    (root / ".env").write_text("SECRET=1")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]")
    (root / ".well-known").mkdir()
    (root / ".well-known" / "security.txt").write_text("Contact: me")
    (tmp_path / "secret.txt").write_text("outside")
    return root


@pytest.fixture
async def client(aiohttp_client: MakeClient, site_root: Path) -> Client:
    return await aiohttp_client(_site_app(site_root))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("mod.mjs", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("data.json", "application/json; charset=utf-8"),
        ("pic.svg", "image/svg+xml; charset=utf-8"),
        ("site.webmanifest", "application/manifest+json; charset=utf-8"),
        ("lib.wasm", "application/wasm"),
        ("photo.png", "image/png"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("archive.tar.gz", "application/gzip"),
        ("blob", "application/octet-stream"),
    ],
)
async def test_content_types(client: Client, name: str, expected: str) -> None:
    resp = await client.get(f"/{name}")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == expected
    assert resp.headers.get("Content-Encoding") is None
    assert resp.headers["Cache-Control"] == "no-cache"


def test_content_type_function_is_case_insensitive() -> None:
    assert content_type("APP.JS") == "text/javascript; charset=utf-8"


async def test_root_serves_index(client: Client) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert await resp.text() == "<h1>home</h1>"


async def test_folder_with_slash_serves_its_index(client: Client) -> None:
    resp = await client.get("/docs/")
    assert resp.status == 200
    assert await resp.text() == "<h1>docs</h1>"
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"


async def test_folder_without_slash_redirects_relatively_keeping_query(client: Client) -> None:
    resp = await client.get("/docs?x=1%202", allow_redirects=False)
    assert resp.status == 301
    assert resp.headers["Location"] == "./docs/?x=1%202"
    followed = await client.get("/docs?x=1")
    assert followed.status == 200
    assert await followed.text() == "<h1>docs</h1>"


async def test_folder_without_index_is_404(client: Client) -> None:
    resp = await client.get("/docs/deep/")
    assert resp.status == 404


async def test_file_with_trailing_slash_is_404(client: Client) -> None:
    resp = await client.get("/app.js/")
    assert resp.status == 404


async def test_percent_encoded_names_are_decoded(client: Client) -> None:
    resp = await client.get(URL("/a%20b.txt", encoded=True))
    assert resp.status == 200
    assert await resp.text() == "spaced"


async def test_mounted_site_redirects_its_bare_root(
    aiohttp_client: MakeClient, site_root: Path
) -> None:
    client = await aiohttp_client(_site_app(site_root, mount="/site"))
    resp = await client.get("/site", allow_redirects=False)
    assert resp.status == 301
    assert resp.headers["Location"] == "./site/"
    resp = await client.get("/site/")
    assert await resp.text() == "<h1>home</h1>"
    resp = await client.get("/site/docs", allow_redirects=False)
    assert resp.headers["Location"] == "./docs/"
    # Followed from /site/docs, the relative location lands under the mount, not at /docs/.
    resp = await client.get("/site/docs")
    assert resp.status == 200
    assert resp.url.path == "/site/docs/"
    assert await resp.text() == "<h1>docs</h1>"


async def test_etag_gives_304(client: Client) -> None:
    first = await client.get("/app.js")
    etag = first.headers["ETag"]
    again = await client.get("/app.js", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["ETag"] == etag
    other = await client.get("/app.js", headers={"If-None-Match": '"something-else"'})
    assert other.status == 200


async def test_last_modified_gives_304(client: Client, site_root: Path) -> None:
    first = await client.get("/style.css")
    last_modified = first.headers["Last-Modified"]
    again = await client.get("/style.css", headers={"If-Modified-Since": last_modified})
    assert again.status == 304
    old_date = "Mon, 01 Jan 2001 00:00:00 GMT"
    older = await client.get("/style.css", headers={"If-Modified-Since": old_date})
    assert older.status == 200


async def test_head_has_headers_and_no_body(client: Client) -> None:
    resp = await client.head("/notes.txt")
    assert resp.status == 200
    assert resp.headers["Content-Length"] == "16"
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await resp.read() == b""


async def test_range_request(client: Client) -> None:
    resp = await client.get("/notes.txt", headers={"Range": "bytes=2-5"})
    assert resp.status == 206
    assert await resp.text() == "2345"
    assert resp.headers["Content-Range"] == "bytes 2-5/16"
    tail = await client.get("/notes.txt", headers={"Range": "bytes=-3"})
    assert await tail.text() == "def"
    beyond = await client.get("/notes.txt", headers={"Range": "bytes=100-"})
    assert beyond.status == 416


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405(client: Client, method: str) -> None:
    resp = await client.request(method, "/index.html")
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET, HEAD"


async def test_missing_file_is_readable_404(client: Client) -> None:
    resp = await client.get("/nope<b>.html")
    assert resp.status == 404
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    body = await resp.text()
    assert "404 Not Found" in body
    assert "nope&lt;b&gt;.html" in body  # escaped, never echoed as markup


async def test_site_404_page_is_used_when_present(client: Client, site_root: Path) -> None:
    (site_root / "404.html").write_text("<h1>lost</h1>")
    resp = await client.get("/nope", headers={"Range": "bytes=0-1"})
    assert resp.status == 404
    assert await resp.text() == "<h1>lost</h1>"


async def test_site_404_page_is_shown_only_to_who_may_see_it(
    aiohttp_client: MakeClient, site_root: Path
) -> None:
    """A miss on a public route must not show a visitor the private `/404.html`, nor, through a
    symlink named 404.html, a private file."""
    (site_root / "pub").mkdir()
    (site_root / "private.txt").write_text("the private file")
    public = lambda path: path.startswith("/pub/")  # noqa: E731 - the gate's rule, as a test

    async def as_visitor(root: Path, admits: Callable[[str], bool]) -> str:
        site = StaticSite(root)

        async def handler(request: web.Request) -> web.StreamResponse:
            return await site.handle(request, request.rel_url.raw_path, admits)

        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        client = await aiohttp_client(app)
        resp = await client.get("/pub/nope")
        assert resp.status == 404
        return await resp.text()

    (site_root / "404.html").write_text("<h1>the private lost page</h1>")
    assert "private" not in await as_visitor(site_root, public)
    assert "the private lost page" in await as_visitor(site_root, lambda path: True)
    (site_root / "404.html").unlink()
    (site_root / "404.html").symlink_to("private.txt")
    assert "private" not in await as_visitor(site_root, lambda path: path != "/private.txt")


async def test_missing_serve_folder_says_so(aiohttp_client: MakeClient, tmp_path: Path) -> None:
    client = await aiohttp_client(_site_app(tmp_path / "dist"))
    resp = await client.get("/")
    assert resp.status == 404
    assert "serve folder <code>dist</code> does not exist" in await resp.text()


@pytest.mark.parametrize(
    "sub_path",
    [
        "/../secret.txt",
        "/docs/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/docs/..%5c..%5csecret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/etc/passwd",
        "/index.html%00.png",
        "/./../secret.txt",
    ],
)
async def test_traversal_attempts_are_404(client: Client, sub_path: str) -> None:
    resp = await client.get("/x", headers={SUB_PATH_HEADER: sub_path})
    assert resp.status == 404
    body = await resp.text()
    assert "outside" not in body
    assert "root:" not in body


async def test_raw_dotdot_in_request_line_is_404(client: Client) -> None:
    resp = await client.get(URL("/docs/%2e%2e/%2e%2e/secret.txt", encoded=True))
    assert resp.status == 404


async def test_symlink_pointing_outside_is_404(client: Client, site_root: Path) -> None:
    (site_root / "leak.txt").symlink_to(site_root.parent / "secret.txt")
    (site_root / "up").symlink_to(site_root.parent)
    assert (await client.get("/leak.txt")).status == 404
    assert (await client.get("/up/secret.txt")).status == 404
    assert (await client.get("/up/")).status == 404


async def test_symlink_loop_is_404(client: Client, site_root: Path) -> None:
    (site_root / "loop1").symlink_to(site_root / "loop2")
    (site_root / "loop2").symlink_to(site_root / "loop1")
    assert (await client.get("/loop1")).status == 404
    assert (await client.get("/loop1/x")).status == 404


async def test_symlink_inside_folder_is_served(client: Client, site_root: Path) -> None:
    (site_root / "alias.js").symlink_to(site_root / "app.js")
    resp = await client.get("/alias.js")
    assert resp.status == 200
    assert await resp.text() == "console.log(1)"


async def test_symlinked_root_is_followed(aiohttp_client: MakeClient, site_root: Path) -> None:
    link = site_root.parent / "current"
    link.symlink_to(site_root)
    client = await aiohttp_client(_site_app(link))
    assert await (await client.get("/app.js")).text() == "console.log(1)"


@pytest.mark.parametrize("path", ["/.env", "/.git/config", "/.git/", "/docs/.hidden", "/%2eenv"])
async def test_dotfiles_are_404(client: Client, site_root: Path, path: str) -> None:
    (site_root / "docs" / ".hidden").write_text("x")
    resp = await client.get(URL(path, encoded=True))
    assert resp.status == 404


async def test_symlink_into_dot_folder_is_404(client: Client, site_root: Path) -> None:
    (site_root / "cfg").symlink_to(site_root / ".git" / "config")
    assert (await client.get("/cfg")).status == 404


async def test_well_known_is_served(client: Client) -> None:
    resp = await client.get("/.well-known/security.txt")
    assert resp.status == 200
    assert await resp.text() == "Contact: me"


async def test_precompressed_sibling_is_not_sent(client: Client, site_root: Path) -> None:
    (site_root / "app.js.gz").write_bytes(b"stale gzip bytes")
    resp = await client.get("/app.js", headers={"Accept-Encoding": "gzip, br"})
    assert resp.status == 200
    assert resp.headers.get("Content-Encoding") is None
    assert await resp.text() == "console.log(1)"


async def test_changed_file_is_served_at_once(client: Client, site_root: Path) -> None:
    first = await client.get("/app.js")
    assert await first.text() == "console.log(1)"
    etag = first.headers["ETag"]
    target = site_root / "app.js"
    target.write_text("console.log('changed')")
    # Same-second saves must still count as a change, whatever the filesystem's clock grain.
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = await client.get("/app.js", headers={"If-None-Match": etag})
    assert again.status == 200
    assert await again.text() == "console.log('changed')"
    assert again.headers["ETag"] != etag


async def test_new_and_deleted_files_are_seen_at_once(client: Client, site_root: Path) -> None:
    assert (await client.get("/fresh.html")).status == 404
    (site_root / "fresh.html").write_text("new")
    assert await (await client.get("/fresh.html")).text() == "new"
    (site_root / "fresh.html").unlink()
    assert (await client.get("/fresh.html")).status == 404
