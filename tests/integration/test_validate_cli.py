"""`space-dev validate`: every problem at once, warnings, --strict, exit statuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BAD = (
    "v: 0\nmicros:\n  - name: api\n    src: .\n    engine: pyhton3.9\n"
    "    primary: yes\n    pubic: true\n"
)


def validate(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", "validate", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_every_problem_at_once_with_line_and_fix(tmp_path: Path) -> None:
    (tmp_path / "Spacefile").write_text(BAD)
    done = validate(tmp_path)
    assert done.returncode == 1
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3
    assert ':5: micros[0].engine: engine "pyhton3.9"' in lines[0]
    assert 'did you mean "python3.9"' in lines[0]
    assert ":6: micros[0].primary" in lines[1] and '"yes"' in lines[1]
    assert ':7: micros[0].pubic: unknown key "pubic"; did you mean "public"?' in lines[2]
    assert "Traceback" not in done.stdout + done.stderr


def test_newer_engine_warns_and_strict_refuses(tmp_path: Path) -> None:
    (tmp_path / "Spacefile").write_text(
        "v: 0\nmicros:\n  - name: api\n    src: .\n    engine: python3.12\n"
    )
    done = validate(tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("Spacefile OK") and "warning:" in done.stdout
    strict = validate(tmp_path, "--strict")
    assert strict.returncode == 1 and "python3.12" in strict.stdout


def test_sample_app_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    done = validate(root / "sample_apps" / "notes", "--strict")
    assert done.returncode == 0 and done.stdout.strip() == "Spacefile OK"


def test_missing_spacefile_is_a_user_error(tmp_path: Path) -> None:
    done = validate(tmp_path)
    assert done.returncode == 1
    assert "no Spacefile" in done.stderr + done.stdout and "Traceback" not in done.stderr
