"""A frontend micro run as Space ran it: built, the build's output copied to a folder of its own
(the last good build keeps serving while the next one is made), then served as files or
started as the Node.js server the build made."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from runtime.models import Micro
from runtime.spacefile.engines import BUILD_COMMAND, Engine

PUBLISHED_FOLDER = "builds"  # under the data dir: builds/<app>/<micro>/<n>/
CURRENT = "current"  # builds/<app>/<micro>/current -> the newest good build
# Published builds kept: the newest, and the one a process being replaced still runs from.
KEPT = 2


@dataclass(frozen=True)
class Publish:
    """Where a build's output is taken from and published to."""

    src: Path
    outputs: tuple[Path, ...]  # the folder the build writes, then others it may write instead
    folder: Path  # builds/<app>/<micro>
    # Folders of `src` copied into the published build (src-relative, build-relative).
    extras: tuple[tuple[str, str], ...] = ()
    # A Node.js server that finds its packages (and `"type": "module"`) in `src`.
    link_packages: bool = False
    # Files served as they are: the last build's files the new one lacks (the hashed assets of
    # a page loaded just before the swap) are kept one build longer.
    carry_over: bool = False

    @property
    def current(self) -> Path:
        return self.folder / CURRENT


@dataclass(frozen=True)
class FrontendRun:
    """How one frontend micro runs from its build."""

    commands: tuple[str, ...]  # the build
    writes: tuple[Path, ...]  # what the build writes: not its source, no reason to build again
    publish: Publish | None  # None: run in place (the nearest thing to Space's build)
    command: str | None  # the server's shell command; None: `publish.current` served as files
    note: str | None = None  # said once: how this differs from Space, and what to change


def published_folder(data_dir: Path, app: str, micro: str) -> Path:
    return data_dir / PUBLISHED_FOLDER / app / micro


def plan(micro: Micro, engine: Engine, data_dir: Path, app: str) -> FrontendRun:
    """Space's build and start for a frontend micro, or the nearest thing that works here."""
    build = engine.space_build
    assert build is not None, engine.name
    src = micro.src
    folder = published_folder(data_dir, app, micro.name)
    commands = micro.commands or (BUILD_COMMAND,)
    if build.serving == "static":
        first = micro.serve or build.output
        outputs = (first,) if micro.serve else (first, *build.also)
        note = None
        if micro.run:
            note = (
                f"the {engine.name} engine serves its build as files, as on Space; its "
                f"`run` command is not used (a `dev` line runs a dev server instead)"
            )
        return FrontendRun(
            commands,
            tuple(src / o for o in outputs),
            Publish(src, tuple(src / o for o in outputs), folder, carry_over=True),
            None,
            note,
        )
    writes = (src / build.output.split("/")[0],)
    if micro.run:
        return FrontendRun(commands, writes, None, micro.run)
    if engine.name == "svelte-kit" and not _uses(src, "svelte.config", "@sveltejs/adapter-node"):
        return FrontendRun(
            commands,
            (*writes, src / ".svelte-kit"),
            None,
            "npx vite preview --port $PORT --strictPort --host 127.0.0.1",
            "svelte.config.js does not use @sveltejs/adapter-node, whose server Space ran: "
            "serving the build with `vite preview` instead (to run as on Space: npm i -D "
            "@sveltejs/adapter-node, and `import adapter from '@sveltejs/adapter-node'` in "
            "svelte.config.js)",
        )
    if engine.name == "next" and not _uses(src, "next.config", "standalone"):
        return FrontendRun(
            commands,
            writes,
            None,
            "npx next start --port $PORT --hostname 127.0.0.1",
            "next.config.js does not set `output: 'standalone'`, whose server Space ran: "
            "serving the build with `next start` instead (to run as on Space: add "
            "`output: 'standalone'` to next.config.js)",
        )
    if engine.name == "nuxt" and _nuxt_2(src):
        return FrontendRun(
            commands,
            (*writes, src / ".nuxt"),
            None,
            "npx nuxt start --port $PORT",
            "Nuxt 2 builds no .output server, which Space's nuxt engine ran (Nuxt 3): serving "
            "the build with `nuxt start` instead",
        )
    extras = (
        ((".next/static", ".next/static"), ("public", "public")) if engine.name == "next" else ()
    )
    publish = Publish(
        src, (src / build.output,), folder, extras, link_packages=engine.name == "svelte-kit"
    )
    server = shlex.quote(str(publish.current / build.start))
    return FrontendRun(commands, writes, publish, _SERVER_PREFIX.get(engine.name, "") + server)


