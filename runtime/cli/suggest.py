"""`did you mean`: the command or flag closest to a mistyped one (difflib), for usage errors."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterator

_CHOICE = re.compile(r"invalid choice: '([^']*)'")
_UNKNOWN = re.compile(r"unrecognized arguments: (.*)")
_CUTOFF = 0.6  # difflib's default: `stauts` finds `status`, `zzz` finds nothing


def suggestion(message: str, parser: argparse.ArgumentParser) -> str:
    """A line to add to argparse's `message` from `parser`, naming what was likely meant; ""
    when nothing is close enough."""
    choice = _CHOICE.search(message)
    if choice:
        names = [name for action in _subcommands(parser) for name in action.choices]
        close = difflib.get_close_matches(choice.group(1), names, n=1, cutoff=_CUTOFF)
        return f"\ndid you mean `{parser.prog} {close[0]}`?" if close else ""
    unknown = _UNKNOWN.search(message)
    if unknown:
        flags = sorted(set(_flags(parser)))
        said = []
        for token in unknown.group(1).split():
            typed = token.split("=", 1)[0]
            if not typed.startswith("-"):
                continue
            close = difflib.get_close_matches(typed, flags, n=1, cutoff=_CUTOFF)
            if close:
                said.append(f"{typed} -> {close[0]}")
        return f"\ndid you mean: {', '.join(said)}?" if said else ""
    return ""


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[argparse._SubParsersAction]:  # type: ignore[type-arg]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield action


def _flags(parser: argparse.ArgumentParser) -> Iterator[str]:
    """Every option string of `parser` and of the commands under it."""
    for action in parser._actions:
        yield from (o for o in action.option_strings if o.startswith("--"))
    for sub in _subcommands(parser):
        for child in set(sub.choices.values()):
            yield from _flags(child)
