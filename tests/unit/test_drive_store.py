"""DriveStore on real files: names, paging, chunked uploads, deletes and crash safety."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.cloud.drive import store as store_module
from runtime.cloud.drive.names import drive_folder, prefix_end
from runtime.cloud.drive.store import (
    BadName,
    DriveStore,
    NoSuchUpload,
    TooLarge,
)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


def body(store: DriveStore, drive: str, name: str) -> bytes:
    found = store.open(drive, name)
    assert found is not None
    return found[0].read_bytes()


def all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def store(tmp_path: Path):
    s = DriveStore(tmp_path / "drive")
    yield s
    s.close()


async def test_put_then_open_gives_the_bytes_size_and_type(store: DriveStore) -> None:
    size = await store.put("photos", "a/b.txt", chunks(b"hello ", b"world"), "text/x-mine")
    assert size == 11
    path, size, ctype = store.open("photos", "a/b.txt") or (None, 0, "")
    assert path is not None and path.read_bytes() == b"hello world"
    assert (size, ctype) == (11, "text/x-mine")
    assert store.open("photos", "a/b.tx") is None
    assert store.open("other", "a/b.txt") is None


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("x.png", "image/png"),
        ("dir/page.html", "text/html"),
        ("backup.tar.gz", "application/gzip"),
        ("no-extension", "application/octet-stream"),
    ],
)
async def test_content_type_guessed_from_the_name(store: DriveStore, name: str, ctype: str) -> None:
    await store.put("d", name, chunks(b"x"))
    assert (store.open("d", name) or (None, 0, ""))[2] == ctype


async def test_overwrite_replaces_the_body_and_removes_the_old_one(store: DriveStore) -> None:
    await store.put("d", "f", chunks(b"first version"))
    await store.put("d", "f", chunks(b"second"))
    assert body(store, "d", "f") == b"second"
    # Only the index and one body remain: the first body is gone from disk.
    bodies = [p for p in all_files(store.root / "d")]
    assert len(bodies) == 1 and bodies[0].read_bytes() == b"second"


async def test_an_empty_file(store: DriveStore) -> None:
    assert await store.put("d", "empty", chunks()) == 0
    assert body(store, "d", "empty") == b""
    assert store.list("d") == (["empty"], None)


NAMES = ["b", "a", "a/x", "a/y/z", "a-b", "B", "é", "z", "a/y/w", "ab"]


async def put_all(store: DriveStore, names: list[str], drive: str = "d") -> None:
    for name in names:
        await store.put(drive, name, chunks(name.encode()))


async def test_list_is_in_byte_order(store: DriveStore) -> None:
    await put_all(store, NAMES)
    names, last = store.list("d")
    assert names == sorted(NAMES, key=lambda n: n.encode())
    assert names[0] == "B" and names[-1] == "é"  # bytes, not case-folded or by locale
    assert last is None


async def test_paging_with_limit_visits_every_name_once(store: DriveStore) -> None:
    await put_all(store, NAMES)
    seen: list[str] = []
    last = None
    pages = 0
    while True:
        names, last = store.list("d", limit=3, last=last)
        seen += names
        pages += 1
        if last is None:
            break
        assert last == names[-1] and len(names) == 3
    assert seen == sorted(NAMES, key=lambda n: n.encode())
    assert pages == 4  # 10 names in pages of 3: the 4th page has one and no `last`


async def test_paging_ends_without_last_when_the_page_is_exactly_full(store: DriveStore) -> None:
    await put_all(store, ["a", "b", "c", "d"])
    assert store.list("d", limit=2) == (["a", "b"], "b")
    assert store.list("d", limit=2, last="b") == (["c", "d"], None)


async def test_prefix_with_last_and_limit(store: DriveStore) -> None:
    await put_all(store, NAMES)
    assert store.list("d", prefix="a/") == (["a/x", "a/y/w", "a/y/z"], None)
    assert store.list("d", prefix="a/", limit=1) == (["a/x"], "a/x")
    assert store.list("d", prefix="a/", limit=1, last="a/x") == (["a/y/w"], "a/y/w")
    assert store.list("d", prefix="a/", limit=5, last="a/y/w") == (["a/y/z"], None)
    # `last` before the prefix starts at the prefix; after it, nothing is left.
    assert store.list("d", prefix="a/", last="B")[0] == ["a/x", "a/y/w", "a/y/z"]
    assert store.list("d", prefix="a/", last="zzz") == ([], None)
    assert store.list("d", prefix="nothing") == ([], None)
    assert store.list("d", prefix="a")[0] == ["a", "a-b", "a/x", "a/y/w", "a/y/z", "ab"]


async def test_non_recursive_listing_collapses_sub_folders(store: DriveStore) -> None:
    # The cases Deta's own SDK tests checked against the real service.
    names = ["list-a", "list-b", "list-c", "list/a", "list/b", "list/child/a", "list/child/b"]
    await put_all(store, names)
    flat = {"recursive": False}
    assert store.list("d", prefix="list/", **flat) == (["list/a", "list/b", "list/child/"], None)
    assert store.list("d", prefix="list/", limit=2, **flat) == (["list/a", "list/b"], "list/b")
    assert store.list("d", prefix="list/", limit=1, last="list/a", **flat) == (
        ["list/b"],
        "list/b",
    )
    assert store.list("d", prefix="list/", limit=2, last="list/a", **flat) == (
        ["list/b", "list/child/"],
        None,
    )
    assert store.list("d", prefix="list", **flat)[0] == ["list-a", "list-b", "list-c", "list/"]
    assert store.list("d", prefix="/list", **flat)[0] == []
    # A folder given as `last` skips everything inside it.
    assert store.list("d", prefix="list", last="list-c", limit=1, **flat) == (["list/"], None)
    assert store.list("d", last="list/", **flat) == ([], None)
    assert store.list("d", prefix="list", limit=2, last="list/child/a") == (["list/child/b"], None)


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_limit_out_of_range_is_refused(store: DriveStore, limit: int) -> None:
    with pytest.raises(BadName):
        store.list("d", limit=limit)


TRICKY = ["..", ".", "../../outside", "a/../../b", "/abs/path", "a//b", "\\..\\x", "~", ".tmp-x"]


async def test_names_that_look_like_paths_stay_inside_the_drive(
    store: DriveStore, tmp_path: Path
) -> None:
    before = set(tmp_path.rglob("*"))
    for name in TRICKY:
        await store.put("d", name, chunks(b"<" + name.encode() + b">"))
    created = set(tmp_path.rglob("*")) - before
    assert created and all(p.is_relative_to(store.root) for p in created)
    for name in TRICKY:
        assert body(store, "d", name) == b"<" + name.encode() + b">"
    assert store.list("d")[0] == sorted(TRICKY, key=lambda n: n.encode())
    # Names never become file names: every body is a random id in the drive's folder.
    for p in all_files(store.root / "d"):
        assert len(p.name) == 32


@pytest.mark.parametrize("drive", ["..", ".", "../x", "a/b", "Photos", "UPLOADS", "", " "])
async def test_drive_names_map_to_one_safe_folder(store: DriveStore, drive: str) -> None:
    if not drive.strip():
        with pytest.raises(BadName):
            await store.put(drive, "f", chunks(b"x"))
        return
    await store.put(drive, "f", chunks(b"x"))
    folder = store.root / drive_folder(drive)
    assert folder.parent == store.root and folder.is_dir()
    assert folder.name not in (".", "..") and "/" not in folder.name
    assert store.names() == [drive]


def test_drive_folders_do_not_collide() -> None:
    # Case differs only: a case-insensitive disk must still keep them apart.
    assert drive_folder("photos") == "photos"
    assert drive_folder("Photos") != drive_folder("photos")
    assert drive_folder("Photos").lower() != "photos"
    assert drive_folder(drive_folder("Photos")) != drive_folder("Photos")


@pytest.mark.parametrize("name", ["", "   ", "dir/", "a\x00b", "x" * 1025])
async def test_invalid_names_are_refused(store: DriveStore, name: str) -> None:
    with pytest.raises(BadName):
        await store.put("d", name, chunks(b"x"))
    with pytest.raises(BadName):
        store.open("d", name)
    with pytest.raises(BadName):
        store.start_upload("d", name)


def test_prefix_end() -> None:
    assert prefix_end(b"a/") == b"a0"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\xff") is None


async def test_chunked_upload_joins_parts_in_number_order(store: DriveStore) -> None:
    upload = store.start_upload("d", "big.bin")
    # Sent out of order, as parallel part uploads arrive.
    await store.put_part("d", upload, "big.bin", 3, chunks(b"C" * 5))
    await store.put_part("d", upload, "big.bin", 1, chunks(b"A" * 7, b"a"))
    await store.put_part("d", upload, "big.bin", 2, chunks(b"B" * 3))
    await store.put_part("d", upload, "big.bin", 10, chunks(b"J"))  # 10 sorts after 3
    assert store.open("d", "big.bin") is None  # nothing visible before completion
    assert store.list("d") == ([], None)
    assert await store.finish_upload("d", upload, "big.bin") == 17
    assert body(store, "d", "big.bin") == b"AAAAAAAa" + b"BBB" + b"CCCCC" + b"J"
    # The parts are gone, and the upload with them.
    assert not (store.root / "d" / ".uploads" / upload).exists()
    with pytest.raises(NoSuchUpload):
        await store.finish_upload("d", upload, "big.bin")


async def test_a_part_sent_again_replaces_the_first_one(store: DriveStore) -> None:
    upload = store.start_upload("d", "f")
    await store.put_part("d", upload, "f", 1, chunks(b"broken"))
    await store.put_part("d", upload, "f", 1, chunks(b"good"))
    await store.finish_upload("d", upload, "f")
    assert body(store, "d", "f") == b"good"


async def test_chunked_upload_with_zero_parts_makes_an_empty_file(store: DriveStore) -> None:
    upload = store.start_upload("d", "empty.txt")
    assert await store.finish_upload("d", upload, "empty.txt") == 0
    assert store.open("d", "empty.txt") == (
        (store.open("d", "empty.txt") or (Path(), 0, ""))[0],
        0,
        "text/plain",
    )
    assert body(store, "d", "empty.txt") == b""


async def test_upload_content_type_comes_from_the_parts_else_the_start(store: DriveStore) -> None:
    upload = store.start_upload("d", "a.bin", "application/x-start")
    await store.finish_upload("d", upload, "a.bin")
    assert (store.open("d", "a.bin") or (None, 0, ""))[2] == "application/x-start"
    upload = store.start_upload("d", "b.bin")
    await store.put_part("d", upload, "b.bin", 1, chunks(b"x"), "image/webp")
    await store.finish_upload("d", upload, "b.bin")
    assert (store.open("d", "b.bin") or (None, 0, ""))[2] == "image/webp"


async def test_an_upload_belongs_to_its_drive_and_name(store: DriveStore) -> None:
    upload = store.start_upload("d", "f")
    with pytest.raises(NoSuchUpload):
        await store.put_part("d", upload, "g", 1, chunks(b"x"))
    with pytest.raises(NoSuchUpload):
        await store.put_part("e", upload, "f", 1, chunks(b"x"))
    with pytest.raises(NoSuchUpload):
        await store.put_part("d", "0" * 32, "f", 1, chunks(b"x"))
    for part in (0, 10_001):
        with pytest.raises(BadName):
            await store.put_part("d", upload, "f", part, chunks(b"x"))


async def test_abort_drops_the_parts_and_makes_no_file(store: DriveStore) -> None:
    await store.put("d", "f", chunks(b"kept"))
    upload = store.start_upload("d", "f")
    await store.put_part("d", upload, "f", 1, chunks(b"new"))
    store.abort_upload("d", upload, "f")
    assert body(store, "d", "f") == b"kept"
    assert not (store.root / "d" / ".uploads" / upload).exists()
    with pytest.raises(NoSuchUpload):
        await store.finish_upload("d", upload, "f")
    with pytest.raises(NoSuchUpload):
        await store.put_part("d", upload, "f", 2, chunks(b"late"))
    with pytest.raises(NoSuchUpload):
        store.abort_upload("d", upload, "f")


async def test_delete_many_counts_missing_names_as_deleted(store: DriveStore) -> None:
    await put_all(store, ["a", "b/c", "d"])
    deleted, failed = store.delete_many("d", ["a", "missing", "b/c", "a", "", "  ", "x/"])
    assert deleted == ["a", "missing", "b/c"]
    assert set(failed) == {"", "  ", "x/"}
    assert failed[""] == "invalid name"
    assert store.list("d") == (["d"], None)
    assert len(all_files(store.root / "d")) == 1  # the bodies went with the names


async def test_drives_are_separate_and_can_be_dropped(store: DriveStore) -> None:
    await store.put("one", "f", chunks(b"1"))
    await store.put("two", "f", chunks(b"2"))
    store.start_upload("three", "pending")  # an upload alone does not make a drive
    assert store.names() == ["one", "two"]
    assert body(store, "one", "f") == b"1" and body(store, "two", "f") == b"2"
    store.drop("one")
    assert store.names() == ["two"] and store.open("one", "f") is None
    assert not (store.root / "one").exists()
    store.drop_all()
    assert store.names() == []
    # The folders were only moved aside (a rename, quick on the event loop); removing them is
    # the slow part, done apart.
    assert all(p.name.startswith(".dropped-") for p in store.root.iterdir() if p.is_dir())
    store.remove_dropped()
    assert [p.name for p in store.root.iterdir() if p.is_dir()] == []


async def test_files_survive_a_new_store_on_the_same_folder(tmp_path: Path) -> None:
    first = DriveStore(tmp_path)
    await first.put("d", "f", chunks(b"persisted"))
    upload = first.start_upload("d", "g")
    await first.put_part("d", upload, "g", 1, chunks(b"part"))
    first.close()
    second = DriveStore(tmp_path)
    assert body(second, "d", "f") == b"persisted"
    await second.finish_upload("d", upload, "g")
    assert body(second, "d", "g") == b"part"
    second.close()


class Boom(Exception):
    pass


async def failing(after: bytes) -> AsyncIterator[bytes]:
    yield after
    raise Boom  # the client went away mid-body


async def test_a_failed_put_leaves_the_old_file_and_no_temp(store: DriveStore) -> None:
    await store.put("d", "f", chunks(b"old"))
    with pytest.raises(Boom):
        await store.put("d", "f", failing(b"new half"))
    with pytest.raises(Boom):
        await store.put("d", "g", failing(b"new half"))
    assert body(store, "d", "f") == b"old"
    assert store.list("d") == (["f"], None)
    assert [p.name for p in all_files(store.root / "d")] == [
        (store.open("d", "f") or (Path(), 0, ""))[0].name
    ]


async def test_too_large_body_is_refused_and_cleaned(store: DriveStore) -> None:
    with pytest.raises(TooLarge):
        await store.put("d", "f", chunks(b"x" * 6, b"y" * 6), max_bytes=10)
    assert store.list("d") == ([], None) and all_files(store.root / "d") == []
    assert await store.put("d", "f", chunks(b"x" * 10), max_bytes=10) == 10


async def test_crash_leftovers_are_never_listed_and_swept_when_stale(tmp_path: Path) -> None:
    s = DriveStore(tmp_path)
    await s.put("d", "kept", chunks(b"kept"))
    folder = tmp_path / "d"
    # What a crash mid-put leaves: a temp file, and a renamed body the index never named.
    temp = folder / ".tmp-0123456789abcdef0123456789abcdef-aa"
    orphan = folder / ("f" * 32)
    fresh = folder / ".tmp-fresh"
    for p in (temp, orphan, fresh):
        p.write_bytes(b"half a file")
    assert s.list("d") == (["kept"], None)
    old = time.time() - store_module.STALE_SECONDS - 10
    for p in (temp, orphan):
        os.utime(p, (old, old))
    upload = s.start_upload("d", "abandoned")
    s.close()

    s = DriveStore(tmp_path)  # starting again sweeps
    assert not temp.exists() and not orphan.exists()
    assert fresh.exists()  # might belong to a write under way elsewhere: left alone
    assert body(s, "d", "kept") == b"kept"
    assert (folder / ".uploads" / upload).is_dir()  # younger than a day: kept
    s._db.execute("UPDATE uploads SET created = 0")
    s.close()
    s = DriveStore(tmp_path)
    assert not (folder / ".uploads" / upload).exists()
    with pytest.raises(NoSuchUpload):
        await s.finish_upload("d", upload, "abandoned")
    s.close()


async def test_concurrent_puts_of_one_name_leave_one_whole_body(store: DriveStore) -> None:
    async def slow(tag: bytes) -> AsyncIterator[bytes]:
        for _ in range(20):
            await asyncio.sleep(0)
            yield tag * 1000

    await asyncio.gather(*(store.put("d", "f", slow(bytes([65 + i]))) for i in range(5)))
    data = body(store, "d", "f")
    assert len(data) == 20_000 and len(set(data)) == 1
    assert len(all_files(store.root / "d")) == 1
