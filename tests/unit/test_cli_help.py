"""The command line's own help: `space-dev` alone, `-V`, and `did you mean` for a mistyped
command or flag; `validate --json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime import __version__
from runtime.cli.main import main


def test_space_dev_alone_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: space-dev") and "status" in out and "validate" in out


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_the_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([flag])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"space-dev {__version__}"


@pytest.mark.parametrize(
    "argv,meant",
    [
        (["stauts"], "did you mean `space-dev status`?"),
        (["vaildate"], "did you mean `space-dev validate`?"),
        (["keys", "lsit"], "did you mean `space-dev keys list`?"),
        (["keys", "list", "--jsn"], "did you mean: --jsn -> --json?"),
        (["up", "--no-relaod"], "did you mean: --no-relaod -> --no-reload?"),
    ],
)
def test_a_mistyped_command_or_flag_gets_did_you_mean(
    argv: list[str], meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert meant in capsys.readouterr().err


def test_nothing_close_suggests_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["zzzzzz"])
    assert "did you mean" not in capsys.readouterr().err


def test_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Spacefile").write_text(
        "v: 0\nmicros:\n  - name: a\n    src: .\n    engine: python3.9\n    bogus: 1\n"
    )
    assert main(["validate", str(tmp_path), "--json"]) == 1
    checked = json.loads(capsys.readouterr().out)
    assert checked["ok"] is False
    (problem,) = checked["apps"][0]["errors"]
    assert problem["line"] == 6 and "bogus" in problem["where"] + problem["message"]
    (tmp_path / "Spacefile").write_text(
        "v: 0\nmicros:\n  - name: a\n    src: .\n    engine: python3.9\n"
    )
    assert main(["validate", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_the_screenshot_script_says_what_it_needs_without_playwright() -> None:
    import subprocess
    import sys

    script = Path(__file__).parents[2] / "docs" / "screenshot.py"
    hide = (
        "import runpy, sys; sys.modules['playwright'] = None; "
        "sys.modules['playwright.sync_api'] = None; "
        f"runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "pip install -e '.[test]'" in done.stderr and "Traceback" not in done.stderr
