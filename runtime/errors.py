"""The one error type users see: what went wrong, where, and what to do about it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One finding about a file: where it is, what is wrong, what would be right."""

    where: str  # e.g. "micros[1].engine", or "" for the whole file
    message: str
    hint: str = ""
    line: int | None = None
    file: str = ""  # shown as given, relative when possible

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place = f"{place}:{self.line}" if place else f"line {self.line}"
        if self.where:
            place = f"{place}: {self.where}" if place else self.where
        text = f"{place}: {self.message}" if place else self.message
        return f"{text}; {self.hint}" if self.hint else text


class SpaceDevError(Exception):
    """A user error: the CLI prints `message` and `hint` and exits 1, with no traceback.

    `status` is the answer when one reaches the runtime's pages or JSON API: by default the
    request was wrong (400); a subclass says otherwise."""

    status = 400

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class InvalidFile(SpaceDevError):
    """A file (Spacefile, space-dev.toml) with one or more problems, all reported at once."""

    def __init__(self, file: str, problems: Iterable[Problem], hint: str = "") -> None:
        self.file = file
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{file} has {count} {noun}:\n{lines}", hint)


class NotFound(SpaceDevError):
    """What was asked for is not there (404)."""

    status = 404


class Conflict(SpaceDevError):
    """A name or value already in use, or a run still under way (409)."""

    status = 409


class DataDirError(SpaceDevError):
    """The data dir holds something we cannot read or must not overwrite: the runtime's trouble
    rather than the request's (500)."""

    status = 500
