"""What can be told about a micro's start command without running it, and from its failure: a
line written for Windows, a tool that is not there, how common dev servers are told their port."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

# What `space-dev up` is told to run micros as Space did (its `run` or engine default, no `dev`).
AS_SPACE = "space-dev up --as-space"

_WINDOWS_VARIABLE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")
_WINDOWS_SET = re.compile(r"(?:^|&&|&|;|\|\|)\s*set\s+([A-Za-z_][A-Za-z0-9_]*)=", re.IGNORECASE)
_ACTIVATED = re.compile(r"(?:^|[;&|]\s*)(?:source|\.)\s+[\"']?(\S+?/bin)/activate\b")
_SEPARATORS = re.compile(r"&&|\|\||[;|&()]")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Words that run the next word, and shell words that are no program of their own.
_PREFIXES = {"exec", "env", "time", "nice", "nohup", "command", "sudo"}
_BUILTINS = {
    "cd",
    "export",
    "set",
    "source",
    ".",
    "echo",
    "true",
    "false",
    "test",
    "[",
    "exit",
    "if",
    "then",
    "else",
    "fi",
    "for",
    "do",
    "done",
    "while",
    "unset",
    "wait",
    "trap",
    "sleep",
}
# Tools a micro's environment always has: python's (its own environment, else the runtime's) and
# node's (with node itself).
_PYTHON_TOOLS = {"python", "python3", "pip", "pip3"}
# Packages whose command is not named after them.
_BIN_OF_PACKAGE = {
    "@angular/cli": "ng",
    "@sveltejs/kit": "svelte-kit",
    "nuxt": "nuxi",
    "typescript": "tsc",
    "django": "django-admin",
    "@nestjs/cli": "nest",
    "@vue/cli-service": "vue-cli-service",
    "fastapi-cli": "fastapi",
}
# The shell's words for a program it did not find: dash, bash, zsh, busybox.
_NOT_FOUND = (
    re.compile(
        r"^(?:/bin/)?(?:sh|bash|dash)(?:: line \d+|: \d+)?: ([^:\s]+): "
        r"(?:command )?not found"
    ),
    re.compile(r"^zsh: command not found: (\S+)"),
    re.compile(r"^([^:\s]+): (?:command )?not found$"),
)
_SCRIPT_RUNNER = re.compile(r"^(?:npm|pnpm|yarn|bun)\s+(?:run(?:-script)?\s+)?([\w:.-]+)")


def windows_marks(command: str) -> list[str]:
    """Why `command` reads as written for Windows' cmd, which this system's `sh` does not run
    the same way (empty when nothing says so)."""
    found = []
    variables = sorted(set(_WINDOWS_VARIABLE.findall(command)))
    if variables:
        names = ", ".join(f"`%{v}%`" for v in variables)
        dollars = ", ".join(f"`${v}`" for v in variables)
        found.append(
            f"{names} is how Windows' cmd writes a variable; sh passes it as it is "
            f"(write {dollars})"
        )
    for name in _WINDOWS_SET.findall(command):
        found.append(
            f"`set {name}=` sets a variable in Windows' cmd only (sh: `{name}=value command`)"
        )
    for program in _raw_programs(command):
        if "\\" in program or program.lower().endswith(".exe"):
            found.append(f"`{program}` is a Windows program path")
    return found


def _raw_programs(command: str) -> list[str]:
    """The first word of each part as written (shlex would eat a Windows path's backslashes)."""
    found = []
    for part in _SEPARATORS.split(command):
        words = part.split()
        while words and (_ASSIGNMENT.match(words[0]) or words[0] in _PREFIXES):
            words = words[1:]
        if words:
            found.append(words[0].strip("\"'"))
    return found


def programs(command: str) -> list[str]:
    """The programs a shell command line runs, first word of each part, in order."""
    found = []
    for part in _SEPARATORS.split(command):
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        while words and (_ASSIGNMENT.match(words[0]) or words[0] in _PREFIXES):
            words = words[1:]
        if words and words[0] not in _BUILTINS and "$" not in words[0]:
            found.append(words[0])
    return found


def missing_tools(command: str, src: Path, family: str, path: str | None = None) -> list[str]:
    """The programs of `command` that neither PATH, nor the micro's node_modules/.bin, nor what
    its requirements.txt or package.json will install provide. Careful not to guess: a node
    micro whose packages are not installed yet may get any command from them, so then only a
    micro without a single dependency can lack one."""
    search = os.environ.get("PATH", "") if path is None else path
    if family == "python" and not (src / "requirements.txt").is_file():
        # Without requirements of its own a python micro runs on space-dev's own interpreter.
        search = os.pathsep.join((os.path.dirname(sys.executable), search))
    # `source venv/bin/activate && uvicorn ...`: that environment's commands come first.
    for folder in _ACTIVATED.findall(command):
        search = os.pathsep.join((str(src / folder), search))
    node_deps = _node_dependencies(src)
    python_deps = _python_requirements(src) if family == "python" else set()
    missing = []
    for program in programs(command):
        if "/" in program:
            if not (src / program).exists() and not Path(program).exists():
                missing.append(program)
            continue
        if shutil.which(program, path=search) or (src / "node_modules" / ".bin" / program).exists():
            continue
        if family == "python" and program in _PYTHON_TOOLS:
            continue
        if _normal(program) in python_deps:
            continue
        if node_deps is not None and (
            _provides(node_deps, program) or not (src / "node_modules").is_dir() and node_deps
        ):
            continue
        missing.append(program)
    return missing


def not_found_tool(lines: list[str]) -> str | None:
    """The program the shell said it did not find, from a process's last output lines."""
    for line in reversed(lines):
        text = line.strip()
        for pattern in _NOT_FOUND:
            match = pattern.match(text)
            if match:
                return match.group(1)
    return None


def script_of(command: str, src: Path) -> tuple[str, str] | None:
    """(name, text) of the package.json script a `npm run NAME` (yarn, pnpm, bun) command runs."""
    match = _SCRIPT_RUNNER.match(command.strip())
    if match is None:
        return None
    name = match.group(1)
    if name in ("install", "ci", "exec", "x") or command.strip().startswith("npx"):
        return None
    scripts = _package(src).get("scripts")
    if isinstance(scripts, dict) and isinstance(scripts.get(name), str):
        return name, scripts[name]
    return None


# How common dev servers are told their port: (pattern, what to do). Checked on the command and
# on the npm script it runs.
_PORT_WAYS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (
            r"\bmanage\.py\s+runserver\b",
            "Django's runserver takes its address as an argument: "
            "`python manage.py runserver 127.0.0.1:$PORT`",
        ),
        (
            r"\bflask\b.*\s(-p|--port)\b",
            "space-dev sets FLASK_RUN_PORT, but a `--port` in the command wins: "
            "write `--port $PORT`",
        ),
        (
            r"\bng\s+serve\b",
            "Angular's `ng serve` reads no variable for its port: add `--port $PORT`",
        ),
        (
            r"\bastro\s+dev\b",
            "Astro's dev server reads no variable for its port: add `--port $PORT`",
        ),
        (r"\bgatsby\s+develop\b", "Gatsby's dev server: add `--port $PORT`"),
        (r"\b(webpack\s+serve|webpack-dev-server)\b", "webpack's dev server: add `--port $PORT`"),
        (
            r"\b(next|nuxi?|react-scripts)\b.*\s(-p|--port)\s+\d",
            "it reads $PORT, but a port number in the command wins: write `--port $PORT`",
        ),
        (
            r"\bvite\b|\bsvelte-kit\s+dev\b",
            "Vite reads no variable for its port: add `--port $PORT` to the command (or "
            "`server.port` in its config)",
        ),
    )
)


