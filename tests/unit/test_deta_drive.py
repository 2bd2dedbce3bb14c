"""The `deta` module's Drive client against the Drive API over TLS: the real one when present."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cryptography", reason="the tests' CA is made with cryptography")

from tests.unit.deta_servers import (  # noqa: E402
    NO_REAL_DRIVE,
    MiB,
    Servers,
    Service,
    fresh,
    handle_drive,
    point_at,
    running_servers,
)

# The helper put the micro's folder first on sys.path: `deta` is the micro's module.
# isort: split
import deta  # noqa: E402
from deta import drive as deta_drive  # noqa: E402


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with running_servers(tmp_path_factory.mktemp("deta")) as running:
        yield running


@pytest.fixture
def env(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> Servers:
    return point_at(servers, monkeypatch)


@pytest.fixture(
    params=[
        "mini",
        pytest.param("real", marks=pytest.mark.skipif(not handle_drive, reason=NO_REAL_DRIVE)),
    ]
)
def drive_api(
    request: pytest.FixtureRequest, env: Servers, monkeypatch: pytest.MonkeyPatch
) -> Service:
    service = env.services[request.param]
    monkeypatch.setenv("DETA_DRIVE_HOST", service.host)
    return service


@pytest.fixture
def drive(drive_api: Service) -> Any:
    return deta.Deta().Drive(fresh())


def read(drive: Any, name: str) -> bytes:
    body = drive.get(name)
    assert body is not None
    with body:
        return body.read()


def test_drive_put_and_get_each_kind_of_data(drive: Any, tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"\x00from path")
    sources: dict[str, Any] = {
        "str.txt": "héllo ✓",
        "bytes": b"\xff\x00",
        "bytesio": io.BytesIO(b"stream"),
        "stringio": io.StringIO("text ✓"),
        "empty": b"",
    }
    for name, data in sources.items():
        assert drive.put(name, data) == name
    assert drive.put("path", path=tmp_path / "f.bin", content_type="application/x-y") == "path"
    assert read(drive, "str.txt") == "héllo ✓".encode()
    assert read(drive, "bytes") == b"\xff\x00" and read(drive, "bytesio") == b"stream"
    assert read(drive, "stringio") == "text ✓".encode() and read(drive, "empty") == b""
    assert read(drive, "path") == b"\x00from path"
    assert drive.get("missing") is None
    with pytest.raises(AssertionError):
        drive.put("x")
    with pytest.raises(AssertionError):
        drive.put("x", b"1", path=tmp_path / "f.bin")


class Watched(io.BytesIO):
    """A stream that remembers whether it was closed, and how many times."""

    closes = 0

    def close(self) -> None:
        self.closes += 1
        super().close()


@pytest.mark.parametrize("size", [0, 5, 3000])  # one POST, or a chunked upload of 3 parts
def test_drive_put_closes_the_stream_it_was_given_as_deta_python_did(
    drive: Any, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(deta_drive, "UPLOAD_CHUNK_SIZE", 1024)
    given = Watched(b"s" * size)
    assert drive.put("given", given) == "given"
    assert given.closed and given.closes == 1
    assert read(drive, "given") == b"s" * size
    text = io.StringIO("text stream")
    drive.put("text", text)
    assert text.closed and read(drive, "text") == b"text stream"


def test_drive_put_closes_the_stream_when_the_upload_fails_too(
    drive: Any, drive_api: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deta_drive, "UPLOAD_CHUNK_SIZE", 1024)
    drive_api.faults += ["", "500"]  # the upload starts, then its first part is refused
    given = Watched(b"f" * 3000)
    with pytest.raises(deta.DetaError):
        drive.put("refused", given)
    assert given.closed
    failing = Failing(3000)
    with pytest.raises(OSError, match="went away"):
        drive.put("broken", failing)
    assert failing.closed


def test_drive_put_leaves_bytes_and_text_alone(drive: Any) -> None:
    data = bytearray(b"kept")  # the positive control: nothing to close, nothing changed
    drive.put("b", data)
    assert data == bytearray(b"kept") and read(drive, "b") == b"kept"


def test_drive_has_a_client_to_close_as_deta_python_had(drive: Any) -> None:
    drive.put("a", b"1")
    drive.client.close()
    assert read(drive, "a") == b"1"  # the next call opens a connection of its own


def test_drive_download_streams_on_its_own_connection(drive: Any) -> None:
    content = b"".join(b"line %d\n" % i for i in range(100_000))  # about 1.1 MB
    drive.put("big.txt", content)
    body = drive.get("big.txt")
    assert body.read(5) == b"line " and not body.closed
    assert drive.list()["names"] == ["big.txt"]  # other calls go on while it is half read
    lines = list(body.iter_lines())
    assert lines[0] == b"0\n" and lines[1] == b"line 1\n" and len(lines) == 100_000
    assert body.read() == b""
    chunks = list(drive.get("big.txt").iter_chunks(64 * 1024))
    assert b"".join(chunks) == content and max(map(len, chunks)) <= 64 * 1024
    half = drive.get("big.txt")
    half.read(10)
    half.close()
    assert half.closed and read(drive, "big.txt") == content


NAMES = ["dir/sub file+plus&x=1?.txt", "dir/b", "dir2/c", "top%20.txt", "ünï/€.bin"]


def test_drive_list_delete_and_names(drive: Any) -> None:
    for name in NAMES:
        drive.put(name, name)
        assert read(drive, name) == name.encode()
    assert drive.list()["names"] == sorted(NAMES)
    assert drive.list(prefix="dir/")["names"] == ["dir/b", "dir/sub file+plus&x=1?.txt"]
    first = drive.list(limit=2)
    assert first["names"] == sorted(NAMES)[:2] and first["paging"]["last"] == sorted(NAMES)[1]
    after = drive.list(limit=10, last=first["paging"]["last"])
    assert after["names"] == sorted(NAMES)[2:]
    assert drive.delete(NAMES[0]) == NAMES[0] and drive.get(NAMES[0]) is None
    answer = drive.delete_many(NAMES[1:3] + ["never-was"])
    assert sorted(answer["deleted"]) == sorted(NAMES[1:3] + ["never-was"]) and not answer["failed"]
    assert drive.list()["names"] == sorted(NAMES[3:])


@pytest.mark.skipif(not handle_drive, reason=NO_REAL_DRIVE)
def test_drive_delete_many_of_blank_names_only_is_refused(
    env: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DETA_DRIVE_HOST", env.services["real"].host)
    drive = deta.Deta().Drive(fresh())
    drive.put("kept", b"k")
    for names in ([""], ["   "], ["", " "]):
        with pytest.raises(deta.DetaError) as caught:
            drive.delete_many(names)
        assert caught.value.code == 400
    assert drive.delete_many(["", "kept"]) == {"deleted": ["kept"], "failed": {"": "invalid name"}}


def test_drive_chunks_only_what_is_too_big(
    drive: Any, drive_api: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deta_drive, "UPLOAD_CHUNK_SIZE", 1024)
    drive.put("fits", b"x" * 1024)
    assert [(s.method, s.path.split("?")[0].rsplit("/", 1)[-1]) for s in drive_api.seen] == [
        ("POST", "files")
    ]
    drive_api.seen.clear()
    text = "é" * 1500  # 3000 bytes from a text stream: parts cut by bytes, not characters
    drive.put("text", io.StringIO(text), content_type="text/plain")
    steps = [(s.method, s.path.split("?")[0].split("/", 4)[-1], s.size) for s in drive_api.seen]
    upload = steps[0][1]
    assert steps[0][0] == "POST" and upload.startswith("uploads")
    assert [(m, size) for m, _, size in steps[1:]] == [
        ("POST", 1024),
        ("POST", 1024),
        ("POST", 952),
        ("PATCH", 0),
    ]
    assert read(drive, "text") == text.encode()


def test_drive_full_size_parts(drive: Any, drive_api: Service) -> None:
    drive.put("ten", b"t" * (10 * MiB))
    drive.put("more", io.BytesIO(b"m" * (10 * MiB + 1)))
    sizes = [s.size for s in drive_api.seen if "/parts" in s.path]
    assert sizes == [10 * MiB, 1]
    assert len(read(drive, "ten")) == 10 * MiB and read(drive, "more") == b"m" * (10 * MiB + 1)


class Failing(io.RawIOBase):
    """Gives `good` bytes, then fails, as a network stream might."""

    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise OSError("the source went away")
        piece = b"r" * min(self.left, 700)  # short reads, as a raw stream gives
        self.left -= len(piece)
        return piece


def test_drive_aborts_a_failed_upload(
    drive: Any, drive_api: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deta_drive, "UPLOAD_CHUNK_SIZE", 1024)
    with pytest.raises(OSError, match="went away"):
        drive.put("broken", Failing(3000))
    assert drive_api.seen[-1].method == "DELETE" and "/uploads/" in drive_api.seen[-1].path
    drive_api.faults += ["", "", "500"]  # start, part 1, then part 2 fails
    drive_api.seen.clear()
    with pytest.raises(deta.DetaError):
        drive.put("refused", b"z" * 3000)
    assert [s.method for s in drive_api.seen] == ["POST", "POST", "POST", "DELETE"]
    assert drive.list()["names"] == [] and drive.get("broken") is None
    drive.put("after", b"ok")
    assert read(drive, "after") == b"ok"
