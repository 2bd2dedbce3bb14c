"""The engine table's start commands, the micro environment, and the prefixed log lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from runtime.models import EnvPreset, Micro
from runtime.spacefile import engines
from runtime.supervisor.environment import micro_environment, port_variables, preset_values
from runtime.supervisor.output import Printer


@pytest.mark.parametrize(
    ("engine", "command"),
    [
        ("nodejs16", "node index.js"),
        ("nodejs20", "node index.js"),
        ("react", "npm run start -- --port $PORT"),
        ("vue", "npm run dev -- --port $PORT"),
        ("svelte", "npm run dev -- --port $PORT"),
        ("next", "npm run dev -- --port $PORT"),
        ("nuxt", "npm run dev -- --port $PORT"),
        ("svelte-kit", "npm run dev -- --port $PORT"),
        ("custom", None),
        ("static", None),
    ],
)
def test_default_commands(engine: str, command: str | None) -> None:
    found = engines.lookup(engine)
    assert found is not None
    assert engines.start_command(found, None, None) == command


def test_python_default_serves_main_app_and_dev_wins_over_run() -> None:
    python = engines.lookup("python3.9")
    assert python is not None
    assert engines.start_command(python, None, None).endswith("pyapp.py main:app")
    assert engines.start_command(python, "uvicorn main:app", None) == "uvicorn main:app"
    assert engines.start_command(python, "run it", "dev it") == "dev it"
    assert engines.lookup("python3.12").in_space is False
    assert engines.lookup("nodejs14") is None and engines.lookup("pyhton3.9") is None


def test_presets_precedence() -> None:
    micro = Micro(
        "api",
        Path("."),
        "python3.9",
        True,
        "/",
        env=(
            EnvPreset("A", default="default"),
            EnvPreset("B", default="default"),
            EnvPreset("C", default="default"),
            EnvPreset("D", default="default"),
            EnvPreset("E"),
        ),
    )
    values = preset_values(
        micro,
        saved={"A": "saved"},
        configured={"A": "toml", "B": "toml"},
        shell={"A": "shell", "B": "shell", "C": "shell"},
    )
    assert values == {"A": "saved", "B": "toml", "C": "shell", "D": "default"}


def test_environment_has_space_variables_and_no_owner_password() -> None:
    python = engines.lookup("python3.9")
    micro = Micro("api", Path("."), "python3.9", False, "/api")
    env = micro_environment(
        micro,
        python,
        hostname="127.0.0.1:4200",
        project_key="abc_def",
        presets={},
        shell={"PATH": "/bin", "SPACE_DEV_PASSWORD": "secret"},
    )
    assert env["DETA_SPACE_APP_MICRO_TYPE"] == "normal" and env["DETA_PROJECT_KEY"] == "abc_def"
    assert "SPACE_DEV_PASSWORD" not in env
    assert env["PATH"].endswith("/bin") and env["PATH"] != "/bin"  # our interpreter first
    # Each process's port under the names python's servers read (`flask run`: FLASK_RUN_PORT).
    assert port_variables(python)[:3] == ("PORT", "UVICORN_PORT", "FLASK_RUN_PORT")
    assert port_variables(engines.lookup("nodejs16")) == ("PORT",)
    # Dev tools stay quiet and offline, unless the shell says otherwise.
    assert env["NEXT_TELEMETRY_DISABLED"] == "1" and env["DO_NOT_TRACK"] == "1"
    told = micro_environment(
        micro,
        python,
        hostname="localhost:4200",
        project_key="abc_def",
        presets={},
        shell={"PATH": "/bin", "DO_NOT_TRACK": "0"},
    )
    assert told["DO_NOT_TRACK"] == "0"


def test_printer_pads_and_colours_only_when_asked() -> None:
    plain = io.StringIO()
    printer = Printer(plain, colour=False)
    printer.register(["api", "frontend"])
    printer.line("api", "hello\n")
    printer.info("ready")
    assert plain.getvalue() == "api       | hello\nspace-dev | ready\n"
    coloured = io.StringIO()
    Printer(coloured, colour=True).line("api", "hi")
    assert "\x1b[" in coloured.getvalue() and coloured.getvalue().endswith("\x1b[0m hi\n")


def test_printer_keeps_the_last_lines() -> None:
    printer = Printer(io.StringIO(), keep=3, colour=False)
    for i in range(5):
        printer.line("api", f"line {i}")
    assert printer.last_lines("api") == ["line 2", "line 3", "line 4"]
    assert printer.last_lines("api", 1) == ["line 4"] and printer.last_lines("nobody") == []


def test_background_printer_writes_everything_in_order_then_closes() -> None:
    out = io.StringIO()
    printer = Printer(out, colour=False, background=True)
    for i in range(200):
        printer.line("api", f"line {i}")
    printer.close()
    lines = out.getvalue().splitlines()
    assert lines == [f"api       | line {i}" for i in range(200)]
