"""The last requests the gate saw, in memory: method, path, micro, status, time taken, who, and
why the gate decided as it did. Never a secret: no cookie, no key, no query value is kept."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from enum import Enum

from runtime.auth.policy import Credential, Verdict
from runtime.auth.reasons import verdict_words, who

_PATH_KEPT = 300  # characters of a path; the rest is cut (a request line may be 64 KiB)
_QUERY_NAMES_KEPT = 20


class GateWhy(Enum):
    """A refusal the gate makes before or beside the route decision, with its words."""

    BAD_PATH = "the path cannot be read safely (an encoded slash, a NUL, a climb above the root)"
    RUNTIME_PATH = "paths under /__space/ belong to space-dev and are never forwarded"
    NO_MICRO = "no micro is mounted at this path"
    STARTING = "the app is still starting"
    CROSS_SITE_CHANGE = "cross-site request with the session (another origin's page acting here)"
    CROSS_SITE_LOAD = "cross-site load of a private resource"
    TOO_MANY_WRONG_KEYS = "too many wrong keys from this client: slowed down"


def masked_path(raw_path: str, query: str) -> str:
    """The path as the requests view keeps it: the query's names, never its values."""
    path = raw_path if len(raw_path) <= _PATH_KEPT else raw_path[:_PATH_KEPT] + "…"
    if not query:
        return path
    names = [part.partition("=")[0][:40] for part in query.split("&")[:_QUERY_NAMES_KEPT]]
    return path + "?" + "&".join(f"{name}=…" for name in names)


class RequestRecord:
    """One request; filled in as the gate goes, kept once the answer is made."""

    __slots__ = (
        "seq",
        "time",
        "method",
        "path",
        "micro",
        "sub_path",
        "status",
        "took",
        "credential",
        "why",
    )

    def __init__(self, method: str) -> None:
        self.seq = 0
        self.time = time.time()
        self.method = method
        self.path = ""
        self.micro = ""
        self.sub_path = ""  # the path relative to the micro, as the rules see it
        self.status = 0  # 0: no answer was made (the client went away, an internal error)
        self.took = 0.0  # seconds, until the last byte of the answer was handed on
        self.credential: Credential = None
        self.why: Verdict | GateWhy | None = None

    def reason(self) -> str:
        """Why the gate let it through or refused it, in words ("" when it did not decide)."""
        why = self.why
        if why is None:
            return ""
        if isinstance(why, GateWhy):
            return f"{self.status}: {why.value}"
        return verdict_words(why, self.status, self.micro, self.sub_path, self.credential)

    def as_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "micro": self.micro,
            "status": self.status,
            "took_ms": round(self.took * 1000, 1),
            "who": who(self.credential),
            "reason": self.reason(),
        }


class RequestLog:
    """A bounded ring of the app's last requests, followed live from the event loop."""

    def __init__(self, size: int) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=size)
        self._seq = 0
        self._waiters: list[asyncio.Event] = []

    @property
    def last_seq(self) -> int:
        return self._seq

    def add(self, record: RequestRecord) -> None:
        self._seq += 1
        record.seq = self._seq
        self._records.append(record)
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for event in waiters:
                event.set()

    def records(self, after: int = 0) -> list[RequestRecord]:
        return [r for r in self._records if r.seq > after]

    async def wait_after(self, seq: int, timeout: float) -> bool:
        """Wait until a request numbered above `seq` is kept (True) or `timeout` passes."""
        if self._seq > seq:
            return True
        event = asyncio.Event()
        self._waiters.append(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            if event in self._waiters:
                self._waiters.remove(event)
