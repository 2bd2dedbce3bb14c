"""A node micro's lockfiles read as far as the builder needs: which packages each locks (does
it cover package.json?), and a package's pin taken out so it is resolved again."""

from __future__ import annotations

import json
import re
from pathlib import Path

MANIFEST = "package.json"
NPM_LOCKS = ("npm-shrinkwrap.json", "package-lock.json")  # the order npm reads them in
YARN_LOCK = "yarn.lock"
PNPM_LOCK = "pnpm-lock.yaml"
# What package.json asks to install (peerDependencies are the installing app's to give).
DEPENDENCY_FIELDS = ("dependencies", "devDependencies", "optionalDependencies")
# A key in pnpm-lock.yaml (`  is-number:`, `  '@scope/x':`), and a package's own key
# (`/is-number@7.0.0:` in v6, `/is-number/7.0.0:` in v5, `is-number@7.0.0:` in v9).
_PNPM_KEY = re.compile(r"^\s+'?(?P<name>@?[^\s:'/@]+(?:/[^\s:'/@]+)?)'?:")
_PNPM_PACKAGE = re.compile(r"^\s+'?/?(?P<name>@?[^\s:'/@]+(?:/[^\s:'/@(]+)?)[@/]\d")
_PNPM_VERSION = re.compile(r"^lockfileVersion:\s*'?(?P<major>\d+)")