def port_way(command: str, src: Path) -> str:
    """How the dev server of `command` is made to listen on $PORT, as advice."""
    script = script_of(command, src)
    texts = [command] + ([script[1]] if script else [])
    for pattern, advice in _PORT_WAYS:
        if any(pattern.search(text) for text in texts):
            if script and not pattern.search(command):
                return f"{advice} (in the `{script[0]}` script of package.json, or after ` -- `)"
            return advice
    return "make it listen on $PORT (127.0.0.1:$PORT)"


def _package(src: Path) -> dict[str, object]:
    try:
        data = json.loads((src / "package.json").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _node_dependencies(src: Path) -> set[str] | None:
    """The packages package.json asks for (None without a package.json)."""
    if not (src / "package.json").is_file():
        return None
    data = _package(src)
    found: set[str] = set()
    for key in ("dependencies", "devDependencies", "optionalDependencies"):
        deps = data.get(key)
        if isinstance(deps, dict):
            found.update(str(name) for name in deps)
    return found


def _provides(packages: set[str], program: str) -> bool:
    return any(
        name.rpartition("/")[2] == program or _BIN_OF_PACKAGE.get(name) == program
        for name in packages
    )


def _python_requirements(src: Path) -> set[str]:
    """The normalised names requirements.txt asks for, with the commands they bring."""
    try:
        text = (src / "requirements.txt").read_text()
    except OSError:
        return set()
    found = set()
    for line in text.splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#", 1)[0])
        if match:
            name = _normal(match.group(1))
            found.add(name)
            bin_name = _BIN_OF_PACKAGE.get(name)
            if bin_name:
                found.add(_normal(bin_name))
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
