"""Export and import against hostile zips, and names that must come back exactly.

Each attack here sits beside its positive control: the legitimate case still works. The zips are
real files, written with `zipfile` and, for the lies a writer would never tell, patched by hand.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.cloud.data import AppData, DataServices
from runtime.cloud.drive.names import drive_problem, name_problem
from runtime.cloud.export_zip import export_zip
from runtime.cloud.transfer import ImportLimits, import_zip
from runtime.errors import SpaceDevError

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
def services(tmp_path: Path):
    data = DataServices(tmp_path / "data")
    yield data
    data.close()


def _files(data: AppData, drive: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    last = None
    while True:
        names, last = data.drive.list(drive, last=last)
        for name in names:
            found = data.drive.open(drive, name)
            assert found is not None
            out[name] = found[0].read_bytes()
        if last is None:
            return out


def _bodies_on_disk(data: AppData) -> list[Path]:
    root = data.root / "drive"
    if not root.exists():
        return []
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and p.name != "index.sqlite3" and not p.name.startswith("index.sqlite3")
    ]


def _assert_untouched(data: AppData) -> None:
    """The app still holds only what `_seed` put there, and no stray body is on disk."""
    assert data.base.names() == ["kept"]
    assert data.base.get("kept", "k") == {"key": "k", "v": 1}
    assert data.drive.names() == ["kept"]
    assert _files(data, "kept") == {"a.txt": b"before"}
    assert len(_bodies_on_disk(data)) == 1


async def _seed(data: AppData) -> None:
    data.base.put_many("kept", [{"key": "k", "v": 1}])
    await data.drive.put("kept", "a.txt", _body(b"before"))


def _good_entries(zf: zipfile.ZipFile) -> None:
    """Entries that would import on their own: a refused zip must not leave them behind."""
    zf.writestr("bases/notes.json", json.dumps([{"key": "1", "text": "one"}]))
    zf.writestr("drives/photos/cat.jpg", b"meow")


def _zeros(zf: zipfile.ZipFile, name: str, size: int) -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w") as out:
        block = bytes(MiB)
        for _ in range(size // MiB):
            out.write(block)


def _patch_declared_size(path: Path, entry: str, declared: int) -> None:
    """Make the zip claim `declared` bytes for `entry`, in its local header and in the central
    directory, as a hostile writer would; the compressed bytes stay what they are."""
    raw = bytearray(path.read_bytes())
    name = entry.encode()
    local = raw.find(b"PK\x03\x04")
    while local != -1:
        n = struct.unpack_from("<H", raw, local + 26)[0]
        if raw[local + 30 : local + 30 + n] == name:
            struct.pack_into("<I", raw, local + 22, declared)
        local = raw.find(b"PK\x03\x04", local + 4)
    central = raw.find(b"PK\x01\x02")
    while central != -1:
        n = struct.unpack_from("<H", raw, central + 28)[0]
        if raw[central + 46 : central + 46 + n] == name:
            struct.pack_into("<I", raw, central + 24, declared)
        central = raw.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(raw))


# --- zip bombs --------------------------------------------------------------------------------


async def test_a_drive_file_bomb_is_refused_and_nothing_is_written(
    services: DataServices, tmp_path: Path
) -> None:
    data = services.app("notes")
    await _seed(data)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        _good_entries(zf)
        _zeros(zf, "drives/photos/bomb.bin", 64 * MiB)
    assert bomb.stat().st_size < MiB
    with pytest.raises(SpaceDevError) as caught:
        await import_zip(data, bomb)
    said = f"{caught.value.message} {caught.value.hint}"
    assert "drives/photos/bomb.bin" in said and "100 times" in said
    assert "Nothing was imported" in said
    _assert_untouched(data)


async def test_a_base_file_bomb_is_refused(services: DataServices, tmp_path: Path) -> None:
    data = services.app("notes")
    await _seed(data)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        _good_entries(zf)
        zf.writestr("bases/big.json", "[" + " " * (48 * MiB) + "]")
    with pytest.raises(SpaceDevError, match=r"bases/big\.json.*100 times"):
        await import_zip(data, bomb)
    _assert_untouched(data)


async def test_an_entry_that_inflates_past_its_declared_size_is_refused(
    services: DataServices, tmp_path: Path
) -> None:
    data = services.app("notes")
    await _seed(data)
    liar = tmp_path / "liar.zip"
    with zipfile.ZipFile(liar, "w", zipfile.ZIP_DEFLATED) as zf:
        _good_entries(zf)
        _zeros(zf, "drives/photos/small.bin", 64 * MiB)
    _patch_declared_size(liar, "drives/photos/small.bin", 60_000)  # the ratio check passes
    with pytest.raises(SpaceDevError) as caught:
        await import_zip(data, liar)
    said = caught.value.message
    assert "drives/photos/small.bin" in said and "60000" in said.replace(",", "")
    _assert_untouched(data)


async def test_entries_sharing_one_body_are_refused_by_the_total(
    services: DataServices, tmp_path: Path
) -> None:
    """Many directory records pointing at one stored body: each looks honest, the sum does
    not."""
    data = services.app("notes")
    await _seed(data)
    body = os.urandom(2 * MiB)
    path = tmp_path / "overlap.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("drives/photos/shared.bin", body)
    raw = path.read_bytes()
    central = raw.index(b"PK\x01\x02")
    end = raw.index(b"PK\x05\x06")
    record = raw[central:end]
    copies = 200
    eocd = bytearray(raw[end:])
    struct.pack_into("<HHI", eocd, 8, copies, copies, len(record) * copies)
    path.write_bytes(raw[:central] + record * copies + bytes(eocd))
    with pytest.raises(SpaceDevError, match=r"100 times"):
        await import_zip(data, path)
    _assert_untouched(data)


async def test_a_damaged_entry_is_refused_with_its_name(
    services: DataServices, tmp_path: Path
) -> None:
    data = services.app("notes")
    await _seed(data)
    path = tmp_path / "damaged.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        _good_entries(zf)
        zf.writestr("drives/photos/dog.txt", b"woof " * 1000)
    raw = bytearray(path.read_bytes())
    last = raw.rindex(b"PK\x01\x02")  # the directory record of the last entry
    struct.pack_into("<I", raw, last + 16, 0xDEADBEEF)  # its CRC-32
    path.write_bytes(bytes(raw))
    with pytest.raises(SpaceDevError, match=r"drives/photos/dog\.txt"):
        await import_zip(data, path)
    _assert_untouched(data)


def _declare_zip64_size(path: Path, declared: int) -> None:
    """Rewrite the zip's one directory record to declare `declared` bytes through a zip64
    extra field, as a writer of a file past 4 GiB does."""
    raw = path.read_bytes()
    at, end = raw.index(b"PK\x01\x02"), raw.index(b"PK\x05\x06")
    head = bytearray(raw[at : at + 46])
    name_size, extra_size, comment_size = struct.unpack_from("<3H", head, 28)
    rest = raw[at + 46 : at + 46 + name_size + extra_size + comment_size]
    extra = struct.pack("<HHQ", 1, 8, declared)
    struct.pack_into("<I", head, 24, 0xFFFFFFFF)
    struct.pack_into("<H", head, 30, len(extra))
    record = bytes(head) + rest[:name_size] + extra
    eocd = bytearray(raw[end:])
    struct.pack_into("<I", eocd, 12, len(record))
    path.write_bytes(raw[:at] + record + bytes(eocd))


async def test_a_huge_declared_size_is_refused_before_any_read(
    services: DataServices, tmp_path: Path
) -> None:
    data = services.app("notes")
    await _seed(data)
    path = tmp_path / "huge.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("drives/photos/huge.bin", b"tiny")
    _declare_zip64_size(path, 16 << 30)
    with pytest.raises(
        SpaceDevError,
        match=r"drives/photos/huge\.bin in huge\.zip would "
        r"unpack to 16\.0 GiB",
    ):
        await import_zip(data, path)
    _assert_untouched(data)


async def test_the_entry_and_total_limits_name_the_entry(
    services: DataServices, tmp_path: Path
) -> None:
    data = services.app("notes")
    await _seed(data)
    path = tmp_path / "sizes.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for number in range(3):
            zf.writestr(f"drives/photos/{number}.bin", os.urandom(1500))
    with pytest.raises(
        SpaceDevError,
        match=r"drives/photos/0\.bin .* the 1000 bytes one "
        "entry may",
    ):
        await import_zip(data, path, ImportLimits(entry_bytes=1000))
    with pytest.raises(SpaceDevError, match=r"drives/photos/2\.bin .* past 2\.9 KiB"):
        await import_zip(data, path, ImportLimits(total_bytes=3000))
    _assert_untouched(data)
    report = await import_zip(data, path, ImportLimits(entry_bytes=1500, total_bytes=4500))
    assert report.files == {"photos": 3}


async def test_a_report_keeps_a_bounded_list(services: DataServices, tmp_path: Path) -> None:
    path = tmp_path / "wide.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for number in range(1003):
            zf.writestr(f"bases/b{number:04d}.json", '[{"key": "k"}]')
        for number in range(150):
            zf.writestr(f"junk/{number}", b"")
    report = await import_zip(services.app("notes"), path)
    assert len(report.items) == 1000 and report.other_items == 3
    assert len(report.skipped) == 101 and report.skipped[-1] == "and 50 more entries or items"
    assert "more Bases: 3 items" in report.lines()


async def test_a_compressible_file_below_the_limits_imports(
    services: DataServices, tmp_path: Path
) -> None:
    """The positive control: text compresses well, and a real export holds plenty of it."""
    data = services.app("notes")
    text = b"".join(b"line %d of a log that repeats itself a lot\n" % i for i in range(100_000))
    path = tmp_path / "ok.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("drives/logs/app.log", text)
        zf.writestr("bases/notes.json", json.dumps([{"key": str(i)} for i in range(5000)]))
    report = await import_zip(data, path)
    assert report.files == {"logs": 1} and report.items == {"notes": 5000}
    assert _files(data, "logs") == {"app.log": text}


# --- names that must come back exactly ---------------------------------------------------------


async def _round_trip(data: AppData, tmp_path: Path) -> Path:
    """Export, reset everything, import: the backup and restore a person does."""
    target = tmp_path / "backup.zip"
    export_zip(data, target)
    data.base.drop_all()
    data.drive.drop_all()
    assert data.base.names() == [] and data.drive.names() == []
    await import_zip(data, target)
    return target


async def test_a_visitors_dotted_name_does_not_replace_the_owners_file(
    services: DataServices, tmp_path: Path
) -> None:
    data = services.app("notes")
    await data.drive.put("site", "private/config.js", _body(b"owner's config"))
    await data.drive.put("site", "visitor/../private/config.js", _body(b"visitor's upload"))
    await _round_trip(data, tmp_path)
    assert _files(data, "site") == {
        "private/config.js": b"owner's config",
        "visitor/../private/config.js": b"visitor's upload",
    }


DOTTED = [
    "../escape.txt",
    "../../../../etc/passwd",
    "./here",
    "a/./b",
    "/absolute",
    "a//b",
    "..",
    ".",
    "...",
    "a/..",
    "..\\windows",
    "%2e%2e%2fx",
    "x%",
    "C:\\boot.ini",
]


async def test_dotted_names_round_trip_and_no_entry_climbs(
    services: DataServices, tmp_path: Path
) -> None:
    data = services.app("notes")
    for number, name in enumerate(DOTTED):
        await data.drive.put("files", name, _body(f"body {number}".encode()))
        data.base.put_many(name, [{"key": name, "n": number}])
    await data.drive.put("..", "x", _body(b"in the drive named .."))
    target = await _round_trip(data, tmp_path)
    assert _files(data, "files") == {name: f"body {n}".encode() for n, name in enumerate(DOTTED)}
    assert _files(data, "..") == {"x": b"in the drive named .."}
    assert data.base.names() == sorted(DOTTED)
    for number, name in enumerate(DOTTED):
        assert data.base.get(name, name) == {"key": name, "n": number}
    with zipfile.ZipFile(target) as zf:
        for entry in zf.namelist():
            parts = entry.split("/")
            assert "\\" not in entry and "" not in parts and "." not in parts, entry
            assert ".." not in parts and not entry.startswith("/"), entry


async def test_base_names_with_slashes_round_trip(services: DataServices, tmp_path: Path) -> None:
    data = services.app("notes")
    names = ["a/b", "users/42/notes", "/", "trailing/", "", "x.json", "y.jsonl", "plain"]
    for name in names:
        data.base.put_many(name, [{"key": "k", "base": name}])
    await _round_trip(data, tmp_path)
    assert data.base.names() == sorted(names)
    for name in names:
        assert data.base.get(name, "k") == {"key": "k", "base": name}


ODD_NAME = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    files=st.lists(
        ODD_NAME.filter(lambda n: name_problem(n) is None), min_size=1, max_size=8, unique=True
    ),
    drive=ODD_NAME.filter(lambda n: drive_problem(n) is None),
    bases=st.lists(ODD_NAME, min_size=1, max_size=5, unique=True),
)
async def test_any_accepted_name_round_trips_byte_for_byte(
    tmp_path_factory: pytest.TempPathFactory, files: list[str], drive: str, bases: list[str]
) -> None:
    tmp = tmp_path_factory.mktemp("names")
    services = DataServices(tmp / "data")
    try:
        data = services.app("notes")
        for number, name in enumerate(files):
            await data.drive.put(drive, name, _body(name.encode() + bytes([number])))
        for name in bases:
            data.base.put_many(name, [{"key": name, "name": name}])
        await _round_trip(data, tmp)
        assert _files(data, drive) == {n: n.encode() + bytes([i]) for i, n in enumerate(files)}
        assert data.base.names() == sorted(bases, key=lambda n: n.encode())
        for name in bases:
            assert data.base.get(name, name) == {"key": name, "name": name}
    finally:
        services.close()


async def test_the_longest_drive_name_round_trips(services: DataServices, tmp_path: Path) -> None:
    data = services.app("notes")
    longest = "é/" * 339 + "abc.txt"  # 1024 bytes of UTF-8, percent-encoded to three times that
    assert len(longest.encode()) == 1024 and name_problem(longest) is None
    await data.drive.put("files", longest, _body(b"long"))
    await _round_trip(data, tmp_path)
    assert _files(data, "files") == {longest: b"long"}


# --- many items, flat memory ------------------------------------------------------------------

# Enough that reading the whole document at once shows (bench/data_import.py measures 200,000).
ITEMS = 100_000


def _item(i: int) -> str:
    return json.dumps(
        {
            "key": f"k{i:07d}",
            "title": f"item number {i}",
            "n": i,
            "tags": ["a", "b", str(i % 97)],
            "done": i % 2 == 0,
        }
    )


def _write_items_zip(path: Path) -> None:
    """ITEMS items in one Base as one JSON document: the older layout, and Space's."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("bases/many.json", "w") as out:
            out.write(b"[")
            for i in range(ITEMS):
                out.write(((", " if i else "") + _item(i)).encode())
            out.write(b"]")


