"""What a failed start says about its command: the tool the shell did not find, a line written
for Windows, and, for a `dev` line, that running the micro as Space did avoids it."""

from __future__ import annotations

import io
import json
from pathlib import Path

from runtime.supervisor.manager import LaunchSpec, MicroRunner, Timings
from runtime.supervisor.output import Printer

TIMINGS = Timings(
    ready_timeout=30, backoff_start=0.5, backoff_max=30, healthy_after=60, stop_grace=1
)
DEV = "the `dev` field of micro api in the Spacefile"
RUN = "the `run` field of micro api in the Spacefile"


def said_after_exit(
    command: str, source: str, code: int, output: list[str], cwd: Path = Path(".")
) -> str:
    out = io.StringIO()
    printer = Printer(out, colour=False, live=False)
    runner = MicroRunner("api", LaunchSpec(command, cwd, {}, source=source), printer, TIMINGS)
    for line in output:
        printer.line("api", line)
    runner._after_exit(code, 0.0)
    return out.getvalue()


def test_a_windows_variable_in_a_dev_line_is_named_whatever_the_exit_code() -> None:
    text = said_after_exit(
        "uvicorn main:app --reload --port %PORT%",
        DEV,
        2,
        ["Error: Invalid value for '--port': '%PORT%' is not a valid integer."],
    )
    assert "looks written for Windows" in text and "`%PORT%`" in text and "`$PORT`" in text
    assert "space-dev up --as-space" in text


def test_a_missing_global_tool_is_named() -> None:
    text = said_after_exit("serve %PORT%", DEV, 127, ["sh: 1: serve: not found"])
    assert "the shell did not find `serve`" in text and "%PORT%" in text
    assert "space-dev up --as-space" in text


def test_a_run_line_is_not_sent_to_as_space() -> None:
    text = said_after_exit("no-such-tool --port 1", RUN, 127, ["sh: 1: no-such-tool: not found"])
    assert "the shell did not find `no-such-tool`" in text and RUN in text
    assert "--as-space" not in text


def test_a_tool_an_npm_script_runs(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"dev": "vite"}}))
    text = said_after_exit(
        "npm run dev", DEV, 127, ["> dev", "> vite", "", "sh: 1: vite: not found"], cwd=tmp_path
    )
    assert "the shell did not find `vite`, which the `dev` npm script of `npm run dev` runs" in text
    assert "package.json's dependencies" in text


def test_an_ordinary_crash_gets_no_hint() -> None:
    text = said_after_exit("python main.py", RUN, 1, ["ValueError: x"])
    assert "did not find" not in text and "Windows" not in text and "--as-space" not in text
