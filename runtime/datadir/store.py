"""The data dir: accounts, sessions, keys, settings and runs, kept in one TinyDB file safely shared
between the running runtime and CLI commands (atomic writes under a file lock)."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB

from runtime.datadir.datafile import DataFile, utc_text
from runtime.datadir.values import (
    SESSION_LIFETIME,
    Session,
    Snapshot,
    doc_key,
    doc_session,
    doc_user,
    enabled_in,
    user_doc,
)
from runtime.errors import SpaceDevError
from runtime.models import ApiKey, User

__all__ = ["Session", "Snapshot", "Store", "utc_text"]

RUNS_KEPT = 20
Q = Query()


class Store:
    """The data dir of one runtime. Reads are lock-free; every change is one locked transaction."""

    def __init__(self, data_dir: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.file = DataFile(self.data_dir)
        self.path = self.file.path
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.users = Users(self)
        self.sessions = Sessions(self)
        self.keys = Keys(self)

    def now(self) -> str:
        return utc_text(self.clock())

    # --- whole-store reads -------------------------------------------------------------------

    def version(self) -> tuple[int, int, int]:
        """A cheap fingerprint of the store file: when it changes, re-read with snapshot()."""
        return self.file.version()

    def snapshot(self) -> Snapshot:
        """Users, keys, sessions, auth switches, env and project keys of one file version."""
        db, version = self.file.read()
        auth: dict[str, dict[str | None, bool]] = {}
        for doc in db.table("auth").all():
            auth.setdefault(doc["app"], {})[doc["micro"]] = bool(doc["enabled"])
        return Snapshot(
            version=version,
            users={u.name: u for u in map(doc_user, db.table("users").all())},
            keys_by_hash={k.key_hash: k for k in map(doc_key, db.table("keys").all())},
            sessions={s.id: s for s in map(doc_session, db.table("sessions").all())},
            auth=auth,
            env={d["app"]: dict(d["values"]) for d in db.table("env").all()},
            project_keys={d["app"]: d["key"] for d in db.table("project_keys").all()},
        )

    def secret(self) -> bytes:
        """The signing secret: made once (mode 0600), the same bytes ever after."""
        return self.file.secret()

    # --- runtime.json: how a CLI command finds the running runtime ---------------------------

    def write_runtime_info(self, url: str, token: str) -> None:
        """Say where this process serves its control API, and with which token."""
        self.file.write_runtime_info({"url": url, "token": token, "started": self.now()})

    def read_runtime_info(self) -> dict[str, Any] | None:
        """The running runtime's url, token and pid, or None when none is running."""
        return self.file.read_runtime_info()

    def clear_runtime_info(self) -> None:
        """Remove runtime.json, if this process wrote it (another runtime may have taken over)."""
        self.file.clear_runtime_info()

    # --- env values, the auth switch, apps, project keys, action runs ------------------------

    def get_env(self, app: str) -> dict[str, str]:
        """The `presets.env` values set for an app (settings page or CLI)."""
        doc = self.file.read()[0].table("env").get(Q.app == app)
        return dict(doc["values"]) if isinstance(doc, dict) else {}

    def set_env(self, app: str, values: Mapping[str, str]) -> None:
        """Replace an app's env values with these."""
        clean = {str(k): str(v) for k, v in values.items()}
        with self.file.write() as db:
            db.table("env").upsert({"app": app, "values": clean}, Q.app == app)

    def set_auth(self, app: str, micro: str | None, enabled: bool) -> None:
        """Deta's `auth enable|disable`: for one micro, or (micro None) the whole app."""
        with self.file.write() as db:
            table = db.table("auth")
            if micro is None:
                # The app-wide switch resets every micro's own, as a user typing
                # `auth enable` expects every micro to be private again.
                table.remove(Q.app == app)
                table.insert({"app": app, "micro": None, "enabled": enabled})
            else:
                doc = {"app": app, "micro": micro, "enabled": enabled}
                table.upsert(doc, (Q.app == app) & (Q.micro == micro))

    def auth_switches(self, app: str) -> dict[str | None, bool]:
        """The switches set for an app: micro name (None: the whole app) -> auth enabled."""
        docs = self.file.read()[0].table("auth").search(Q.app == app)
        return {d["micro"]: bool(d["enabled"]) for d in docs}

    def auth_enabled(self, app: str, micro: str) -> bool:
        """Whether the gate guards this micro of this app."""
        return enabled_in(self.auth_switches(app), micro)

    def remember_app(self, name: str, folder: Path) -> None:
        """Note that `up` served this app from this folder, so `--app` may be left out later."""
        doc = {"name": name, "folder": str(Path(folder).resolve()), "last_up": self.now()}
        with self.file.write() as db:
            db.table("apps").upsert(doc, Q.name == name)

    def known_apps(self) -> dict[str, Path]:
        """Every app `up` has served: name -> folder."""
        return {d["name"]: Path(d["folder"]) for d in self.file.read()[0].table("apps").all()}

    def project_key(self, app: str) -> str:
        """The app's DETA_PROJECT_KEY, `<id>_<secret>`, made on first use and stable after."""
        doc = self.file.read()[0].table("project_keys").get(Q.app == app)
        if isinstance(doc, dict):
            return str(doc["key"])
        with self.file.write() as db:
            table = db.table("project_keys")
            doc = table.get(Q.app == app)  # another process may have made it meanwhile
            if isinstance(doc, dict):
                return str(doc["key"])
            # Alphanumeric secret: the Deta SDKs split the key on "_" to find the project id.
            alphabet = string.ascii_letters + string.digits
            key = secrets.token_hex(4) + "_" + "".join(secrets.choice(alphabet) for _ in range(32))
            table.insert({"app": app, "key": key})
            return key

    def add_run(self, app: str, action_id: str, record: Mapping[str, Any]) -> None:
        """Keep one run of an action (time, status, duration...); the last 20 are kept."""
        run = {"time": self.now(), **record}
        with self.file.write() as db:
            table = db.table("runs")
            where = (Q.app == app) & (Q.action == action_id)
            doc = table.get(where)
            kept = list(doc["runs"]) if isinstance(doc, dict) else []
            kept = (kept + [run])[-RUNS_KEPT:]
            table.upsert({"app": app, "action": action_id, "runs": kept}, where)

    def runs(self, app: str, action_id: str) -> list[dict[str, Any]]:
        """The kept runs of an action, newest first."""
        where = (Q.app == app) & (Q.action == action_id)
        doc = self.file.read()[0].table("runs").get(where)
        return list(reversed(doc["runs"])) if isinstance(doc, dict) else []


