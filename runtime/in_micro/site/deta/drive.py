"""Deta Drive: the file calls of deta-python 1.x over the Drive HTTP API, streaming both ways."""

from __future__ import annotations

import http.client
import itertools
import os
from collections.abc import Generator, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

from .service import JSON_MIME, _Service

UPLOAD_CHUNK_SIZE = 10 * 1024 * 1024  # a part of a chunked upload, and the most one POST takes
DRIVE_SERVICE_TIMEOUT = 300
DEFAULT_HOST = "drive.deta.sh"
MAX_DELETE_NAMES = 1000


class DriveStreamingBody:
    """A file being downloaded: read it in pieces; the connection closes at its end or `close()`."""

    def __init__(self, res: http.client.HTTPResponse) -> None:
        self.__stream = res

    @property
    def closed(self) -> bool:
        return self.__stream.closed

    def read(self, size: int | None = None) -> bytes:
        """The next `size` bytes, or all that is left; b"" at the end."""
        if size is None or size < 0:
            return self.__stream.read()
        return self.__stream.read(size)

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[bytes]:
        """Pieces of up to `chunk_size` bytes until the end."""
        while True:
            chunk = self.__stream.read(chunk_size)
            if not chunk:
                return
            yield chunk

    def iter_lines(self, chunk_size: int = 1024) -> Iterator[bytes]:
        """Lines ending in b"\\n" (a longer line comes in pieces of `chunk_size` bytes)."""
        while True:
            line = self.__stream.readline(chunk_size)
            if not line:
                return
            yield line

    def close(self) -> None:
        """Stop the download and close its connection."""
        try:
            self.__stream.close()
        except Exception:  # closing a connection the server already dropped is not an error
            pass

    def __enter__(self) -> DriveStreamingBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pieces(data: Any, path: Any) -> Generator[bytes, None, None]:
    """The content in pieces of exactly UPLOAD_CHUNK_SIZE bytes (the last may be shorter)."""
    if path is not None:
        with open(path, "rb") as stream:
            yield from _read_pieces(stream)
    elif isinstance(data, str):
        yield from _slices(memoryview(data.encode("utf-8")))
    elif isinstance(data, (bytes, bytearray, memoryview)):
        yield from _slices(memoryview(data))
    elif hasattr(data, "read"):
        yield from _read_pieces(data)  # the caller's stream: `put` closes it when done
    else:
        raise TypeError(f"data must be str, bytes or a file-like object, not {type(data).__name__}")


def _close_given(stream: Any) -> None:
    # A source that fails to close has nothing more to give; the upload's outcome is the news.
    try:
        stream.close()
    except Exception:
        pass


def _slices(view: memoryview) -> Iterator[bytes]:
    view = view.cast("B")
    if not len(view):
        yield b""
    for start in range(0, len(view), UPLOAD_CHUNK_SIZE):
        yield view[start : start + UPLOAD_CHUNK_SIZE]  # type: ignore[misc]


def _read_pieces(stream: Any) -> Iterator[bytes]:
    # Text streams give characters (UTF-8 may make four bytes of one) and raw streams may read
    # short, so pieces are cut from a buffer rather than taken as read.
    buffer = bytearray()
    sent = False
    while True:
        piece = stream.read(UPLOAD_CHUNK_SIZE)
        if not piece:
            break
        buffer += piece.encode("utf-8") if isinstance(piece, str) else piece
        while len(buffer) >= UPLOAD_CHUNK_SIZE:
            yield bytes(buffer[:UPLOAD_CHUNK_SIZE])
            del buffer[:UPLOAD_CHUNK_SIZE]
            sent = True
    if buffer or not sent:
        yield bytes(buffer)


