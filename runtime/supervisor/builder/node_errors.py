"""What a failed npm, yarn or pnpm install comes down to, in a line or two a person can act on,
read from the tool's own output (and package.json checked as JSON before any tool reads it)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# A package named with its version or range: `is-number@99.0.0`, `@scope/pkg@^1.2`.
_SPEC = r"(?P<name>@?[^@\s\"']+)@(?P<range>[^\s\"']+?)"

# Each pattern: its kind, and the cause it says (with the match's named groups filled in).
_CAUSES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    # npm: `No matching version found for is-number@99.0.0.`; pnpm the same without the dot.
    (
        "missing_version",
        re.compile(
            rf"No matching version found for {_SPEC}(?: with a date before (?P<before>.+?))?\.?$"
        ),
        "the registry has no version of {name} matching {range}",
    ),
    # npm's ENOVERSIONS: every release left out (by `--before`, or none at all).
    (
        "missing_version",
        re.compile(r"No versions available for (?P<name>@?[^\s@]+)"),
        "the registry has no release of {name} to install",
    ),
    # yarn: `Couldn't find any versions for "is-number" that matches "99.0.0"`
    (
        "missing_version",
        re.compile(
            r"Couldn't find any versions for \"(?P<name>[^\"]+)\" "
            r"that matches \"(?P<range>[^\"]+)\""
        ),
        "the registry has no version of {name} matching {range}",
    ),
    # npm: `404 Not Found - GET https://registry.npmjs.org/x - Not found` (also for a tarball
    # the registry took down: `.../x/-/x-1.0.0.tgz`); pnpm: `ERR_PNPM_FETCH_404  GET ...`.
    (
        "missing_version",
        re.compile(
            r"(?:404 Not Found - GET|ERR_PNPM_FETCH_404\s+GET) \S+/(?P<name>(?:@[^/\s]+/)?[^/\s:]+)"
            r"/-/[^/\s]+?-(?P<range>\d[^/\s]*?)\.tgz"
        ),
        "the registry no longer serves {name}@{range}",
    ),
    # yarn: `error Error: https://registry.yarnpkg.com/x/-/x-7.0.99.tgz: Request failed "404`
    (
        "missing_version",
        re.compile(
            r"https?://\S+?/(?P<name>(?:@[^/\s]+/)?[^/\s:]+)/-/"
            r"[^/\s]+?-(?P<range>\d[^/\s]*?)\.tgz: "
            r"Request failed \"404"
        ),
        "the registry no longer serves {name}@{range}",
    ),
    (
        "missing_package",
        re.compile(
            r"(?:404 Not Found - GET|ERR_PNPM_FETCH_404\s+GET) \S+?/"
            r"(?P<name>(?:@[^/\s]+(?:/|%2[fF]))?"
            r"[^/\s:]+?)(?::| - |$)"
        ),
        "no package named {name} on the registry",
    ),
    # yarn: `Couldn't find package "x" on the "npm" registry.`
    (
        "missing_package",
        re.compile(r"Couldn't find package \"(?P<name>[^\"]+)\""),
        "no package named {name} on the registry",
    ),
    # yarn: `The engine "node" is incompatible with this module. Expected version "^16.10.0".
    # Got "20.20.2"`, after the package's name.
    (
        "engine",
        re.compile(
            r"(?:error )?(?P<who>\S+): The engine \"node\" is incompatible with this module\. "
            r"Expected version \"(?P<wanted>[^\"]+)\"\. Got \"(?P<got>[^\"]+)\""
        ),
        "{who} needs Node {wanted}, this machine has {got}",
    ),
    (
        "frozen",
        re.compile(r"Your lockfile needs to be updated, but yarn was run with"),
        "yarn.lock is out of date with package.json",
    ),
    (
        "frozen",
        re.compile(r"ERR_PNPM_OUTDATED_LOCKFILE"),
        "pnpm-lock.yaml is out of date with package.json",
    ),
    (
        "frozen",
        re.compile(r"`npm ci` can only install packages when your package\.json and"),
        "package-lock.json is out of date with package.json",
    ),
    (
        "network",
        re.compile(
            r"(?P<code>ENOTFOUND|ECONNREFUSED|ETIMEDOUT|ECONNRESET|EAI_AGAIN)"
            r".*?(?P<host>registry[\w.-]*|[\w-]+\.[\w.-]+)"
        ),
        "cannot reach the registry ({code} {host})",
    ),
    ("json", re.compile(r"Invalid package\.json|EJSONPARSE"), "package.json is not valid JSON"),
    # corepack fetching the tool: `Error when performing the request to <url>; for ...`
    (
        "fetch",
        re.compile(r"Error when performing the request to (?P<url>\S+?);"),
        "corepack cannot download {url}",
    ),
)
# A Node.js program's uncaught error, its causes nested under it (`[cause]: Error: why`).
_NODE_ERROR = re.compile(r"^\s*(?:\[cause\]: )?(?:\w*Error): (?P<text>.+)$")
# npm's EBADENGINE answer, over several lines.
_NPM_ENGINE_WHO = re.compile(r"Not compatible with your version of node/npm: (?P<who>\S+)")
_NPM_ENGINE_WANTED = re.compile(r"Required: \{.*?\"node\":\s*\"(?P<wanted>[^\"]+)\"")
_NPM_ENGINE_GOT = re.compile(r"Actual:\s+\{.*?\"node\":\s*\"v?(?P<got>[^\"]+)\"")
# pnpm's: `Expected version: ^16.10.0`, `Got: v20.20.2`, for `Your Node version is
# incompatible with "<path>"`.
_PNPM_ENGINE = re.compile(r"ERR_PNPM_UNSUPPORTED_ENGINE")
_PNPM_WANTED = re.compile(r"^Expected version: (?P<wanted>\S+)")
_PNPM_GOT = re.compile(r"^Got: v?(?P<got>\S+)")
# A lifecycle script that failed: npm says `command sh -c <script>` in the package's folder.
_NPM_SCRIPT = re.compile(r"^npm (?:error|ERR!) command sh -c (?P<script>.+)$")
_NPM_SCRIPT_PATH = re.compile(r"^npm (?:error|ERR!) path (?P<path>\S+)$")
_NPM_CI_MISSING = re.compile(r"^npm (?:error|ERR!) (?P<what>(?:Missing|Invalid): .+)$")
# What counts as a tool's error line, for the last resort.
_ERROR_LINE = re.compile(r"^(?:npm (?:error|ERR!)|error |\s*ERR_PNPM_|ERROR)\s*(?P<text>.*)$")
_NOISE = re.compile(
    r"A complete log of this run|Visit https://yarnpkg\.com|^\s*$|^code \w+$|"
    r"^Found incompatible module\.?$"
)


@dataclass(frozen=True)
class Cause:
    """Why an install failed: a kind the builder acts on, and the words for a person."""

    kind: str  # missing_version, missing_package, engine, frozen, network, json, fetch,
    # script, other
    text: str  # one or two lines
    package: str | None = None  # the package a missing_version names
    wanted: str | None = None  # for engine: the Node versions it accepts


def manifest_problem(folder: Path) -> str | None:
    """What is wrong with package.json as JSON, with its line (None when it parses): checked
    before any tool runs, as each tool words it differently and corepack only says "invalid"."""
    path = folder / "package.json"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        return f"package.json cannot be read: {err.strerror or err}"
    except UnicodeDecodeError:
        return "package.json is not UTF-8 text"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        near = text.splitlines()[err.lineno - 1].strip() if text.splitlines() else ""
        reason = err.msg.lower()
        if err.msg.startswith("Expecting property name") or err.msg.startswith("Expecting value"):
            reason += " (a comma before a closing bracket?)"
        return (
            f"package.json is not valid JSON at line {err.lineno}, column {err.colno}: "
            f"{reason}" + (f"\n  {err.lineno} | {near}" if near else "")
        )
    if not isinstance(value, dict):
        return "package.json must hold a JSON object ({...})"
    return None


def distil(output: Sequence[str]) -> Cause:
    """The cause of a failed install, from the tool's output."""
    lines = [line.rstrip() for line in output]
    engine = _engine(lines)
    if engine is not None:
        return engine
    frozen: Cause | None = None
    for line in lines:
        for kind, pattern, words in _CAUSES:
            match = pattern.search(line)
            if match is None:
                continue
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            if "name" in groups:
                groups["name"] = groups["name"].replace("%2f", "/").replace("%2F", "/")
            text = words.format(**groups)
            if kind == "frozen":
                frozen = frozen or Cause(kind, text + _missing(lines))
                break
            if kind == "engine":
                return Cause(kind, text, wanted=groups.get("wanted"))
            if kind == "fetch":
                return Cause(kind, text + _deepest_cause(lines))
            return Cause(kind, text, package=groups.get("name"))
    if frozen is not None:
        return frozen
    script = _script(lines)
    if script is not None:
        return script
    errors = [m.group("text") for m in map(_ERROR_LINE.match, lines) if m and m.group("text")]
    errors = [e for e in errors if not _NOISE.search(e)]
    if errors:
        return Cause("other", "\n".join(errors[:2]))
    thrown = [m.group("text") for m in map(_NODE_ERROR.match, lines) if m]
    if thrown:
        return Cause("other", thrown[0] + (f" ({thrown[-1]})" if len(thrown) > 1 else ""))
    tail = [line for line in lines if line.strip()][-2:]
    return Cause("other", "\n".join(tail) if tail else "it printed nothing")


