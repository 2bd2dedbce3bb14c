"""Local accounts: the owner made at the first start, the login rate limit, one-use login links."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from runtime.auth.failures import FailureCounter
from runtime.auth.passwords import hash_password, new_password
from runtime.config.defaults import (
    FAILURE_CLIENTS_KEPT,
    LOGIN_FAILURE_WINDOW_S,
    LOGIN_FAILURES_ALLOWED,
)
from runtime.datadir.store import Store

OWNER_NAME = "dev"
LOGIN_LINK_MAX_AGE = 600  # seconds


@dataclass(frozen=True)
class NewOwner:
    name: str
    password: str | None  # shown once when it was generated; None when it came from the shell


def ensure_owner(store: Store, password_from_env: str | None) -> NewOwner | None:
    """Make the owner `dev` when there is no account yet; None when there already is one."""
    if store.users.owner() is not None:
        return None
    password = password_from_env or new_password()
    store.users.add(OWNER_NAME, hash_password(password))
    return NewOwner(OWNER_NAME, None if password_from_env else password)


class LoginLinks:
    """One-use sign-in links (`/__space/login?token=...`), valid ten minutes, for this process."""

    def __init__(self, secret: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="login-token")
        self._unused: set[str] = set()

    def issue(self, user: str) -> str:
        nonce = secrets.token_urlsafe(16)
        self._unused.add(nonce)
        return str(self._serializer.dumps({"u": user, "n": nonce}))

    def consume(self, token: str) -> str | None:
        """The user the token signs in, once; None if forged, expired or already used."""
        try:
            data = self._serializer.loads(token, max_age=LOGIN_LINK_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("n") not in self._unused:
            return None
        self._unused.discard(data["n"])
        user = data.get("u")
        return user if isinstance(user, str) else None


class LoginLimiter:
    """`LOGIN_FAILURES_ALLOWED` failed logins of one user name from one client within
    `LOGIN_FAILURE_WINDOW_S` lock that name for that client for the rest of the window. Per
    client, so that whoever reaches the login page cannot keep the owner, at another address,
    from signing in with the right password."""

    def __init__(self) -> None:
        self._failures = FailureCounter(
            LOGIN_FAILURES_ALLOWED, LOGIN_FAILURE_WINDOW_S, FAILURE_CLIENTS_KEPT
        )

    def retry_after(self, user: str, client: str) -> int:
        """Seconds to wait before `user` may be tried again from `client`; 0 when it may now."""
        return self._failures.retry_after((user, client))

    def failed(self, user: str, client: str) -> None:
        self._failures.failed((user, client))

    def succeeded(self, user: str, client: str) -> None:
        self._failures.forget((user, client))
