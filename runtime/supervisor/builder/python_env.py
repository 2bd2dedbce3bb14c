"""A python micro's own virtual environment: made from its requirements.txt under the data dir,
keyed by what it was made from, reused while that is unchanged."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runtime.supervisor.builder import installers, requirements
from runtime.supervisor.builder.steps import run_step, show_failure
from runtime.supervisor.output import Printer

REQUIREMENTS_FILE = "requirements.txt"
ENVS_FOLDER = "envs"  # under the data dir: envs/<app>/<micro>/<key>/
READY_MARKER = ".space-dev-ready"  # written last: an environment without it is half made
# Bumped when what the builder puts in an environment changes, so old ones are made again.
BUILDER_VERSION = "1"
INTERPRETER = sys.executable
# What an installer says when a pin has no release for this Python (pip, then uv).
_NO_WHEEL = re.compile(
    r"No matching distribution|Could not find a version|Requires-Python|requires-python|"
    r"no wheels? (with a matching|for)|Failed to build|failed to build|not supported on this "
    r"platform|only .* available|the requested Python version",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PythonEnv:
    """Where a micro's environment lives and what it is made from."""

    requirements: Path  # the micro's requirements.txt
    env_dir: Path  # .../envs/<app>/<micro>/<key>
    engine: str  # the Spacefile's engine (python3.9...), for the note on the interpreter
    engine_default: bool  # the launcher serves main.py's app: it needs a server
    as_of: str | None = None  # the day its requirements resolve as of (None: the newest)

    @property
    def bin_dir(self) -> Path:
        return self.env_dir / "bin"

    @property
    def ready(self) -> bool:
        return (self.env_dir / READY_MARKER).is_file()


def interpreter_key() -> str:
    """The interpreter environments are made with, as it enters their key."""
    return f"{sys.version}\0{os.path.realpath(INTERPRETER)}"


def plan(
    data_dir: Path, app: str, micro: str, src: Path, engine: str, engine_default: bool
) -> PythonEnv | None:
    """The environment this micro runs in, or None when it has no requirements.txt."""
    path = src / REQUIREMENTS_FILE
    try:
        reqs = requirements.read(path, engine_default)
    except OSError:
        return None
    day = installers.as_of()
    digest = hashlib.sha256(
        "\0".join((BUILDER_VERSION, interpreter_key(), day or "", reqs.key_text)).encode()
    ).hexdigest()[:16]
    return PythonEnv(path, micro_envs(data_dir, app, micro) / digest, engine, engine_default, day)


def micro_envs(data_dir: Path, app: str, micro: str) -> Path:
    return data_dir / ENVS_FOLDER / app / micro


def engine_note(python: PythonEnv) -> str | None:
    """Said once per micro: its engine names another Python than the one it runs on."""
    running = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if python.engine == running:
        return None
    return (
        f"runs on {running} (space-dev's own Python, {sys.version.split()[0]}), although its "
        f"engine says {python.engine}"
    )


async def prepare(
    name: str, python: PythonEnv, env: Mapping[str, str], printer: Printer
) -> str | None:
    """Make the environment unless it is ready; None on success, else what went wrong."""
    if python.ready:
        return None
    reqs = requirements.read(python.requirements, python.engine_default)
    for line in reqs.dropped:
        printer.line(
            name,
            f"requirements.txt: `{line}` is Deta's SDK, which PyPI no longer has "
            "under that name; the micro imports space-dev's own `deta` module "
            "instead, so it is not installed",
        )
    if reqs.added:
        printer.line(
            name,
            f"adding {', '.join(reqs.added)}: the engine default serves main.py's "
            "app with it, as Space's python engine did",
        )
    installer = installers.choose()
    if installer is None:
        return (
            "no installer: neither uv nor pip (22.3 or newer) is installed beside space-dev; "
            f"install one: {INTERPRETER} -m pip install uv"
        )
    began = time.monotonic()
    if python.env_dir.exists():  # half made (interrupted): start again
        await asyncio.to_thread(shutil.rmtree, python.env_dir, True)
    python.env_dir.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in env.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    made = await run_step(
        name,
        installer.make_env(python.env_dir, INTERPRETER),
        python.requirements.parent,
        clean,
        printer,
        f"making a virtual environment ({installer.name})",
    )
    if not made.ok:
        show_failure(name, printer, made)
        return _failure("making its virtual environment", installer.name, made.output, python)
    listing = python.env_dir / "space-dev-requirements.txt"
    listing.write_text(reqs.install_text(), encoding="utf-8")
    count = reqs.count
    packages = f"{count} package{'s' if count != 1 else ''}"
    day = python.as_of if installer.dates else None
    if python.as_of and not installer.dates:
        printer.line(
            name,
            f"this pip cannot leave out releases made after {python.as_of} "
            "(uv and newer pips can): the newest releases are installed",
        )
    done = await run_step(
        name,
        installer.install(python.env_dir, listing, day),
        python.requirements.parent,
        clean,
        printer,
        f"installing {packages} ({installer.name}{f', as of {day}' if day else ''})",
    )
    if not done.ok and day:
        # A pin on a release made after Space stopped (or an index that gives no upload
        # times): the newest releases, rather than no environment at all.
        printer.line(
            name,
            f"requirements.txt cannot be met as of {day} (when Space's builder "
            "could last install it); trying the newest releases",
        )
        done = await run_step(
            name,
            installer.install(python.env_dir, listing),
            python.requirements.parent,
            clean,
            printer,
            f"installing {packages} ({installer.name}, newest)",
        )
    if not done.ok:
        show_failure(name, printer, done)
        await asyncio.to_thread(shutil.rmtree, python.env_dir, True)
        return _failure("installing requirements.txt", installer.name, done.output, python)
    (python.env_dir / READY_MARKER).write_text(f"{installer.name}\n", encoding="utf-8")
    printer.line(name, f"installed in {time.monotonic() - began:.1f} s")
    return None


def _failure(what: str, installer: str, output: list[str], python: PythonEnv) -> str:
    tail = "\n".join(line for line in output[-12:] if line.strip())
    text = f"{what} failed ({installer}):\n{tail}"
    note = engine_note(python)
    if note and _NO_WHEEL.search("\n".join(output)):
        text += (
            f"\nHint: this micro {note}; a pin made for an older Python may have no release "
            "for this one. Loosen the pin in requirements.txt (e.g. `fastapi>=0.88`)."
        )
    return text


def prune(data_dir: Path, app: str, micro: str, keep: Path | None) -> None:
    """Remove the micro's other environments (its successor works); never `keep`."""
    folder = micro_envs(data_dir, app, micro)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry != keep and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
