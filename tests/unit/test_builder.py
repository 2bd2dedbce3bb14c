"""The builder's decisions, on real files: requirements read with `deta` mapped and a server
added, environment keys, when node_modules is outdated, which saves rebuild a static micro,
and App Actions' listings and inputs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from runtime.errors import SpaceDevError
from runtime.supervisor.builder import (
    installers,
    node_modules,
    node_tools,
    python_env,
    requirements,
)
from runtime.supervisor.builder.sources import is_source, tree_print


def _reqs(tmp_path: Path, text: str, engine_default: bool = True) -> requirements.Requirements:
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    return requirements.read(path, engine_default)


@pytest.mark.parametrize(
    "line",
    [
        "deta",
        "deta~=1.1.0",
        "Deta==1.2.0",
        "deta[async] >=1",
        "deta ; python_version >= '3.8'",
        "deta  # the SDK",
    ],
)
def test_any_deta_requirement_is_dropped(tmp_path: Path, line: str) -> None:
    reqs = _reqs(tmp_path, f"fastapi\n{line}\n")
    assert reqs.dropped == (line.split(" #")[0].strip(),)
    assert "deta" not in reqs.install_text().lower().replace("fastapi", "")


def test_names_that_only_start_with_deta_are_kept(tmp_path: Path) -> None:
    reqs = _reqs(tmp_path, "deta-space-actions\ndetail\n")
    assert reqs.dropped == () and reqs.names >= {"deta-space-actions", "detail"}


@pytest.mark.parametrize(
    "text,added",
    [
        ("fastapi\n", ("uvicorn",)),
        ("fastapi\nuvicorn[standard]==0.30\n", ()),
        ("quart\nHypercorn\n", ()),
        # A WSGI app gets a WSGI server, not uvicorn.
        ("flask\n", ("waitress",)),
        ("Flask==2.2\nrequests\n", ("waitress",)),
        ("django\nwaitress\n", ()),
        ("flask\nfastapi\n", ("uvicorn",)),
    ],
)
def test_the_engine_default_gets_a_server_unless_one_is_listed(
    tmp_path: Path, text: str, added: tuple[str, ...]
) -> None:
    assert _reqs(tmp_path, text).added == added
    assert _reqs(tmp_path, text, engine_default=False).added == ()


def test_an_included_file_is_made_absolute_and_enters_the_key(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("flask\n")
    first = _reqs(tmp_path, "-r base.txt\n")
    assert f"-r {tmp_path / 'base.txt'}" in first.install_text()
    (tmp_path / "base.txt").write_text("flask==3.0\n")
    assert _reqs(tmp_path, "-r base.txt\n").key_text != first.key_text


def test_the_environment_is_keyed_by_the_requirements(tmp_path: Path) -> None:
    src = tmp_path / "api"
    src.mkdir()
    assert python_env.plan(tmp_path / "data", "app", "api", src, "python3.9", True) is None
    (src / "requirements.txt").write_text("fastapi\n")
    one = python_env.plan(tmp_path / "data", "app", "api", src, "python3.9", True)
    same = python_env.plan(tmp_path / "data", "app", "api", src, "python3.9", True)
    (src / "requirements.txt").write_text("fastapi\nsix\n")
    other = python_env.plan(tmp_path / "data", "app", "api", src, "python3.9", True)
    assert one is not None and same is not None and other is not None
    assert one.env_dir == same.env_dir != other.env_dir
    assert one.env_dir.parent == tmp_path / "data" / "envs" / "app" / "api"
    assert not one.ready


def test_prune_keeps_only_the_working_environment(tmp_path: Path) -> None:
    folder = python_env.micro_envs(tmp_path, "app", "api")
    for name in ("old", "new"):
        (folder / name).mkdir(parents=True)
    python_env.prune(tmp_path, "app", "api", folder / "new")
    assert [p.name for p in folder.iterdir()] == ["new"]


def test_pip_is_chosen_when_asked_and_uv_by_default() -> None:
    chosen = installers.choose({installers.INSTALLER_VARIABLE: "pip"})
    assert chosen is not None and chosen.name == "pip"
    assert "--python" in chosen.install(Path("/e"), Path("/r.txt"))
    default = installers.choose({})
    assert default is not None and default.name == ("uv" if installers.find_uv() else "pip")


def test_requirements_resolve_as_of_the_day_space_stopped() -> None:
    """Space's builder installed the newest releases of its time: an unpinned app written then
    gets those, not today's (whose breaking changes it never met)."""
    assert installers.as_of({}) == "2024-10-17"
    assert installers.as_of({installers.AS_OF_VARIABLE: "latest"}) is None
    assert installers.as_of({installers.AS_OF_VARIABLE: "2025-06-01"}) == "2025-06-01"
    with pytest.raises(SpaceDevError, match="YYYY-MM-DD"):
        installers.as_of({installers.AS_OF_VARIABLE: "last spring"})
    uv = installers.Installer("uv", ("uv",))
    command = uv.install(Path("/e"), Path("/r.txt"), "2024-10-17")
    assert command[command.index("--exclude-newer") + 1] == "2024-10-18T00:00:00Z"
    assert "--exclude-newer" not in uv.install(Path("/e"), Path("/r.txt"))
    pip = installers.Installer("pip", ("pip",), dates=True)
    assert "--uploaded-prior-to=2024-10-18T00:00:00Z" in pip.install(
        Path("/e"), Path("/r.txt"), "2024-10-17"
    )
    old_pip = installers.Installer("pip", ("pip",), dates=False)
    assert not any("prior" in a for a in old_pip.install(Path("/e"), Path("/r.txt"), "2024-10-17"))


