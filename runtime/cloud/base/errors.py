"""The errors the Base emulator raises for a request it refuses: an HTTP status and messages,
and for a query Deta's two words with space-dev's own detail beside them."""

from __future__ import annotations

# What Deta answered for every query it refused (`{"errors": ["Bad query"]}`); the SDKs' own
# tests expect these words, so which rule the query broke travels apart, as `detail`.
BAD_QUERY = "Bad query"


class BaseError(Exception):
    """A client error in Deta Base's terms: the API answers `status` with `{"errors": messages}`.

    `detail`, when given, is what space-dev adds for the person: a header and the runtime's log
    on the API, the message itself on space-dev's own pages."""

    def __init__(self, status: int, *messages: str, detail: str = "") -> None:
        super().__init__("; ".join(messages) + (f" ({detail})" if detail else ""))
        self.status = status
        self.messages = list(messages)
        self.detail = detail

    def explained(self) -> list[str]:
        """The messages, the last followed by the detail: for space-dev's own pages and API."""
        if not self.detail:
            return list(self.messages)
        return [*self.messages[:-1], f"{self.messages[-1]}: {self.detail}"]

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self.messages))
        return f"{type(self).__name__}({self.status}, {shown}, detail={self.detail!r})"


class BadQuery(BaseError):
    """A query Deta would have refused: 400 "Bad query", with `detail` saying why."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, BAD_QUERY, detail=detail)