# --- accounts --------------------------------------------------------------------------------


class Users:
    """Local accounts. The first one ever added is the owner and cannot be removed."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, name: str, password_hash: str, groups: Iterable[str] = ()) -> User:
        """Make an account; the first is the owner."""
        if not name:
            raise SpaceDevError("a user needs a name", "give one, e.g. `space-dev users add ann`")
        with self._store.file.write() as db:
            table = db.table("users")
            if table.contains(Q.name == name):
                raise SpaceDevError(
                    f'user "{name}" already exists',
                    f"change the password with `space-dev users passwd {name}`, or pick another "
                    "name",
                )
            user = User(name, password_hash, tuple(groups), owner=len(table) == 0)
            table.insert({**user_doc(user), "created": self._store.now()})
            return user

    def get(self, name: str) -> User | None:
        doc = self._store.file.read()[0].table("users").get(Q.name == name)
        return doc_user(doc) if isinstance(doc, dict) else None

    def list(self) -> list[User]:
        """Every account, in the order they were made."""
        return [doc_user(d) for d in self._store.file.read()[0].table("users").all()]

    def owner(self) -> User | None:
        return next((u for u in self.list() if u.owner), None)

    def set_password_hash(self, name: str, password_hash: str) -> None:
        """Change a password; the user's sessions end with it, in the same write."""
        with self._store.file.write() as db:
            _need_user(db, name)
            db.table("users").update({"password_hash": password_hash}, Q.name == name)
            db.table("sessions").remove(Q.user == name)

    def set_groups(self, name: str, groups: Iterable[str]) -> None:
        with self._store.file.write() as db:
            _need_user(db, name)
            db.table("users").update({"groups": list(groups)}, Q.name == name)

    def remove(self, name: str) -> None:
        """Delete an account and its sessions; the owner cannot be removed."""
        with self._store.file.write() as db:
            if _need_user(db, name).owner:
                raise SpaceDevError(
                    f'user "{name}" is the owner and cannot be removed',
                    f"every app belongs to the owner; change the password instead: "
                    f"`space-dev users passwd {name}`",
                )
            db.table("users").remove(Q.name == name)
            db.table("sessions").remove(Q.user == name)


def _need_user(db: TinyDB, name: str) -> User:
    doc = db.table("users").get(Q.name == name)
    if isinstance(doc, dict):
        return doc_user(doc)
    names = [d["name"] for d in db.table("users").all()]
    hint = (
        f"the users are: {', '.join(names)}"
        if names
        else "there are no users yet; add one with `space-dev users add NAME`"
    )
    raise SpaceDevError(f'no user named "{name}"', hint)


