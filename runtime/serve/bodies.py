"""Chunked request bodies, collected so the micro gets them with `Content-Length`.

A micro server that does not read chunked framing (Python's `http.server`, some minimal servers)
would take the chunk bytes for the next request on a kept-alive connection: its answer to that
"request" then reaches whoever is served next on it. Collecting the body first and sending it
with its length, as nginx does, leaves no framing to misread. Up to `MEMORY_LIMIT` stays in
memory; a longer body goes to an unnamed temporary file (gone when closed, even after a crash),
written a batch at a time off the event loop, so memory stays flat for any size.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from aiohttp import web

MEMORY_LIMIT = 1024 * 1024
_READ_SIZE = 256 * 1024


def is_chunked(request: web.BaseRequest) -> bool:
    """Whether the client sent the body in chunked framing (its length unknown up front)."""
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


class CollectedBody:
    """A whole request body, in memory or in a temporary file, sent again as often as needed."""

    def __init__(self, pieces: list[bytes], file: IO[bytes] | None, size: int) -> None:
        self._pieces = pieces
        self._file = file
        self.size = size

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body from its start (each call starts over: a retry sends it again)."""
        file = self._file
        if file is None:
            for piece in self._pieces:
                yield piece
            return
        await asyncio.to_thread(file.seek, 0)
        while piece := await asyncio.to_thread(file.read, _READ_SIZE):
            yield piece

    def content(self) -> bytes | IO[bytes]:
        """The whole body for the upstream client: bytes, or the file (read from its start)."""
        if self._file is not None:
            return self._file
        return b"".join(self._pieces)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._pieces = []


async def collect(request: web.BaseRequest, spool_dir: Path) -> CollectedBody:
    """Read the whole body; past `MEMORY_LIMIT` it is kept in a file under `spool_dir`."""
    pieces: list[bytes] = []
    held = 0
    size = 0
    file: IO[bytes] | None = None
    try:
        async for piece in request.content.iter_any():
            pieces.append(piece)
            held += len(piece)
            size += len(piece)
            if held > MEMORY_LIMIT:
                if file is None:
                    await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
                    file = await asyncio.to_thread(tempfile.TemporaryFile, dir=spool_dir)
                assert file is not None
                await asyncio.to_thread(file.write, b"".join(pieces))
                pieces, held = [], 0
        if file is not None and pieces:
            await asyncio.to_thread(file.write, b"".join(pieces))
            pieces = []
    except BaseException:
        if file is not None:
            file.close()
        raise
    return CollectedBody(pieces, file, size)