class _Drive(_Service):
    """A Deta Drive; made by `Deta().Drive(name)` or `deta.Drive(name)`."""

    def __init__(
        self,
        name: str | None = None,
        project_key: str | None = None,
        project_id: str | None = None,
        host: str | None = None,
    ) -> None:
        if not name:
            raise AssertionError("No Drive name provided")
        if not project_key:
            raise AssertionError("Project key must be provided")
        if not project_id:
            raise AssertionError("Project id must be provided")
        host = host or os.environ.get("DETA_DRIVE_HOST") or DEFAULT_HOST
        super().__init__(project_key, project_id, host, name, DRIVE_SERVICE_TIMEOUT)

    def get(self, name: str) -> DriveStreamingBody | None:
        """The file as a stream to read, or None if there is no such file."""
        if not name:
            raise AssertionError("No name provided")
        response = self._open_stream(f"/files/download?name={quote_plus(name)}")
        return DriveStreamingBody(response) if response is not None else None

    def delete_many(self, names: list[str]) -> dict:
        """Delete up to 1000 files; return `{"deleted": [...], "failed": {name: reason}}`."""
        if not names:
            raise AssertionError("Names is empty")
        if len(names) > MAX_DELETE_NAMES:
            raise AssertionError(f"More than {MAX_DELETE_NAMES} names to delete")
        _, answer = self._request("/files", "DELETE", {"names": names}, content_type=JSON_MIME)
        return answer  # type: ignore[no-any-return]

    def delete(self, name: str) -> str:
        """Delete one file (a missing one counts as deleted); return its name."""
        if not name:
            raise AssertionError("Name not provided or empty")
        failed = (self.delete_many([name]) or {}).get("failed")
        if failed:
            raise Exception(f"Failed to delete '{name}': {failed.get(name, failed)}")
        return name

    def list(self, limit: int = 1000, prefix: str | None = None, last: str | None = None) -> dict:
        """Names in order: `{"names": [...]}`, with `"paging": {"size", "last"}` if more follow."""
        path = f"/files?limit={int(limit)}"
        if prefix:
            path += f"&prefix={quote(prefix, safe='')}"
        if last:
            path += f"&last={quote(last, safe='')}"
        _, answer = self._request(path, "GET")
        return answer  # type: ignore[no-any-return]

    def put(
        self,
        name: str,
        data: Any = None,
        *,
        path: str | os.PathLike[str] | None = None,
        content_type: str | None = None,
    ) -> str:
        """Store a file from `data` (str, bytes or a file-like object) or a `path`; return name.

        Up to 10 MiB goes in one request; more goes as a chunked upload of 10 MiB parts, with
        at most two parts in memory, aborted if any step fails. A file-like `data` is closed
        once the upload is done or failed, as deta-python closed it (and its tests check)."""
        if not name:
            raise AssertionError("No name provided")
        if path is None and data is None:
            raise AssertionError("No data or path provided")
        if path is not None and data is not None:
            raise AssertionError("Both path and data provided")
        pieces = _pieces(data, path)
        try:
            first = next(pieces)
            second = next(pieces, None)
            if second is None:
                self._request(
                    f"/files?name={quote_plus(name)}", "POST", first, content_type=content_type
                )
            else:
                self._upload(name, itertools.chain((first, second), pieces), content_type)
        finally:
            pieces.close()  # closes a file opened from `path`
            if path is None and hasattr(data, "read"):
                _close_given(data)
        return name

    def _upload(self, name: str, parts: Iterator[bytes], content_type: str | None) -> None:
        query = f"?name={quote_plus(name)}"
        _, answer = self._request(f"/uploads{query}", "POST", content_type=content_type)
        upload = f"/uploads/{quote(str(answer['upload_id']), safe='')}"
        try:
            for number, part in enumerate(parts, start=1):
                self._request(
                    f"{upload}/parts{query}&part={number}",
                    "POST",
                    part,
                    content_type=content_type,
                )
            self._request(upload + query, "PATCH")
        except BaseException:
            try:
                self._request(upload + query, "DELETE")
            except Exception:  # the first error is the one to report
                pass
            raise
