"""Read a Spacefile (v0) as Space did: find it, parse it as YAML 1.2, check it, report it."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from runtime.errors import InvalidFile, Problem, SpaceDevError
from runtime.models import Spacefile
from runtime.spacefile import yaml12
from runtime.spacefile.checks import Checker, display

FILENAME = "Spacefile"

# What `check` gives: the Spacefile (None when there are errors), the errors, the warnings.
CheckResult = tuple[Spacefile | None, list[Problem], list[Problem]]


def check_text(
    data: bytes | str, path: Path, *, strict: bool = False, check_paths: bool = True
) -> CheckResult:
    """Check Spacefile text that lives (or would live) at `path`: (result, errors, warnings)."""
    checker = Checker(Path(os.path.abspath(path)), strict, check_paths)
    tree, problems = yaml12.parse(data)
    checker.errors.extend(replace(p, file=checker.file) for p in problems)
    if tree is None:
        if not problems:
            checker.error("", 1, "the Spacefile is empty", "start it with `v: 0` and a micros list")
        return None, checker.errors, checker.warnings
    result = checker.spacefile(tree)
    # Found rule by rule, reported top to bottom, as the user reads the file.
    errors = sorted(checker.errors, key=lambda p: p.line or 0)
    warnings = sorted(checker.warnings, key=lambda p: p.line or 0)
    if result is None or errors:
        return None, errors, warnings
    return replace(result, warnings=tuple(warnings)), errors, warnings


def find(app_dir: Path) -> Path:
    """The Spacefile of an app folder, or a SpaceDevError saying where we looked and what to do."""
    folder = Path(os.path.abspath(app_dir))
    if not folder.is_dir():
        raise SpaceDevError(
            f"app folder {folder} does not exist", "give the folder that holds the app's Spacefile"
        )
    path = folder / FILENAME
    if path.is_file():
        return path
    near = [
        p.name
        for p in sorted(folder.iterdir())
        if p.name.lower() in {"spacefile", "spacefile.yml", "spacefile.yaml"}
    ]
    hint = (
        f"found {near[0]}; rename it to {FILENAME}"
        if near
        else f"give the folder that holds the {FILENAME}, or create one there with `v: 0` "
        "and a micros list"
    )
    raise SpaceDevError(f"no {FILENAME} found: looked for {path}", hint)


def check(app_dir: Path, *, strict: bool = False, check_paths: bool = True) -> CheckResult:
    """Check an app folder's Spacefile for `validate`: (result or None, errors, warnings)."""
    path = find(app_dir)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SpaceDevError(f"cannot read {path}: {e.strerror}", "check its permissions") from e
    return check_text(data, path, strict=strict, check_paths=check_paths)


def load(app_dir: Path, *, strict: bool = False, check_paths: bool = True) -> Spacefile:
    """The app's Spacefile with every default applied, or InvalidFile listing every problem."""
    result, errors, _ = check(app_dir, strict=strict, check_paths=check_paths)
    if result is None:
        raise InvalidFile(
            display(find(app_dir)),
            errors,
            "fix these, then run `space-dev validate` to check again",
        )
    return result


def report(errors: list[Problem], warnings: list[Problem]) -> str:
    """What `space-dev validate` prints: `Spacefile OK` (`Spacefile OK, with 1 warning`) or
    every error, then any warnings."""
    if errors:
        lines = [f"error: {p}" for p in errors]
    elif warnings:
        count = len(warnings)
        lines = [f"{FILENAME} OK, with {count} warning{'s' if count != 1 else ''}"]
    else:
        lines = [f"{FILENAME} OK"]
    lines += [f"warning: {p}" for p in warnings]
    return "\n".join(lines)
