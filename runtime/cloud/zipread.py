"""A zip file read one entry at a time in flat memory, for an import that trusts nothing in it.

`zipfile` holds the whole central directory as objects (a zip of a million entries costs
hundreds of MB before a byte is read) and believes each entry's declared size. Here the
directory is walked record by record, and an entry is inflated in bounded chunks, refused the
moment it unpacks past the size its directory record declares, and checked against its size
and CRC-32 at its end. Reads are positional (`os.pread`), so walking the directory and reading
an entry never move each other's place. Stored and deflated entries are read, as every zip
writer of exports makes them; anything else is refused by name.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import SpaceDevError

CHUNK = 256 * 1024  # bytes read, and at most produced, per step

_END = struct.Struct("<4s4H2LH")  # end of central directory
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # one central directory record
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # one local file header
_MAX_COMMENT = 0xFFFF
_SATURATED = 0xFFFFFFFF  # a 32-bit field whose value lives in the zip64 extra field
_ZIP64_EXTRA = 0x0001
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_STORED, _DEFLATED = 0, 8


class ZipProblem(SpaceDevError):
    """The file is no zip, or a damaged or unreadable one; the message names the entry."""


@dataclass(frozen=True)
class Entry:
    """One central directory record: what the zip declares about an entry."""

    name: str
    raw_name: bytes
    flags: int
    method: int
    crc: int
    packed: int  # compressed size
    size: int  # declared uncompressed size
    offset: int  # of its local header, from the start of the file

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


class ZipReader:
    """An open zip file: `entries()` walks its directory, `chunks(entry)` reads one entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY)
        try:
            self.file_size = os.fstat(self._fd).st_size
            self._locate_directory()
        except BaseException:
            os.close(self._fd)
            raise

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> ZipReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, size: int, at: int) -> bytes:
        data = os.pread(self._fd, size, at)
        if len(data) != size:
            raise ZipProblem(f"{self.path.name} ends early: it is cut short or damaged")
        return data

    def _locate_directory(self) -> None:
        tail_size = min(self.file_size, _END.size + _MAX_COMMENT)
        tail_at = self.file_size - tail_size
        tail = self._read(tail_size, tail_at)
        found = tail.rfind(b"PK\x05\x06")
        if found < 0 or found + _END.size > len(tail):
            raise ZipProblem(f"{self.path.name} is not a zip file (it has no zip directory)")
        end_at = tail_at + found
        _, disk, directory_disk, on_disk, count, size, offset, _ = _END.unpack_from(tail, found)
        directory_end = end_at
        if end_at >= _END64_LOCATOR.size:
            locator_at = end_at - _END64_LOCATOR.size
            locator = self._read(_END64_LOCATOR.size, locator_at)
            if locator[:4] == b"PK\x06\x07" and locator_at >= _END64.size:
                # Like zipfile, expect the zip64 record right before its locator: that also
                # reads a zip with bytes before it (a self-extractor's stub).
                record = self._read(_END64.size, locator_at - _END64.size)
                if record[:4] != b"PK\x06\x06":
                    raise ZipProblem(f"{self.path.name} has a damaged zip64 directory record")
                (_, _, _, _, disk, directory_disk, on_disk, count, size, offset) = _END64.unpack(
                    record
                )
                directory_end = locator_at - _END64.size
        if disk != 0 or directory_disk != 0 or on_disk != count:
            raise ZipProblem(
                f"{self.path.name} is one part of a split zip",
                "Join the parts into one zip file first.",
            )
        prefix = directory_end - size - offset  # bytes before the zip proper
        if prefix < 0:
            raise ZipProblem(f"{self.path.name} is damaged: its directory lies outside the file")
        self.count = count
        self._prefix = prefix
        self._directory_at = offset + prefix
        self._directory_end = directory_end

    def entries(self) -> Iterator[Entry]:
        """Every directory record, in the zip's order, one at a time."""
        at = self._directory_at
        for number in range(self.count):
            if at + _CENTRAL.size > self._directory_end:
                raise ZipProblem(
                    f"{self.path.name} is damaged: its directory ends after "
                    f"{number} of the {self.count} entries it declares"
                )
            fields = _CENTRAL.unpack(self._read(_CENTRAL.size, at))
            if fields[0] != b"PK\x01\x02":
                raise ZipProblem(
                    f"{self.path.name} is damaged: directory record {number + 1} is not one"
                )
            flags, method = fields[5], fields[6]
            crc, packed, size = fields[9:12]
            name_size, extra_size, comment_size = fields[12:15]
            offset = fields[18]
            rest = self._read(name_size + extra_size, at + _CENTRAL.size)
            at += _CENTRAL.size + name_size + extra_size + comment_size
            if at > self._directory_end:
                raise ZipProblem(
                    f"{self.path.name} is damaged: directory record {number + 1} "
                    "runs past the directory"
                )
            raw_name = rest[:name_size]
            if _SATURATED in (packed, size, offset):
                size, packed, offset = _zip64_sizes(rest[name_size:], size, packed, offset)
            try:
                name = raw_name.decode("utf-8" if flags & _UTF8_FLAG else "cp437")
            except UnicodeDecodeError:
                raise ZipProblem(
                    f"{self.path.name}: the name of entry {number + 1} is not the "
                    "UTF-8 its record says it is"
                ) from None
            yield Entry(name, raw_name, flags, method, crc, packed, size, offset + self._prefix)

    def chunks(self, entry: Entry) -> Iterator[bytes]:
        """The entry's bytes, at most CHUNK at a time; ZipProblem as soon as they are more than
        it declares, and at its end when they are fewer or their CRC-32 differs."""
        where = f"{entry.name} in {self.path.name}"
        if entry.flags & _ENCRYPTED_FLAG:
            raise ZipProblem(f"{where} is encrypted", "Make the zip without a password.")
        if entry.method not in (_STORED, _DEFLATED):
            raise ZipProblem(
                f"{where} is compressed with method {entry.method}, which is not read here",
                "Make the zip with deflate (the usual) or none.",
            )
        local = _LOCAL.unpack(self._read(_LOCAL.size, entry.offset))
        if local[0] != b"PK\x03\x04":
            raise ZipProblem(f"{where} is damaged: no file header where the directory says")
        name_size, extra_size = local[10], local[11]
        if self._read(name_size, entry.offset + _LOCAL.size) != entry.raw_name:
            raise ZipProblem(f"{where} is damaged: its file header names another file")
        start = entry.offset + _LOCAL.size + name_size + extra_size
        if start + entry.packed > self._directory_at:
            raise ZipProblem(f"{where} is damaged: its data runs into the zip directory")
        if entry.method == _STORED and entry.packed != entry.size:
            raise ZipProblem(f"{where} is damaged: stored, yet its two sizes differ")
        produced = crc = 0
        for chunk in self._unpacked(entry, start, where):
            produced += len(chunk)
            if produced > entry.size:
                raise ZipProblem(
                    f"{where} unpacks to more than the {entry.size:,} bytes its "
                    "header declares (a zip bomb, or a damaged zip)"
                )
            crc = zlib.crc32(chunk, crc)
            yield chunk
        if produced != entry.size:
            raise ZipProblem(
                f"{where} is damaged: it unpacks to {produced:,} bytes, not the "
                f"{entry.size:,} it declares"
            )
        if crc != entry.crc:
            raise ZipProblem(f"{where} is damaged: its CRC-32 does not match")

    def _unpacked(self, entry: Entry, start: int, where: str) -> Iterator[bytes]:
        at, left = start, entry.packed
        if entry.method == _STORED:
            while left:
                chunk = self._read(min(CHUNK, left), at)
                at += len(chunk)
                left -= len(chunk)
                yield chunk
            return
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            while not inflater.eof:
                data = inflater.unconsumed_tail
                if not data and left:
                    data = self._read(min(CHUNK, left), at)
                    at += len(data)
                    left -= len(data)
                # Bounded output: whatever the input, one step never makes more than CHUNK.
                chunk = inflater.decompress(data, CHUNK)
                if chunk:
                    yield chunk
                elif not data:
                    break
        except zlib.error as err:
            raise ZipProblem(f"{where} is damaged: {err}") from None
        if not inflater.eof:
            raise ZipProblem(f"{where} is damaged: its compressed data ends early")


def _zip64_sizes(extra: bytes, size: int, packed: int, offset: int) -> tuple[int, int, int]:
    """The 64-bit values of the saturated fields, from the zip64 extra field, in its order."""
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        body = extra[at + 4 : at + 4 + length]
        if tag == _ZIP64_EXTRA:
            values = [size, packed, offset]
            read = 0
            for index, value in enumerate(values):
                if value == _SATURATED:
                    if read + 8 > len(body):
                        break
                    values[index] = struct.unpack_from("<Q", body, read)[0]
                    read += 8
            return values[0], values[1], values[2]
        at += 4 + length
    return size, packed, offset
