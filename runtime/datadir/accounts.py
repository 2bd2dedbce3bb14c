"""Local accounts: the owner made at the first start, the login rate limit, one-use login links."""

from __future__ import annotations

import secrets
import time
from collections import deque
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from runtime.auth.passwords import hash_password, new_password
from runtime.datadir.store import Store

OWNER_NAME = "dev"
LOGIN_LINK_MAX_AGE = 600  # seconds
FAILURES_ALLOWED = 5
FAILURE_WINDOW = 60.0  # seconds


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
    """Five failed logins for one user name within a minute lock that name for the rest of it."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, user: str) -> int:
        """Seconds to wait before trying `user` again; 0 when a try is allowed now."""
        failures = self._recent(user)
        if len(failures) < FAILURES_ALLOWED:
            return 0
        return max(1, int(failures[0] + FAILURE_WINDOW - time.monotonic()) + 1)

    def failed(self, user: str) -> None:
        self._recent(user).append(time.monotonic())

    def succeeded(self, user: str) -> None:
        self._failures.pop(user, None)

    def _recent(self, user: str) -> deque[float]:
        cutoff = time.monotonic() - FAILURE_WINDOW
        if len(self._failures) > 10_000:  # names tried long ago must not pile up forever
            self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > cutoff}
        failures = self._failures.setdefault(user, deque())
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures
