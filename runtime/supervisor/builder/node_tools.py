"""Which package manager installs a node micro's packages, from which lockfile, and how: the
lockfile that covers package.json wins; a tool that is not installed runs through Node's
corepack (a pinned release fetched from the registry), else npm does the job."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from runtime.config.defaults import PNPM_BY_LOCKFILE, SPACE_NODE_MAJOR, YARN_CLASSIC
from runtime.supervisor.builder import lockfiles
from runtime.supervisor.builder.installers import end_of
from runtime.supervisor.builder.lockfiles import NPM_LOCKS, PNPM_LOCK, YARN_LOCK

# For a tool run through corepack: no question asked (nobody answers it), and a package.json
# whose `packageManager` names another tool is still installed.
COREPACK_ENV = {"COREPACK_ENABLE_DOWNLOAD_PROMPT": "0", "COREPACK_ENABLE_STRICT": "0"}
_QUIET = ("--no-audit", "--no-fund")
# `yarn` and `pnpm` scripts that run through corepack, last on a node micro's PATH when the
# machine has neither: its `run`, `dev` and `commands` may call them, as its install did.
COREPACK_SHIMS = Path(__file__).resolve().parents[2] / "in_micro" / "corepack"


@dataclass(frozen=True)
class Install:
    """One way to install a micro's packages."""

    tool: str  # npm, yarn or pnpm
    lockfile: str | None  # the lockfile it installs from; None: package.json alone
    program: tuple[str, ...]  # ("yarn",), or ("corepack", "yarn@1.22.22+sha512...")
    locked: bool  # the lockfile covers package.json: install exactly what it says
    notes: tuple[str, ...] = ()  # why this way, for the log

    def command(self, as_of: str | None) -> tuple[str, ...]:
        """The install command; `as_of` (a day) leaves out npm releases made after it."""
        before = (f"--before={end_of(as_of)}",) if as_of and self.tool == "npm" else ()
        if self.tool == "npm":
            if self.locked:
                return (*self.program, "ci", *_QUIET)
            return (*self.program, "install", *_QUIET, *before)
        if self.tool == "yarn":
            # A lockfile that does not cover package.json is completed for this install only
            # (`--pure-lockfile` leaves the app's yarn.lock as it is).
            how = "--frozen-lockfile" if self.locked else "--pure-lockfile"
            return (*self.program, "install", how, "--non-interactive")
        how = "--frozen-lockfile" if self.locked else "--no-frozen-lockfile"
        return (*self.program, "install", how)

    def unlocked(self) -> Install:
        """The same tool, completing its lockfile rather than refusing what it lacks."""
        return replace(self, locked=False)

    @property
    def label(self) -> str:
        """How the progress line names it: `npm ci`, `yarn install via corepack`."""
        verb = "ci" if self.tool == "npm" and self.locked else "install"
        via = " via corepack" if self.program[0] == "corepack" else ""
        return f"{self.tool} {verb}{via}"

    @property
    def uses_corepack(self) -> bool:
        return self.program[0] == "corepack"


def choose(folder: Path, env: Mapping[str, str]) -> Install:
    """How to install `folder`'s packages, with the reasons when it is not the plain way."""
    manifest = lockfiles.read_manifest(folder)
    present = [name for name in (PNPM_LOCK, YARN_LOCK, *NPM_LOCKS) if (folder / name).is_file()]
    if "npm-shrinkwrap.json" in present and "package-lock.json" in present:
        present.remove("package-lock.json")  # npm reads the shrinkwrap, never both
    if not present:
        return Install("npm", None, ("npm",), False)
    lacking = {name: lockfiles.lacks(folder / name, manifest) for name in present}
    covering = [name for name in present if lacking[name] == []]
    # The lockfile that covers package.json first; among equals, pnpm, yarn, npm (as each
    # tool's docs have it: a pnpm or yarn lockfile beside npm's is the one the app uses).
    order = covering + [name for name in present if name not in covering]
    notes: list[str] = []
    if len(present) > 1 and covering and covering[0] != present[0]:
        notes.append(
            f"{present[0]} does not lock {_some(lacking[present[0]] or [])} as "
            f"package.json asks; {covering[0]} does: installing from it"
        )
    for name in order:
        tool = _tool_of(name)
        program, why = _program(tool, folder / name, manifest, env)
        if program is None:
            notes.append(why)
            continue
        if why:
            notes.append(why)
        locked = name in covering
        if not locked:
            missing = lacking[name]
            notes.append(
                f"{name} does not lock {_some(missing or [])} as package.json asks: "
                f"{tool} resolves {'it' if missing and len(missing) == 1 else 'them'} "
                "and keeps the rest as locked"
                if missing
                else f"{name} cannot be read: {tool} installs from package.json"
            )
        return Install(tool, name, program, locked, tuple(notes))
    notes.append(
        f"npm installs from package.json alone ({', '.join(present)} "
        f"{'is' if len(present) == 1 else 'are'} for a tool this machine lacks)"
    )
    return Install("npm", None, ("npm",), False, tuple(notes))


