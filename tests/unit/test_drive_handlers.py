"""The Drive HTTP API on a real aiohttp server, sent what the Deta SDKs send."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote

import pytest
from aiohttp import web
from yarl import URL

from runtime.cloud.drive.handlers import MAX_BODY, handle_drive
from runtime.cloud.drive.ranges import Plan, plan_range
from runtime.cloud.drive.store import DriveStore

MiB = 1024 * 1024
BASE = "/v1/a0pid/photos"
GO_AGENT = {"User-Agent": "Go-http-client/1.1"}


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> Any:
    store = DriveStore(tmp_path / "drive")

    async def route(request: web.Request) -> web.StreamResponse:
        match = re.fullmatch(r"/v1/([^/]+)/([^/]+)(.*)", request.rel_url.raw_path)
        if match is None:
            raise web.HTTPNotFound()
        return await handle_drive(request, store, unquote(match[2]), match[3])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", route)
    c = await aiohttp_client(app)
    c.store = store
    yield c
    store.close()


def raw(path: str) -> URL:
    """A URL sent exactly as written, as deta-python sends `prefix` and `last`."""
    return URL(BASE + path, encoded=True)


async def put(client: Any, name: str, data: bytes, **headers: str) -> Any:
    return await client.post(raw(f"/files?name={quote_plus(name)}"), data=data, headers=headers)


async def expect_error(resp: Any, status: int) -> list[str]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    errors = (await resp.json())["errors"]
    assert isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors)
    return errors


# --- files -------------------------------------------------------------------------------------


async def test_put_file_then_download(client: Any) -> None:
    resp = await put(client, "hello world+more.txt", b"hi there")
    assert resp.status == 201
    assert await resp.json() == {
        "name": "hello world+more.txt",
        "project_id": "a0pid",
        "drive_name": "photos",
    }
    resp = await client.get(raw("/files/download?name=hello+world%2Bmore.txt"))
    assert resp.status == 200
    assert await resp.read() == b"hi there"
    assert resp.headers["Content-Type"] == "text/plain"  # from the name: none was sent
    assert resp.headers["Content-Length"] == "8"
    assert resp.headers["Accept-Ranges"] == "bytes"


async def test_put_file_keeps_the_content_type_sent(client: Any) -> None:
    await put(client, "a.bin", b"x", **{"Content-Type": "image/webp"})
    resp = await client.get(raw("/files/download?name=a.bin"))
    assert resp.headers["Content-Type"] == "image/webp"


@pytest.mark.parametrize("headers", [{}, {"Range": "bytes=0-2"}])
async def test_a_stored_page_never_runs_where_it_is_served(client: Any, headers: dict) -> None:
    """The API is served on the app's origin too: a stored HTML file must not run there."""
    await put(client, "page.html", b"<script>alert(1)</script>", **{"Content-Type": "text/html"})
    resp = await client.get(raw("/files/download?name=page.html"), headers=headers)
    assert resp.status in (200, 206)
    assert resp.headers["Content-Type"] == "text/html"  # kept: fetch and the SDKs read it
    assert resp.headers["Content-Security-Policy"] == "sandbox"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_javascript_style_names_decode_the_same(client: Any) -> None:
    # encodeURIComponent writes a space as %20 and leaves /, which quote(safe="") would not.
    resp = await client.post(raw("/files?name=" + quote("dir/a b.png", safe="/")), data=b"png")
    assert (await resp.json())["name"] == "dir/a b.png"
    resp = await client.get(raw("/files/download?name=" + quote_plus("dir/a b.png")))
    assert await resp.read() == b"png"


async def test_download_of_a_missing_file_is_404_json(client: Any) -> None:
    await expect_error(await client.get(raw("/files/download?name=nope")), 404)


@pytest.mark.parametrize("query", ["", "?name=", "?name=%20%20", "?name=dir%2F"])
async def test_put_file_with_a_bad_name_is_400(client: Any, query: str) -> None:
    await expect_error(await client.post(raw("/files" + query), data=b"x"), 400)


