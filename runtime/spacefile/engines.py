"""The engine table: which engines exist, which Space itself had, and how each one starts."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Family = Literal["python", "node", "static", "frontend", "custom"]
Serving = Literal["static", "node"]


@dataclass(frozen=True)
class SpaceBuild:
    """How Space built a frontend engine's micro and ran what the build made."""

    output: str  # the folder the build writes, relative to `src`
    # "static": that folder is served as files; "node": a Node.js server inside it runs.
    serving: Serving
    start: str = ""  # "node": the server's file, relative to `output`
    # "static": other folders a build of this engine may write, when `output` is not there.
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Engine:
    """How micros of one engine run."""

    name: str
    family: Family
    # Shell command used when the micro has neither `dev` nor `run`; None: it must have one.
    default_command: str | None
    in_space: bool = True  # False: accepted with a warning, refused under `validate --strict`
    # A frontend engine: what Space built and ran when the micro had no `dev` line.
    space_build: SpaceBuild | None = None


# The legacy python default: serve `main.py`'s `app` object (aiohttp, ASGI or WSGI). The launcher
# runs by its file path, so an app with a `runtime` package of its own cannot shadow it.
PYAPP = Path(__file__).parent.parent / "in_micro" / "pyapp.py"  # run by its path in the micro
PYTHON_DEFAULT = f"python {shlex.quote(str(PYAPP))} main:app"
# What Space's build ran for a frontend micro without `commands`.
BUILD_COMMAND = "npm run build"
# A frontend engine's dev server: what `space dev` ran (the command a `dev` line replaces);
# space-dev runs a built micro instead unless the micro has a `dev` line.
_DEV_SERVER = "npm run dev -- --port $PORT"
# Vite and Vue CLI write dist/, Create React App build/ (a Vite React app: dist/).
_VITE = SpaceBuild("dist", "static", also=("build",))
_CRA = SpaceBuild("build", "static", also=("dist",))

ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine("static", "static", None),
        Engine("react", "frontend", "npm run start -- --port $PORT", space_build=_CRA),
        Engine("svelte", "frontend", _DEV_SERVER, space_build=_VITE),
        Engine("vue", "frontend", _DEV_SERVER, space_build=_VITE),
        # The standalone output carries its own server and the node_modules it needs.
        Engine(
            "next",
            "frontend",
            _DEV_SERVER,
            space_build=SpaceBuild(".next/standalone", "node", "server.js"),
        ),
        Engine(
            "nuxt",
            "frontend",
            _DEV_SERVER,
            space_build=SpaceBuild(".output", "node", "server/index.mjs"),
        ),
        # @sveltejs/adapter-node's build/ (its index.js is the server).
        Engine(
            "svelte-kit",
            "frontend",
            _DEV_SERVER,
            space_build=SpaceBuild("build", "node", "index.js"),
        ),
        Engine("python3.8", "python", PYTHON_DEFAULT),
        Engine("python3.9", "python", PYTHON_DEFAULT),
        Engine("nodejs16", "node", "node index.js"),
        Engine("custom", "custom", None),
    )
}

SPACE_ENGINES: tuple[str, ...] = tuple(ENGINES)

# Newer runtimes Space never offered; they run here, with a warning.
_NEWER = re.compile(r"^(python3\.(1[0-9])|nodejs(18|20|22))$")


def lookup(name: str) -> Engine | None:
    """The engine called `name`, or None if there is no such engine."""
    if name in ENGINES:
        return ENGINES[name]
    if _NEWER.match(name):
        if name.startswith("python"):
            return Engine(name, "python", PYTHON_DEFAULT, in_space=False)
        return Engine(name, "node", "node index.js", in_space=False)
    return None


def start_command(engine: Engine, run: str | None, dev: str | None) -> str | None:
    """The shell command a micro starts with: `dev`, else `run`, else the engine's default."""
    return dev or run or engine.default_command


# Commands that reload by themselves when a source file is saved. Each pattern names the tool
# the log shows. `npm run dev` and its kin are dev servers by convention (Vite, Next, nodemon...).
_OWN_RELOADERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern))
    for label, pattern in (
        ("--reload", r"\b(uvicorn|hypercorn|gunicorn)\b.*\s--reload\b"),
        ("nodemon", r"\bnodemon\b"),
        ("node --watch", r"\b(node|bun|deno)\b[^;&|]*\s--(watch|hot)\b"),
        ("tsx watch", r"\btsx\s+watch\b"),
        ("ts-node-dev", r"\b(ts-node-dev|tsnd|node-dev)\b"),
        ("flask --debug", r"\bflask\b.*\s(--debug|--reload)\b|\bFLASK_DEBUG=(1|true)\b"),
        ("air", r"(^|[;&|(]\s*)air(\s|$)"),
        ("runserver", r"\bmanage\.py\s+runserver\b(?!.*--noreload)"),
        ("watchmedo", r"\bwatchmedo\b"),
        ("a dev server", r"\b(npm|pnpm|yarn|bun)\s+(run\s+)?dev\b"),
        (
            "a dev server",
            r"\b(vite|next\s+dev|nuxi?\s+dev|astro\s+dev|webpack\s+serve|"
            r"webpack-dev-server|react-scripts\s+start|ng\s+serve)\b(?!\s+build)",
        ),
    )
)


def own_reloader(engine: Engine, command: str, built: bool = False) -> str | None:
    """What reloads this command on a save by itself (a frontend engine's dev server, or a
    known reloader named in it), or None when only space-dev does (`built`: a frontend micro
    run from its build, which space-dev builds again on a save)."""
    if engine.family == "frontend" and not built:
        return "a dev server"
    for label, pattern in _OWN_RELOADERS:
        if pattern.search(command):
            return label
    return None