def _engine(lines: list[str]) -> Cause | None:
    text = "\n".join(lines)
    if _PNPM_ENGINE.search(text):
        wanted = next((m.group("wanted") for m in map(_PNPM_WANTED.match, lines) if m), "?")
        got = next((m.group("got") for m in map(_PNPM_GOT.match, lines) if m), "?")
        return Cause("engine", f"needs Node {wanted}, this machine has {got}", wanted=wanted)
    who = _NPM_ENGINE_WHO.search(text)
    wanted_match = _NPM_ENGINE_WANTED.search(text)
    if who and wanted_match and "EBADENGINE" in text:
        got = _NPM_ENGINE_GOT.search(text)
        wanted = wanted_match.group("wanted")
        return Cause(
            "engine",
            f"{who.group('who')} needs Node {wanted}, this machine has "
            f"{got.group('got') if got else '?'}",
            wanted=wanted,
        )
    return None


def _deepest_cause(lines: list[str]) -> str:
    """The innermost `[cause]` of a Node.js error (the certificate, the refused connection)."""
    causes = [
        m.group("text") for m in map(_NODE_ERROR.match, lines) if m and "[cause]" in m.group(0)
    ]
    return f": {causes[-1]}" if causes else ""


def _missing(lines: list[str]) -> str:
    """npm ci's own list of what the lockfile lacks, a few of them."""
    found = [m.group("what") for m in map(_NPM_CI_MISSING.match, lines) if m]
    if not found:
        return ""
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return f" ({'; '.join(found[:3])}{more})"


def _script(lines: list[str]) -> Cause | None:
    scripts = [m.group("script") for m in map(_NPM_SCRIPT.match, lines) if m]
    if not scripts:
        return None
    paths = [m.group("path") for m in map(_NPM_SCRIPT_PATH.match, lines) if m]
    where = ""
    if paths and "/node_modules/" in paths[-1]:
        where = f" of {paths[-1].rsplit('/node_modules/', 1)[1]}"
    last = next(
        (
            line
            for line in reversed(lines)
            if line.strip() and not _ERROR_LINE.match(line) and not _NOISE.search(line)
        ),
        "",
    )
    return Cause(
        "script",
        f"an install script{where} failed: `{scripts[-1]}`" + (f"\n{last.strip()}" if last else ""),
    )
