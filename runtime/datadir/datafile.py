"""The data dir on disk: one TinyDB file behind a file lock and atomic replaces, the signing
secret, runtime.json and processes.json. store.py builds the accounts, keys and settings on it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import MemoryStorage

from runtime.errors import DataDirError

FORMAT = "space-dev"
FORMAT_VERSION = 1
STORE_FILE = "store.json"
LOCK_FILE = "store.lock"
SECRET_FILE = "secret"
RUNTIME_FILE = "runtime.json"
PROCESSES_FILE = "processes.json"  # the running runtime and its micros' process groups
SECRET_BYTES = 32

Data = dict[str, dict[str, Any]]  # TinyDB's layout: table -> doc id -> document


def utc_text(when: datetime | None = None) -> str:
    """A time as Space wrote it: UTC, to the second, `2021-04-22T11:50:08Z`."""
    when = when or datetime.now(UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fresh() -> Data:
    return {"_meta": {"1": {"format": FORMAT, "version": FORMAT_VERSION}}}


def _dump(data: Data) -> bytes:
    return json.dumps(data, sort_keys=True, indent=1).encode()


def _memory_db(data: Data) -> TinyDB:
    db = TinyDB(storage=MemoryStorage)
    db.storage.write(data)
    return db


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


class DataFile:
    """The files of one data dir. Reads need no lock: a reader sees the old or the new file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / STORE_FILE
        self.lock_path = self.data_dir / LOCK_FILE
        self.secret_path = self.data_dir / SECRET_FILE
        self.runtime_path = self.data_dir / RUNTIME_FILE
        self.processes_path = self.data_dir / PROCESSES_FILE

    # --- the store file ----------------------------------------------------------------------

    def version(self) -> tuple[int, int, int]:
        """(inode, mtime ns, size) of the store file; (0, 0, 0) before the first write."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (0, 0, 0)
        except NotADirectoryError:
            raise self._dir_is_file() from None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read(self) -> tuple[TinyDB, tuple[int, int, int]]:
        """The current contents as a throwaway in-memory TinyDB, and the version they are."""
        data, st = self._load()
        version = (st.st_ino, st.st_mtime_ns, st.st_size) if st else (0, 0, 0)
        return _memory_db(data), version

    @contextmanager
    def write(self) -> Iterator[TinyDB]:
        """One read-modify-write transaction: the changes made to the TinyDB handed out are
        written when the block ends without an exception, all at once or not at all."""
        with self._locked():
            data, st = self._load()
            before = _dump(data)
            db = _memory_db(data)
            yield db
            after = _dump(db.storage.read() or {})
            if after != before:
                self._replace(self.path, after, after_ns=st.st_mtime_ns if st else 0)

    def _load(self) -> tuple[Data, os.stat_result | None]:
        self._check_dir()
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())  # the version of exactly the bytes read
                raw = f.read()
        except FileNotFoundError:
            return _fresh(), None
        except OSError as err:
            raise DataDirError(
                f"cannot read {self.path}: {err.strerror}",
                "check the file's owner and permissions",
            ) from err
        try:
            data = json.loads(raw)
        except ValueError as err:
            raise DataDirError(
                f"{self.path} is not valid JSON ({err})",
                "space-dev never leaves a half-written file, so something else changed it. "
                "Restore it from a backup, or move it away to start afresh (accounts, keys and "
                "settings are then lost); space-dev will not overwrite it.",
            ) from err
        self._check_format(data)
        return data, st

    def _check_format(self, data: Any) -> None:
        meta = data.get("_meta") if isinstance(data, dict) else None
        marks = list(meta.values()) if isinstance(meta, dict) else []
        mark = marks[0] if len(marks) == 1 and isinstance(marks[0], dict) else {}
        tables_ok = isinstance(data, dict) and all(
            isinstance(t, dict) and all(isinstance(d, dict) for d in t.values())
            for t in data.values()
        )
        if mark.get("format") != FORMAT or not tables_ok:
            raise DataDirError(
                f'{self.path} is not a space-dev data file (no "_meta" marker '
                f'{{"format": "{FORMAT}"}})',
                "Is --data-dir (or data_dir in space-dev.toml) the right folder? Choose another "
                "data dir, or move this file away; space-dev will not overwrite it.",
            )
        version = mark.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise DataDirError(
                f"{self.path} has format version {version!r}; this space-dev reads version "
                f"{FORMAT_VERSION}",
                "upgrade space-dev, or use another --data-dir; space-dev will not overwrite it.",
            )

    # --- the directory, the lock, atomic replaces --------------------------------------------

    def _dir_is_file(self) -> DataDirError:
        return DataDirError(
            f"the data dir {self.data_dir} is a file, not a folder",
            "choose another --data-dir (or data_dir in space-dev.toml), or move that file away",
        )

    def _check_dir(self) -> bool:
        """True if the data dir exists; a file in its place is an error.

        One stat, not two checks: another process may create the folder between them.
        """
        try:
            mode = os.stat(self.data_dir).st_mode
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(mode):
            return True
        raise self._dir_is_file()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the data dir's exclusive lock: one writer at a time, across processes."""
        if not self._check_dir():
            try:
                self.data_dir.mkdir(mode=0o700, parents=True)
                os.chmod(self.data_dir, 0o700)  # the umask may not take bits away from 0700
            except FileExistsError:
                # Made by another process meanwhile (fine if a folder), or a dangling symlink.
                if not self._check_dir():
                    raise self._dir_is_file() from None
            except NotADirectoryError:
                raise self._dir_is_file() from None
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # Holding the lock, no write is under way: a temp file left now is from a crash.
            for name in (STORE_FILE, RUNTIME_FILE, PROCESSES_FILE, SECRET_FILE):
                for stale in self.data_dir.glob(f".{name}.*.tmp"):
                    with contextlib.suppress(FileNotFoundError):
                        stale.unlink()
            yield
        finally:
            os.close(fd)  # releases the lock

    def _replace(self, path: Path, data: bytes, after_ns: int = 0) -> None:
        """Write a whole file atomically: temp file (0600) in the same dir, fsync, rename,
        fsync the dir. A crash leaves the old file or the new one, never a mix."""
        fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                # mtime from the fine clock and strictly increasing, so version() differs after
                # every write even when the inode number is reused within one clock tick.
                ns = max(time.time_ns(), after_ns + 1)
                os.utime(f.fileno(), ns=(ns, ns))
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.data_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- the signing secret ------------------------------------------------------------------

    def secret(self) -> bytes:
        """The signing secret: made once with mode 0600, the same bytes ever after."""
        found = self._read_secret()
        if found is not None:
            return found
        with self._locked():
            found = self._read_secret()  # another process may have made it meanwhile
            if found is not None:
                return found
            value = secrets.token_bytes(SECRET_BYTES)
            # Written whole under a temp name, then linked into place: the secret file never
            # exists half-written, and link() (like O_EXCL) never replaces an existing one.
            tmp = self.data_dir / f".{SECRET_FILE}.{secrets.token_hex(4)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, value)
                os.fsync(fd)
                os.link(tmp, self.secret_path)
            finally:
                os.close(fd)
                tmp.unlink()
            self._fsync_dir()
            return value

    def _read_secret(self) -> bytes | None:
        if not self._check_dir():
            return None
        try:
            value = self.secret_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise DataDirError(
                f"cannot read {self.secret_path}: {err.strerror}",
                "check the file's owner and permissions",
            ) from err
        if len(value) < SECRET_BYTES:
            raise DataDirError(
                f"{self.secret_path} is not a space-dev secret (too short)",
                "delete it to make a new one (everyone is signed out); space-dev will not "
                "overwrite it.",
            )
        return value

    # --- runtime.json ------------------------------------------------------------------------

    def write_runtime_info(self, fields: dict[str, Any]) -> None:
        """Record where this process serves, with its pid (mode 0600: it holds a token)."""
        info = {**fields, "format": FORMAT, "pid": os.getpid()}
        with self._locked():
            self._load_runtime_info()  # refuse to replace a file that is not ours
            self._replace(self.runtime_path, json.dumps(info, indent=1).encode())

    def read_runtime_info(self) -> dict[str, Any] | None:
        """runtime.json's contents if the process that wrote it is still alive, else None."""
        info = self._load_runtime_info()
        return info if info is not None and _pid_alive(info.get("pid")) else None

    def clear_runtime_info(self) -> None:
        """Remove runtime.json if this process wrote it."""
        if not self._check_dir():
            return
        with self._locked():
            info = self._load_runtime_info()
            if info is not None and info.get("pid") == os.getpid():
                self.runtime_path.unlink()
                self._fsync_dir()

    def _load_runtime_info(self) -> dict[str, Any] | None:
        return self._load_own_json(self.runtime_path, "runtime file")

    # --- processes.json ----------------------------------------------------------------------

    def claim_processes(
        self, mine: dict[str, Any], running: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """The previous record of processes, replaced by `mine` unless `running(previous)`.

        One step under the lock, so two runtimes starting at once cannot both take the dir.
        """
        with self._locked():
            previous = self._load_own_json(self.processes_path, "process record")
            if previous is None or not running(previous):
                self._write_processes({"runtime": mine, "groups": []})
            return previous

    def write_processes(self, record: dict[str, Any]) -> None:
        """Replace the record of processes (the running runtime's micros changed)."""
        with self._locked():
            self._load_own_json(self.processes_path, "process record")
            self._write_processes(record)

    def clear_processes(self, mine: dict[str, Any]) -> None:
        """Remove the record of processes if it is `mine` (the runtime named in it)."""
        if not self._check_dir():
            return
        with self._locked():
            record = self._load_own_json(self.processes_path, "process record")
            if record is not None and record.get("runtime") == mine:
                self.processes_path.unlink()
                self._fsync_dir()

    def _write_processes(self, record: dict[str, Any]) -> None:
        info = {**record, "format": FORMAT}
        self._replace(self.processes_path, json.dumps(info, indent=1).encode())

    def _load_own_json(self, path: Path, what: str) -> dict[str, Any] | None:
        """A JSON file of ours (with the format marker), None if missing; a foreign one is an
        error, so it is never overwritten."""
        if not self._check_dir():
            return None
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            info = json.loads(raw)
        except ValueError:
            info = None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise DataDirError(
                f"{path} is not a space-dev {what}",
                "move it away; space-dev will not overwrite it.",
            )
        return info