async def test_put_file_over_10_mib_is_413(client: Any) -> None:
    resp = await put(client, "big", b"x" * (MAX_BODY + 1))
    await expect_error(resp, 413)

    async def unsized() -> AsyncIterator[bytes]:  # chunked: no Content-Length to check first
        for _ in range(11):
            yield b"y" * MiB

    resp = await client.post(raw("/files?name=big"), data=unsized())
    await expect_error(resp, 413)
    assert client.store.list("photos") == ([], None)
    assert (await put(client, "max", b"z" * MAX_BODY)).status == 201


# --- ranges -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "plan"),
    [
        (None, 10, Plan(200, 0, 10)),
        ("bytes=0-4", 10, Plan(206, 0, 5)),
        ("bytes=5-", 10, Plan(206, 5, 10)),
        ("bytes=-3", 10, Plan(206, 7, 10)),
        ("bytes=-30", 10, Plan(206, 0, 10)),
        ("bytes=8-100", 10, Plan(206, 8, 10)),
        ("bytes=9-9", 10, Plan(206, 9, 10)),
        ("BYTES = 1-2", 10, Plan(206, 1, 3)),
        ("bytes=10-", 10, Plan(416, 0, 0)),
        ("bytes=10-20", 10, Plan(416, 0, 0)),
        ("bytes=-0", 10, Plan(416, 0, 0)),
        ("bytes=0-", 0, Plan(416, 0, 0)),
        ("bytes=-5", 0, Plan(416, 0, 0)),
        ("bytes=5-3", 10, Plan(200, 0, 10)),
        ("bytes=0-1,4-5", 10, Plan(200, 0, 10)),
        ("items=0-1", 10, Plan(200, 0, 10)),
        ("bytes=-", 10, Plan(200, 0, 10)),
        ("bytes=a-b", 10, Plan(200, 0, 10)),
    ],
)
def test_plan_range(header: str | None, size: int, plan: Plan) -> None:
    assert plan_range(header, size) == plan


async def test_range_requests(client: Any) -> None:
    data = bytes(range(100))
    await put(client, "r.bin", data)
    url = raw("/files/download?name=r.bin")
    resp = await client.get(url, headers={"Range": "bytes=10-19"})
    assert resp.status == 206 and await resp.read() == data[10:20]
    assert resp.headers["Content-Range"] == "bytes 10-19/100"
    assert resp.headers["Content-Length"] == "10"
    resp = await client.get(url, headers={"Range": "bytes=-5"})
    assert resp.status == 206 and await resp.read() == data[95:]
    resp = await client.get(url, headers={"Range": "bytes=100-"})
    await expect_error(resp, 416)
    assert resp.headers["Content-Range"] == "bytes */100"
    # If-Range: the range only for the version the client has.
    etag = resp.headers["ETag"]
    resp = await client.get(url, headers={"Range": "bytes=0-1", "If-Range": etag})
    assert resp.status == 206 and await resp.read() == data[:2]
    await put(client, "r.bin", data[::-1])
    resp = await client.get(url, headers={"Range": "bytes=0-1", "If-Range": etag})
    assert resp.status == 200 and await resp.read() == data[::-1]
    assert resp.headers["ETag"] != etag


async def test_head_sends_headers_only(client: Any) -> None:
    await put(client, "h.txt", b"12345")
    resp = await client.head(raw("/files/download?name=h.txt"))
    assert resp.status == 200 and resp.headers["Content-Length"] == "5"
    assert await resp.read() == b""


# --- listing ------------------------------------------------------------------------------------


async def test_list_without_paging_when_all_fit(client: Any) -> None:
    for name in ("b", "a", "c/d"):
        await put(client, name, b".")
    resp = await client.get(raw("/files?limit=1000"))
    assert await resp.json() == {"names": ["a", "b", "c/d"]}  # no "paging" on the last page
    resp = await client.get(raw("/files?limit=2"))
    assert await resp.json() == {"names": ["a", "b"], "paging": {"size": 2, "last": "b"}}
    resp = await client.get(raw("/files?limit=2&last=b"))
    assert await resp.json() == {"names": ["c/d"]}
    resp = await client.get(raw("/files"))  # every parameter is optional
    assert (await resp.json())["names"] == ["a", "b", "c/d"]


