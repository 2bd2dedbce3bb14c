"""Who is asking: API keys and session cookies checked against an in-memory copy of the data dir.

The request path never touches the disk: the copy (a store Snapshot) is replaced whenever the
data changes, by this process (`reload()` after each write) or by another (`space-dev keys ...`
tells the running runtime, and a file watch catches anything else). Verified cookies are
remembered, so a check costs a few dictionary lookups rather than an HMAC.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeSerializer

from runtime.auth.keys import hash_key, utc_now_text
from runtime.auth.policy import INVALID_KEY, InvalidKey
from runtime.datadir.store import Store
from runtime.datadir.values import SESSION_LIFETIME
from runtime.models import Principal

SESSION_COOKIE = "space_session"
SESSION_MAX_AGE = int(SESSION_LIFETIME.total_seconds())
_COOKIE_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class _LiveSession:
    principal: Principal
    expires_at: float  # epoch seconds


class Credentials:
    """Loaders for the gate: each returns who is asking, or says the credential is no good."""

    def __init__(self, store: Store, signer_secret: bytes | None = None) -> None:
        self._store = store
        secret = signer_secret if signer_secret is not None else store.secret()
        # One secret, a namespace ("salt") per purpose, as datasette does.
        self._session_signer = URLSafeSerializer(secret, salt="session")
        self._cookie_ids: dict[str, str | None] = {}  # cookie value -> session id (None: forged)
        self._last_used: dict[tuple[str, str], float] = {}
        self.snapshot = store.snapshot()
        self._index()

    # --- keeping the copy current -----------------------------------------------------------

    def reload(self) -> bool:
        """Read the data dir again if it changed; True when it did."""
        if self._store.version() == self.snapshot.version:
            return False
        self.snapshot = self._store.snapshot()
        self._index()
        return True

    def _index(self) -> None:
        snap = self.snapshot
        sessions: dict[str, _LiveSession] = {}
        for sid, session in snap.sessions.items():
            user = snap.users.get(session.user)
            if user is None:
                continue
            principal = Principal(
                kind="session", user=user.name, owner=user.owner, groups=frozenset(user.groups)
            )
            sessions[sid] = _LiveSession(principal, _epoch(session.expires))
        self._sessions = sessions
        self._key_principals = {
            digest: Principal(
                kind="api-key", owner=True, key_name=key.name, client_type=key.client_type or None
            )
            for digest, key in snap.keys_by_hash.items()
        }

    # --- the loaders ------------------------------------------------------------------------

    def key(self, app: str, presented: str) -> Principal | InvalidKey:
        """The key's principal, or INVALID_KEY if it is unknown, switched off or another app's."""
        digest = hash_key(presented)
        record = self.snapshot.keys_by_hash.get(digest)
        # Found by the SHA-256 of what was sent, never by comparing secrets: nothing about the
        # stored keys leaks through timing.
        if record is None:
            return INVALID_KEY
        if record.app != app or not record.active:
            return INVALID_KEY
        self._last_used[(record.app, record.name)] = time.time()  # formatted when flushed
        return self._key_principals[digest]

    def session(self, cookie: str) -> Principal | None:
        """The signed-in user of a `space_session` cookie, or None (no valid session)."""
        sid = self._cookie_ids.get(cookie, "")
        if sid == "":
            sid = self._unsign(cookie)
        if sid is None:
            return None
        live = self._sessions.get(sid)
        if live is None or live.expires_at <= time.time():
            return None
        return live.principal

    def session_id(self, cookie: str) -> str | None:
        """The session id a cookie carries, if its signature is good."""
        sid = self._cookie_ids.get(cookie, "")
        return self._unsign(cookie) if sid == "" else sid

    def _unsign(self, cookie: str) -> str | None:
        try:
            value = self._session_signer.loads(cookie)
            sid = value if isinstance(value, str) else None
        except (BadSignature, UnicodeError):
            # A cookie holding bytes that are not UTF-8 (aiohttp hands them on as surrogates)
            # is no session, as a forged one is: never a crash.
            sid = None
        if len(self._cookie_ids) >= _COOKIE_CACHE_LIMIT:
            self._cookie_ids.clear()  # forged cookies must not grow memory without bound
        self._cookie_ids[cookie] = sid
        return sid

    def sign_session(self, session_id: str) -> str:
        """The cookie value for a session id."""
        return self._session_signer.dumps(session_id)  # type: ignore[return-value]

    # --- bookkeeping ------------------------------------------------------------------------

    def flush_last_used(self) -> None:
        """Write the keys' "last used" times, gathered in memory since the last flush."""
        if not self._last_used:
            return
        used, self._last_used = self._last_used, {}
        self._store.keys.record_last_used(
            {key: utc_now_text(datetime.fromtimestamp(at, UTC)) for key, at in used.items()}
        )


def _epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
