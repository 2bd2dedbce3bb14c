"""Where each app's Base and Drive data lives: one folder per app, opened on first use."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runtime.cloud.base.store import BaseDB
from runtime.cloud.drive.store import DriveStore

BASE_FILE = "base.sqlite3"
DRIVE_FOLDER = "drive"
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def app_folder_name(app: str) -> str:
    """A folder name for the app: its own name when that is a plain one, else a stable hash."""
    if _PLAIN_NAME.match(app):
        return app
    return "app-" + hashlib.sha256(app.encode()).hexdigest()[:16]


class AppData:
    """One app's data: its Bases (one SQLite file) and its Drives (files under one folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._base: BaseDB | None = None
        self._drive: DriveStore | None = None
        self._opening = threading.Lock()
        # The app's own thread for its Base (see BaseDB.worker), from the opening of the file on.
        self._base_worker = ThreadPoolExecutor(1, thread_name_prefix=f"base-{root.name}")

    @property
    def base(self) -> BaseDB:
        """The app's Bases; the file is opened on first use, once, from whichever thread."""
        with self._opening:
            if self._base is None:
                self._base = BaseDB(self.root / BASE_FILE, worker=self._base_worker)
            return self._base

    async def open_base(self) -> BaseDB:
        """`base` for a coroutine: the first use opens the file on the app's Base thread, as
        opening may wait for another process holding it."""
        if self._base is not None:
            return self._base
        return await asyncio.get_running_loop().run_in_executor(
            self._base_worker, lambda: self.base
        )

    @property
    def drive(self) -> DriveStore:
        if self._drive is None:
            self._drive = DriveStore(self.root / DRIVE_FOLDER)
        return self._drive

    def close(self) -> None:
        for store in (self._base, self._drive):
            if store is not None:
                store.close()
        self._base_worker.shutdown(wait=False, cancel_futures=True)
        self._base = self._drive = None


class DataServices:
    """Every app's data, under `<data dir>/data/`, or in a temporary folder that is removed at
    `close()` (`up --ephemeral`)."""

    def __init__(self, data_dir: Path, *, ephemeral: bool = False) -> None:
        self.ephemeral = ephemeral
        if ephemeral:
            self.root = Path(tempfile.mkdtemp(prefix="space-dev-data-"))
        else:
            self.root = data_dir / "data"
        self._apps: dict[str, AppData] = {}

    def app(self, name: str) -> AppData:
        """The app's data (its folder is made when first written)."""
        found = self._apps.get(name)
        if found is None:
            found = self._apps[name] = AppData(self.root / app_folder_name(name))
        return found

    def close(self) -> None:
        for data in self._apps.values():
            data.close()
        self._apps.clear()
        if self.ephemeral:
            shutil.rmtree(self.root, ignore_errors=True)
