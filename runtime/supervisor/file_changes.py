"""Watches app folders for saves and reports each burst of changes as one batch of paths."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

import pathspec
import watchfiles

# Never a reason to restart: tools' caches, dependencies and virtual environments.
IGNORED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        "node_modules",
        ".venv",
        "venv",
        "env",
        "virtualenv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".idea",
        ".vscode",
        ".next",
        ".nuxt",
        ".svelte-kit",
        ".cache",
        ".vite",
        ".parcel-cache",
        ".turbo",
        ".angular",
        ".pnpm-store",
    }
)

# Files a running micro writes itself: logs, databases, pid files, editors' swap files, bundlers'
# timestamp files (Vite writes `vite.config.js.timestamp-<n>.mjs` beside its config on start).
# A change to one never means new code, and restarting for it would loop.
IGNORED_FILES = (
    "*.log",
    "*.log.[0-9]*",
    "*.db",
    "*.db-journal",
    "*.sqlite",
    "*.sqlite3",
    "*.sqlite-*",
    "*.sqlite3-*",
    "*-wal",
    "*-shm",
    "*.pid",
    "*.sock",
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    "4913",  # vim's probe for a writable folder
    "*.tmp",
    "*.timestamp-*",
    ".DS_Store",
)

Batch = set[Path]


class ChangeFilter(watchfiles.DefaultFilter):
    """watchfiles' default filter, plus virtual environments, given paths and `.gitignore`."""

    def __init__(self, roots: Iterable[Path], ignore_paths: Sequence[Path]) -> None:
        super().__init__(
            ignore_dirs=sorted(IGNORED_DIRS), ignore_paths=[str(p) for p in ignore_paths]
        )
        self._roots = list(roots)
        self._specs: list[tuple[Path, pathspec.PathSpec]] = []
        self._reload_gitignores()

    def _reload_gitignores(self) -> None:
        self._specs = []
        for root in self._roots:
            self._load_gitignores(root)

    def _load_gitignores(self, root: Path) -> None:
        for gitignore in _gitignores(root):
            try:
                lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            self._specs.append((gitignore.parent, pathspec.GitIgnoreSpec.from_lines(lines)))

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        if not super().__call__(change, path):
            return False
        candidate = Path(path)
        if candidate.name == ".gitignore":
            self._reload_gitignores()  # what it ignores changes now, with no restart
            return False
        if any(part in IGNORED_DIRS or part.endswith(".egg-info") for part in candidate.parts):
            return False
        if is_written_by_micro(candidate.name):
            return False
        is_dir = candidate.is_dir()
        for base, spec in self._specs:
            try:
                relative = candidate.relative_to(base).as_posix()
            except ValueError:
                continue
            # `generated/` in a .gitignore names a folder: match the folder itself as one.
            if spec.match_file(relative) or (is_dir and spec.match_file(relative + "/")):
                return False
        return True


def is_written_by_micro(name: str) -> bool:
    """Whether a file of this name is one a running micro writes itself (see IGNORED_FILES)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in IGNORED_FILES)


def _gitignores(root: Path) -> list[Path]:
    """`.gitignore` files in the app, outside the folders that are ignored anyway."""
    found = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name == ".gitignore" and entry.is_file():
                found.append(entry)
            elif entry.is_dir() and not entry.is_symlink() and entry.name not in IGNORED_DIRS:
                stack.append(entry)
    return found


async def watch(
    roots: Sequence[Path],
    ignore_paths: Sequence[Path],
    on_batch: Callable[[Batch], Awaitable[None]],
    step_ms: int,
    ready: asyncio.Event | None = None,
) -> None:
    """Call `on_batch(paths)` for each burst of changes under `roots`, until cancelled.

    A burst ends when no new change comes for `step_ms`: a formatter or a `git checkout`
    touching many files yields one batch, so one restart.
    """
    existing = [r for r in roots if r.exists()]
    watch_filter = ChangeFilter([r for r in existing if r.is_dir()], ignore_paths)
    # Filtered here, not by awatch: a micro writing its log nonstop would otherwise keep awatch
    # from ever yielding, and `ready` would never be set.
    async for changes in watchfiles.awatch(
        *existing,
        watch_filter=None,
        step=step_ms,
        debounce=1600,
        yield_on_timeout=ready is not None,
        rust_timeout=200 if ready is not None else None,
    ):
        if ready is not None and not ready.is_set():
            ready.set()  # the watch is set up: from now on no save is missed
        paths = {Path(path) for change, path in changes if watch_filter(change, path)}
        if paths:
            await on_batch(paths)