async def test_list_reads_prefix_and_last_as_each_sdk_sends_them(client: Any) -> None:
    for name in ("a b/1", "a b/2", "a+b/1", "a+b/2", "a&b"):
        await put(client, name, b".")
    # deta-python: raw, so '+' is a plus and '/' stays.
    resp = await client.get(raw("/files?limit=1&prefix=a+b/"))
    assert await resp.json() == {"names": ["a+b/1"], "paging": {"size": 1, "last": "a+b/1"}}
    resp = await client.get(raw("/files?limit=5&prefix=a+b/&last=a+b/1"))
    assert await resp.json() == {"names": ["a+b/2"]}
    # deta-javascript: raw too, with empty values for what it was not given.
    resp = await client.get(raw("/files?prefix=a%20b/&recursive=true&limit=1000&last="))
    assert await resp.json() == {"names": ["a b/1", "a b/2"]}
    # deta-go: form-encoded, keys sorted, where '+' is a space.
    go = raw("/files?last=a+b%2F1&limit=10&prefix=a+b%2F")
    resp = await client.get(go, headers=GO_AGENT)
    assert await resp.json() == {"names": ["a b/2"]}
    resp = await client.get(raw("/files?limit=10&prefix=a%26"), headers=GO_AGENT)
    assert await resp.json() == {"names": ["a&b"]}


async def test_list_recursive_false_collapses_folders(client: Any) -> None:
    for name in ("list-a", "list/a", "list/child/a", "list/child/b"):
        await put(client, name, b".")
    resp = await client.get(raw("/files?prefix=list/&recursive=false&limit=1000&last="))
    assert await resp.json() == {"names": ["list/a", "list/child/"]}
    resp = await client.get(raw("/files?prefix=list&recursive=false&limit=1&last=list-a"))
    assert await resp.json() == {"names": ["list/"]}


async def test_list_limit(client: Any) -> None:
    for i in range(3):
        await put(client, f"f{i}", b".")
    for bad in ("abc", "0", "-1"):
        await expect_error(await client.get(raw(f"/files?limit={bad}")), 400)
    resp = await client.get(raw("/files?limit=5000"))  # a page is at most 1000: not an error
    assert (await resp.json())["names"] == ["f0", "f1", "f2"]


async def test_a_query_that_is_not_utf8_is_400(client: Any) -> None:
    await expect_error(await client.get(raw("/files?prefix=%FF")), 400)


# --- deleting -----------------------------------------------------------------------------------


