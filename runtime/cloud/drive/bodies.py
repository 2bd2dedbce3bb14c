"""File bodies on disk: stream to a temp file, fsync, rename; join upload parts in the kernel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterable, Iterable
from pathlib import Path
from typing import BinaryIO

from .errors import TooLarge

TMP_PREFIX = ".tmp-"
_WRITE_BATCH = 1 << 20  # bytes gathered before one write in a thread: few hops, flat memory
_COPY_CHUNK = 1 << 20


def new_body_name() -> str:
    """A fresh body file name: 32 hex digits (what the sweep knows a body by)."""
    return secrets.token_hex(16)


def unlink(path: Path) -> None:
    """Remove a file that may be gone already."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def write_body(
    folder: Path,
    final: str,
    stream: AsyncIterable[bytes],
    max_bytes: int | None,
    durable: bool = True,
) -> int:
    """Stream into `folder/<temp>`, then rename it to `folder/final`; returns the size."""
    tmp = folder / f"{TMP_PREFIX}{final}-{secrets.token_hex(4)}"
    f: BinaryIO = await asyncio.to_thread(open, tmp, "xb", 0)
    size = 0
    try:
        try:
            batch = bytearray()
            async for chunk in stream:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise TooLarge(
                        f"body larger than {max_bytes} bytes",
                        "Send big files as a chunked upload with parts of at most 10 MiB.",
                    )
                batch += chunk
                if len(batch) >= _WRITE_BATCH:
                    full, batch = batch, bytearray()
                    await asyncio.to_thread(_write_all, f, full)
            if batch:
                await asyncio.to_thread(_write_all, f, batch)
            if durable:
                await asyncio.to_thread(os.fsync, f.fileno())
        finally:
            f.close()
        await asyncio.to_thread(_publish, tmp, folder / final, durable)
    except BaseException:
        unlink(tmp)
        raise
    return size


def write_body_from(folder: Path, final: str, chunks: Iterable[bytes]) -> int:
    """`write_body` for a worker thread: the chunks into `folder/<temp>`, fsync, rename to
    `folder/final`; returns the size."""
    tmp = folder / f"{TMP_PREFIX}{final}-{secrets.token_hex(4)}"
    size = 0
    try:
        with open(tmp, "xb", buffering=0) as f:
            for chunk in chunks:
                _write_all(f, chunk)
                size += len(chunk)
            os.fsync(f.fileno())
        _publish(tmp, folder / final, True)
    except BaseException:
        unlink(tmp)
        raise
    return size


def _write_all(f: BinaryIO, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[f.write(view) or 0 :]


def _publish(tmp: Path, final: Path, durable: bool) -> None:
    os.replace(tmp, final)
    if durable:  # make the rename itself survive a power cut
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def join_parts(parts: Path, folder: Path, body: str) -> int:
    """Concatenate the numbered parts into `folder/body` (temp, fsync, rename)."""
    try:
        numbered = sorted(int(p) for p in os.listdir(parts) if p.isdigit())
    except FileNotFoundError:
        numbered = []
    tmp = folder / f"{TMP_PREFIX}{body}"
    size = 0
    try:
        # Unbuffered, so kernel copies and plain writes share one file offset.
        with open(tmp, "xb", buffering=0) as out:
            for number in numbered:
                with open(parts / f"{number:05d}", "rb") as src:
                    size += _copy(src, out)
            os.fsync(out.fileno())
        _publish(tmp, folder / body, True)
    except BaseException:
        unlink(tmp)
        raise
    return size


def _copy(src: BinaryIO, out: BinaryIO) -> int:
    """Append `src` to `out`; in the kernel where it can, else through a 1 MiB buffer."""
    length = os.fstat(src.fileno()).st_size
    copied = 0
    if hasattr(os, "copy_file_range"):
        try:
            while copied < length:
                n = os.copy_file_range(src.fileno(), out.fileno(), length - copied)
                if n == 0:
                    break
                copied += n
            return copied
        except OSError:
            if copied:
                raise
    while chunk := src.read(_COPY_CHUNK):
        _write_all(out, chunk)
        copied += len(chunk)
    return copied