class Sessions:
    """Server-side sessions: the cookie names one, so logout and password changes end it."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, user: str) -> str:
        """Start a 7-day session for a user; returns its id."""
        now = self._store.clock()
        doc = {
            "id": secrets.token_urlsafe(32),
            "user": user,
            "created": utc_text(now),
            "expires": utc_text(now + SESSION_LIFETIME),
        }
        with self._store.file.write() as db:
            _need_user(db, user)
            # Sweeping here keeps the table small without a separate cleanup job.
            db.table("sessions").remove(Q.expires <= utc_text(now))
            db.table("sessions").insert(doc)
        return str(doc["id"])

    def get(self, session_id: str) -> Session | None:
        """The live session with this id, or None (unknown, expired, or its user is gone)."""
        db = self._store.file.read()[0]
        doc = db.table("sessions").get(Q.id == session_id)
        if not isinstance(doc, dict) or not db.table("users").contains(Q.name == doc["user"]):
            return None
        found = doc_session(doc)
        return None if found.expired(self._store.clock()) else found

    def delete(self, session_id: str) -> bool:
        with self._store.file.write() as db:
            return bool(db.table("sessions").remove(Q.id == session_id))

    def delete_for_user(self, user: str) -> int:
        """End every session of a user; returns how many there were."""
        with self._store.file.write() as db:
            return len(db.table("sessions").remove(Q.user == user))

    def purge(self) -> int:
        """Drop expired sessions; returns how many."""
        with self._store.file.write() as db:
            return len(db.table("sessions").remove(Q.expires <= self._store.now()))


# --- API keys --------------------------------------------------------------------------------


class Keys:
    """API keys per app: only the SHA-256 of each key is kept."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, key: ApiKey) -> ApiKey:
        """Keep a new key; its name must be new in the app and its value new everywhere."""
        if not key.created:
            key = replace(key, created=self._store.now())
        with self._store.file.write() as db:
            table = db.table("keys")
            if table.contains((Q.app == key.app) & (Q.name == key.name)):
                raise SpaceDevError(
                    f'app "{key.app}" already has a key named "{key.name}"',
                    f"pick another name, or revoke the old key first: "
                    f"`space-dev keys revoke {key.name} --app {key.app}`",
                )
            if table.contains(Q.key_hash == key.key_hash):
                raise SpaceDevError(
                    "that key value is already in use", "give the new key another value"
                )
            table.insert(asdict(key))
        return key

    def list(self, app: str) -> list[ApiKey]:
        """The keys of an app, in the order they were made."""
        return [doc_key(d) for d in self._store.file.read()[0].table("keys").search(Q.app == app)]

    def get(self, app: str, name: str) -> ApiKey:
        """One key by name; an unknown name is a SpaceDevError listing the names there are."""
        return _need_key(self._store.file.read()[0], app, name)

    def get_by_hash(self, key_hash: str) -> ApiKey | None:
        doc = self._store.file.read()[0].table("keys").get(Q.key_hash == key_hash)
        return doc_key(doc) if isinstance(doc, dict) else None

    def revoke(self, app: str, name: str) -> None:
        """Delete a key for good."""
        with self._store.file.write() as db:
            _need_key(db, app, name)
            db.table("keys").remove((Q.app == app) & (Q.name == name))

    def set_active(self, app: str, name: str, active: bool) -> ApiKey:
        """Switch a key off or on again."""
        with self._store.file.write() as db:
            _need_key(db, app, name)
            db.table("keys").update({"active": active}, (Q.app == app) & (Q.name == name))
            return _need_key(db, app, name)

    def record_last_used(self, used: Mapping[tuple[str, str], str]) -> None:
        """Write a batch of (app, key name) -> last-used time; gone keys are skipped, and only
        `last_used` is touched, so a revoke or switch-off made meanwhile stands."""
        if not used:
            return
        with self._store.file.write() as db:
            table = db.table("keys")
            for (app, name), when in used.items():
                doc = table.get((Q.app == app) & (Q.name == name))
                # Batches may arrive out of order; never move last_used backwards.
                if isinstance(doc, dict) and (doc.get("last_used") or "") < when:
                    table.update({"last_used": when}, doc_ids=[doc.doc_id])


def _need_key(db: TinyDB, app: str, name: str) -> ApiKey:
    docs = db.table("keys").search(Q.app == app)
    for doc in docs:
        if doc["name"] == name:
            return doc_key(doc)
    hint = (
        f"the keys of {app} are: {', '.join(d['name'] for d in docs)}"
        if docs
        else f"{app} has no keys; make one with `space-dev keys create --name NAME --app {app}`"
    )
    raise SpaceDevError(f'no key named "{name}" in app "{app}"', hint)