def read_manifest(folder: Path) -> dict:
    """package.json as a dict ({} when it cannot be read: the tool then says what is wrong)."""
    try:
        value = json.loads((folder / MANIFEST).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def declared(manifest: dict) -> list[str]:
    """The packages package.json asks for, in its order."""
    names: list[str] = []
    for field in DEPENDENCY_FIELDS:
        section = manifest.get(field)
        if isinstance(section, dict):
            names.extend(n for n in section if isinstance(n, str) and n not in names)
    return names


def locked_names(lock: Path) -> set[str] | None:
    """The package names a lockfile locks; None when it cannot be read."""
    try:
        text = lock.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if lock.name in NPM_LOCKS:
        return _npm_names(text)
    if lock.name == YARN_LOCK:
        return {name for line in text.splitlines() for name in _yarn_header(line)}
    names: set[str] = set()
    for line in text.splitlines():
        for pattern in (_PNPM_KEY, _PNPM_PACKAGE):
            match = pattern.match(line)
            if match:
                names.add(match.group("name"))
    return names


def declared_ranges(manifest: dict) -> dict[str, str]:
    """Each package package.json asks for, with its range (the first field naming it)."""
    ranges: dict[str, str] = {}
    for field in DEPENDENCY_FIELDS:
        section = manifest.get(field)
        if isinstance(section, dict):
            for name, wanted in section.items():
                if isinstance(name, str) and isinstance(wanted, str):
                    ranges.setdefault(name, wanted)
    return ranges


def lacks(lock: Path, manifest: dict) -> list[str] | None:
    """What package.json asks for that the lockfile does not lock, or locks for another range
    than package.json now asks (where the lockfile records it: npm's and yarn's); [] when it
    covers all (it matches), None when it cannot be read. File times say nothing here: a
    clone gives every file the time of the checkout."""
    names = locked_names(lock)
    if names is None:
        return None
    recorded = _recorded_ranges(lock)
    return [
        name
        for name, wanted in declared_ranges(manifest).items()
        if name not in names
        or (recorded is not None and wanted not in recorded.get(name, {wanted}))
    ]


def _recorded_ranges(lock: Path) -> dict[str, set[str]] | None:
    """The ranges a lockfile was made for, by name (npm's root entry, yarn's entry heads);
    None when it keeps none."""
    try:
        text = lock.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    ranges: dict[str, set[str]] = {}
    if lock.name in NPM_LOCKS:
        try:
            root = json.loads(text).get("packages", {}).get("", {})
        except (ValueError, AttributeError):
            return None
        if not isinstance(root, dict):
            return None
        for field in DEPENDENCY_FIELDS:
            section = root.get(field)
            if isinstance(section, dict):
                for name, wanted in section.items():
                    ranges.setdefault(name, set()).add(str(wanted))
        return ranges or None
    if lock.name == YARN_LOCK:
        for line in text.splitlines():
            for spec in _yarn_specs(line):
                name, wanted = spec
                # yarn 2+ writes `name@npm:^1.0.0`
                ranges.setdefault(name, set()).update({wanted, wanted.removeprefix("npm:")})
        return ranges
    return None


def pnpm_major(lock: Path) -> str | None:
    """The major version of a pnpm-lock.yaml's format ('5', '6', '9')."""
    try:
        with lock.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = _PNPM_VERSION.match(line)
                if match:
                    return match.group("major")
                if line.strip() and not line.startswith(("#", "---")):
                    return None
    except OSError:
        return None
    return None


def yarn_berry(lock: Path) -> bool:
    """Whether a yarn.lock is made by yarn 2 or newer (yarn 1 cannot read it)."""
    try:
        with lock.open(encoding="utf-8", errors="replace") as handle:
            head = [line for _, line in zip(range(20), handle, strict=False)]
        return any(line.startswith("__metadata:") for line in head)
    except OSError:
        return False


def drop(lock: Path, name: str) -> bool:
    """Take every pin of `name` out of the lockfile (npm's or yarn's), so the next install
    resolves it again and keeps the rest as locked; False when there was none to take."""
    try:
        text = lock.read_text(encoding="utf-8")
    except OSError:
        return False
    if lock.name in NPM_LOCKS:
        changed = _npm_drop(text, name)
    elif lock.name == YARN_LOCK:
        changed = _yarn_drop(text, name)
    else:
        return False
    if changed is None:
        return False
    lock.write_text(changed, encoding="utf-8")
    return True


def _npm_names(text: str) -> set[str] | None:
    try:
        lock = json.loads(text)
    except ValueError:
        return None
    if not isinstance(lock, dict):
        return None
    names: set[str] = set()
    packages = lock.get("packages")
    if isinstance(packages, dict):  # lockfile v2 and v3
        names.update(
            path.rsplit("node_modules/", 1)[1]
            for path in packages
            if path.startswith("node_modules/") and "/node_modules/" not in path
        )
    dependencies = lock.get("dependencies")
    if isinstance(dependencies, dict):  # v1
        names.update(dependencies)
    return names


def _npm_drop(text: str, name: str) -> str | None:
    try:
        lock = json.loads(text)
    except ValueError:
        return None
    found = False
    packages = lock.get("packages") if isinstance(lock, dict) else None
    if isinstance(packages, dict):
        for path in [
            p
            for p in packages
            if p == f"node_modules/{name}" or p.endswith(f"/node_modules/{name}")
        ]:
            del packages[path]
            found = True

    def walk(dependencies: object) -> None:
        nonlocal found
        if not isinstance(dependencies, dict):
            return
        if dependencies.pop(name, None) is not None:
            found = True
        for entry in dependencies.values():
            if isinstance(entry, dict):
                walk(entry.get("dependencies"))

    walk(lock.get("dependencies") if isinstance(lock, dict) else None)
    return json.dumps(lock, indent=2, ensure_ascii=False) + "\n" if found else None


def _yarn_header(line: str) -> list[str]:
    """The package names a yarn.lock entry's first line is for (`"a@^1", a@^1.2:`)."""
    return [name for name, _ in _yarn_specs(line)]


def _yarn_specs(line: str) -> list[tuple[str, str]]:
    """The (name, range) pairs a yarn.lock entry's first line is for."""
    if not line or line[0] in " \t#" or not line.rstrip().endswith(":"):
        return []
    specs = []
    for spec in line.rstrip()[:-1].split(","):
        spec = spec.strip().strip('"')
        at = spec.find("@", 1)
        if at > 0:
            specs.append((spec[:at], spec[at + 1 :]))
    return specs


def _yarn_drop(text: str, name: str) -> str | None:
    kept: list[str] = []
    skipping = False
    found = False
    for line in text.splitlines(keepends=True):
        if line[:1] not in (" ", "\t", "\n", "\r", ""):
            skipping = name in _yarn_header(line)
            found = found or skipping
        if not skipping:
            kept.append(line)
    return "".join(kept) if found else None
