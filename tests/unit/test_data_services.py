"""The data services' own parts: which app a project key opens, the API dispatch, each app's
data kept apart, export and import (Space's zip layout included), and ephemeral data."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from runtime.cloud.data import DataServices, app_folder_name
from runtime.cloud.export_zip import export_zip
from runtime.cloud.notices import Notices
from runtime.cloud.service import MicroApi, ProjectKeys, browser_path, service_of, split_api_path
from runtime.cloud.transfer import import_zip

KEYS = {"notes": "a1b2c3d4_SecretOfNotes", "todo": "e5f6a7b8_SecretOfTodo"}


@pytest.mark.parametrize(
    "key,project,app",
    [
        ("a1b2c3d4_SecretOfNotes", "a1b2c3d4", "notes"),
        ("e5f6a7b8_SecretOfTodo", "e5f6a7b8", "todo"),
        ("a1b2c3d4_SecretOfNotes", "e5f6a7b8", None),  # another project's path
        ("a1b2c3d4_SecretOfTodo", "a1b2c3d4", None),  # a secret of another app
        ("a1b2c3d4_SecretOfNote", "a1b2c3d4", None),
        ("a1b2c3d4SecretOfNotes", "a1b2c3d4", None),
        ("a1b2c3d4_Secret_OfNotes", "a1b2c3d4", None),
        ("", "a1b2c3d4", None),
        ("a1b2c3d4_", "a1b2c3d4", None),
        ("a1b2c3d4_\udcff\udcfe", "a1b2c3d4", None),  # a header that was not UTF-8
        ("a1b2c3d4_\ud800", "a1b2c3d4", None),
    ],
)
def test_project_keys(key: str, project: str, app: str | None) -> None:
    assert ProjectKeys(lambda: KEYS).app_for(key, project) == app


@pytest.mark.parametrize(
    "rest,service",
    [
        ("/items", "base"),
        ("/items/a%2Fb", "base"),
        ("/query", "base"),
        ("/files", "drive"),
        ("/files/download?name=a", "drive"),
        ("/uploads/x/parts", "drive"),
        ("", None),
        ("/", None),
        ("/itemsx", None),
        ("/other", None),
    ],
)
def test_service_of(rest: str, service: str | None) -> None:
    assert service_of(rest) == service


def test_split_api_path_keeps_the_rest_raw() -> None:
    assert split_api_path("/v1/abc/my%20base/items/a%2Fb") == ("abc", "my base", "/items/a%2Fb")
    assert split_api_path("/v1/abc/notes") == ("abc", "notes", "")
    assert split_api_path("/v2/abc/notes/items") is None
    assert split_api_path("/v1/abc/%20/items") is None
    assert browser_path("/__space/v0/base/v1/dummy/notes/items") == (
        "base",
        "/v1/dummy/notes/items",
    )
    assert browser_path("/__space/v0/drivex/v1/a/b/files") is None


def test_app_folder_names_cannot_escape() -> None:
    assert app_folder_name("notes") == "notes"
    for odd in ("..", "a/b", ".hidden", "with space", "x" * 80):
        name = app_folder_name(odd)
        assert "/" not in name and not name.startswith(".") and name.startswith("app-")
    assert app_folder_name("a/b") != app_folder_name("a_b")


@pytest.fixture
async def api(tmp_path: Path):
    data = DataServices(tmp_path)
    client = TestClient(TestServer(MicroApi(data, ProjectKeys(lambda: KEYS)).application()))
    await client.start_server()
    yield client, data
    await client.close()
    data.close()


def _headers(app: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[app], "Content-Type": "application/json"}


async def test_each_app_has_its_own_bases(api) -> None:
    client, data = api
    for app in ("notes", "todo"):
        project = KEYS[app].split("_")[0]
        resp = await client.put(
            f"/v1/{project}/things/items",
            headers=_headers(app),
            data=json.dumps({"items": [{"key": "k", "owner": app}]}),
        )
        assert resp.status == 207
    for app in ("notes", "todo"):
        project = KEYS[app].split("_")[0]
        resp = await client.get(f"/v1/{project}/things/items/k", headers=_headers(app))
        assert (resp.status, (await resp.json())["owner"]) == (200, app)
    assert (data.root / "notes" / "base.sqlite3").is_file()


async def test_a_missing_or_wrong_key_is_refused_in_json(api) -> None:
    client, _ = api
    for headers in ({}, {"X-API-Key": "a1b2c3d4_wrong"}, {"X-API-Key": KEYS["todo"]}):
        resp = await client.get("/v1/a1b2c3d4/things/items/k", headers=headers)
        assert resp.status == 401
        assert resp.content_type == "application/json"
        assert await resp.json() == {"errors": ["Unauthorized"]}


SETTINGS = {
    "notes": "http://localhost:4200/__space/settings",
    "todo": "http://localhost:4201/__space/settings",
}


@pytest.fixture
async def logged_api(tmp_path: Path):
    data = DataServices(tmp_path)
    lines: list[str] = []
    api = MicroApi(data, ProjectKeys(lambda: KEYS), Notices(lines.append), lambda: SETTINGS)
    client = TestClient(TestServer(api.application()))
    await client.start_server()
    yield client, lines
    await client.close()
    data.close()


async def test_a_refused_query_is_detas_bad_query_and_its_reason_goes_to_the_log(
    logged_api,
) -> None:
    client, lines = logged_api
    query = {"query": [{"age": 27}, {"key?<=": "k2"}]}
    for _ in range(3):  # a micro retrying: one line, not three
        resp = await client.post(
            "/v1/a1b2c3d4/people/query", headers=_headers("notes"), data=json.dumps(query)
        )
        assert resp.status == 400 and await resp.json() == {"errors": ["Bad query"]}
        assert "same condition on key" in resp.headers["X-Space-Detail"]
    assert len(lines) == 1
    assert lines[0].startswith('notes: Base "people" answered 400 "Bad query": every OR\'ed')
    resp = await client.post(
        "/v1/e5f6a7b8/people/query",
        headers=_headers("todo"),
        data=json.dumps({"query": {"caf\u00e9?": 1}}),
    )
    assert await resp.json() == {"errors": ["Bad query"]}
    assert lines[1] == (
        'todo: Base "people" answered 400 "Bad query": Invalid query operator "?" in "caf\u00e9?"'
    )  # the log shows it as sent
    # The control: a good query answers, and the log stays quiet.
    resp = await client.post(
        "/v1/a1b2c3d4/people/query",
        headers=_headers("notes"),
        data=json.dumps({"query": [{"age": 27}, {"age": 28}]}),
    )
    assert resp.status == 200 and "X-Space-Detail" not in resp.headers and len(lines) == 2


# An app whose Configuration asks for a project key (as many Space apps did) and was given one
# from Deta, or none: the log says which key was refused (its id only, never the secret) and
# where the app's own key is. The same key again within a minute is not said again.
WRONG_KEYS = [
    ({"X-API-Key": "c0ffee12_FromDetaSpaceLongAgo"}, "c0ffee12", 'project key "c0ffee12_..."'),
    ({"X-API-Key": "a1b2c3d4_wrong"}, "a1b2c3d4", 'project key "a1b2c3d4_..."'),
    ({"X-API-Key": KEYS["todo"]}, "a1b2c3d4", 'project key "e5f6a7b8_..."'),  # another app's
    ({}, "a1b2c3d4", "no project key"),
    ({"X-API-Key": "no-underscore-at-all"}, "a1b2c3d4", "a project key that is not one"),
    ({"X-API-Key": "evil\u00e9_x"}, "a1b2c3d4", "a project key that is not one"),
]


@pytest.mark.parametrize(("headers", "project", "says"), WRONG_KEYS, ids=[w[2] for w in WRONG_KEYS])
async def test_a_call_with_a_key_that_is_no_apps_is_told_to_the_log_with_the_settings_pages(
    logged_api, headers: dict[str, str], project: str, says: str
) -> None:
    client, lines = logged_api
    for _ in range(2):
        resp = await client.get(f"/v1/{project}/things/items/k", headers=headers)
        assert resp.status == 401 and await resp.json() == {"errors": ["Unauthorized"]}
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f'Base "things" refused a call with {says}')
    assert "DETA_PROJECT_KEY" in line and "Configuration" in line
    for app, page in SETTINGS.items():
        assert f"{page} ({app})" in line
    assert "FromDetaSpaceLongAgo" not in line and "wrong" not in line
    assert "SecretOfTodo" not in line and line.isprintable()


async def test_calls_without_a_key_to_many_names_make_one_line(logged_api) -> None:
    """What a page of another site can send (no key: a custom header needs a preflight)."""
    client, lines = logged_api
    for n in range(30):
        resp = await client.get(f"/v1/a1b2c3d4/name{n}/items/k")
        assert resp.status == 401
    assert len(lines) == 1 and 'Base "name0"' in lines[0]


async def test_what_a_request_sent_reaches_the_log_as_one_printable_line(logged_api) -> None:
    client, lines = logged_api
    resp = await client.get("/v1/a1b2c3d4/evil%1B%5B2J%C2%85space-dev%20%7C%20fake/items/k")
    assert resp.status == 401
    resp = await client.post(
        "/v1/a1b2c3d4/people/query",
        headers=_headers("notes"),
        data=json.dumps({"query": {"a\x1b[31m\nb?": 1}}),
    )
    assert resp.status == 400
    assert len(lines) == 2 and all(line.isprintable() for line in lines)
    assert 'Base "evil\\x1b[2J\\x85space-dev | fake"' in lines[0]
    assert '"a\\x1b[31m\\nb?"' in lines[1]


async def test_the_app_own_key_is_answered_and_nothing_is_logged(logged_api) -> None:
    client, lines = logged_api
    resp = await client.get("/v1/a1b2c3d4/things/items/k", headers=_headers("notes"))
    assert resp.status == 404 and lines == []
    resp = await client.get("/v1/a1b2c3d4/photos/files", headers=_headers("notes"))
    assert resp.status == 200 and lines == []


async def test_a_drive_call_with_a_wrong_key_names_drive(logged_api) -> None:
    client, lines = logged_api
    resp = await client.get("/v1/c0ffee12/photos/files", headers={"X-API-Key": "c0ffee12_FromDeta"})
    assert resp.status == 401 and lines[0].startswith('Drive "photos" refused a call')


@pytest.mark.parametrize(
    ("times", "said"),
    [
        ([0.0, 1.0, 59.9], [True, False, False]),
        ([0.0, 60.0, 61.0], [True, True, False]),
        ([5.0, 200.0], [True, True]),
    ],
)
def test_a_notice_is_said_once_a_minute_at_most(times: list[float], said: list[bool]) -> None:
    now = [0.0]
    lines: list[str] = []
    notices = Notices(lines.append, every=60.0, clock=lambda: now[0])
    results = []
    for t in times:
        now[0] = t
        results.append(notices.say("same line"))
    assert results == said and len(lines) == said.count(True)
    assert notices.say("another line")  # another line is said at once


async def test_a_token_in_authorization_is_taken_too(api) -> None:
    client, _ = api
    resp = await client.get(
        "/v1/a1b2c3d4/things/items/nope", headers={"Authorization": KEYS["notes"]}
    )
    assert resp.status == 404


async def test_drive_and_unknown_routes(api) -> None:
    client, _ = api
    resp = await client.post(
        "/v1/a1b2c3d4/photos/files?name=a/b.txt",
        data=b"hello",
        headers={"X-API-Key": KEYS["notes"]},
    )
    assert resp.status == 201
    resp = await client.get(
        "/v1/a1b2c3d4/photos/files/download?name=a/b.txt", headers={"X-API-Key": KEYS["notes"]}
    )
    assert (resp.status, await resp.read()) == (200, b"hello")
    for path in ("/v1/a1b2c3d4/photos/nothing", "/elsewhere", "/v1/a1b2c3d4"):
        resp = await client.get(path, headers={"X-API-Key": KEYS["notes"]})
        assert resp.status == 404 and "errors" in await resp.json()


async def test_export_then_import_into_another_app(tmp_path: Path) -> None:
    data = DataServices(tmp_path)
    source = data.app("notes")
    source.base.put_many("notes", [{"key": "1", "text": "one"}, {"key": "2", "text": "two"}])
    source.base.put_many("tags", [{"key": "red"}])

    async def body():
        yield b"x" * 3000

    await source.drive.put("files", "docs/readme.txt", body())
    target = tmp_path / "out" / "notes.zip"
    assert export_zip(source, target) == (3, 1)
    with zipfile.ZipFile(target) as zf:
        assert sorted(zf.namelist()) == [
            "bases/notes.jsonl",
            "bases/tags.jsonl",
            "drives/files/docs%2Freadme.txt",
            "space-dev-export.json",
        ]
        assert zf.read("bases/notes.jsonl") == (
            b'{"key":"1","text":"one"}\n{"key":"2","text":"two"}\n'
        )
    report = await import_zip(data.app("copy"), target)
    assert report.items == {"notes": 2, "tags": 1} and report.files == {"files": 1}
    copy = data.app("copy")
    assert copy.base.get("notes", "2") == {"key": "2", "text": "two"}
    path, size, _ = copy.drive.open("files", "docs/readme.txt")  # type: ignore[misc]
    assert size == 3000 and path.read_bytes() == b"x" * 3000
    data.close()


async def test_import_reads_spaces_layout_and_says_what_it_skipped(tmp_path: Path) -> None:
    zip_path = tmp_path / "space-export.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("bases/notes.json", json.dumps({"items": [{"key": "a", "n": 1}, 7]}))
        zf.writestr("bases/broken.json", "{not json")
        zf.writestr("bases/odd.json", json.dumps({"rows": []}))
        zf.writestr("drives/pics/cat.png", b"\x89PNG")
        zf.writestr("README.txt", "hello")
    data = DataServices(tmp_path)
    report = await import_zip(data.app("notes"), zip_path)
    assert report.items == {"notes": 1} and report.files == {"pics": 1}
    text = "\n".join(report.lines())
    assert "base notes: 1 item" in text and "drive pics: 1 file" in text
    assert "bases/notes.json: item 1 is not an object" in text
    assert "bases/broken.json: not JSON" in text
    assert "bases/odd.json: neither a list" in text
    assert "README.txt: neither" in text
    data.close()


async def test_import_still_reads_the_older_export_layout(tmp_path: Path) -> None:
    """What space-dev exported before: no marker entry, one JSON document per Base, file
    names as they stand (a `%` in them is no escape)."""
    zip_path = tmp_path / "older.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bases/notes.json", json.dumps([{"key": "1", "text": "one"}], indent=1))
        zf.writestr("drives/files/docs/100%25 done.txt", b"done")
        zf.writestr("drives/../x/y", b"climbs")
    data = DataServices(tmp_path)
    report = await import_zip(data.app("notes"), zip_path)
    notes = data.app("notes")
    assert notes.base.get("notes", "1") == {"key": "1", "text": "one"}
    found = notes.drive.open("files", "docs/100%25 done.txt")
    assert found is not None and found[0].read_bytes() == b"done"
    assert notes.drive.names() == ["files"]
    assert report.skipped == ["drives/../x/y: a Drive cannot be named . or .."]
    data.close()


async def test_import_of_a_file_that_is_no_zip(tmp_path: Path) -> None:
    from runtime.errors import SpaceDevError

    bad = tmp_path / "x.zip"
    bad.write_text("nope")
    with pytest.raises(SpaceDevError, match="cannot read"):
        await import_zip(DataServices(tmp_path).app("a"), bad)


def test_ephemeral_data_is_dropped_at_close(tmp_path: Path) -> None:
    data = DataServices(tmp_path, ephemeral=True)
    data.app("notes").base.put_many("b", [{"key": "k"}])
    root = data.root
    assert root.is_dir() and not root.is_relative_to(tmp_path)
    data.close()
    assert not root.exists()
    assert not (tmp_path / "data").exists()
