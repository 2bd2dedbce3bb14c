"""The data page and its JSON API on a small aiohttp app built as app.py builds
an app origin: a real Store, Credentials, owner and sessions, the CSRF middleware, real data."""

from __future__ import annotations

import asyncio
import html
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import quote

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient
from yarl import URL

from runtime.auth.credentials import SESSION_COOKIE, Credentials
from runtime.auth.passwords import hash_password
from runtime.cloud.data import AppData, DataServices
from runtime.datadir.accounts import ensure_owner
from runtime.datadir.store import Store
from runtime.supervisor.output import Printer
from runtime.web import error_answers
from runtime.web.api import SettingsContext
from runtime.web.data_page import DataPage

DATA = "/__space/settings/data"
API = "/__space/api/data"
HTML = {"Accept": "text/html"}


@dataclass
class Site:
    client: TestClient
    data: AppData
    owner: str  # session cookies
    eve: str

    def _headers(self, cookie: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if cookie:
            headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
        return headers

    async def call(
        self,
        method: str,
        path: str | URL,
        *,
        cookie: str | None = "owner",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        who = {"owner": self.owner, "eve": self.eve}.get(cookie or "", cookie)
        kwargs.setdefault("allow_redirects", False)
        return await self.client.request(
            method, path, headers=self._headers(who, headers), **kwargs
        )

    async def page(self, path: str | URL, **kwargs: Any) -> tuple[int, str]:
        resp = await self.call("GET", path, headers=HTML, **kwargs)
        return resp.status, await resp.text()

    async def form(
        self, path: str | URL, fields: dict[str, str] | FormData | None = None, **kwargs: Any
    ) -> tuple[str, str]:
        """POST a form as a browser does; returns (the 303's Location, the page it shows)."""
        resp = await self.call("POST", path, data=fields or {}, headers=HTML, **kwargs)
        assert resp.status == 303, (resp.status, await resp.text())
        location = resp.headers["Location"]
        status, text = await self.page(URL(location, encoded=True))
        assert status == 200, text
        return location, text


@pytest.fixture
async def site_for(aiohttp_client: Any, tmp_path: Path):
    services = DataServices(tmp_path / "runtime")
    store = Store(tmp_path / "runtime")
    ensure_owner(store, "the owner's password")
    store.users.add("eve", hash_password("eve's password"))
    credentials = Credentials(store)
    owner = credentials.sign_session(store.sessions.create("dev"))
    eve = credentials.sign_session(store.sessions.create("eve"))
    credentials.reload()

    async def build(app_name: str = "notes") -> Site:
        host = SimpleNamespace(name=app_name, origin="http://127.0.0.1", runners={})
        ctx = SettingsContext(
            cast(Any, host),
            store,
            credentials,
            Printer(io.StringIO()),
            save_env=None,
            refresh=lambda: None,  # type: ignore[arg-type]
            spawn=lambda coro: None,
            restart=None,  # type: ignore[arg-type]
            scheduler=None,
        )  # type: ignore[arg-type]
        app = web.Application(middlewares=error_answers.pages_middlewares())
        DataPage(ctx, lambda: services.app(app_name)).add_routes(app)
        return Site(await aiohttp_client(app), services.app(app_name), owner, eve)

    yield build
    services.close()


@pytest.fixture
async def site(site_for: Callable[..., Any]) -> Site:
    s: Site = await site_for()
    s.data.base.put_many(
        "todos",
        [
            {"key": "a1", "title": "apples", "done": False},
            {"key": "b2", "title": "bread", "done": True},
            {"key": "c3", "title": "avocados", "done": False},
        ],
    )
    s.data.base.put_many("people", [{"key": "p", "name": "Ada"}])
    await s.data.drive.put("photos", "cat.jpg", _chunks(b"meow"))
    await s.data.drive.put("photos", "dogs/rex.png", _chunks(b"woof"))
    return s


async def _chunks(data: bytes):
    yield data


def keys_shown(text: str) -> list[str]:
    return re.findall(
        r'<td class="nowrap"><a href="[^"]*"><code class="name">([^<]*)</code></a></td>', text
    )


def textarea(text: str, name: str) -> str:
    found = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(.*?)</textarea>', text, re.S)
    assert found, f"no textarea {name}"
    return html.unescape(found.group(1))


# --- who may look -----------------------------------------------------------------------------


async def test_a_user_who_is_not_the_owner_sees_who_they_are_and_a_way_out(site: Site) -> None:
    status, text = await site.page(DATA, cookie="eve")
    assert status == 403
    assert "signed in as <strong>eve</strong>" in text
    switch = re.search(
        r'<form method="post" action="/__space/logout"[^>]*>\s*'
        r'<input type="hidden" name="next" value="([^"]*)">',
        text,
    )
    assert switch and switch.group(1) == DATA  # back here once signed in as another
    assert 'class="brand" href="/"' in text  # not the settings page, which refuses them too
    status, text = await site.page(DATA)  # the owner's pages keep their own links
    assert status == 200 and 'class="brand" href="/__space/settings"' in text


async def test_owner_sees_each_base_and_drive_with_its_count(site: Site) -> None:
    status, text = await site.page(DATA)
    assert status == 200
    rows = re.findall(r"<code>([^<]+)</code></a></td>\s*<td>(\d+)</td>", text)
    assert rows == [("people", "1"), ("todos", "3"), ("photos", "2")]
    assert 'href="/__space/settings"' in text  # the way back
    resp = await site.call("GET", API)
    assert await resp.json() == {
        "bases": [
            {"name": "people", "items": 1, "bytes": 24},
            {"name": "todos", "items": 3, "bytes": 126},
        ],
        "drives": [{"name": "photos", "files": 2, "bytes": 8}],
    }


async def test_a_signed_in_non_owner_is_forbidden(site: Site) -> None:
    assert (await site.page(DATA, cookie="eve"))[0] == 403
    assert (await site.page(f"{DATA}/base/todos", cookie="eve"))[0] == 403
    resp = await site.call("POST", f"{DATA}/reset", cookie="eve", data={"confirm": "yes"})
    assert resp.status == 403
    for method, path in [
        ("GET", API),
        ("DELETE", API),
        ("GET", f"{API}/export"),
        ("GET", f"{API}/drives/photos/file?name=cat.jpg"),
    ]:
        resp = await site.call(method, path, cookie="eve")
        assert resp.status == 403 and "Forbidden" in (await resp.json())["errors"]
    assert site.data.base.count("todos") == 3 and site.data.drive.names() == ["photos"]


async def test_no_session_goes_to_the_login_or_gets_401(site: Site) -> None:
    resp = await site.call(
        "GET", URL(f"{DATA}/base/my%2Fbase?query=%7B%7D", encoded=True), cookie=None
    )
    assert resp.status == 303
    login = URL(resp.headers["Location"])
    assert login.path == "/__space/login"
    # After the login, the browser comes back to the same address, encoded as it was.
    assert login.query["next"] == "/__space/settings/data/base/my%2Fbase?query=%7B%7D"
    resp = await site.call(
        "POST", f"{DATA}/reset", cookie=None, data={"confirm": "yes"}, headers=HTML
    )
    assert resp.status == 303 and resp.headers["Location"].startswith("/__space/login?next=")
    resp = await site.call("POST", f"{DATA}/reset", cookie=None, data={"confirm": "yes"})
    assert resp.status == 401
    for method in ("GET", "DELETE"):
        resp = await site.call(method, API, cookie=None)
        assert resp.status == 401 and await resp.json() == {"errors": ["Unauthorized"]}
    resp = await site.call("GET", API, cookie="forged.cookie")
    assert resp.status == 401
    assert site.data.base.count("todos") == 3


async def test_a_cross_origin_post_is_refused(site: Site) -> None:
    other = {"Origin": "http://127.0.0.1:1", **HTML}
    resp = await site.call("POST", f"{DATA}/reset", data={"confirm": "yes"}, headers=other)
    assert resp.status == 403
    resp = await site.call("DELETE", API, headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status == 403
    resp = await site.call(
        "PUT",
        f"{API}/bases/todos/items?key=a1",
        json={"x": 1},
        headers={"Origin": "http://evil.example"},
    )
    assert resp.status == 403
    assert site.data.base.count("todos") == 3
    assert (site.data.base.get("todos", "a1") or {}).get("title") == "apples"
    # The app's own origin passes.
    own = {"Origin": str(site.client.make_url("")).rstrip("/")}
    assert (await site.call("DELETE", f"{API}/bases/people", headers=own)).status == 204


# --- a Base -----------------------------------------------------------------------------------


async def test_the_query_box(site: Site) -> None:
    status, text = await site.page(f"{DATA}/base/todos")
    assert status == 200 and keys_shown(text) == ["a1", "b2", "c3"]
    status, text = await site.page(f"{DATA}/base/todos", params={"query": '{"done": false}'})
    assert status == 200 and keys_shown(text) == ["a1", "c3"]
    assert textarea(text, "query") == '{"done": false}'  # the box keeps what was asked
    query = '[{"title?pfx": "av"}, {"title": "bread"}]'
    status, text = await site.page(f"{DATA}/base/todos", params={"query": query})
    assert keys_shown(text) == ["b2", "c3"]


@pytest.mark.parametrize(
    "query,says",
    [
        ('{"title?bogus": "a"}', 'Bad query: Invalid query operator "?bogus" in "title?bogus"'),
        ('[{"title?pfx": "av"}, {"key": "b2"}]', "the same condition on key"),
        ('{"done": fals', "not valid JSON"),
        ('"done"', "must be an object or a list of objects"),
        ("[1, 2]", "A query must be a list of objects"),
    ],
)
async def test_an_invalid_query_shows_its_error(site: Site, query: str, says: str) -> None:
    status, text = await site.page(f"{DATA}/base/todos", params={"query": query})
    assert status == 400
    assert says in html.unescape(text) and "Traceback" not in text
    assert textarea(text, "query") == query
    resp = await site.call("GET", f"{API}/bases/todos", params={"query": query})
    assert resp.status == 400 and says in " ".join((await resp.json())["errors"])


async def test_items_are_paged_100_at_a_time_in_a_table(site: Site) -> None:
    site.data.base.put_many("many", [{"key": f"k{n:03d}", "n": n} for n in range(250)])
    _, text = await site.page(f"{DATA}/base/many")
    assert keys_shown(text) == [f"k{n:03d}" for n in range(100)]
    assert "250 items" in text
    seen = keys_shown(text)
    while link := re.search(r'<a href="([^"]+)" rel="next">', text):
        _, text = await site.page(URL(html.unescape(link.group(1)), encoded=True))
        assert len(keys_shown(text)) <= 100 and "First page" in text
        seen += keys_shown(text)
    assert seen == [f"k{n:03d}" for n in range(250)]
    # Sorted the other way by the key column's link, paged the same.
    link = re.search(r'<a href="([^"]+)" title="Sort the other way">', text)
    assert link
    _, text = await site.page(URL(html.unescape(link.group(1)), encoded=True))
    assert keys_shown(text)[:2] == ["k249", "k248"]


async def test_the_table_has_a_column_per_field_and_folds_nested_values(site: Site) -> None:
    site.data.base.put_many(
        "mixed",
        [
            {"key": "a", "title": "<b>bold</b>", "tags": ["x", "y"], "profile": {"age": 3}},
            {"key": "b", "n": 7},
        ],
    )
    _, text = await site.page(f"{DATA}/base/mixed")
    heads = re.findall(r"<th><code>([^<]+)</code></th>", text)
    assert heads == ["title", "tags", "profile", "n"]
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "<b>bold" not in text
    assert "<summary>[2 values]</summary>" in text and "<summary>{1 field}</summary>" in text


async def test_a_cell_is_edited_on_the_item_page(site: Site) -> None:
    _, table = await site.page(f"{DATA}/base/todos")
    link = re.search(r'<a href="([^"]+)"><code class="name">a1</code>', table)
    assert link
    _, text = await site.page(URL(html.unescape(link.group(1)), encoded=True))
    action = re.search(r'<form method="post" action="([^"]+/field\?key=a1[^"]*)"', text)
    assert action
    where, text = await site.form(
        URL(html.unescape(action.group(1)), encoded=True), {"field": "title", "value": '"pears"'}
    )
    assert site.data.base.get("todos", "a1") == {"key": "a1", "title": "pears", "done": False}
    assert "title saved." in text and where.endswith("#result")
    # A new field, and a value that is not JSON: refused, the typed text kept to fix.
    await site.form(URL(html.unescape(action.group(1)), encoded=True), {"field": "n", "value": "2"})
    assert (site.data.base.get("todos", "a1") or {}).get("n") == 2
    _, text = await site.form(
        URL(html.unescape(action.group(1)), encoded=True), {"field": "title", "value": "plums"}
    )
    assert "not valid JSON" in text and 'value="plums"' in text
    _, text = await site.form(
        URL(html.unescape(action.group(1)), encoded=True), {"field": "key", "value": '"zz"'}
    )
    assert "cannot be changed" in text
    # Without the page's origin, a cross-site form is refused (as every form here).
    resp = await site.call(
        "POST",
        URL(html.unescape(action.group(1)), encoded=True),
        data={"field": "title", "value": '"evil"'},
        headers={**HTML, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert resp.status == 403
    assert (site.data.base.get("todos", "a1") or {}).get("title") == "pears"


async def test_a_base_that_is_not_there_names_the_bases_that_are(site: Site) -> None:
    status, text = await site.page(f"{DATA}/base/todo")
    assert status == 404
    assert "No such Base: todo. The Bases are: people, todos." in html.unescape(text)
    assert 'action="/__space/settings/data/base/todo/items"' in text  # it can still be made


async def test_edit_replaces_the_item_and_keeps_its_key(site: Site) -> None:
    _, text = await site.page(f"{DATA}/base/todos/item?key=a1")
    assert json.loads(textarea(text, "item")) == {"key": "a1", "title": "apples", "done": False}
    where, text = await site.form(
        URL(f"{DATA}/base/todos/item?key=a1&query=%7B%7D", encoded=True),
        {"item": '{"title": "green apples", "n": 2}'},
    )
    assert site.data.base.get("todos", "a1") == {"key": "a1", "title": "green apples", "n": 2}
    assert "Item a1 saved." in text
    assert "query=" in where  # the way back to the table the owner came from
    # Reloading the page shows the same result and sends nothing again.
    status, again = await site.page(URL(where, encoded=True))
    assert status == 200 and "Item a1 saved." in again


async def test_edit_cannot_change_the_key_or_store_bad_json(site: Site) -> None:
    _, text = await site.form(f"{DATA}/base/todos/item?key=a1", {"item": '{"key": "zz"}'})
    assert "cannot be changed" in text and site.data.base.get("todos", "zz") is None
    _, text = await site.form(f"{DATA}/base/todos/item?key=a1", {"item": '{"title": '})
    assert "not valid JSON" in text
    assert textarea(text, "item") == '{"title": '  # the owner's text is kept to fix
    assert (site.data.base.get("todos", "a1") or {}).get("title") == "apples"


async def test_add_and_delete_items(site: Site) -> None:
    _, text = await site.form(f"{DATA}/base/todos/items", {"item": '{"key": "d4", "x": 1}'})
    assert "Item d4 added." in text and site.data.base.get("todos", "d4") == {"key": "d4", "x": 1}
    _, text = await site.form(f"{DATA}/base/todos/items", {"item": '{"key": "d4", "x": 2}'})
    assert "already in the Base" in text and (site.data.base.get("todos", "d4") or {}).get("x") == 1
    _, text = await site.form(f"{DATA}/base/todos/items", {"item": '{"made": true}'})
    assert site.data.base.count("todos") == 5  # a generated key
    _, text = await site.form(f"{DATA}/base/todos/item/delete?key=d4")
    assert "Item d4 deleted." in text and site.data.base.get("todos", "d4") is None
    _, text = await site.form(f"{DATA}/base/todos/item/delete?key=d4")
    assert "already deleted" in text
    # Adding to a Base that does not exist yet makes it.
    _, text = await site.form(f"{DATA}/base/fresh/items", {"item": '{"key": "1"}'})
    assert site.data.base.names() == ["fresh", "people", "todos"]


async def test_a_key_and_a_base_name_with_a_slash(site: Site) -> None:
    site.data.base.put_many("my/base", [{"key": "a/b?c&d", "v": 1}])
    page = URL(f"{DATA}/base/{quote('my/base', safe='')}", encoded=True)
    status, text = await site.page(page)
    assert status == 200 and keys_shown(text) == ["a/b?c&amp;d"]
    link = re.search(r'<a href="([^"]+)"><code class="name">', text)
    assert link
    _, item = await site.page(URL(html.unescape(link.group(1)), encoded=True))
    action = re.search(r'<form method="post" action="([^"]+/item\?key=[^"]+)"', item)
    assert action
    await site.form(URL(html.unescape(action.group(1)), encoded=True), {"item": '{"v": 2}'})
    assert site.data.base.get("my/base", "a/b?c&d") == {"key": "a/b?c&d", "v": 2}
    resp = await site.call(
        "PUT", URL(f"{API}/bases/my%2Fbase/items?key=a%2Fb%3Fc%26d", encoded=True), json={"v": 3}
    )
    assert resp.status == 200 and await resp.json() == {"key": "a/b?c&d", "v": 3}
    delete = re.search(r'action="([^"]+/item/delete\?key=[^"]+)"', text)
    assert delete
    await site.form(URL(html.unescape(delete.group(1)), encoded=True))
    assert site.data.base.get("my/base", "a/b?c&d") is None
    _, text = await site.page(DATA)
    assert "my/base" not in text  # an empty Base is no longer listed


async def test_an_item_with_a_lone_surrogate_still_shows(site: Site) -> None:
    site.data.base.put_many("odd", [{"key": "k", "text": "half \ud800 a pair"}])
    status, text = await site.page(f"{DATA}/base/odd")
    assert status == 200 and "\\ud800" in text


async def test_reset_one_base_needs_confirm(site: Site) -> None:
    _, text = await site.form(f"{DATA}/base/todos/reset", {})
    assert "Nothing was deleted" in text and site.data.base.count("todos") == 3
    _, text = await site.form(f"{DATA}/base/todos/reset", {"from": "base", "query": "", "last": ""})
    assert "Nothing was deleted" in text and "Reset this Base" in text  # back on its page
    _, text = await site.form(f"{DATA}/base/todos/reset", {"confirm": "yes"})
    assert "The Base todos is reset: 3 items deleted." in text
    assert site.data.base.names() == ["people"]


async def test_reset_all(site: Site) -> None:
    _, text = await site.form(f"{DATA}/reset", {"confirm": ""})
    assert "Nothing was deleted" in text and site.data.base.count("todos") == 3
    _, text = await site.form(f"{DATA}/reset", {"confirm": "yes"})
    assert "Every Base and Drive of the app is deleted." in text
    assert site.data.base.names() == [] and site.data.drive.names() == []
    assert "No Base holds items yet" in text and "No Drive holds files yet" in text


async def test_a_notice_belongs_to_its_page_and_cannot_be_made_up(site: Site) -> None:
    where, _ = await site.form(f"{DATA}/base/todos/item/delete?key=a1")
    flash = where.split("flash=")[1]
    _, text = await site.page(f"{DATA}/base/people?flash={flash}")
    assert "deleted" not in text
    _, text = await site.page(f"{DATA}?flash=Your+account+is+locked")
    assert "locked" not in text and 'class="notice' not in text


# --- a Drive ----------------------------------------------------------------------------------


async def test_upload_list_download_delete(site: Site) -> None:
    content = bytes(range(256)) * 1000
    form = FormData(quote_fields=False)  # names as browsers send them, not percent-encoded
    form.add_field("prefix", "")
    form.add_field("name", "docs/")
    form.add_field("file", content, filename="report 1.pdf", content_type="application/pdf")
    _, text = await site.form(f"{DATA}/drive/photos/files", form)
    assert "Uploaded docs/report 1.pdf (250.0 KiB)." in text
    assert "<code>docs/report 1.pdf</code>" in text and "application/pdf" in text
    _, text = await site.page(f"{DATA}/drive/photos", params={"prefix": "docs/"})
    names = re.findall(r'<td class="name"><code>([^<]+)</code>', text)
    assert names == ["docs/report 1.pdf"]
    link = re.search(r'href="([^"]+/file\?name=[^"]+)">Download', text)
    assert link
    resp = await site.call("GET", URL(html.unescape(link.group(1)), encoded=True))
    assert resp.status == 200 and await resp.read() == content
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"report 1.pdf\"; filename*=UTF-8''report%201.pdf"
    )
    delete = re.search(r'action="([^"]+/file/delete\?name=[^"]+)"', text)
    assert delete
    _, text = await site.form(
        URL(html.unescape(delete.group(1)), encoded=True), {"prefix": "docs/", "last": ""}
    )
    assert "Deleted docs/report 1.pdf." in text
    assert site.data.drive.open("photos", "docs/report 1.pdf") is None


async def test_an_uploaded_page_is_downloaded_never_shown(site: Site) -> None:
    form = FormData()
    form.add_field(
        "file", b"<script>alert(1)</script>", filename="x.html", content_type="text/html"
    )
    await site.form(f"{DATA}/drive/web/files", form)
    resp = await site.call("GET", f"{DATA}/drive/web/file", params={"name": "x.html"})
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == "sandbox"


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


async def test_images_and_text_are_previewed_and_a_page_never_is(site: Site) -> None:
    for name, body, kind in (
        ("pic.png", PNG, "image/png"),
        ("notes.txt", b"<i>hi</i>\n" * 3, "text/plain"),
        ("x.svg", b"<svg onload=alert(1)/>", "image/svg+xml"),
        ("x.html", b"<script>1</script>", "text/html"),
    ):
        form = FormData()
        form.add_field("file", body, filename=name, content_type=kind)
        await site.form(f"{DATA}/drive/media/files", form)
    _, text = await site.page(f"{DATA}/drive/media")
    previews = re.findall(r'href="([^"]+/preview\?name=[^"]+)">Preview', text)
    assert [html.unescape(p).rsplit("=", 1)[1] for p in previews] == [
        "notes.txt",
        "pic.png",
        "x.html",
        "x.svg",
    ]
    status, text = await site.page(f"{DATA}/drive/media/preview?name=pic.png")
    image = re.search(r'<img class="preview" src="([^"]+)"', text)
    assert status == 200 and image
    resp = await site.call("GET", URL(html.unescape(image.group(1)), encoded=True))
    assert resp.headers["Content-Disposition"] == "inline" and await resp.read() == PNG
    status, text = await site.page(f"{DATA}/drive/media/preview?name=notes.txt")
    assert status == 200 and "&lt;i&gt;hi&lt;/i&gt;" in text and "<i>hi" not in text
    # A page is shown as its text, and fetched inline it is still a download.
    status, text = await site.page(f"{DATA}/drive/media/preview?name=x.html")
    assert "&lt;script&gt;1&lt;/script&gt;" in text
    status, text = await site.page(f"{DATA}/drive/media/preview?name=x.svg")
    assert "&lt;svg onload" in text and "<img" not in text  # an SVG can carry script
    for name in ("x.html", "x.svg"):
        resp = await site.call(
            "GET", f"{DATA}/drive/media/file", params={"name": name, "inline": "1"}
        )
        assert resp.headers["Content-Disposition"].startswith("attachment;")
    status, _ = await site.page(f"{DATA}/drive/media/preview?name=nope")
    assert status == 404


async def test_drive_listing_pages_and_missing_files(site: Site) -> None:
    for n in range(102):
        await site.data.drive.put("many", f"f{n:03d}", _chunks(b"x"))
    _, text = await site.page(f"{DATA}/drive/many")
    assert len(re.findall(r'<td class="name">', text)) == 100
    assert "102 files, 102 B in all" in text
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">', text)
    link = re.search(r'<a href="([^"]+)" rel="next">', text)
    assert link
    _, text = await site.page(URL(html.unescape(link.group(1)), encoded=True))
    assert re.findall(r'<td class="name"><code>([^<]+)</code>', text) == ["f100", "f101"]
    status, _ = await site.page(f"{DATA}/drive/many/file?name=nope")
    assert status == 404
    form = FormData()
    form.add_field("name", "")
    form.add_field("file", b"", filename="", content_type="application/octet-stream")
    _, text = await site.form(f"{DATA}/drive/many/files", form)
    assert "Choose a file to upload" in text


async def test_reset_one_drive_needs_confirm(site: Site) -> None:
    _, text = await site.form(f"{DATA}/drive/photos/reset", {"from": "drive"})
    assert "Nothing was deleted" in text and site.data.drive.names() == ["photos"]
    _, text = await site.form(f"{DATA}/drive/photos/reset", {"confirm": "yes"})
    assert "The Drive photos is reset" in text and site.data.drive.names() == []


# --- export and import ------------------------------------------------------------------------


async def test_export_then_import_into_an_empty_app(site: Site, site_for: Any) -> None:
    resp = await site.call("GET", f"{DATA}/export")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/zip"
    assert re.fullmatch(
        r'attachment; filename="notes-data-\d{8}-\d{6}\.zip".*', resp.headers["Content-Disposition"]
    )
    exported = await resp.read()
    assert sorted(zipfile.ZipFile(io.BytesIO(exported)).namelist()) == [
        "bases/people.jsonl",
        "bases/todos.jsonl",
        "drives/photos/cat.jpg",
        "drives/photos/dogs%2Frex.png",
        "space-dev-export.json",
    ]
    empty: Site = await site_for("todo")
    assert empty.data.base.names() == []
    form = FormData()
    form.add_field("file", exported, filename="notes.zip", content_type="application/zip")
    _, text = await empty.form(f"{DATA}/import", form)
    assert "Imported notes.zip:" in text
    for line in ("base people: 1 item", "base todos: 3 items", "drive photos: 2 files"):
        assert f"<li>{line}</li>" in text
    assert empty.data.base.export() == site.data.base.export()
    found = empty.data.drive.open("photos", "dogs/rex.png")
    assert found and found[0].read_bytes() == b"woof"
    # No file chosen (a browser sends an empty part), or an empty file: said, nothing changes.
    for filename in ("", "empty.zip"):
        form = FormData(quote_fields=False)
        form.add_field("file", b"", filename=filename, content_type="application/octet-stream")
        _, text = await empty.form(f"{DATA}/import", form)
        assert ("Choose a zip file to import" if not filename else "empty.zip is empty") in text
    assert empty.data.base.export() == site.data.base.export()


async def test_an_import_error_names_the_uploaded_file_never_a_temporary_path(site: Site) -> None:
    nothing = io.BytesIO()
    with zipfile.ZipFile(nothing, "w") as z:
        z.writestr("readme.txt", "no data here")
    for filename, body, says in (
        ("holiday.zip", nothing.getvalue(), "nothing to import in holiday.zip"),
        ("photo.jpg", b"\xff\xd8 not a zip", "photo.jpg"),
    ):
        form = FormData(quote_fields=False)
        form.add_field("file", body, filename=filename, content_type="application/zip")
        _, text = await site.form(f"{DATA}/import", form)
        error = re.search(r'<p class="notice bad" role="alert">(.*?)</p>', text, re.S)
        assert error and says in html.unescape(error.group(1)), text
        assert "space-dev-import-" not in text and "import.zip" not in text
    resp = await site.call("POST", f"{API}/import", data=nothing.getvalue())
    body = await resp.json()
    assert resp.status == 400 and "nothing to import in the zip sent" in body["errors"][0]


async def test_an_import_of_many_items_never_holds_the_event_loop(site_for: Any) -> None:
    """A ticker on the server's own loop measures how late it wakes while the API imports
    20,000 items and 100 files; the whole import once ran on the loop (seconds)."""
    site: Site = await site_for("big")
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "bases/many.json",
            json.dumps([{"key": f"k{i:06d}", "title": f"item {i}", "n": i} for i in range(20_000)]),
        )
        for i in range(100):
            zf.writestr(f"drives/files/f{i}.txt", f"file {i}".encode() * 100)
    loop = asyncio.get_running_loop()
    lateness: list[float] = []

    async def tick() -> None:
        while True:
            start = loop.time()
            await asyncio.sleep(0.001)
            lateness.append(loop.time() - start - 0.001)

    ticker = asyncio.create_task(tick())
    try:
        resp = await site.call("POST", f"{API}/import", data=packed.getvalue())
        assert resp.status == 200, await resp.text()
    finally:
        ticker.cancel()
    assert (await resp.json())["items"] == {"many": 20_000}
    assert site.data.base.count("many") == 20_000 and site.data.drive.names() == ["files"]
    assert len(lateness) > 10 and max(lateness) < 0.25, f"the loop stalled {max(lateness):.3f} s"


async def test_a_broken_zip_is_reported(site: Site) -> None:
    form = FormData()
    form.add_field("file", b"not a zip at all", filename="x.zip")
    _, text = await site.form(f"{DATA}/import", form)
    assert "as a zip file" in text and site.data.base.count("todos") == 3
    resp = await site.call("POST", f"{API}/import", data=b"nope")
    assert resp.status == 400 and "zip" in " ".join((await resp.json())["errors"])


# --- the JSON API -----------------------------------------------------------------------------


async def test_api_query_and_paging(site: Site) -> None:
    resp = await site.call("GET", f"{API}/bases/todos")
    assert await resp.json() == {
        "items": [
            {"key": "a1", "title": "apples", "done": False},
            {"key": "b2", "title": "bread", "done": True},
            {"key": "c3", "title": "avocados", "done": False},
        ],
        "paging": {"size": 3},
    }
    resp = await site.call("GET", f"{API}/bases/todos", params={"limit": "1"})
    body = await resp.json()
    assert [i["key"] for i in body["items"]] == ["a1"] and body["paging"] == {
        "size": 1,
        "last": "a1",
    }
    resp = await site.call(
        "GET", f"{API}/bases/todos", params={"query": '[{"title?pfx": "a"}]', "last": "a1"}
    )
    assert [i["key"] for i in (await resp.json())["items"]] == ["c3"]
    resp = await site.call("GET", f"{API}/bases/todos", params={"limit": "zero"})
    assert resp.status == 400


async def test_api_put_and_delete_items(site: Site) -> None:
    resp = await site.call("PUT", f"{API}/bases/todos/items?key=a1", json={"title": "pears"})
    assert resp.status == 200 and await resp.json() == {"key": "a1", "title": "pears"}
    assert site.data.base.get("todos", "a1") == {"key": "a1", "title": "pears"}
    resp = await site.call("PUT", f"{API}/bases/todos/items?key=a1", json={"key": "b"})
    assert resp.status == 400
    resp = await site.call("PUT", f"{API}/bases/todos/items?key=a1", data=b"[1]")
    assert resp.status == 400 and (await resp.json())["errors"][0] == (
        "An item must be a JSON object"
    )
    resp = await site.call("PUT", f"{API}/bases/todos/items", json={})
    assert resp.status == 400
    resp = await site.call("DELETE", f"{API}/bases/todos/items?key=a1")
    assert resp.status == 204 and site.data.base.get("todos", "a1") is None
    resp = await site.call("DELETE", f"{API}/bases/todos/items?key=a1")
    assert resp.status == 404
    resp = await site.call("DELETE", f"{API}/bases/todos")
    assert resp.status == 204 and site.data.base.names() == ["people"]


async def test_api_drive_files(site: Site) -> None:
    resp = await site.call("GET", f"{API}/drives/photos")
    assert await resp.json() == {"names": ["cat.jpg", "dogs/rex.png"]}
    resp = await site.call("GET", f"{API}/drives/photos", params={"limit": "1"})
    assert await resp.json() == {"names": ["cat.jpg"], "paging": {"size": 1, "last": "cat.jpg"}}
    resp = await site.call("GET", f"{API}/drives/photos", params={"prefix": "dogs/"})
    assert (await resp.json())["names"] == ["dogs/rex.png"]
    body = b"\x00\xff" * 300_000
    resp = await site.call(
        "POST",
        f"{API}/drives/photos/file",
        params={"name": "b/i n.bin"},
        data=body,
        headers={"Content-Type": "application/x-thing"},
    )
    assert resp.status == 201 and await resp.json() == {"name": "b/i n.bin", "size": 600_000}
    resp = await site.call("GET", f"{API}/drives/photos/file", params={"name": "b/i n.bin"})
    assert resp.status == 200 and await resp.read() == body
    assert resp.headers["Content-Type"] == "application/x-thing"
    resp = await site.call("DELETE", f"{API}/drives/photos/file", params={"name": "b/i n.bin"})
    assert resp.status == 204 and site.data.drive.open("photos", "b/i n.bin") is None
    for method in ("GET", "DELETE"):
        resp = await site.call(method, f"{API}/drives/photos/file", params={"name": "b/i n.bin"})
        assert resp.status == 404 and (await resp.json())["errors"]
    resp = await site.call("POST", f"{API}/drives/photos/file", params={"name": "dir/"}, data=b"x")
    assert resp.status == 400
    resp = await site.call("DELETE", f"{API}/drives/photos")
    assert resp.status == 204 and site.data.drive.names() == []


async def test_api_export_import_and_reset_all(site: Site, site_for: Any) -> None:
    resp = await site.call("GET", f"{API}/export")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/zip"
    exported = await resp.read()
    resp = await site.call("DELETE", API)
    assert resp.status == 204
    assert site.data.base.names() == [] and site.data.drive.names() == []
    resp = await site.call("POST", f"{API}/import", data=exported)
    assert resp.status == 200
    assert await resp.json() == {
        "items": {"people": 1, "todos": 3},
        "files": {"photos": 2},
        "skipped": [],
    }
    assert site.data.base.count("todos") == 3
    resp = await site.call("GET", API)
    assert (await resp.json())["drives"] == [{"name": "photos", "files": 2, "bytes": 8}]


async def test_settings_links_to_the_data_page() -> None:
    settings = Path(__file__).parents[2] / "runtime/web/templates/settings.html"
    assert 'href="/__space/settings/data"' in settings.read_text()
