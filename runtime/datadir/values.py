"""The data dir's values: a Session, the gate's Snapshot, and documents <-> frozen values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from runtime.datadir.datafile import utc_text
from runtime.models import ApiKey, User

SESSION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the cookie holds `id`, the server decides whether it still counts."""

    id: str
    user: str
    created: str
    expires: str

    def expired(self, now: datetime | None = None) -> bool:
        """True once `expires` has passed (text comparison is exact for our fixed format)."""
        return utc_text(now) >= self.expires


@dataclass(frozen=True)
class Snapshot:
    """Everything the gate needs, read in one go from one version of the store file."""

    version: tuple[int, int, int]
    users: Mapping[str, User] = field(default_factory=dict)
    keys_by_hash: Mapping[str, ApiKey] = field(default_factory=dict)
    sessions: Mapping[str, Session] = field(default_factory=dict)
    auth: Mapping[str, Mapping[str | None, bool]] = field(default_factory=dict)  # app -> micro
    env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    project_keys: Mapping[str, str] = field(default_factory=dict)  # app -> DETA_PROJECT_KEY

    @property
    def owner(self) -> User | None:
        return next((u for u in self.users.values() if u.owner), None)

    def session(self, session_id: str, now: datetime | None = None) -> Session | None:
        """The live session with this id, or None (unknown, expired, or its user is gone)."""
        found = self.sessions.get(session_id)
        if found is None or found.expired(now) or found.user not in self.users:
            return None
        return found

    def auth_enabled(self, app: str, micro: str) -> bool:
        """Whether the gate guards this micro: its own switch, else the app's, else on."""
        return enabled_in(self.auth.get(app, {}), micro)


def enabled_in(switches: Mapping[str | None, bool], micro: str) -> bool:
    if micro in switches:
        return switches[micro]
    return switches.get(None, True)


def user_doc(user: User) -> dict[str, Any]:
    return {**asdict(user), "groups": list(user.groups)}


def doc_user(doc: Mapping[str, Any]) -> User:
    return User(
        name=doc["name"],
        password_hash=doc["password_hash"],
        groups=tuple(doc.get("groups", ())),
        owner=bool(doc.get("owner", False)),
    )


def doc_session(doc: Mapping[str, Any]) -> Session:
    return Session(id=doc["id"], user=doc["user"], created=doc["created"], expires=doc["expires"])


def doc_key(doc: Mapping[str, Any]) -> ApiKey:
    fields = ApiKey.__dataclass_fields__
    return ApiKey(**{k: v for k, v in doc.items() if k in fields})