def shims_env(folder: Path, env: Mapping[str, str]) -> dict[str, str]:
    """What a node micro's environment adds so that its commands (`yarn dev`, `pnpm build`)
    find yarn and pnpm when this machine lacks them: `shims` (scripts that run corepack) last
    on PATH, and the release each runs, as its install chose; {} when nothing is missing or
    there is no corepack."""
    path = env.get("PATH")
    shims = COREPACK_SHIMS
    if not shutil.which("corepack", path=path):
        return {}
    manifest = lockfiles.read_manifest(folder)
    added: dict[str, str] = {}
    for tool in ("yarn", "pnpm"):
        if _installed(tool, path):
            continue
        program, _ = _program(
            tool,
            folder / (YARN_LOCK if tool == "yarn" else PNPM_LOCK),
            manifest,
            {"PATH": ""},
            assume_corepack=True,
        )
        added[f"SPACE_DEV_{tool.upper()}"] = (
            program[1]
            if program is not None and program[0] == "corepack"
            else YARN_CLASSIC
            if tool == "yarn"
            else PNPM_BY_LOCKFILE[max(PNPM_BY_LOCKFILE)]
        )
    if not added:
        return {}
    return {
        **added,
        **COREPACK_ENV,
        "PATH": os.pathsep.join(p for p in (path or "", str(shims)) if p),
    }


def _installed(tool: str, path: str | None) -> bool:
    """Whether `tool` is on PATH, space-dev's own corepack scripts aside."""
    found = shutil.which(tool, path=path)
    return found is not None and Path(found).parent != COREPACK_SHIMS


def _tool_of(lockfile: str) -> str:
    return {PNPM_LOCK: "pnpm", YARN_LOCK: "yarn"}.get(lockfile, "npm")


def _program(
    tool: str, lock: Path, manifest: dict, env: Mapping[str, str], assume_corepack: bool = False
) -> tuple[tuple[str, ...] | None, str]:
    """The command that runs `tool` here, and a note when it is not the tool itself (or why
    there is none)."""
    path = env.get("PATH")
    if _installed(tool, path):
        return (tool,), ""
    if tool == "npm":
        return None, "npm is not installed: install Node.js, which brings it"
    if not shutil.which("corepack", path=path) and not assume_corepack:
        return None, (
            f"{lock.name} is installed with {tool}, which is not installed, nor is "
            f"corepack (which fetches it): npm install -g {tool}"
        )
    wanted = manifest.get("packageManager")
    if isinstance(wanted, str) and wanted.startswith(f"{tool}@"):
        # The app names its release (with its hash, as `corepack use` writes it): corepack
        # reads it from package.json.
        release = wanted.split("+")[0]
        return ("corepack", tool), (
            f"{tool} is not installed: corepack runs the {release} "
            "package.json names (fetched from the registry once)"
        )
    if tool == "yarn":
        if lockfiles.yarn_berry(lock):
            return None, (
                "yarn.lock is made by yarn 2 or newer and package.json names no "
                "`packageManager`: install yarn (npm install -g yarn), or add "
                '`"packageManager": "yarn@<version>"` to package.json'
            )
        spec = YARN_CLASSIC
    else:
        spec = PNPM_BY_LOCKFILE.get(lockfiles.pnpm_major(lock) or "", "")
        if not spec:
            return None, (
                f"{lock.name} has a format this builder does not know: install "
                "pnpm (npm install -g pnpm)"
            )
    return ("corepack", spec), (
        f"{tool} is not installed: corepack runs {spec.split('+')[0]} "
        "(fetched from the registry once)"
    )


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


@lru_cache(maxsize=8)
def node_version(path: str | None) -> str | None:
    """The version of the `node` on this PATH (`20.20.2`), None when there is none."""
    node = shutil.which("node", path=path)
    if node is None:
        return None
    try:
        done = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().lstrip("v") or None


def engine_major(engine: str, family: str) -> int | None:
    """The Node major version Space ran this engine on (nodejs16, and the frontend engines
    it built on Node 16); a `nodejsNN` engine names its own."""
    if engine.startswith("nodejs") and engine[6:].isdigit():
        return int(engine[6:])
    if family in ("frontend", "static"):
        return SPACE_NODE_MAJOR
    return None


def engine_note(engine: str, family: str, version: str | None) -> str | None:
    """Said once per micro: it runs (or builds) on another Node than its engine's."""
    wanted = engine_major(engine, family)
    if wanted is None or version is None or version.split(".")[0] == str(wanted):
        return None
    if engine.startswith("nodejs"):
        return f"runs on Node {version} (this machine's), although its engine says {engine}"
    return (
        f"builds on Node {version} (this machine's), although Space built its engine "
        f"{engine} on Node {wanted}"
    )
