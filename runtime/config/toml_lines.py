"""Where each key of a TOML text stands: the line numbers tomllib parses past but does not keep."""

from __future__ import annotations

import tomllib
from typing import Any

Key = tuple[str | int, ...]  # a path into the document: ("apps", 0, "port")


class LineMap:
    """The line of every key path in a TOML text, which tomllib parses but does not keep.

    tomllib itself reads each statement (a header, or a key and its value) on its own, so quoted
    and dotted keys and inline tables count exactly as it counts them; headers are resolved here,
    arrays of tables counted in order. A statement still open (a multi-line array) is also tried
    closed with "]", so each element gets its own line.
    """

    def __init__(self, text: str) -> None:
        self.rows = text.splitlines(keepends=True)
        self.at: dict[Key, int] = {}
        self.arrays: dict[Key, int] = {}  # array-of-tables path -> elements seen so far

    def _scan(self) -> None:
        table: Key = ()
        statement = ""
        for n, row in enumerate(self.rows, start=1):
            if not statement and row.lstrip().startswith("["):
                table = self._header(tomllib.loads(row), n)
                continue
            statement += row
            for attempt in (statement, statement + "\n]"):
                try:
                    self._collect(tomllib.loads(attempt), table, n)
                except tomllib.TOMLDecodeError:
                    continue
                statement = "" if attempt is statement else statement
                break

    def _header(self, parsed: dict[str, Any], line: int) -> Key:
        parts: list[str] = []
        found: Any = parsed
        while isinstance(found, dict) and found:  # {"apps": {"routes": [{}]}} -> apps, routes
            ((key, found),) = found.items()
            parts.append(key)
        if isinstance(found, list):  # [[apps.routes]]: the next element of that array
            array = self._resolve(parts[:-1]) + (parts[-1],)
            self.arrays[array] = self.arrays.get(array, 0) + 1
            self.at.setdefault(array, line)
            table = array + (self.arrays[array] - 1,)
        else:
            table = self._resolve(parts)
        self.at[table] = line
        return table

    def _resolve(self, parts: list[str]) -> Key:
        # A header names the last element of each array of tables on its way: [apps.env].
        out: Key = ()
        for part in parts:
            out += (part,)
            if out in self.arrays:
                out += (self.arrays[out] - 1,)
        return out

    def _collect(self, value: Any, path: Key, line: int) -> None:
        self.at.setdefault(path, line)
        if isinstance(value, dict | list):
            for key, item in value.items() if isinstance(value, dict) else enumerate(value):
                self._collect(item, path + (key,), line)

    def line_of(self, path: Key) -> int | None:
        """The line of `path`, else of the nearest table holding it (where a missing key goes)."""
        if not self.at:
            try:
                self._scan()
            except (tomllib.TOMLDecodeError, ValueError):
                pass  # lenient: a smaller map only costs some problems their line
        while path:
            if path in self.at:
                return self.at[path]
            path = path[:-1]
        return None

    def column_in_file(self, path: Key, content: str, offset: int) -> int | None:
        """1-based file column of `offset` in the string at `path`, when written on one line."""
        line = self.line_of(path)
        row = self.rows[line - 1] if line else ""
        for quote in ('"', "'"):
            start = row.find(quote + content + quote)
            if start >= 0:
                return start + 2 + offset
        return None
