"""Drive file and drive names: which are valid, where a drive lives on disk, and list bounds;
a file's content type, as sent or from its name."""

from __future__ import annotations

import hashlib
import mimetypes
import re

from .errors import BadName

# Deta's upload rules (5-10 MB parts) are S3 multipart's, and S3 caps keys at 1024 bytes: a
# longer name most likely never worked on Deta, so it is refused here too.
MAX_NAME_BYTES = 1024
INVALID_NAME = "invalid name"

_PLAIN_DRIVE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# What clients send when they know nothing about the file (the JS SDK's default is the first,
# aiohttp's and curl's the second): read as "not given", so the type comes from the name.
_UNKNOWN_TYPES = frozenset({"", "binary/octet-stream", "application/octet-stream"})
_COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}


def name_problem(name: object) -> str | None:
    """Why `name` cannot be a file name, or None when it can.

    Names are opaque strings where `/` only groups files into folders for listing. Deta
    refused empty and blank names and names ending in `/` (a folder cannot be a file)."""
    if not isinstance(name, str) or not name.strip():
        return INVALID_NAME
    if name.endswith("/"):
        return "invalid name: a file name must not end with '/'"
    if "\x00" in name:
        return "invalid name: a file name must not contain a NUL character"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate from a broken decoder
        return INVALID_NAME
    if size > MAX_NAME_BYTES:
        return f"invalid name: longer than {MAX_NAME_BYTES} bytes"
    return None


def drive_problem(drive: object) -> str | None:
    """Why `drive` cannot be a drive name, or None when it can."""
    if not isinstance(drive, str) or not drive.strip():
        return "invalid drive name"
    if "\x00" in drive or len(drive) > 256:
        return "invalid drive name"
    return None


def drive_folder(drive: str) -> str:
    """The folder name for a drive: the name itself when it is plain, else a hash of it.

    Plain means lower-case letters, digits, `-` and `_`, so the name is the same file name on
    every file system (no case folding, no `.` or `..`, no separators). Every other name gets
    `~` and a hash; `~` is never in a plain name, so the two kinds cannot collide."""
    if _PLAIN_DRIVE.fullmatch(drive):
        return drive
    return "~" + hashlib.sha256(drive.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix`, or None
    when there is none (only for a prefix of 0xFF bytes, which UTF-8 never makes)."""
    head = prefix.rstrip(b"\xff")
    if not head:
        return None
    return head[:-1] + bytes([head[-1] + 1])


def guess_type(name: str) -> str:
    """A content type from the file name, as Deta did when none was sent."""
    ctype, encoding = mimetypes.guess_type(name, strict=False)
    if encoding:  # "x.tar.gz" holds gzip bytes, whatever is inside
        return _COMPRESSED.get(encoding, "application/octet-stream")
    return ctype or "application/octet-stream"


def given_type(value: str | None) -> str | None:
    """A file's content type as a client sent it (a `Content-Type` header), or None when it says
    nothing and the name is to say; BadName for one that is not UTF-8 text."""
    value = (value or "").strip()
    try:
        # Header bytes that are not UTF-8 reach us as surrogate escapes, which no store keeps.
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadName(
            "the Content-Type header is not UTF-8 text",
            "Send a media type such as text/plain, or leave the header out to have the type "
            "taken from the file name.",
        ) from None
    return None if value.split(";")[0].strip().lower() in _UNKNOWN_TYPES else value
