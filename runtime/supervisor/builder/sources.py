"""What a static micro's build read: its `src` files, less what the build writes or ignores."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Folders a build never reads as its source (installed packages, VCS, caches).
SKIPPED_FOLDERS = frozenset(
    {
        "node_modules",
        "__pycache__",
        ".git",
        ".svelte-kit",
        ".next",
        ".nuxt",
        ".cache",
        ".parcel-cache",
        ".turbo",
        ".space-dev",
    }
)


def tree_print(src: Path, written: tuple[Path, ...]) -> str:
    """A digest of every source file's name, size and time under `src`, outside `written`
    (the `serve` folder the build makes) and the skipped folders: it changes on a save."""
    digest = hashlib.sha256()
    skip = {p.resolve() for p in written}
    for root, dirs, files in os.walk(src):
        here = Path(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIPPED_FOLDERS
            and not d.startswith(".")
            and (here / d).resolve() not in skip
        )
        for name in sorted(files):
            try:
                st = (here / name).stat()
            except OSError:
                continue
            rel = os.path.relpath(here / name, src)
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def is_source(path: Path, src: Path, written: tuple[Path, ...]) -> bool:
    """Whether a changed file is one the build reads (so it calls for a rebuild)."""
    if not path.is_relative_to(src):
        return False
    if any(path.resolve().is_relative_to(w.resolve()) for w in written):
        return False
    parts = path.relative_to(src).parts[:-1]
    return not any(p in SKIPPED_FOLDERS or p.startswith(".") for p in parts)
