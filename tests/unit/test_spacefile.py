"""The Spacefile reader: a table of small Spacefiles, each valid or with its exact problems."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime import spacefile
from runtime.errors import InvalidFile, Problem, SpaceDevError
from runtime.models import Spacefile

FOLDERS = ("api", "web", "web/dist", "app")


@dataclass(frozen=True)
class P:
    """An expected problem: its place, its line and a phrase of its message or hint."""

    where: str
    line: int
    phrase: str


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    errors: tuple[P, ...] = ()
    warnings: tuple[P, ...] = ()
    strict: bool = False
    paths: dict[str, str] | None = None  # micro name -> mount path, for valid files
    then: Callable[[Spacefile], object] | None = None  # more checks on a valid result


def one(*lines: str, engine: str = "python3.9", top: str = "") -> str:
    """A Spacefile with one micro `api` (lines 1-5), then `lines` from line 6 on."""
    body = "".join(f"    {line}\n" for line in lines)
    return f"v: 0\n{top}micros:\n  - name: api\n    src: api\n    engine: {engine}\n{body}"


def two(first: str = "", second: str = "") -> str:
    """`web` (static, primary, lines 3-7) and `api` (lines 8-10), each with extra lines after."""
    return (
        "v: 0\nmicros:\n"
        "  - name: web\n    src: web\n    engine: static\n    serve: dist\n    primary: true\n"
        + "".join(f"    {line}\n" for line in first.splitlines())
        + "  - name: api\n    src: api\n    engine: nodejs16\n"
        + "".join(f"    {line}\n" for line in second.splitlines())
    )


def action(interval: str, *more: str) -> tuple[str, ...]:
    """Lines for one scheduled action (id `tick`) starting at line 6 of `one(...)`."""
    head = ("actions:", "  - id: tick", "    trigger: schedule")
    return (*head, f'    default_interval: "{interval}"', *(f"    {m}" for m in more))


CASES = [
    # --- valid files and their defaults ----------------------------------------------------
    Case("minimal", one(), paths={"api": "/"}),
    Case("two micros: default path", two(), paths={"web": "/", "api": "/api"}),
    Case(
        "path gains a leading slash, loses the trailing one",
        two(second="path: v1/"),
        paths={"web": "/", "api": "/v1"},
    ),
    Case("nested path", two(second="path: /api/v2"), paths={"api": "/api/v2"}),
    Case("explicit primary false", two(second="primary: false"), paths={"api": "/api"}),
    Case("lone micro is primary even if it says not", one("primary: false"), paths={"api": "/"}),
    Case(
        "indentless micros list",
        "v: 0\nmicros:\n- name: api\n  src: api\n  engine: nodejs16\n",
        paths={"api": "/"},
    ),
    Case(
        "flow style",
        "{v: 0, micros: [{name: w, src: web, engine: static, serve: dist}]}",
        paths={"w": "/"},
    ),
    Case(
        "CRLF and a byte order mark",
        "\ufeff" + one("run: uvicorn main:app").replace("\n", "\r\n"),
        then=lambda sf: sf.micros[0].run == "uvicorn main:app",
    ),
    Case(
        "commands as one string",
        one('commands: "npm run build"'),
        then=lambda sf: sf.micros[0].commands == ("npm run build",),
    ),
    Case(
        "commands as a flow list",
        one("commands: ['npm ci', 'npm run build']"),
        then=lambda sf: sf.micros[0].commands == ("npm ci", "npm run build"),
    ),
    Case(
        "include as a list",
        one("include:", "  - dist", "  - package.json"),
        then=lambda sf: sf.micros[0].include == ("dist", "package.json"),
    ),
    Case(
        "env default that is a number keeps its text",
        one(
            "presets:",
            "  env:",
            "    - name: PORT_HINT",
            "      default: 8080",
            "    - name: RATIO",
            "      default: 1.50",
            "      description: how much",
        ),
        then=lambda sf: (
            [(e.default, e.description) for e in sf.micros[0].env]
            == [("8080", ""), ("1.50", "how much")]
        ),
    ),
    Case(
        "api_keys and public_routes",
        one("public_routes:", '  - "/public/*"', "presets:", "  api_keys: true"),
        then=lambda sf: sf.micros[0].api_keys and sf.micros[0].public_routes == ("/public/*",),
    ),
    Case("public", one("public: true"), then=lambda sf: sf.micros[0].public),
    Case(
        "yes, no and 010 are text in YAML 1.2",
        one(top="app_name: no\n").replace("name: api", "name: yes").replace("src: api", "src: app"),
        then=lambda sf: (sf.app_name, sf.micros[0].name) == ("no", "yes"),
    ),
    Case(
        "numeric micro name keeps its text",
        one().replace("name: api", "name: 010"),
        then=lambda sf: sf.micros[0].name == "010" and sf.micros[0].path == "/",
    ),
    Case(
        "plain name loses a trailing space",
        one().replace("name: api", "name: api   "),
        then=lambda sf: sf.micros[0].name == "api",
    ),
    Case(
        "merge keys",
        "v: 0\nmicros:\n  - &m {name: api, src: api, engine: nodejs16, primary: true}\n"
        "  - <<: *m\n    name: two\n    primary: false\n",
        paths={"api": "/", "two": "/two"},
    ),
    Case("custom with run", one("run: ./server", engine="custom")),
    Case(
        "rates",
        one(
            *action("1 minute"),
            "  - id: b",
            "    trigger: schedule",
            "    default_interval: 12 hours",
            "  - id: c",
            "    trigger: schedule",
            "    default_interval: 1 day",
        ),
        then=lambda sf: [a.interval for a in sf.actions] == ["1 minute", "12 hours", "1 day"],
    ),
    Case("cron with steps, lists and ?", one(*action("9,39 */2 1-15 JAN-jun ?"))),
    Case("cron with start/step and names", one(*action("0/5 0 * * MON-FRI", "name: Tick"))),
    Case(
        "action defaults",
        one(*action("*/10 * * * *", "path: run")),
        then=lambda sf: (
            (sf.actions[0].name, sf.actions[0].micro, sf.actions[0].path) == ("tick", "api", "/run")
        ),
    ),
    Case(
        "auto_pwa and icon",
        one(top="auto_pwa: false\nicon: icon.png\n"),
        then=lambda sf: sf.auto_pwa is False and sf.icon == "icon.png",
    ),
    Case("app_name of 12 characters", one(top="app_name: SuperControl\n")),
    # --- valid, with warnings ----------------------------------------------------------------
    Case(
        "newer engine warns",
        one(engine="python3.12"),
        warnings=(P("micros[0].engine", 5, "use python3.9"),),
    ),
    Case(
        "nodejs20 warns",
        one(engine="nodejs20"),
        warnings=(P("micros[0].engine", 5, "did not exist on Space"),),
    ),
    Case(
        "primary's path is ignored",
        two(first="path: home"),
        warnings=(P("micros[0].path", 8, "always at /"),),
        paths={"web": "/"},
    ),
    Case(
        "env variable listed twice",
        one("presets:", "  env:", "    - name: A", "    - name: A"),
        warnings=(P("micros[0].presets.env[1].name", 9, "listed twice"),),
    ),
    Case(
        "static serve folder not built yet",
        two().replace("serve: dist", "serve: build"),
        warnings=(P("micros[0].serve", 6, "does not exist yet"),),
    ),
    # A fresh clone has no build output (dist is in .gitignore): `up` builds it, or runs `dev`.
    Case(
        "static serve folder its commands build",
        two(first="commands:\n  - npm run build").replace("serve: dist", "serve: build"),
    ),
    Case(
        "static serve folder with a dev server",
        two(first="dev: npm run dev").replace("serve: dist", "serve: build"),
    ),
    Case("missing icon", one(top="icon: nope.png\n"), warnings=(P("icon", 2, "nope.png"),)),
    # --- the top level -----------------------------------------------------------------------
    Case("v missing", one().replace("v: 0\n", ""), errors=(P("v", 1, "add `v: 0`"),)),
    Case("v is 1", one().replace("v: 0", "v: 1"), errors=(P("v", 1, "v must be 0"),)),
    Case("v is quoted", one().replace("v: 0", 'v: "0"'), errors=(P("v", 1, 'the text "0"'),)),
    Case("v is false", one().replace("v: 0", "v: false"), errors=(P("v", 1, "boolean false"),)),
    Case("micros missing", "v: 0\napp_name: x\n", errors=(P("micros", 1, "micros is missing"),)),
    Case("micros empty", "v: 0\nmicros: []\n", errors=(P("micros", 2, "micros is empty"),)),
    Case("micros null", "v: 0\nmicros:\n", errors=(P("micros", 2, "micros is empty"),)),
    Case(
        "micros is a mapping",
        "v: 0\nmicros:\n  name: api\n",
        errors=(P("micros", 2, "must be a list"),),
    ),
    Case(
        "six micros",
        "v: 0\nmicros:\n"
        + "".join(
            f"  - {{name: m{i}, src: api, engine: nodejs16, primary: {str(i == 0).lower()}}}\n"
            for i in range(6)
        ),
        errors=(P("micros", 2, "at most 5"),),
    ),
    Case(
        "app_name too long",
        one(top="app_name: Deno on Space\n"),
        errors=(P("app_name", 2, "13 characters"),),
    ),
    Case(
        "unknown top key",
        one(top="app_nam: x\n"),
        errors=(P("app_nam", 2, 'did you mean "app_name"?'),),
    ),
    Case(
        "micro instead of micros",
        "v: 0\nmicro:\n  - name: a\n",
        errors=(P("micros", 1, "missing"), P("micro", 2, 'did you mean "micros"?')),
    ),
    Case("root is a list", "- v: 0\n", errors=(P("", 1, "must be a mapping"),)),
    Case("empty file", "# nothing yet\n", errors=(P("", 1, "empty"),)),
    # --- YAML itself ---------------------------------------------------------------------------
    Case(
        "repeated key",
        one("engine: nodejs16"),
        errors=(P("micros[0].engine", 6, "already set at line 5"),),
    ),
    Case("broken indentation", one("run: a", "   dev: b"), errors=(P("", 7, "YAML syntax"),)),
    Case("tab indentation", one("run: a", "\tdev: b"), errors=(P("", 7, "tabs"),)),
    Case("two documents", one() + "---\nv: 0\n", errors=(P("", 6, "single document"),)),
    Case("control character", one("run: a\x07b"), errors=(P("", 6, "U+0007 is not allowed"),)),
    Case("unsupported tag", one("run: !!binary aGk="), errors=(P("micros[0].run", 6, "tag"),)),
    # --- a micro's keys ------------------------------------------------------------------------
    Case(
        "misspelt key",
        one("engin: static"),
        errors=(P("micros[0].engin", 6, 'did you mean "engine"?'),),
    ),
    Case("capitalised key", one("Run: x"), errors=(P("micros[0].Run", 6, 'did you mean "run"?'),)),
    Case(
        "env at micro level", one("env:", "  - A"), errors=(P("micros[0].env", 6, "presets.env"),)
    ),
    Case(
        "micro is text",
        "v: 0\nmicros:\n  - api\n",
        errors=(P("micros[0]", 3, "must be a mapping"),),
    ),
    Case(
        "name missing",
        one().replace("  - name: api\n    src", "  - src"),
        errors=(P("micros[0].name", 3, "name is missing"),),
    ),
    Case(
        "name empty",
        one().replace("name: api", "name:"),
        errors=(P("micros[0].name", 3, "name is empty"),),
    ),
    Case(
        "name with a space",
        one().replace("name: api", 'name: "my api"'),
        errors=(P("micros[0].name", 3, "letters, digits"),),
    ),
    Case(
        "name starting with a dash",
        one().replace("name: api", 'name: "-api"'),
        errors=(P("micros[0].name", 3, "not a valid micro name"),),
    ),
    Case(
        "name repeated",
        two().replace("name: web", "name: api"),
        errors=(P("micros[1].name", 8, "already used by micros[0]"),),
    ),
    Case(
        "src missing",
        one().replace("    src: api\n", ""),
        errors=(P("micros[0].src", 3, "src is missing"),),
    ),
    Case(
        "src does not exist",
        one().replace("src: api", "src: ./nope"),
        errors=(P("micros[0].src", 4, "does not exist"),),
    ),
    Case(
        "src is a file",
        one().replace("src: api", "src: notes.txt"),
        errors=(P("micros[0].src", 4, "is not a folder"),),
    ),
    Case(
        "src climbs out",
        one().replace("src: api", "src: ../api"),
        errors=(P("micros[0].src", 4, "outside the app folder"),),
    ),
    Case(
        "src is absolute",
        one().replace("src: api", "src: /usr"),
        errors=(P("micros[0].src", 4, "outside the app folder"),),
    ),
    Case(
        "engine missing",
        one().replace("    engine: python3.9\n", ""),
        errors=(P("micros[0].engine", 3, "engine is missing"),),
    ),
    Case(
        "engine misspelt",
        one(engine="pyhton3.9"),
        errors=(P("micros[0].engine", 5, 'did you mean "python3.9"?'),),
    ),
    Case(
        "engine message lists them",
        one(engine="deno"),
        errors=(P("micros[0].engine", 5, "is not one of static, react,"),),
    ),
    Case(
        "engine capitalised",
        one(engine="Python3.9"),
        errors=(P("micros[0].engine", 5, 'did you mean "python3.9"?'),),
    ),
    Case(
        "nodejs14 never existed",
        one(engine="nodejs14"),
        errors=(P("micros[0].engine", 5, 'did you mean "nodejs16"?'),),
    ),
    Case(
        "newer engine under strict",
        one(engine="python3.11"),
        strict=True,
        errors=(P("micros[0].engine", 5, "did not exist on Space"),),
    ),
    Case(
        "nodejs18 under strict",
        one(engine="nodejs18"),
        strict=True,
        errors=(P("micros[0].engine", 5, "nodejs16"),),
    ),
    Case(
        "primary: yes is text",
        one("primary: yes"),
        errors=(P("micros[0].primary", 6, "takes yes, no, on, off as text"),),
    ),
    Case(
        "primary quoted",
        one('primary: "true"'),
        errors=(P("micros[0].primary", 6, "remove the quotes"),),
    ),
    Case("public: on", one("public: on"), errors=(P("micros[0].public", 6, "true or false"),)),
    Case(
        "two primaries",
        two(second="primary: true"),
        errors=(P("micros[1].primary", 11, '"web" is primary already'),),
    ),
    Case(
        "no primary among several",
        two().replace("    primary: true\n", ""),
        errors=(P("micros", 2, "none of the 2 micros is primary"),),
    ),
    Case(
        "two micros on one path",
        two(second="path: /x/") + "  - name: z\n    src: web\n    engine: vue\n    path: x\n",
        errors=(P("micros[2].path", 15, 'already the path of micro "api"'),),
    ),
    Case(
        "default path taken by another's path",
        two(second="path: web") + "  - name: web2\n    src: web\n    engine: vue\n    path: /web\n",
        errors=(P("micros[2].path", 15, 'already the path of micro "api"'),),
    ),
    Case(
        "root path for a second micro",
        two(second="path: /"),
        errors=(P("micros[1].path", 11, 'path "/" is already'),),
    ),
    Case(
        "path under __space",
        two(second="path: __space/x"),
        errors=(P("micros[1].path", 11, "kept for the runtime"),),
    ),
    Case(
        "path with a space",
        two(second='path: "my api"'),
        errors=(P("micros[1].path", 11, "characters a path cannot"),),
    ),
    Case(
        "static without serve",
        one(engine="static"),
        errors=(P("micros[0].serve", 5, "static micro needs serve"),),
    ),
    Case(
        "serve outside src",
        one("serve: ../..", engine="static"),
        errors=(P("micros[0].serve", 6, "outside src"),),
    ),
    Case(
        "custom without run",
        one("dev: sh ./serve.sh", engine="custom"),
        errors=(P("micros[0].run", 5, "custom micro needs run"),),
    ),
    Case(
        "public with public_routes",
        one("public: true", "public_routes:", "  - /x"),
        errors=(P("micros[0].public_routes", 7, "cannot be used with public"),),
    ),
    Case(
        "public_routes as one string",
        one('public_routes: "/x"'),
        errors=(P("micros[0].public_routes", 6, "must be a list"),),
    ),
    Case("run as a list", one("run:", "  - a"), errors=(P("micros[0].run", 6, "must be text"),)),
    Case(
        "command that YAML reads as a mapping",
        one("commands:", "  - echo a: b"),
        errors=(P("micros[0].commands[0]", 7, "quote the whole entry"),),
    ),
    # --- presets ---------------------------------------------------------------------------------
    Case(
        "presets key misspelt",
        one("presets:", "  apikeys: true"),
        errors=(P("micros[0].presets.apikeys", 7, 'did you mean "api_keys"?'),),
    ),
    Case(
        "api_keys: on",
        one("presets:", "  api_keys: on"),
        errors=(P("micros[0].presets.api_keys", 7, "YAML 1.2"),),
    ),
    Case(
        "env is a mapping",
        one("presets:", "  env:", "    A: b"),
        errors=(P("micros[0].presets.env", 7, "must be a list"),),
    ),
    Case(
        "env entry without name",
        one("presets:", "  env:", "    - description: x"),
        errors=(P("micros[0].presets.env[0].name", 8, "each variable needs a name"),),
    ),
    Case(
        "env value instead of default",
        one("presets:", "  env:", "    - name: A", "      value: b"),
        errors=(P("micros[0].presets.env[0].value", 9, 'did you mean "default"?'),),
    ),
    # --- actions -------------------------------------------------------------------------------
    Case(
        "rate plural for 1",
        one(*action("1 minutes")),
        errors=(P("micros[0].actions[0].default_interval", 9, 'write "1 minute"'),),
    ),
    Case(
        "rate singular for 5",
        one(*action("5 hour")),
        errors=(P("micros[0].actions[0].default_interval", 9, 'write "5 hours"'),),
    ),
    Case(
        "rate of zero",
        one(*action("0 days")),
        errors=(P("micros[0].actions[0].default_interval", 9, "at least 1"),),
    ),
    Case(
        "rate in weeks",
        one(*action("2 weeks")),
        errors=(P("micros[0].actions[0].default_interval", 9, '"weeks" is not a unit'),),
    ),
    Case(
        "capitalised unit",
        one(*action("5 Minutes")),
        errors=(P("micros[0].actions[0].default_interval", 9, "must be lowercase"),),
    ),
    Case(
        "cron minute out of range",
        one(*action("61 * * * *")),
        errors=(P("micros[0].actions[0].default_interval", 9, "minute 61 is out of range 0-59"),),
    ),
    Case(
        "cron month out of range",
        one(*action("0 0 1 13 *")),
        errors=(P("micros[0].actions[0].default_interval", 9, "month 13"),),
    ),
    Case(
        "cron with six fields",
        one(*action("0 0 * * * *")),
        errors=(P("micros[0].actions[0].default_interval", 9, "5 fields, this one has 6"),),
    ),
    Case(
        "cron ? in the hour",
        one(*action("0 ? * * *")),
        errors=(P("micros[0].actions[0].default_interval", 9, "only stand for a day"),),
    ),
    Case(
        "cron backwards range",
        one(*action("0 5-1 * * *")),
        errors=(P("micros[0].actions[0].default_interval", 9, "runs backwards"),),
    ),
    Case(
        "cron step of zero",
        one(*action("*/0 * * * *")),
        errors=(P("micros[0].actions[0].default_interval", 9, "at least 1"),),
    ),
    Case(
        "cron bad day name",
        one(*action("0 0 * * FUN")),
        errors=(P("micros[0].actions[0].default_interval", 9, '"FUN" is not a number'),),
    ),
    Case(
        "interval that is neither",
        one(*action("every day")),
        errors=(P("micros[0].actions[0].default_interval", 9, "neither a rate nor a cron"),),
    ),
    Case(
        "trigger other than schedule",
        one(*action("1 day")).replace("schedule", "webhook"),
        errors=(P("micros[0].actions[0].trigger", 8, 'must be "schedule"'),),
    ),
    Case(
        "interval missing",
        one("actions:", "  - id: a", "    trigger: schedule"),
        errors=(P("micros[0].actions[0].default_interval", 7, "is missing"),),
    ),
    Case(
        "action id missing",
        one("actions:", "  - trigger: schedule", "    default_interval: 1 day"),
        errors=(P("micros[0].actions[0].id", 7, "id is missing"),),
    ),
    Case(
        "action key misspelt",
        one(*action("1 day", "interval: 2")),
        errors=(P("micros[0].actions[0].interval", 10, 'did you mean "default_interval"?'),),
    ),
    Case(
        "action ids repeat across micros",
        two(
            first="actions:\n  - {id: a, trigger: schedule, default_interval: 1 day}",
            second="actions:\n  - {id: a, trigger: schedule, default_interval: 2 days}",
        ),
        errors=(P("micros[1].actions[0].id", 14, "already used by micros[0].actions[0]"),),
    ),
    Case(
        "action ids repeat after one without id",
        one(
            "actions:",
            "  - {trigger: schedule, default_interval: 1 day}",
            "  - {id: a, trigger: schedule, default_interval: 1 day}",
            "  - {id: a, trigger: schedule, default_interval: 1 day}",
        ),
        errors=(
            P("micros[0].actions[0].id", 7, "id is missing"),
            P("micros[0].actions[2].id", 9, "already used by micros[0].actions[1]"),
        ),
    ),
    # --- every problem at once ---------------------------------------------------------------
    Case(
        "all at once",
        "v: 1\napp_name: far too long a name\nmicros:\n"
        "  - name: web\n    src: nope\n    engine: pyhton3.9\n    primary: yes\n"
        "  - name: web\n    src: api\n    engine: static\n    publik: true\n",
        errors=(
            P("v", 1, "v must be 0"),
            P("app_name", 2, "at most 12"),
            P("micros[0].src", 5, "does not exist"),
            P("micros[0].engine", 6, 'did you mean "python3.9"?'),
            P("micros[0].primary", 7, "true or false"),
            P("micros[1].name", 8, "already used"),
            P("micros[1].serve", 10, "needs serve"),
            P("micros[1].publik", 11, 'did you mean "public"?'),
        ),
    ),
]


def _app(tmp_path: Path, text: str) -> Path:
    for folder in FOLDERS:
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    (tmp_path / "icon.png").write_bytes(b"\x89PNG")
    (tmp_path / spacefile.FILENAME).write_bytes(text.encode("utf-8"))
    return tmp_path


def _matches(problems: list[Problem], expected: tuple[P, ...]) -> None:
    shown = "\n".join(f"  {p.where!r} line {p.line}: {p.message}; {p.hint}" for p in problems)
    assert len(problems) == len(expected), f"expected {len(expected)}, got:\n{shown}"
    for want in expected:
        assert any(
            (p.where, p.line) == (want.where, want.line) and want.phrase in f"{p.message}; {p.hint}"
            for p in problems
        ), f"no problem like {want} in:\n{shown}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_spacefile(case: Case, tmp_path: Path) -> None:
    result, errors, warnings = spacefile.check(_app(tmp_path, case.text), strict=case.strict)
    _matches(errors, case.errors)
    _matches(warnings, case.warnings)
    if case.errors:
        assert result is None
        return
    assert result is not None
    assert result.warnings == tuple(warnings)
    assert sum(m.primary for m in result.micros) == 1
    if case.paths is not None:
        assert {m.name: m.path for m in result.micros if m.name in case.paths} == case.paths
    if case.then is not None:
        assert case.then(result)


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


def test_load_gives_a_full_model(tmp_path: Path) -> None:
    app = _app(tmp_path, two(second="run: node index.js\npresets:\n  env:\n    - name: A"))
    sf = spacefile.load(app)
    assert sf.path == app / "Spacefile"
    web, api = sf.micros
    assert (web.src, web.serve, web.kind, web.path) == (app / "web", "dist", "primary", "/")
    assert (api.src, api.engine, api.kind) == (app / "api", "nodejs16", "normal")
    assert (api.path, api.run) == ("/api", "node index.js")
    assert api.env[0].name == "A" and api.env[0].default is None
    assert sf.primary is web and sf.micro("api") is api


def test_src_dot_is_the_app_folder(tmp_path: Path) -> None:
    sf = spacefile.load(_app(tmp_path, one().replace("src: api", "src: ./")))
    assert sf.micros[0].src == tmp_path


def test_load_raises_every_problem_at_once(tmp_path: Path) -> None:
    app = _app(tmp_path, one("primary: yes", "bogus: 1", engine="pyhton3.9"))
    with pytest.raises(InvalidFile) as caught:
        spacefile.load(app)
    where = [p.where for p in caught.value.problems]
    assert where == ["micros[0].engine", "micros[0].primary", "micros[0].bogus"]  # by line
    text = str(caught.value)
    assert "3 problems" in text and 'did you mean "python3.9"?' in text
    assert ':5: micros[0].engine: engine "pyhton3.9" is not one of static' in text


def test_missing_spacefile_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SpaceDevError) as caught:
        spacefile.load(tmp_path)
    assert str(tmp_path / "Spacefile") in caught.value.message
    assert "v: 0" in caught.value.hint


def test_missing_spacefile_spots_a_near_name(tmp_path: Path) -> None:
    (tmp_path / "Spacefile.yml").write_text(one())
    with pytest.raises(SpaceDevError) as caught:
        spacefile.check(tmp_path)
    assert "rename it to Spacefile" in caught.value.hint


def test_missing_app_folder(tmp_path: Path) -> None:
    with pytest.raises(SpaceDevError, match="does not exist"):
        spacefile.load(tmp_path / "nowhere")


def test_check_paths_off_skips_the_filesystem(tmp_path: Path) -> None:
    (tmp_path / "Spacefile").write_text(one().replace("src: api", "src: not/here"))
    result, errors, _ = spacefile.check(tmp_path, check_paths=False)
    assert errors == [] and result is not None
    assert result.micros[0].src == tmp_path / "not" / "here"
    _, errors, _ = spacefile.check(tmp_path)
    assert [p.where for p in errors] == ["micros[0].src"]


def test_invalid_utf8_has_a_line(tmp_path: Path) -> None:
    (tmp_path / "Spacefile").write_bytes(b"v: 0\nmicros:\n  - name: \xff\n")
    _, errors, _ = spacefile.check(tmp_path)
    assert [(p.line, "UTF-8" in p.message) for p in errors] == [(3, True)]


def test_report_ok_with_warnings(tmp_path: Path) -> None:
    _, errors, warnings = spacefile.check(_app(tmp_path, one(engine="python3.12")))
    lines = spacefile.report(errors, warnings).splitlines()
    assert lines[0] == "Spacefile OK, with 1 warning"
    assert lines[1].startswith("warning: ")
    assert ':5: micros[0].engine: engine "python3.12"' in lines[1]


def test_report_lists_every_problem_one_per_line(tmp_path: Path) -> None:
    _, errors, warnings = spacefile.check(_app(tmp_path, one("primary: yes", engine="deno")))
    lines = spacefile.report(errors, warnings).splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert "Spacefile OK" not in lines


def test_problem_names_file_line_place_and_fix(tmp_path: Path) -> None:
    _, errors, _ = spacefile.check(_app(tmp_path, one(engine="pyhton3.9")))
    (problem,) = errors
    assert str(problem) == (
        f'{tmp_path / "Spacefile"}:5: micros[0].engine: engine "pyhton3.9" is not one of '
        "static, react, svelte, vue, next, nuxt, svelte-kit, python3.8, python3.9, nodejs16, "
        'custom; did you mean "python3.9"?'
    )