MEASURE = """
import asyncio, resource, sys
from pathlib import Path
from runtime.cloud.data import DataServices
from runtime.cloud.transfer import import_zip

services = DataServices(Path(sys.argv[2]))
data = services.app("notes")
data.base.names(); data.drive.names()  # both stores open before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = asyncio.run(import_zip(data, Path(sys.argv[1])))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(report.items.get("many", 0), data.base.count("many"), before, after)
"""


def _peak_rss_import(zip_path: Path, data_dir: Path) -> tuple[int, int, int]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(zip_path), str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    reported, counted, before, after = map(int, done.stdout.split())
    assert reported == counted == ITEMS
    return before, after, after - before


@pytest.mark.parametrize("layout", ["document", "lines"])
def test_many_items_import_in_flat_memory(tmp_path: Path, layout: str) -> None:
    source = tmp_path / "many.zip"
    if layout == "document":
        _write_items_zip(source)
    else:
        services = DataServices(tmp_path / "first")
        try:
            data = services.app("notes")
            for start in range(0, ITEMS, 1000):
                data.base.put_many(
                    "many", [json.loads(_item(i)) for i in range(start, start + 1000)]
                )
            export_zip(data, source)
        finally:
            services.close()
    before, after, grown = _peak_rss_import(source, tmp_path / "data")
    # ru_maxrss is in KiB on Linux. The whole document read at once grew it by far more.
    assert grown < 32 * 1024, f"peak RSS grew by {grown // 1024} MiB ({before} -> {after} KiB)"