def test_the_day_enters_the_environment_key(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "api"
    src.mkdir()
    (src / "requirements.txt").write_text("fastapi\n")
    space = python_env.plan(tmp_path, "app", "api", src, "python3.9", True)
    monkeypatch.setenv(installers.AS_OF_VARIABLE, "latest")
    newest = python_env.plan(tmp_path, "app", "api", src, "python3.9", True)
    assert space is not None and newest is not None
    assert space.as_of == "2024-10-17" and newest.as_of is None
    assert space.env_dir != newest.env_dir


def _touch(path: Path, when: float) -> None:
    os.utime(path, (when, when))


def test_node_modules_outdated_when_missing_or_older(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{}")
    deps = node_modules.plan(tmp_path, tmp_path / "marker")
    assert deps is not None and deps.needed()  # missing
    assert node_tools.choose(tmp_path, os.environ).command(None)[:2] == ("npm", "install")
    (tmp_path / "node_modules").mkdir()
    now = time.time()
    _touch(tmp_path / "package.json", now - 100)
    _touch(tmp_path / "node_modules", now - 50)
    assert not deps.needed()  # installed after the last change: taken as it is
    (tmp_path / "package.json").write_text('{"dependencies": {"express": "^4"}}')
    _touch(tmp_path / "package.json", now)
    assert deps.needed()
    lock = {"packages": {"": {}, "node_modules/express": {"version": "4.18.2"}}}
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    assert deps.needed()
    assert node_tools.choose(tmp_path, os.environ).command(None)[:2] == ("npm", "ci")
    assert node_modules.plan(tmp_path / "nothing", tmp_path / "m") is None


def _committed_modules(folder: Path, hidden: dict) -> node_modules.NodeDeps:
    """A repository that brought its node_modules along, checked out in git's order: the
    lockfile written after node_modules, so it looks newer."""
    packages = {
        "": {"dependencies": {"express": "^4.18.2"}},
        "node_modules/express": {"version": "4.18.2", "resolved": "x", "integrity": "y"},
        "node_modules/fsevents": {"version": "2.3.3", "optional": True, "os": ["darwin"]},
    }
    (folder / "node_modules" / "express").mkdir(parents=True)
    (folder / "node_modules" / "express" / "package.json").write_text('{"version": "4.18.2"}')
    (folder / "node_modules" / ".package-lock.json").write_text(
        json.dumps({"lockfileVersion": 3, "packages": hidden})
    )
    (folder / "package.json").write_text('{"dependencies": {"express": "^4.18.2"}}')
    (folder / "package-lock.json").write_text(
        json.dumps({"lockfileVersion": 3, "packages": packages})
    )
    now = time.time()
    _touch(folder / "node_modules", now - 1)
    _touch(folder / "node_modules" / ".package-lock.json", now - 1)
    deps = node_modules.plan(folder, folder / "marker")
    assert deps is not None
    return deps


def test_a_committed_node_modules_that_matches_its_lockfile_is_taken(tmp_path: Path) -> None:
    express = {"version": "4.18.2", "resolved": "x", "integrity": "y"}
    deps = _committed_modules(tmp_path, {"node_modules/express": express})
    assert not deps.needed()  # npm ci would delete it first
    assert (tmp_path / "marker").read_text() == deps.fingerprint()


@pytest.mark.parametrize(
    "hidden",
    [
        {"node_modules/express": {"version": "4.17.0", "resolved": "x", "integrity": "z"}},
        {},
        {
            "node_modules/express": {"version": "4.18.2", "resolved": "x", "integrity": "y"},
            "node_modules/left-pad": {"version": "1.0.0"},
        },
    ],
)
def test_a_node_modules_unlike_its_lockfile_is_installed(tmp_path: Path, hidden: dict) -> None:
    assert _committed_modules(tmp_path, hidden).needed()


def test_a_package_listed_but_missing_from_node_modules_is_installed(tmp_path: Path) -> None:
    express = {"version": "4.18.2", "resolved": "x", "integrity": "y"}
    deps = _committed_modules(tmp_path, {"node_modules/express": express})
    (tmp_path / "node_modules" / "express" / "package.json").unlink()
    assert deps.needed()


def test_a_package_json_without_dependencies_is_installed_once(tmp_path: Path) -> None:
    """`npm install` makes no node_modules for it, only the lockfile it writes afterwards."""
    (tmp_path / "package.json").write_text('{"name": "w", "scripts": {"start": "node ."}}')
    deps = node_modules.plan(tmp_path, tmp_path / "marker")
    assert deps is not None and deps.needed()  # never installed
    (tmp_path / "package-lock.json").write_text('{"lockfileVersion": 3}')  # what npm leaves
    (tmp_path / "marker").write_text(deps.fingerprint())  # as a good install records it
    assert not deps.needed()
    (tmp_path / "package.json").write_text('{"name": "w", "dependencies": {"left-pad": "1"}}')
    assert deps.needed()  # now it lists a package, and there is no node_modules


def test_static_sources_leave_out_the_built_folder(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (tmp_path / "src").mkdir()
    dist.mkdir()
    (tmp_path / "src" / "a.js").write_text("1")
    before = tree_print(tmp_path, (dist,))
    (dist / "index.html").write_text("built")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.js").write_text("")
    assert tree_print(tmp_path, (dist,)) == before
    (tmp_path / "src" / "a.js").write_text("22")
    assert tree_print(tmp_path, (dist,)) != before
    assert is_source(tmp_path / "src" / "a.js", tmp_path, (dist,))
    assert not is_source(dist / "index.html", tmp_path, (dist,))
    assert not is_source(tmp_path / "node_modules" / "x.js", tmp_path, (dist,))
    assert not is_source(tmp_path / ".git" / "HEAD", tmp_path, (dist,))
