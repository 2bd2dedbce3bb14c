"""A failed npm, yarn or pnpm install distilled to its cause, from the tools' real output (made
with npm 11, yarn 1.22 and pnpm 8 against the registry; paths replaced)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.supervisor.builder.node_errors import distil, manifest_problem

DATA = Path(__file__).parent / "data" / "node_errors"


def _cause(name: str):
    return distil((DATA / f"{name}.txt").read_text().splitlines())


@pytest.mark.parametrize(
    ("name", "kind", "text", "package"),
    [
        (
            "nover-npm",
            "missing_version",
            "the registry has no version of is-number matching 99.0.0",
            "is-number",
        ),
        (
            "nover-yarn",
            "missing_version",
            "the registry has no version of is-number matching 99.0.0",
            "is-number",
        ),
        (
            "nover-pnpm",
            "missing_version",
            "the registry has no version of is-number matching 99.0.0",
            "is-number",
        ),
        (
            "lockfake-npm",
            "missing_version",
            "the registry has no version of is-number matching 7.0.99",
            "is-number",
        ),
        (
            "lockfake-yarn",
            "missing_version",
            "the registry no longer serves is-number@7.0.99",
            "is-number",
        ),
        (
            "nopkg-npm",
            "missing_package",
            "no package named space-dev-no-such-package-zz on the registry",
            "space-dev-no-such-package-zz",
        ),
        (
            "nopkg-yarn",
            "missing_package",
            "no package named space-dev-no-such-package-zz on the registry",
            "space-dev-no-such-package-zz",
        ),
        (
            "nopkg-pnpm",
            "missing_package",
            "no package named space-dev-no-such-package-zz on the registry",
            "space-dev-no-such-package-zz",
        ),
        ("eng-npm", "engine", "x@1.0.0 needs Node ^16.10.0, this machine has 20.20.2", None),
        ("eng-yarn", "engine", "x@1.0.0 needs Node ^16.10.0, this machine has 20.20.2", None),
        ("eng-pnpm", "engine", "needs Node ^16.10.0, this machine has 20.20.2", None),
        # A dependency's `engines` (Nuxt 3's first release candidate), yarn's and npm's words.
        (
            "engdep-yarn",
            "engine",
            "nuxt@3.0.0-rc.1 needs Node ^14.16.0 || ^16.11.0 || ^17.0.0 || "
            "^18.0.0, this machine has 20.20.2",
            None,
        ),
        (
            "engdep-npm",
            "engine",
            "nuxt@3.0.0-rc.1 needs Node ^14.16.0 || ^16.11.0 || ^17.0.0 || "
            "^18.0.0, this machine has 20.20.2",
            None,
        ),
        ("frozen-yarn", "frozen", "yarn.lock is out of date with package.json", None),
        ("frozen-pnpm", "frozen", "pnpm-lock.yaml is out of date with package.json", None),
        (
            "sync-npm",
            "frozen",
            "package-lock.json is out of date with package.json (Missing: "
            "is-odd@3.0.1 from lock file; Missing: is-number@6.0.0 from lock file)",
            None,
        ),
        ("comma-npm", "json", "package.json is not valid JSON", None),
        ("comma-yarn", "json", "package.json is not valid JSON", None),
        (
            "corepack-tls",
            "fetch",
            "corepack cannot download https://registry.yarnpkg.com/yarn/-/"
            "yarn-1.22.22.tgz: self-signed certificate in certificate chain",
            None,
        ),
        (
            "script-npm",
            "script",
            'an install script failed: `node -e "throw new Error(\\"boom\\")"`\nNode.js v20.20.2',
            None,
        ),
    ],
)
def test_each_tool_failure_comes_down_to_one_cause(name, kind, text, package) -> None:
    cause = _cause(name)
    assert (cause.kind, cause.text) == (kind, text)
    if package is not None:
        assert cause.package == package
    if kind == "engine":
        assert cause.wanted and cause.wanted.startswith(("^16.10.0", "^14.16.0"))


def test_an_unknown_failure_keeps_the_tools_own_error_lines() -> None:
    cause = distil(
        [
            "> build",
            "npm error code E418",
            "npm error I'm a teapot",
            "npm error A complete log of this run can be found in: x.log",
        ]
    )
    assert cause == distil(["npm error code E418", "npm error I'm a teapot"])
    # (npm's `code` line says nothing more)
    assert cause.kind == "other" and cause.text == "I'm a teapot"
    assert distil([]).text == "it printed nothing"
    # A Node.js program that threw: its error, and the innermost cause.
    thrown = distil(["Error: cannot go on", "    at x (y.js:1:1)", "  [cause]: Error: EACCES"])
    assert thrown.text == "cannot go on (EACCES)"


def test_npm_finding_no_release_at_all_names_the_package() -> None:
    # What npm said for `deta` with `--before` against a registry mirror whose release times
    # are the days it copied them.
    cause = distil(["npm error code ENOVERSIONS", "npm error No versions available for deta"])
    assert (cause.kind, cause.package) == ("missing_version", "deta")
    assert cause.text == "the registry has no release of deta to install"


def test_a_date_bound_npm_failure_names_the_package() -> None:
    cause = distil(
        [
            "npm error notarget No matching version found for express@^5.1.0 with a "
            "date before 10/18/2024, 12:00:00 AM."
        ]
    )
    assert (cause.kind, cause.package) == ("missing_version", "express")


def test_package_json_is_checked_as_json_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(
        '{\n  "name": "x",\n  "dependencies": {"is-number": "7.0.0"},\n}\n'
    )
    problem = manifest_problem(tmp_path)
    assert problem is not None
    assert problem.startswith("package.json is not valid JSON at line 4, column 1")
    assert "a comma before a closing bracket?" in problem
    (tmp_path / "package.json").write_text('["a list"]')
    assert manifest_problem(tmp_path) == "package.json must hold a JSON object ({...})"
    (tmp_path / "package.json").write_text('{"name": "x"}')  # the positive control
    assert manifest_problem(tmp_path) is None