async def test_delete_files(client: Any) -> None:
    for name in ("a", "b/c"):
        await put(client, name, b".")
    # Blank names beside real ones fail one by one; the call itself succeeds, as on Deta.
    resp = await client.delete(raw("/files"), json={"names": ["a", "missing", "b/c", "", " "]})
    assert resp.status == 200
    body = await resp.json()
    assert body["deleted"] == ["a", "missing", "b/c"]  # a missing file counts as deleted
    assert body["failed"] == {"": "invalid name", " ": "invalid name"}
    assert (await (await client.get(raw("/files"))).json()) == {"names": []}


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"names": []}',
        b'{"names": "a"}',
        b'{"names": [1, 2]}',
        b"[]",
        json.dumps({"names": [f"n{i}" for i in range(1001)]}).encode(),
    ],
)
async def test_delete_files_with_a_bad_body_is_400(client: Any, payload: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    await expect_error(await client.delete(raw("/files"), data=payload, headers=headers), 400)


# Deta refused a delete whose names were all empty or blank (400, which the npm SDK reports as
# "Names can't be empty"); a name that is wrong in another way fails on its own in a 200.
DELETE_MANY: list[tuple[list[str], int, dict[str, str]]] = [
    ([""], 400, {}),
    (["   "], 400, {}),
    (["", " ", "\t\n"], 400, {}),
    (["", "kept"], 200, {"": "invalid name"}),
    (["  ", "kept", ""], 200, {"  ": "invalid name", "": "invalid name"}),
    (["x/"], 200, {"x/": "invalid name: a file name must not end with '/'"}),
    (
        ["", "x/"],
        200,
        {"": "invalid name", "x/": "invalid name: a file name must not end with '/'"},
    ),
    (["gone"], 200, {}),
]


@pytest.mark.parametrize(
    ("names", "status", "failed"), DELETE_MANY, ids=[repr(c[0]) for c in DELETE_MANY]
)
async def test_delete_files_whose_names_are_all_blank_is_400(
    client: Any, names: list[str], status: int, failed: dict[str, str]
) -> None:
    await put(client, "kept", b".")
    resp = await client.delete(raw("/files"), json={"names": names})
    if status == 400:
        assert await expect_error(resp, 400)
        assert (await (await client.get(raw("/files"))).json())["names"] == ["kept"]
        return
    assert resp.status == 200
    body = await resp.json()
    assert body["failed"] == failed
    assert body["deleted"] == [n for n in names if n not in failed]


# --- chunked uploads ----------------------------------------------------------------------------


async def start(client: Any, name: str, **headers: str) -> str:
    resp = await client.post(raw(f"/uploads?name={quote_plus(name)}"), headers=headers)
    assert resp.status == 202
    body = await resp.json()
    assert body["name"] == name
    assert (body["project_id"], body["drive_name"]) == ("a0pid", "photos")
    return str(body["upload_id"])


async def part(client: Any, upload: str, name: str, number: int, data: Any, **h: str) -> Any:
    url = raw(f"/uploads/{upload}/parts?name={quote_plus(name)}&part={number}")
    return await client.post(url, data=data, headers=h)


async def test_chunked_upload_round_trip(client: Any) -> None:
    upload = await start(client, "docs/report.pdf", **{"Content-Type": "binary/octet-stream"})
    resp = await part(client, upload, "docs/report.pdf", 1, b"first,")
    assert resp.status == 200
    assert await resp.json() == {
        "name": "docs/report.pdf",
        "upload_id": upload,
        "part": 1,
        "project_id": "a0pid",
        "drive_name": "photos",
    }
    await part(client, upload, "docs/report.pdf", 2, b"second")
    resp = await client.patch(raw(f"/uploads/{upload}?name=docs%2Freport.pdf"))
    assert resp.status == 200
    assert (await resp.json())["upload_id"] == upload
    resp = await client.get(raw("/files/download?name=docs%2Freport.pdf"))
    assert await resp.read() == b"first,second"
    # The JS SDK's "binary/octet-stream" means "not given": the type comes from the name.
    assert resp.headers["Content-Type"] == "application/pdf"
    await expect_error(await client.patch(raw(f"/uploads/{upload}?name=docs%2Freport.pdf")), 404)


async def test_chunked_upload_with_no_parts_is_an_empty_file(client: Any) -> None:
    upload = await start(client, "empty")
    assert (await client.patch(raw(f"/uploads/{upload}?name=empty"))).status == 200
    resp = await client.get(raw("/files/download?name=empty"))
    assert resp.status == 200 and await resp.read() == b""
    assert resp.headers["Content-Length"] == "0"


async def test_abort_upload(client: Any) -> None:
    upload = await start(client, "f")
    await part(client, upload, "f", 1, b"data")
    resp = await client.delete(raw(f"/uploads/{upload}?name=f"))
    assert resp.status == 200 and (await resp.json())["upload_id"] == upload
    await expect_error(await client.patch(raw(f"/uploads/{upload}?name=f")), 404)
    await expect_error(await client.get(raw("/files/download?name=f")), 404)


async def test_upload_errors(client: Any) -> None:
    upload = await start(client, "f")
    await expect_error(await part(client, "0" * 32, "f", 1, b"x"), 404)
    await expect_error(await part(client, upload, "other", 1, b"x"), 404)
    await expect_error(await part(client, upload, "f", 0, b"x"), 400)
    url = raw(f"/uploads/{upload}/parts?name=f")
    await expect_error(await client.post(url, data=b"x"), 400)  # no part number
    await expect_error(await part(client, upload, "f", 1, b"x" * (10 * MiB + 1)), 413)
    await expect_error(await client.delete(raw("/uploads/nope?name=f")), 404)
    await expect_error(await client.post(raw("/uploads")), 400)


async def test_unknown_routes_and_methods(client: Any) -> None:
    await expect_error(await client.get(raw("/nothing")), 404)
    await expect_error(await client.get(raw("")), 404)
    resp = await client.put(raw("/files?name=a"), data=b"x")
    await expect_error(resp, 405)
    assert set(resp.headers["Allow"].split(", ")) == {"POST", "GET", "DELETE"}
    await expect_error(await client.get(raw("/uploads/abc")), 405)


def pattern(offset: int, size: int) -> bytes:
    """Bytes that differ by position, made on the fly: the test must not hold the file."""
    block = hashlib.sha256(offset.to_bytes(8, "big")).digest() * (size // 32 + 1)
    return block[:size]


async def test_25_mib_upload_and_download_keep_memory_flat(client: Any) -> None:
    size = 25 * MiB
    sent = hashlib.sha256()

    async def part_body(start_at: int, length: int) -> AsyncIterator[bytes]:
        for offset in range(start_at, start_at + length, MiB):
            chunk = pattern(offset, min(MiB, start_at + length - offset))
            sent.update(chunk)
            yield chunk

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        upload = await start(client, "big.bin")
        number = 0
        for number, begin in enumerate(range(0, size, 10 * MiB), start=1):
            length = min(10 * MiB, size - begin)
            stream = part_body(begin, length)
            length_header = {"Content-Length": str(length)}
            resp = await part(client, upload, "big.bin", number, stream, **length_header)
            assert resp.status == 200, await resp.text()
        assert number == 3
        assert (await client.patch(raw(f"/uploads/{upload}?name=big.bin"))).status == 200
        resp = await client.get(raw("/files/download?name=big.bin"))
        assert resp.headers["Content-Length"] == str(size)
        got = hashlib.sha256()
        received = 0
        async for chunk in resp.content.iter_chunked(256 * 1024):
            got.update(chunk)
            received += len(chunk)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert received == size and got.hexdigest() == sent.hexdigest()
    # One 10 MiB part held whole would show here; the stream keeps about a few MiB.
    assert peak < 6 * MiB, f"peak traced memory grew by {peak / MiB:.1f} MiB"


async def test_a_download_under_way_keeps_its_version_when_the_file_is_replaced(
    client: Any,
) -> None:
    old = pattern(1, 8 * MiB)
    await put(client, "v.bin", old)
    resp = await client.get(raw("/files/download?name=v.bin"))
    first = await resp.content.read(64 * 1024)
    assert (await put(client, "v.bin", b"new")).status == 201  # the old body is unlinked now
    rest = await resp.content.read()
    assert first + rest == old
    again = await client.get(raw("/files/download?name=v.bin"))
    assert await again.read() == b"new"


async def test_a_client_that_goes_away_mid_part_leaves_nothing(client: Any) -> None:
    upload = await start(client, "f")
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        f"POST {BASE}/uploads/{upload}/parts?name=f&part=1 HTTP/1.1\r\n"
        f"Host: x\r\nContent-Length: {MiB}\r\n\r\n".encode()
        + b"x" * 100_000
    )
    await writer.drain()
    parts = client.store.root / "photos" / ".uploads" / upload
    deadline = asyncio.get_running_loop().time() + 10
    while not any(parts.iterdir()):  # the part's temp file exists while it arrives
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    writer.close()
    while any(parts.iterdir()):
        assert asyncio.get_running_loop().time() < deadline, list(parts.iterdir())
        await asyncio.sleep(0.01)
    assert (await client.patch(raw(f"/uploads/{upload}?name=f"))).status == 200
    resp = await client.get(raw("/files/download?name=f"))
    assert await resp.read() == b""  # the broken part never counted
