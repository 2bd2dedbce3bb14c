"""The one error the Base emulator raises for a request it refuses: an HTTP status and messages."""

from __future__ import annotations


class BaseError(Exception):
    """A client error in Deta Base's terms: the API answers `status` with `{"errors": messages}`."""

    def __init__(self, status: int, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = list(messages)

    def __repr__(self) -> str:
        return f"BaseError({self.status}, {', '.join(map(repr, self.messages))})"
