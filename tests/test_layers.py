"""The layers hold: no module imports from a floor above its own, and no import circles.

Every `import` and `from ... import` counts, also those inside functions and under
`if TYPE_CHECKING:`. The one table below gives each module its floor; a new module fails here
until it is given one, and docs/architecture.md's table of floors must say the same.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runtime"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"

# Runs inside a micro's process: imports nothing of the runtime but its own folder.
IN_MICRO = "in_micro"

FLOORS: dict[str, int | str] = {
    # 0: the error type and the frozen values every floor shares
    "runtime": 0,
    "runtime.errors": 0,
    "runtime.models": 0,
    # 1: files -> values, and pure decisions over values
    "runtime.system": 1,
    "runtime.spacefile": 1,
    "runtime.spacefile.yaml12": 1,
    "runtime.spacefile.intervals": 1,
    "runtime.spacefile.engines": 1,
    "runtime.spacefile.dev_lines": 1,
    "runtime.spacefile.checks": 1,
    "runtime.spacefile.reader": 1,
    "runtime.config": 1,
    "runtime.config.defaults": 1,
    "runtime.config.toml_lines": 1,
    "runtime.config.sizes": 1,
    "runtime.config.environment": 1,
    "runtime.config.secret_env": 1,
    "runtime.config.toml": 1,
    "runtime.config.overrides": 1,
    "runtime.datadir": 1,
    "runtime.datadir.datafile": 1,
    "runtime.datadir.values": 1,
    "runtime.datadir.store": 1,
    "runtime.datadir.accounts": 1,
    "runtime.auth": 1,
    "runtime.auth.routes": 1,
    "runtime.auth.allow": 1,
    "runtime.auth.allow_parser": 1,
    "runtime.auth.policy": 1,
    "runtime.auth.keys": 1,
    "runtime.auth.passwords": 1,
    "runtime.auth.failures": 1,
    "runtime.auth.reasons": 1,
    "runtime.cloud": 1,
    "runtime.cloud.tls": 1,
    "runtime.cloud.detail": 1,
    "runtime.cloud.notices": 1,
    "runtime.cloud.base": 1,
    "runtime.cloud.base.errors": 1,
    "runtime.cloud.base.query": 1,
    "runtime.cloud.base.query_sql": 1,
    "runtime.cloud.base.update": 1,
    "runtime.cloud.base.store": 1,
    "runtime.cloud.drive": 1,
    "runtime.cloud.drive.errors": 1,
    "runtime.cloud.drive.names": 1,
    "runtime.cloud.drive.ranges": 1,
    "runtime.cloud.drive.bodies": 1,
    "runtime.cloud.drive.sweep": 1,
    "runtime.cloud.drive.store": 1,
    "runtime.cloud.data": 1,
    "runtime.cloud.zipread": 1,
    "runtime.cloud.json_items": 1,
    "runtime.cloud.export_format": 1,
    "runtime.cloud.transfer": 1,
    "runtime.cloud.export_zip": 1,
    # 2: processes, the proxy, static files, credentials, the clock of actions, API handlers
    "runtime.supervisor": 2,
    "runtime.supervisor.output": 2,
    "runtime.supervisor.log_buffer": 2,
    "runtime.supervisor.listening": 2,
    "runtime.supervisor.start_hints": 2,
    "runtime.supervisor.ports": 2,
    "runtime.supervisor.environment": 2,
    "runtime.supervisor.process": 2,
    "runtime.supervisor.setup": 2,
    "runtime.supervisor.builder": 2,
    "runtime.supervisor.builder.installers": 2,
    "runtime.supervisor.builder.steps": 2,
    "runtime.supervisor.builder.requirements": 2,
    "runtime.supervisor.builder.python_env": 2,
    "runtime.supervisor.builder.node_modules": 2,
    "runtime.supervisor.builder.node_tools": 2,
    "runtime.supervisor.builder.node_errors": 2,
    "runtime.supervisor.builder.lockfiles": 2,
    "runtime.supervisor.builder.sources": 2,
    "runtime.supervisor.builder.prepare": 2,
    "runtime.supervisor.static_build": 2,
    "runtime.supervisor.builder.frontend": 2,
    "runtime.supervisor.manager": 2,
    "runtime.supervisor.location": 2,
    "runtime.supervisor.file_changes": 2,
    "runtime.supervisor.watchdog": 2,
    "runtime.supervisor.reaper": 2,
    "runtime.supervisor.shutdown": 2,
    "runtime.auth.credentials": 2,
    "runtime.serve": 2,
    "runtime.serve.proxy": 2,
    "runtime.serve.bodies": 2,
    "runtime.serve.forwarded": 2,
    "runtime.serve.upstream": 2,
    "runtime.serve.upstream_connection": 2,
    "runtime.serve.upstream_exchange": 2,
    "runtime.serve.static": 2,
    "runtime.serve.not_found": 2,
    "runtime.serve.client_limits": 2,
    "runtime.serve.request_log": 2,
    "runtime.serve.micro_call": 2,
    "runtime.actions": 2,
    "runtime.actions.scheduler": 2,
    "runtime.cloud.base.handlers": 2,
    "runtime.cloud.drive.handlers": 2,
    "runtime.cloud.service": 2,
    "runtime.cloud.site": 2,
    # 3: the gate, the runtime's own pages, firing actions
    "runtime.serve.gate": 3,
    "runtime.serve.key_guesses": 3,
    "runtime.serve.hosts": 3,
    "runtime.serve.front": 3,
    "runtime.web": 3,
    "runtime.web.pages": 3,
    "runtime.web.micro_error": 3,
    "runtime.web.csrf": 3,
    "runtime.web.health": 3,
    "runtime.web.login": 3,
    "runtime.web.actions": 3,
    "runtime.web.control_api": 3,
    "runtime.web.api": 3,
    "runtime.web.settings": 3,
    "runtime.web.data_page": 3,
    "runtime.web.owner": 3,
    "runtime.web.error_answers": 3,
    "runtime.web.app_actions_page": 3,
    "runtime.web.data_api": 3,
    "runtime.web.data_ops": 3,
    "runtime.web.data_table": 3,
    "runtime.web.console": 3,
    "runtime.web.owner_notice": 3,
    "runtime.actions.firing": 3,
    "runtime.actions.app_actions": 3,
    # 4: the one module that wires the parts together
    "runtime.app": 4,
    "runtime.app.runtime": 4,
    "runtime.app.changes": 4,
    "runtime.app.micro_specs": 4,
    "runtime.app.host": 4,
    # 5: what drives a runtime: hot reload and the command line
    "runtime.app.reload": 5,
    "runtime.cli": 5,
    "runtime.cli.control_client": 5,
    "runtime.cli.targets": 5,
    "runtime.cli.commands": 5,
    "runtime.cli.data_commands": 5,
    "runtime.cli.action_commands": 5,
    "runtime.cli.main": 5,
    "runtime.cli.suggest": 5,
    "runtime.cli.status_commands": 5,
    "runtime.cli.logs": 5,
    "runtime.cli.hotkeys": 5,
    "runtime.__main__": 5,
    # apart: the launcher run inside a python micro, in the micro's own environment
    "runtime.in_micro": IN_MICRO,
    "runtime.in_micro.pyapp": IN_MICRO,
    "runtime.in_micro.servers": IN_MICRO,
    "runtime.in_micro.site": IN_MICRO,
    "runtime.in_micro.site._space_dev_guard": IN_MICRO,
    "runtime.in_micro.site._space_dev_guard_servers": IN_MICRO,
    "runtime.in_micro.site.sitecustomize": IN_MICRO,
    "runtime.in_micro.site.deta": IN_MICRO,
    "runtime.in_micro.site.deta._async": IN_MICRO,
    "runtime.in_micro.site.deta._async.client": IN_MICRO,
    "runtime.in_micro.site.deta.base": IN_MICRO,
    "runtime.in_micro.site.deta.drive": IN_MICRO,
    "runtime.in_micro.site.deta.service": IN_MICRO,
    "runtime.in_micro.site.deta.utils": IN_MICRO,
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The runtime modules `name` imports, anywhere in its file, relative imports resolved."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from runtime.web import csrf` imports the submodule; `import X from pkg` the package.
            targets = [
                f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module
                for a in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "runtime" or target.startswith("runtime."):
                # `import runtime.a.b` names a module; an unknown tail is an attribute.
                while target not in MODULES and "." in target:
                    target = target.rpartition(".")[0]
                out.add(target)
    out.discard(name)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_every_module_has_a_floor() -> None:
    missing = sorted(set(MODULES) - set(FLOORS))
    assert not missing, f"give these modules a floor in FLOORS: {missing}"
    gone = sorted(set(FLOORS) - set(MODULES))
    assert not gone, f"FLOORS lists modules that no longer exist: {gone}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_from_a_higher_floor(name: str) -> None:
    floor = FLOORS.get(name)
    if floor is None:
        pytest.fail(f"{name} has no floor in FLOORS")
    wrong = []
    for target in sorted(GRAPH[name]):
        theirs = FLOORS.get(target)
        if floor == IN_MICRO:
            if not target.startswith("runtime.in_micro"):
                wrong.append(f"{target} (in_micro code imports nothing of the runtime)")
        elif theirs == IN_MICRO:
            wrong.append(f"{target} (runs inside a micro; the runtime runs it by its path)")
        elif theirs is None or not isinstance(floor, int) or int(theirs) > floor:
            wrong.append(f"{target} (floor {theirs})")
    assert not wrong, f"{name} (floor {floor}) imports from above: {wrong}"


def test_no_import_cycles() -> None:
    """A depth-first walk over the module graph: a module met again on the path is a circle."""
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycles.append(path[path.index(name) :] + [name])
            return
        if name in done:
            return
        for target in sorted(GRAPH.get(name, ())):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(GRAPH):
        visit(name, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_walk_finds_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    """The checker itself: lazy and TYPE_CHECKING imports count, relative ones resolve."""
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from runtime.app.runtime import Runtime\n"
        "def f():\n    from . import engines\n    import runtime.cli.main\n"
        "from ..config import defaults\n"
    )
    found = _imports("runtime.spacefile.mod", source)
    assert found == {
        "runtime.app.runtime",
        "runtime.spacefile.engines",
        "runtime.cli.main",
        "runtime.config.defaults",
    }


# --- docs/architecture.md draws the same floors -------------------------------------------

# A name in backticks in the table's modules column, and whether a `:` follows it (a folder
# whose modules come next: `spacefile/`: `reader.py`, `checks.py`).
_DOC_NAME = re.compile(r"`([^`]+)`(:?)")


def _doc_cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _module_of(path: str) -> str:
    """`spacefile/reader.py` -> runtime.spacefile.reader; `site/deta/` -> its package."""
    return ".".join(["runtime", *path.strip("/").removesuffix(".py").split("/")])


def doc_floors(text: str) -> tuple[dict[str, int | str], list[str]]:
    """The floor docs/architecture.md gives each module in its table of floors (the table whose
    header has a "floor" column), and the problems met on the way.

    In the modules column, `folder/`: makes the names after it, up to the next `;`, relative to
    that folder (and names the folder's package); a name with a `/` is relative to `runtime/`
    otherwise; a folder without `:` (`web/`) stands for every module under it that is not
    named on its own. Names of other files (`node/guard.cjs`) are not modules and are skipped.
    """
    lines = [line for line in text.splitlines() if line.lstrip().startswith("|")]
    header = next(
        (n for n, line in enumerate(lines) if "floor" in [c.lower() for c in _doc_cells(line)]),
        None,
    )
    if header is None:
        return {}, ["no table with a `floor` column"]
    titles = [c.lower() for c in _doc_cells(lines[header])]
    floor_at = titles.index("floor")
    names_at = next((n for n, t in enumerate(titles) if "module" in t), floor_at + 1)
    named: dict[str, int | str] = {}
    folders: dict[str, int | str] = {}
    problems: list[str] = []
    for line in lines[header + 1 :]:
        cells = _doc_cells(line)
        if len(cells) != len(titles):
            break  # the table has ended (another table may follow)
        if set(cells[floor_at]) <= set("-: "):
            continue  # the row under the header
        written = cells[floor_at].strip("`* ")
        floor: int | str = int(written) if written.isdigit() else written
        if floor == "micro":
            floor = IN_MICRO
        for group in cells[names_at].split(";"):
            prefix = ""
            for name, colon in _DOC_NAME.findall(group):
                path = prefix + name
                if colon and name.endswith("/"):
                    prefix = path
                    found = named
                elif name.endswith("/"):
                    found = folders
                elif name.endswith(".py"):
                    found = named
                else:
                    continue
                module = _module_of(path)
                if found.get(module, floor) != floor:
                    problems.append(f"{module} is at floor {found[module]} and at floor {floor}")
                found[module] = floor
    for folder, floor in folders.items():
        if named.get(folder, floor) != floor:
            problems.append(f"{folder} is at floor {named[folder]} and at floor {floor}")
    listed = {**folders, **named}  # what the table names itself, before folders are filled in
    for module in FLOORS:
        # Under a whole folder, unless a deeper `folder/`: lists its modules one by one.
        above = _nearest(module, listed)
        if above in folders and module not in listed:
            named[module] = folders[above]
    for folder, floor in folders.items():
        named.setdefault(folder, floor)
    return named, problems


def _nearest(module: str, listed: dict[str, int | str]) -> str | None:
    """The deepest package above `module` that the table names, if any."""
    parts = module.split(".")
    return next(
        (
            ".".join(parts[:n])
            for n in range(len(parts) - 1, 0, -1)
            if ".".join(parts[:n]) in listed
        ),
        None,
    )


def _is_package(module: str) -> bool:
    return MODULES.get(module, Path()).name == "__init__.py"


def test_the_architecture_doc_gives_every_module_the_same_floor() -> None:
    """docs/architecture.md's table and FLOORS agree: each module named at the same floor, none
    missing from either. A package's `__init__` (a docstring, mostly) is checked where the doc
    names its folder; the doc need not name every folder."""
    named, problems = doc_floors(ARCHITECTURE.read_text(encoding="utf-8"))
    for module, floor in sorted(named.items()):
        if module not in FLOORS:
            problems.append(
                f"{module}: docs/architecture.md puts it at floor {floor}, but "
                "FLOORS has no such module (gone or renamed?)"
            )
        elif FLOORS[module] != floor:
            problems.append(
                f"{module}: floor {floor} in docs/architecture.md, floor {FLOORS[module]} in FLOORS"
            )
    for module, floor in sorted(FLOORS.items()):
        if module not in named and not _is_package(module):
            problems.append(
                f"{module}: floor {floor} in FLOORS, missing from docs/architecture.md's table"
            )
    assert not problems, "docs/architecture.md's floors differ from FLOORS:\n  " + "\n  ".join(
        problems
    )


def test_the_doc_table_reader_knows_the_notation() -> None:
    """The reader of the doc's table itself: folder prefixes up to `;`, whole folders, other
    files skipped, a row's floor from its own column."""
    text = (
        "| floor | folder: modules (under `runtime/`) | job |\n"
        "|---|---|---|\n"
        "| 1 | `spacefile/`: `reader.py`, `checks.py`; `cloud/tls.py` | x |\n"
        "| 3 | `serve/gate.py`, `web/` | y |\n"
        "| 5 | `app/reload.py`, `cli/`: `main.py`; `__main__.py` | z |\n"
        "| micro | `in_micro/`: `pyapp.py`, `site/deta/`, `node/guard.cjs` | w |\n"
    )
    named, problems = doc_floors(text)
    assert problems == []
    assert named["runtime.spacefile"] == 1
    assert named["runtime.spacefile.reader"] == 1
    assert named["runtime.cloud.tls"] == 1
    assert named["runtime.serve.gate"] == 3
    assert named["runtime.web.login"] == 3  # under `web/`
    assert named["runtime.app.reload"] == 5
    assert named["runtime.cli.main"] == 5
    assert named["runtime.__main__"] == 5  # the prefix ended at `;`
    assert named["runtime.in_micro.pyapp"] == IN_MICRO
    assert named["runtime.in_micro.site.deta.base"] == IN_MICRO  # under `site/deta/`
    assert not any("guard" in name for name in named)
    wrong, problems = doc_floors(text.replace("| 3 | `serve/gate.py`", "| 2 | `serve/gate.py`"))
    assert wrong["runtime.serve.gate"] == 2
