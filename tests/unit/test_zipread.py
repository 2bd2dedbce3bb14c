"""The flat-memory zip reader against zips `zipfile` writes, and against damaged ones."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from runtime.cloud.zipread import CHUNK, ZipProblem, ZipReader


def _contents(path: Path) -> dict[str, bytes]:
    with ZipReader(path) as reader:
        return {e.name: b"".join(reader.chunks(e)) for e in reader.entries() if not e.is_dir}


def test_reads_what_zipfile_writes(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    big = bytes(range(256)) * (3 * CHUNK // 256 + 7)  # several chunks, not a whole number
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("stored.txt", b"plain", compress_type=zipfile.ZIP_STORED)
        zf.writestr("deflated.bin", big, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("empty", b"", compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("folder/", b"")
        zf.writestr("ünïcode name.txt", b"u", compress_type=zipfile.ZIP_DEFLATED)
        with zf.open("forced64.txt", "w", force_zip64=True) as out:
            out.write(b"zip64 local header")
    assert _contents(path) == {
        "stored.txt": b"plain",
        "deflated.bin": big,
        "empty": b"",
        "ünïcode name.txt": b"u",
        "forced64.txt": b"zip64 local header",
    }
    with ZipReader(path) as reader:
        assert [e.name for e in reader.entries() if e.is_dir] == ["folder/"]


def test_reads_a_zip_with_bytes_before_it(tmp_path: Path) -> None:
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", b"after a stub")
    stubbed = tmp_path / "stubbed.zip"
    stubbed.write_bytes(b"#!/bin/sh\nexit 0\n" + inner.read_bytes())
    assert _contents(stubbed) == {"a.txt": b"after a stub"}


def test_reads_a_zip64_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past 65,535 entries the zip64 end record holds the count: zipfile writes one here for
    three entries, as it would for 70,000 (which take it a while)."""
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for number in range(3):
            zf.writestr(f"e{number}", b"entry %d" % number)
    raw = path.read_bytes()
    assert b"PK\x06\x06" in raw and b"PK\x06\x07" in raw
    assert _contents(path) == {f"e{n}": b"entry %d" % n for n in range(3)}


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x05\x06"])
def test_what_is_no_zip_is_said(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(content)
    with pytest.raises(ZipProblem):
        ZipReader(path)


def test_a_cut_zip_is_said(tmp_path: Path) -> None:
    path = tmp_path / "cut.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", b"x" * 10_000)
    raw = path.read_bytes()
    path.write_bytes(raw[:40] + raw[raw.index(b"PK\x01\x02") :])  # the data cut out
    with pytest.raises(ZipProblem, match="cut.zip is damaged"):
        _contents(path)
    path.write_bytes(raw[:-30])  # a download that stopped early
    with pytest.raises(ZipProblem, match="cut.zip is not a zip file"):
        _contents(path)


def _patch_first_record(path: Path, offset: int, fmt: str, value: int) -> None:
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, raw.index(b"PK\x01\x02") + offset, value)
    path.write_bytes(bytes(raw))


STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED


@pytest.mark.parametrize(
    "method,offset,fmt,value,said",
    [
        (STORED, 10, "<H", 12, "method 12"),  # bzip2
        (STORED, 8, "<H", 1, "encrypted"),
        (DEFLATED, 24, "<I", 3, "unpacks to more"),  # its declared size, smaller than it is
        (DEFLATED, 24, "<I", 30, "unpacks to 10 bytes, not the 30"),
        (DEFLATED, 16, "<I", 1, "CRC-32"),
        (STORED, 20, "<I", 5, "two sizes differ"),
        (STORED, 42, "<I", 7, "no file header"),
    ],
)
def test_entries_that_cannot_be_read_name_themselves(
    tmp_path: Path, method: int, offset: int, fmt: str, value: int, said: str
) -> None:
    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w", method) as zf:
        zf.writestr("odd.bin", b"0123456789")
    _patch_first_record(path, offset, fmt, value)
    with pytest.raises(ZipProblem, match=f"odd.bin.*{said}"):
        _contents(path)
