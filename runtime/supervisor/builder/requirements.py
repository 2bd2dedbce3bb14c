"""A micro's requirements.txt as the builder reads it: `deta` mapped to our own module, a server
added for the engine default, and the text its environment is keyed by."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# A requirement line's project name (PEP 508): what comes before extras, a version or a marker.
_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
# `-r other.txt` / `-c constraints.txt`: resolved against the requirements file's folder.
_INCLUDE = re.compile(r"^\s*(-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)\s*$")
# Servers the engine default's launcher serves an ASGI app with (runtime/in_micro/servers.py).
ASGI_SERVERS = frozenset({"uvicorn", "hypercorn"})
ENGINE_DEFAULT_SERVER = "uvicorn"
# A WSGI app (Flask, Django...) gets waitress instead, the WSGI server the launcher prefers:
# uvicorn would be installed for nothing, and Python's own wsgiref is no server to rely on.
WSGI_SERVER = "waitress"
WSGI_FRAMEWORKS = frozenset({"flask", "django", "bottle", "pyramid", "web-py", "cherrypy"})
ASGI_FRAMEWORKS = frozenset(
    {
        "fastapi",
        "starlette",
        "quart",
        "litestar",
        "sanic",
        "starlite",
        "responder",
        "blacksheep",
        "channels",
    }
)
# The name Deta's SDK had; PyPI now gives it to an unrelated project.
DETA = "deta"


def normalise(name: str) -> str:
    """A project name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Requirements:
    """What to install, and what was read to decide it."""

    lines: tuple[str, ...]  # the file's lines to install, `deta` taken out, includes made absolute
    names: frozenset[str]  # the normalised project names it lists
    dropped: tuple[str, ...]  # the `deta` lines taken out, as written
    added: tuple[str, ...]  # what the builder adds (the engine default's server)
    key_text: str  # everything the environment depends on, from these files

    @property
    def count(self) -> int:
        """How many packages are asked for (for the progress line)."""
        return len(self.names - {DETA}) + len(self.added)

    def install_text(self) -> str:
        return "\n".join([*self.lines, *self.added]) + "\n"


def read(path: Path, engine_default: bool) -> Requirements:
    """Read `path` (a requirements file); OSError if it cannot be read."""
    text = path.read_text(encoding="utf-8", errors="replace")
    key_parts = [text]
    lines: list[str] = []
    names: set[str] = set()
    dropped: list[str] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        include = _INCLUDE.match(line)
        if include:
            target = (path.parent / include.group(2)).resolve()
            try:
                key_parts.append(target.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                pass  # the installer says it is missing, with its own words
            lines.append(f"{include.group(1)} {target}")
            continue
        match = _NAME.match(line) if line and not line.startswith("-") else None
        name = normalise(match.group(1)) if match and "://" not in line else None
        if name == DETA:
            dropped.append(line)
            names.add(name)
            continue
        if name:
            names.add(name)
        lines.append(raw)
    added = (
        (_server(names),) if engine_default and not names & (ASGI_SERVERS | {WSGI_SERVER}) else ()
    )
    return Requirements(
        tuple(lines), frozenset(names), tuple(dropped), added, "\0".join([*key_parts, *added])
    )


def _server(names: set[str]) -> str:
    """The server the engine default's app needs, judged by the framework it lists."""
    wsgi = names & WSGI_FRAMEWORKS and not names & ASGI_FRAMEWORKS
    return WSGI_SERVER if wsgi else ENGINE_DEFAULT_SERVER
