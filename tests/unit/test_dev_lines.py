"""`dev` lines: what `validate` warns about (Windows lines, tools that are not there, without
false alarms on tools a micro's installs bring), and what a failed start's output names."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from runtime.spacefile import check_text, dev_lines


def spacefile(
    tmp_path: Path, dev: str, engine: str = "python3.9", files: dict[str, str] | None = None
) -> Path:
    (tmp_path / "api").mkdir(exist_ok=True)
    for rel, text in (files or {}).items():
        path = tmp_path / "api" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    path = tmp_path / "Spacefile"
    path.write_text(
        f"v: 0\nmicros:\n  - name: api\n    src: api\n    engine: {engine}\n"
        f"    dev: {json.dumps(dev)}\n"
    )
    return path


def warnings_of(path: Path, strict: bool = False) -> tuple[list[str], list[str]]:
    result, errors, warnings = check_text(path.read_text(), path, strict=strict)
    return [e.message for e in errors], [w.message for w in warnings]


def test_a_windows_variable_is_a_warning_and_strict_refuses(tmp_path: Path) -> None:
    path = spacefile(
        tmp_path,
        "uvicorn main:app --reload --port %PORT%",
        files={"requirements.txt": "uvicorn[standard]==0.23\n"},
    )
    errors, warnings = warnings_of(path)
    assert errors == []
    assert len(warnings) == 1 and "`%PORT%`" in warnings[0] and "`$PORT`" in warnings[0]
    errors, _ = warnings_of(path, strict=True)
    assert len(errors) == 1 and "%PORT%" in errors[0]


def test_the_same_line_for_this_system_is_fine(tmp_path: Path) -> None:
    path = spacefile(
        tmp_path,
        "uvicorn main:app --reload --port $PORT",
        files={"requirements.txt": "fastapi\nUvicorn[standard] >= 0.20  # server\n"},
    )
    assert warnings_of(path) == ([], [])


@pytest.mark.parametrize(
    "dev", ["set PORT=8000 && python main.py", r"venv\Scripts\python.exe main.py"]
)
def test_other_windows_lines(tmp_path: Path, dev: str) -> None:
    _, warnings = warnings_of(spacefile(tmp_path, dev))
    assert warnings and "Windows" in warnings[0]


def test_a_tool_nothing_installs_is_named(tmp_path: Path) -> None:
    path = spacefile(tmp_path, "no-such-tool-anywhere dev --port $PORT", engine="nodejs16")
    _, warnings = warnings_of(path)
    assert len(warnings) == 1 and "`no-such-tool-anywhere` is not installed" in warnings[0]
    # A local environment of someone else's machine, named by its path.
    _, warnings = warnings_of(spacefile(tmp_path, "./venv/bin/uvicorn main:app --reload"))
    assert warnings and "`./venv/bin/uvicorn`" in warnings[0]


def test_no_warning_for_tools_that_will_be_installed(tmp_path: Path) -> None:
    # A dependency named like the command, or known to bring it; any command at all of a node
    # micro whose packages are not installed yet (their commands cannot be known before).
    package = {"devDependencies": {"@sveltejs/kit": "1", "vite": "4"}}
    for dev in ("vite dev --port $PORT", "svelte-kit dev", "some-bin-of-a-dependency"):
        path = spacefile(
            tmp_path, dev, engine="svelte-kit", files={"package.json": json.dumps(package)}
        )
        assert warnings_of(path) == ([], []), dev
    # Once node_modules is there, its .bin decides.
    bin_dir = tmp_path / "api" / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True)
    tool = bin_dir / "vite"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    assert warnings_of(spacefile(tmp_path, "vite --port $PORT", engine="svelte-kit")) == ([], [])
    _, warnings = warnings_of(spacefile(tmp_path, "not-a-bin-here", engine="svelte-kit"))
    assert warnings and "`not-a-bin-here`" in warnings[0]
    # npm itself, python's own tools, a script of the micro's folder, the shell's words.
    for dev, engine in (
        ("npm run dev -- --port $PORT", "nodejs16"),
        ("python -m http.server $PORT", "python3.9"),
        ("cd . && PORT=1 exec python main.py", "python3.9"),
    ):
        assert warnings_of(spacefile(tmp_path, dev, engine=engine)) == ([], []), dev


def test_a_package_json_written_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    # Windows editors save one; npm reads past it, and so must the check of the dev line.
    package = json.dumps({"dependencies": {"left-pad": "1"}})
    path = spacefile(
        tmp_path,
        "lonely-tool --port $PORT",
        engine="nodejs16",
        files={"package.json": "\ufeff" + package},
    )
    assert dev_lines.missing_tools("lonely-tool --port $PORT", path.parent / "api", "node") == []


def test_a_python_micro_without_requirements_has_space_devs_own_tools(tmp_path: Path) -> None:
    # It runs on space-dev's interpreter, whose folder has flask (a test dependency).
    assert warnings_of(spacefile(tmp_path, "flask --app app run")) == ([], [])
    # With requirements of its own, only they (and PATH) count.
    path = spacefile(tmp_path, "flask --app app run", files={"requirements.txt": "requests\n"})
    hidden = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if not (Path(p) / "flask").exists()
    )
    assert dev_lines.missing_tools(
        "flask --app app run", path.parent / "api", "python", path=hidden
    ) == ["flask"]


@pytest.mark.parametrize(
    ("line", "tool"),
    [
        ("sh: 1: vite: not found", "vite"),
        ("/bin/sh: 1: not-installed-dev-tool: not found", "not-installed-dev-tool"),
        ("bash: line 1: next: command not found", "next"),
        ("sh: serve: command not found", "serve"),
        ("zsh: command not found: nuxi", "nuxi"),
    ],
)
def test_the_missing_tool_is_read_from_the_shells_words(line: str, tool: str) -> None:
    assert dev_lines.not_found_tool(["> dev", "> vite --port 1", "", line, ""]) == tool


def test_nothing_is_read_from_other_output() -> None:
    assert dev_lines.not_found_tool(["Error: Cannot find module 'x'", "page not found"]) is None


def test_the_port_advice_reads_the_npm_script(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"dev": "vite"}}))
    advice = dev_lines.port_way("npm run dev", tmp_path)
    assert "Vite reads no variable" in advice and "`dev` script" in advice
    assert "runserver 127.0.0.1:$PORT" in dev_lines.port_way("python manage.py runserver", tmp_path)


def test_a_backslash_that_is_no_windows_path_is_not_one(tmp_path: Path) -> None:
    _, warnings = warnings_of(spacefile(tmp_path, r"printf 'ready\n' && python main.py"))
    assert warnings == []


def test_an_activated_environment_of_the_micro_brings_its_commands(tmp_path: Path) -> None:
    dev = "source venv/bin/activate && uvicorn main:app --port $PORT"
    src = spacefile(tmp_path, dev, files={"requirements.txt": "fastapi\n"}).parent / "api"
    # A PATH without uvicorn, whatever the machine running the test has.
    assert dev_lines.missing_tools(dev, src, "python", path="") == ["uvicorn"]  # no venv yet
    tool = src / "venv" / "bin" / "uvicorn"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    assert dev_lines.missing_tools(dev, src, "python", path="") == []
