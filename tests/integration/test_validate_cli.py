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


# --- `validate` reads the same space-dev.toml as every command ---------------------------------

GOOD = "v: 0\nmicros:\n  - name: site\n    src: .\n    engine: static\n    serve: .\n"
WARNS = "v: 0\nmicros:\n  - name: api\n    src: .\n    engine: python3.12\n"


def validate_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`space-dev validate` run from `cwd`, with no APP_DIR unless given."""
    return subprocess.run(
        [sys.executable, "-m", "runtime", "validate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def project(tmp_path: Path, *apps: tuple[str, str]) -> Path:
    """A project folder whose space-dev.toml lists `apps` (folder name, Spacefile text)."""
    lines = []
    for name, text in apps:
        (tmp_path / "apps" / name).mkdir(parents=True)
        (tmp_path / "apps" / name / "Spacefile").write_text(text)
        lines.append(f'[[apps]]\npath = "apps/{name}"\nname = "{name}"\n')
    (tmp_path / "space-dev.toml").write_text("\n".join(lines))
    return tmp_path


def test_validate_in_the_project_folder_checks_the_configs_apps(tmp_path: Path) -> None:
    root = project(tmp_path, ("notes", GOOD), ("broken", BAD))
    done = validate_in(root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no Spacefile found" not in done.stdout + done.stderr
    assert "notes: Spacefile OK" in done.stdout
    assert 'engine "pyhton3.9"' in done.stdout and "Traceback" not in done.stderr


def test_validate_app_picks_one_app_of_the_config(tmp_path: Path) -> None:
    root = project(tmp_path, ("notes", GOOD), ("broken", BAD))
    done = validate_in(root, "--app", "notes")
    assert done.returncode == 0 and done.stdout.strip() == "Spacefile OK", done.stdout
    unknown = validate_in(root, "--app", "nope")
    assert unknown.returncode == 1 and "notes, broken" in unknown.stderr


def test_validate_reads_the_config_given_with_config(tmp_path: Path) -> None:
    root = project(tmp_path, ("notes", GOOD))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = validate_in(elsewhere, "--config", str(root / "space-dev.toml"))
    assert done.returncode == 0 and done.stdout.strip() == "Spacefile OK", done.stderr


def test_validate_reports_a_broken_config(tmp_path: Path) -> None:
    (tmp_path / "space-dev.toml").write_text("[runtime]\nprot = 1\n")
    (tmp_path / "Spacefile").write_text(GOOD)
    done = validate_in(tmp_path)
    assert done.returncode == 1 and 'unknown key "prot"' in done.stderr + done.stdout


def test_validate_offers_no_option_that_does_nothing(tmp_path: Path) -> None:
    (tmp_path / "Spacefile").write_text(GOOD)
    done = validate_in(tmp_path, "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 2 and "--data-dir" in done.stderr
    assert not (tmp_path / "data").exists()
    assert "--data-dir" not in validate_in(tmp_path, "--help").stdout


def test_ok_with_warnings_says_how_many(tmp_path: Path) -> None:
    (tmp_path / "Spacefile").write_text(WARNS)
    done = validate_in(tmp_path)
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == "Spacefile OK, with 1 warning", done.stdout