_SERVER_PREFIX = {
    # Next's standalone server binds $HOSTNAME (else every interface), the shell's machine name.
    "next": "HOSTNAME=127.0.0.1 node ",
    # adapter-node takes the page's origin and the client's address from the gate's headers
    # (which no client can set), unless the app says otherwise: a form posted through an
    # https tunnel passes SvelteKit's origin check.
    "svelte-kit": "PROTOCOL_HEADER=${PROTOCOL_HEADER:-x-forwarded-proto} "
    "HOST_HEADER=${HOST_HEADER:-x-forwarded-host} "
    "ADDRESS_HEADER=${ADDRESS_HEADER:-x-forwarded-for} node ",
    "nuxt": "node ",
}


def _uses(src: Path, config: str, needle: str) -> bool:
    """Whether the framework's config file (`svelte.config.js`, `.mjs`, `.ts`...) names
    `needle` in its text."""
    for path in sorted(src.glob(config + ".*")):
        try:
            if needle in path.read_text(encoding="utf-8", errors="replace"):
                return True
        except OSError:
            continue
    return False


def _nuxt_2(src: Path) -> bool:
    try:
        text = (src / "package.json").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r'"nuxt"\s*:\s*"[\^~>=v ]*2\.', text) is not None


def publish(plan: Publish) -> tuple[str | None, str | None]:
    """Copy the build's output to a new numbered folder and point `current` at it, in one
    step; older ones beyond KEPT are removed. Returns (error, note)."""
    found = next((o for o in plan.outputs if o.is_dir()), None)
    if found is None:
        wanted = os.path.relpath(plan.outputs[0], plan.src)
        return (
            f"the build wrote no {wanted}/ folder, which is what runs; check the build's "
            "output folder (a static engine's `serve` names it)"
        ), None
    note = None
    if found != plan.outputs[0]:
        note = (
            f"the build wrote {os.path.relpath(found, plan.src)}/, not "
            f"{os.path.relpath(plan.outputs[0], plan.src)}/: serving that (`serve: "
            f"{os.path.relpath(found, plan.src)}` in the Spacefile says so)"
        )
    plan.folder.mkdir(parents=True, exist_ok=True)
    previous = max(_numbered(plan.folder), default=0)
    number = previous + 1
    staging = plan.folder / f".{number}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(found, staging, symlinks=True)
    for inside_src, inside_build in plan.extras:
        if (plan.src / inside_src).is_dir():
            shutil.copytree(
                plan.src / inside_src, staging / inside_build, symlinks=True, dirs_exist_ok=True
            )
    if plan.link_packages:
        if not (staging / "node_modules").exists() and (plan.src / "node_modules").is_dir():
            (staging / "node_modules").symlink_to(plan.src / "node_modules")
        if not (staging / "package.json").exists() and (plan.src / "package.json").is_file():
            shutil.copy2(plan.src / "package.json", staging / "package.json")
    built = [
        os.path.relpath(os.path.join(root, name), staging)
        for root, _, names in os.walk(staging)
        for name in names
    ]
    (plan.folder / f"{number}.files").write_text(json.dumps(built))
    if plan.carry_over and previous:
        _carry_over(plan.folder / str(previous), plan.folder / f"{previous}.files", staging)
    os.rename(staging, plan.folder / str(number))
    link = plan.folder / f".{CURRENT}.partial"
    link.unlink(missing_ok=True)
    link.symlink_to(str(number))
    os.replace(link, plan.current)  # atomic: a request sees the old build or the new one
    for old in sorted(_numbered(plan.folder))[:-KEPT]:
        shutil.rmtree(plan.folder / str(old), ignore_errors=True)
        (plan.folder / f"{old}.files").unlink(missing_ok=True)
    return None, note


def _carry_over(previous: Path, listing: Path, staging: Path) -> None:
    """Copy the files the previous build made (not those it carried itself) that the new one
    lacks: each is kept for one build, never piled up."""
    try:
        names = json.loads(listing.read_text())
    except (OSError, ValueError):
        return
    for name in names:
        target = staging / name
        if not os.path.lexists(target) and (previous / name).is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(previous / name, target)


def _numbered(folder: Path) -> list[int]:
    return [int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir()]
