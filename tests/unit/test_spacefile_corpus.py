"""Real Spacefiles from public repos: strict mode accepts and refuses exactly as Space did."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from runtime import spacefile
from runtime.spacefile import engines

CORPUS = Path(__file__).resolve().parents[1] / "data" / "spacefiles"

with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8", newline="") as manifest:
    ROWS = list(csv.DictReader(manifest, delimiter="\t"))

# Why a file was refused, as the manifest labels it. `yaml_error` counts too: the one file with it
# does not parse as YAML at all, so Space could not have read it either.
REASONS = {
    "schema_invalid",
    "yaml_error",
    "unknown_keys",
    "bad_version",
    "missing_micros",
    "missing_v",
    "app_name_too_long",
    "missing_serve",
    "invalid_engine",
}


def _features(row: dict[str, str]) -> set[str]:
    return set(filter(None, row["features"].split(",")))


def _rejected(row: dict[str, str]) -> bool:
    return bool(_features(row) & {"schema_invalid", "yaml_error"})


def _only_newer_engine(row: dict[str, str]) -> bool:
    """Refused by Space only for an engine it never had that runs here: python3.1x, nodejs18+."""
    if _features(row) & REASONS != {"schema_invalid", "invalid_engine"}:
        return False
    found = [engines.lookup(e) for e in row["engines"].split(",")]
    return all(found) and any(not e.in_space for e in found if e)


def _check(row: dict[str, str], strict: bool) -> spacefile.CheckResult:
    # A lone Spacefile: as if it stood in an app folder, without looking at that folder.
    data, place = (CORPUS / row["file"]).read_bytes(), Path("/app") / spacefile.FILENAME
    return spacefile.check_text(data, place, strict=strict, check_paths=False)


@pytest.mark.parametrize("row", ROWS, ids=[r["file"].split("__")[0] for r in ROWS])
def test_strict_agrees_with_space(row: dict[str, str]) -> None:
    result, errors, _ = _check(row, strict=True)
    shown = "\n".join(map(str, errors))
    if _rejected(row):
        assert errors and result is None, f"{row['file']} was refused by Space"
        assert all(p.line is not None for p in errors), shown
    else:
        assert not errors, f"{row['file']} was accepted by Space:\n{shown}"
        assert result is not None and len(result.micros) == int(row["micros"])
        assert [m.engine for m in result.micros] == row["engines"].split(",")


@pytest.mark.parametrize("row", ROWS, ids=[r["file"].split("__")[0] for r in ROWS])
def test_loose_mode_only_forgives_newer_engines(row: dict[str, str]) -> None:
    result, errors, warnings = _check(row, strict=False)
    if _rejected(row) and not _only_newer_engine(row):
        assert errors and result is None
    else:
        assert not errors, "\n".join(map(str, errors))
    if _only_newer_engine(row):
        assert any("did not exist on Space" in w.message for w in warnings)


def test_corpus_covers_the_interesting_cases() -> None:
    assert len(ROWS) == 120
    assert sum(map(_rejected, ROWS)) == 16  # 15 marked schema_invalid, and the broken YAML
    assert [r["file"][:3] for r in ROWS if _only_newer_engine(r)] == ["005", "097"]


def test_broken_yaml_names_its_line() -> None:
    (row,) = [r for r in ROWS if "yaml_error" in _features(r)]
    _, errors, _ = _check(row, strict=True)
    assert [(p.line, p.message.startswith("YAML syntax error")) for p in errors] == [(9, True)]
