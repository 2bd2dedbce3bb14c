"""space-dev.toml reading, its line numbers, and the command line over it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runtime import config
from runtime.config import apply_overrides, find_config, load
from runtime.errors import InvalidFile, Problem, SpaceDevError
from runtime.models import AppConfig, AuthConfig, RouteRule, RuntimeConfig

SPACEFILE = "v: 0\nmicros:\n  - name: api\n    src: .\n    engine: python3.9\n"


def make_app(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Spacefile").write_text(SPACEFILE)
    return folder


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with the apps `app` and `app2`, and `empty`, a folder with no Spacefile."""
    monkeypatch.chdir(tmp_path)
    make_app(tmp_path / "app")
    make_app(tmp_path / "app2")
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    return tmp_path


def write(folder: Path, text: str, name: str = "space-dev.toml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems_of(folder: Path, text: str) -> tuple[Problem, ...]:
    with pytest.raises(InvalidFile) as caught:
        load(write(folder, text))
    return caught.value.problems


# --- defaults -------------------------------------------------------------------------------


def test_no_file_gives_every_default_and_no_apps() -> None:
    cfg = load(None)
    assert cfg == RuntimeConfig(
        host="127.0.0.1",
        port=4200,
        data_dir=Path(".space-dev"),
        reload=True,
        schedule=True,
        apps=(),
        config_file=None,
    )


def test_default_constants() -> None:
    assert config.CONFIG_FILE_NAME == "space-dev.toml"
    assert config.DEFAULT_KEY_HEADERS == ("X-Space-App-Key", "X-API-Key")
    assert config.DEFAULT_KEY_COOKIES == ()
    assert (config.RESTART_BACKOFF_FIRST_S, config.RESTART_BACKOFF_MAX_S) == (0.5, 30.0)
    assert config.RESTART_BACKOFF_RESET_AFTER_S == 60.0
    assert (config.MICRO_READY_TIMEOUT_S, config.STOP_GRACE_S, config.REQUEST_WAIT_S) == (30, 5, 30)
    assert config.LOG_LINES_KEPT == 500
    assert 0 < config.RELOAD_DEBOUNCE_S < 1


def test_empty_file_gives_defaults_with_data_dir_beside_the_file(here: Path) -> None:
    cfg = load(write(here / "conf", ""))
    assert cfg.data_dir == here / "conf" / ".space-dev"
    assert (cfg.host, cfg.port, cfg.reload, cfg.schedule, cfg.apps) == (
        "127.0.0.1",
        4200,
        True,
        True,
        (),
    )
    assert cfg.config_file == here / "conf" / "space-dev.toml"


def test_app_defaults(here: Path) -> None:
    (app,) = load(write(here, '[[apps]]\npath = "app"\n')).apps
    assert app == AppConfig(path=here / "app", auth=config.DEFAULT_AUTH)
    assert app.name is None and app.port is None and app.env == {} and app.routes == ()


# --- the full example -----------------------------------------------------------------------

FULL = """
[runtime]
host = "0.0.0.0"
port = 4300
data_dir = "state"
reload = false
schedule = false

[[apps]]
path = "sample_apps/notes"    # folder holding the Spacefile, relative to this file
name = "notes"
port = 4300
[apps.env]
GREETING = "hi"
[apps.auth]
key_headers = ["X-Space-App-Key", "X-API-Key"]
key_cookies = ["mia_client_key"]

[[apps.routes]]
micro = "api"
path = "/admin/*"
methods = ["post", "DELETE"]
api_key_required = true
allow = 'clientType == "admin" || groups.ops'

[[apps.routes]]
micro = "api"
path = "/reports/*"

[[apps]]
path = "sample_apps/todo"
port = 4310
"""


def test_full_example_round_trips(here: Path) -> None:
    make_app(here / "sample_apps" / "notes")
    make_app(here / "sample_apps" / "todo")
    cfg = load(write(here, FULL))
    assert cfg == RuntimeConfig(
        host="0.0.0.0",
        port=4300,
        data_dir=here / "state",
        reload=False,
        schedule=False,
        config_file=here / "space-dev.toml",
        apps=(
            AppConfig(
                path=here / "sample_apps" / "notes",
                auth=AuthConfig(("X-Space-App-Key", "X-API-Key"), ("mia_client_key",)),
                name="notes",
                port=4300,
                env={"GREETING": "hi"},
                routes=(
                    RouteRule(
                        "api",
                        "/admin/*",
                        ("POST", "DELETE"),
                        True,
                        'clientType == "admin" || groups.ops',
                        line=18,
                    ),
                    RouteRule("api", "/reports/*", None, False, None, line=25),
                ),
            ),
            AppConfig(path=here / "sample_apps" / "todo", auth=config.DEFAULT_AUTH, port=4310),
        ),
    )


def test_auth_table_with_one_list_keeps_the_other_default(here: Path) -> None:
    (app,) = load(write(here, '[[apps]]\npath = "app"\n[apps.auth]\nkey_cookies = ["k"]\n')).apps
    assert app.auth == AuthConfig(config.DEFAULT_KEY_HEADERS, ("k",))


def test_inline_tables_and_inline_route_arrays_are_read_too(here: Path) -> None:
    cfg = load(
        write(
            here,
            """
        runtime = { port = 5000 }
        apps = [{ path = "app", env = { A = "1" }, routes = [{ micro = "m", path = "/x" }] }]
    """,
        )
    )
    assert cfg.port == 5000
    assert cfg.apps[0].env == {"A": "1"}
    assert cfg.apps[0].routes == (RouteRule("m", "/x", line=2),)


# --- one problem each: key path and line ----------------------------------------------------

A = '[[apps]]\npath = "app"\n'  # lines 1-2: a valid app to hang keys on

BAD = [
    # (text, where, line, words in the message or hint)
    ("[runtme]\n", "runtme", 1, 'did you mean "runtime"'),
    ("[runtime]\nhots = 'x'\n", "runtime.hots", 2, 'did you mean "host"'),
    ("[runtime]\nport = '4200'\n", "runtime.port", 2, "expected a port number, got a string"),
    ("[runtime]\nport = true\n", "runtime.port", 2, "got a boolean (true)"),
    ("[runtime]\n\nport = 70000\n", "runtime.port", 3, "out of range"),
    ("[runtime]\nport = -1\n", "runtime.port", 2, "use 1-65535"),
    ("[runtime]\nport = 4200.0\n", "runtime.port", 2, "got a float (4200.0)"),
    ("[runtime]\nreload = 'yes'\n", "runtime.reload", 2, "expected true or false"),
    ("[runtime]\nschedule = 1\n", "runtime.schedule", 2, "got an integer (1)"),
    ("[runtime]\ndata_dir = 5\n", "runtime.data_dir", 2, "expected a string"),
    ("[runtime]\nhost = ''\n", "runtime.host", 2, "must not be empty"),
    ("runtime = 5\n", "runtime", 1, "expected a [runtime] table"),
    ("[apps]\npath = 'app'\n", "apps", 1, "expected [[apps]] tables, got a table"),
    ("port = 1\n", "port", 1, "known keys: runtime, apps"),
    ("[[apps]]\nname = 'x'\n", "apps[0]", 1, 'missing "path"'),
    ("[[apps]]\npath = 'nope'\n", "apps[0].path", 2, 'folder "nope" does not exist'),
    ("[[apps]]\npath = 'empty'\n", "apps[0].path", 2, 'folder "empty" has no Spacefile'),
    ("[[apps]]\npath = 'afile'\n", "apps[0].path", 2, "is not a folder"),
    ("[[apps]]\npath = 3\n", "apps[0].path", 2, "expected a string"),
    (A + "prot = 1\n", "apps[0].prot", 3, 'did you mean "port"'),
    (A + "port = 'x'\n", "apps[0].port", 3, "expected a port number"),
    (A + "port = 65536\n", "apps[0].port", 3, "out of range"),
    (A + "name = 'a/b'\n", "apps[0].name", 3, "must not contain"),
    (A + "name = 7\n", "apps[0].name", 3, "expected a string"),
    (A + "name = 1979-05-27\n", "apps[0].name", 3, "got a date/time (1979-05-27)"),
    (A + "[apps.env]\nOK = 'x'\nCOUNT = 3\n", "apps[0].env.COUNT", 5, 'quote it: COUNT = "3"'),
    (A + "[apps.env]\nDEBUG = true\n", "apps[0].env.DEBUG", 4, 'quote it: DEBUG = "true"'),
    (A + "[apps.env]\n\"MY VAR\" = 'x'\n", 'apps[0].env."MY VAR"', 4, "environment variable"),
    (A + "[apps.env]\nMY-VAR = 'x'\n", "apps[0].env.MY-VAR", 4, "environment variable"),
    (A + "env = 'x'\n", "apps[0].env", 3, "expected an [apps.env] table"),
    (A + "[apps.auth]\nkey_header = []\n", "apps[0].auth.key_header", 4, '"key_headers"'),
    (A + "[apps.auth]\nkey_headers = 'X-Key'\n", "apps[0].auth.key_headers", 4, "an array"),
    (
        A + "[apps.auth]\nkey_headers = ['Bad Header']\n",
        "apps[0].auth.key_headers[0]",
        4,
        'expected a header name, got "Bad Header"',
    ),
    (A + "[apps.auth]\nkey_cookies = [1]\n", "apps[0].auth.key_cookies[0]", 4, "a cookie name"),
    (A + "auth.key_headers = 'x'\n", "apps[0].auth.key_headers", 3, "an array"),
    (
        A + "auth = { key_headers = ['ok'], key_cookies = [2] }\n",
        "apps[0].auth.key_cookies[0]",
        3,
        "cookie name",
    ),
    (A + "\n[[apps.routes]]\nmicro = 'api'\n", "apps[0].routes[0]", 4, 'missing "path"'),
    (A + "[[apps.routes]]\npath = '/x'\n", "apps[0].routes[0]", 3, 'missing "micro"'),
    (A + "[[apps.routes]]\nmicro = ''\npath = '/'\n", "apps[0].routes[0].micro", 4, "empty"),
    (
        A + "[[apps.routes]]\nmicro = 'a'\npath = '/'\nmethods = ['GET', 'PSOT']\n",
        "apps[0].routes[0].methods[1]",
        6,
        'did you mean "POST"',
    ),
    (
        A + "[[apps.routes]]\nmicro = 'a'\npath = '/'\nmethods = [\n  'GET',\n  'FETCH',\n]\n",
        "apps[0].routes[0].methods[1]",
        8,
        'unknown HTTP method "FETCH"',
    ),
    (
        A + "[[apps.routes]]\nmicro = 'a'\npath = '/'\nmethods = []\n",
        "apps[0].routes[0].methods",
        6,
        "matches no request",
    ),
    (
        A + "[[apps.routes]]\nmicro = 'a'\npath = '/'\nmethods = 'GET'\n",
        "apps[0].routes[0].methods",
        6,
        "an array of method names",
    ),
    (
        A + "[[apps.routes]]\nmicro = 'a'\npath = '/'\napi_key_required = 'yes'\n",
        "apps[0].routes[0].api_key_required",
        6,
        "true or false",
    ),
    (
        A + "[[apps.routes]]\nmicro = 'a'\npath = '/'\nalow = 'true'\n",
        "apps[0].routes[0].alow",
        6,
        'did you mean "allow"',
    ),
    (A + "routes = 'x'\n", "apps[0].routes", 3, "expected [[apps.routes]]"),
    # Arrays of tables are counted in order, each under its own app.
    (
        A + "[[apps.routes]]\nmicro = 'a'\npath = '/'\n" + "[[apps]]\npath = 'app2'\n"
        "[[apps.routes]]\nmicro = 'a'\npath = '/'\n[[apps.routes]]\nmicro = 'b'\npath = 9\n",
        "apps[1].routes[1].path",
        13,
        "expected a string",
    ),
    (A + "[[apps]]\npath = 'app2'\n[apps.env]\nX = 1\n", "apps[1].env.X", 6, "expected a string"),
]


@pytest.mark.parametrize(("text", "where", "line", "words"), BAD, ids=[c[1] for c in BAD])
def test_each_problem_names_its_key_and_line(
    here: Path, text: str, where: str, line: int, words: str
) -> None:
    (problem,) = problems_of(here, text)
    assert (problem.where, problem.line) == (where, line), problem
    assert words in f"{problem.message}; {problem.hint}"
    assert problem.file == "space-dev.toml"


DUPLICATES = [
    (A + "name = 'n'\n[[apps]]\npath = 'app2'\nname = 'n'\n", "apps[1].name", 6, "apps[0]"),
    (A + "port = 5000\n[[apps]]\npath = 'app2'\nport = 5000\n", "apps[1].port", 6, "apps[0]"),
    # The first app without a port takes runtime.port; a second app may not claim it.
    (
        "[runtime]\nport = 4300\n" + A + "[[apps]]\npath = 'app2'\nport = 4300\n",
        "apps[1].port",
        7,
        "apps[0] (runtime.port)",
    ),
    (A + "[[apps]]\npath = './app/'\n", "apps[1].path", 4, "same path as apps[0]"),
]


@pytest.mark.parametrize(("text", "where", "line", "words"), DUPLICATES)
def test_duplicate_apps(here: Path, text: str, where: str, line: int, words: str) -> None:
    (problem,) = problems_of(here, text)
    assert (problem.where, problem.line) == (where, line)
    assert words in problem.message


def test_port_zero_means_any_free_port_and_is_never_a_duplicate(here: Path) -> None:
    cfg = load(write(here, A + "port = 0\n[[apps]]\npath = 'app2'\nport = 0\n"))
    assert [a.port for a in cfg.apps] == [0, 0]


def test_all_problems_are_reported_at_once(here: Path) -> None:
    problems = problems_of(
        here,
        """
        [runtime]
        port = "x"
        colour = true

        [[apps]]
        path = "nope"
        [apps.env]
        N = 1
    """,
    )
    assert [(p.where, p.line) for p in problems] == [
        ("runtime.port", 2),
        ("runtime.colour", 3),
        ("apps[0].path", 6),
        ("apps[0].env.N", 8),
    ]


def test_the_error_message_lists_every_problem_with_file_and_line(here: Path) -> None:
    with pytest.raises(InvalidFile) as caught:
        load(write(here, "[runtime]\nprot = 1\n"))
    text = str(caught.value)
    assert "space-dev.toml has 1 problem" in text
    assert 'space-dev.toml:2: runtime.prot: unknown key "prot"; did you mean "port"?' in text


# --- syntax errors --------------------------------------------------------------------------

SYNTAX = [
    ("[runtime]\nport = 4200\nhost = \n", 3),
    ("[runtime]\nport = 1\n[runtime]\n", 3),
    ("[[apps]]\npath = 'app'\n\n[apps\n", 4),
    ('a = 1\nb = "unterminated\n', 2),  # tomllib says "end of document": the last line
]


@pytest.mark.parametrize(("text", "line"), SYNTAX)
def test_syntax_errors_carry_their_line(here: Path, text: str, line: int) -> None:
    (problem,) = problems_of(here, text)
    assert problem.line == line
    assert problem.message.startswith("TOML syntax error")
    assert "(at line" not in problem.message


def test_a_file_that_is_not_utf8(here: Path) -> None:
    path = here / "space-dev.toml"
    path.write_bytes(b"[runtime]\nhost = '\xff'\n")
    with pytest.raises(InvalidFile) as caught:
        load(path)
    assert caught.value.problems[0].line == 2


def test_a_missing_config_file_is_a_clear_error(here: Path) -> None:
    with pytest.raises(SpaceDevError, match="config file nope.toml not found"):
        load(Path("nope.toml"))


# --- relative paths -------------------------------------------------------------------------


def test_paths_are_relative_to_the_file_not_the_working_folder(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_app(here / "apps" / "notes")
    write(here / "conf", '[runtime]\ndata_dir = "../state"\n[[apps]]\npath = "../apps/notes"\n')
    (here / "elsewhere").mkdir()
    monkeypatch.chdir(here / "elsewhere")
    cfg = load(Path("../conf/space-dev.toml"))
    assert cfg.data_dir == here / "state"
    assert cfg.apps[0].path == here / "apps" / "notes"
    assert cfg.config_file == here / "conf" / "space-dev.toml"


def test_a_missing_app_folder_is_reported_as_written(here: Path) -> None:
    (problem,) = problems_of(here / "conf", '[[apps]]\npath = "../missing"\n')
    assert '"../missing"' in problem.message
    assert str(here / "conf") in problem.hint


# --- find_config ----------------------------------------------------------------------------


def test_find_config_looks_in_the_folder_itself_only(here: Path) -> None:
    assert find_config(here) is None
    write(here, "")
    assert find_config(here) == here / "space-dev.toml"
    (here / "sub").mkdir()
    assert find_config(here / "sub") is None  # no walking up


# --- overrides ------------------------------------------------------------------------------


def test_command_line_options_win_over_the_file(here: Path) -> None:
    cfg = load(write(here, "[runtime]\nhost='0.0.0.0'\nport=5000\nreload=false\n" + A))
    out = apply_overrides(
        cfg,
        host="localhost",
        port=6000,
        data_dir=Path("d"),
        reload=True,
        schedule=False,
        cwd=here / "app",
    )
    assert (out.host, out.port, out.reload, out.schedule) == ("localhost", 6000, True, False)
    assert out.data_dir == here / "app" / "d"  # a command-line path is relative to cwd
    assert out.apps[0].port == 6000  # --port is the first app's port


def test_without_options_the_file_is_kept_and_the_first_app_gets_runtime_port(here: Path) -> None:
    cfg = load(write(here, "[runtime]\nport=5000\ndata_dir='state'\n" + A))
    out = apply_overrides(cfg, cwd=here / "app")
    assert out.data_dir == here / "state"  # still relative to the file
    assert (out.port, out.apps[0].port, out.host, out.reload) == (5000, 5000, "127.0.0.1", True)


def test_a_first_app_port_in_the_file_is_the_runtime_port(here: Path) -> None:
    cfg = load(write(here, A + "port = 4500\n"))
    assert apply_overrides(cfg, cwd=here).port == 4500


def test_no_file_data_dir_is_under_cwd(here: Path) -> None:
    out = apply_overrides(load(None), cwd=here / "app")
    assert out.data_dir == here / "app" / ".space-dev"


def test_app_dirs_replace_the_file_apps_keeping_settings_of_the_same_folder(here: Path) -> None:
    cfg = load(write(here, A + "name = 'one'\n[apps.env]\nX = 'y'\n[[apps]]\npath = 'app2'\n"))
    make_app(here / "third")
    out = apply_overrides(cfg, app_dirs=[Path("third"), Path("./app/"), Path("app")], cwd=here)
    assert [a.path for a in out.apps] == [here / "third", here / "app"]
    assert out.apps[1].name == "one" and out.apps[1].env == {"X": "y"}
    assert out.apps[0].name is None and out.apps[0].auth == config.DEFAULT_AUTH


def test_app_dirs_are_checked(here: Path) -> None:
    with pytest.raises(SpaceDevError) as caught:
        apply_overrides(load(None), app_dirs=[Path("nope"), Path("empty")], cwd=here)
    assert "nope: no such folder" in caught.value.message
    assert "empty: no Spacefile" in caught.value.message


def test_up_without_args_uses_cwd_when_it_holds_a_spacefile(here: Path) -> None:
    out = apply_overrides(load(None), cwd=here / "app")
    assert out.apps == (AppConfig(path=here / "app", auth=config.DEFAULT_AUTH, port=4200),)


def test_up_with_nothing_to_run_says_what_to_do(here: Path) -> None:
    with pytest.raises(SpaceDevError) as caught:
        apply_overrides(load(None), cwd=here)
    assert "no space-dev.toml" in caught.value.message
    assert caught.value.hint.startswith("run space-dev up PATH/TO/APP, or create space-dev.toml")
    with pytest.raises(SpaceDevError, match=r"space-dev.toml has no \[\[apps\]\]") as empty:
        apply_overrides(load(write(here, "")), cwd=here)
    # The file is there already: the hint says what to put in it, not to create it.
    assert "create" not in empty.value.hint and "[[apps]]" in empty.value.hint


def test_other_commands_may_run_without_an_app(here: Path) -> None:
    assert apply_overrides(load(None), cwd=here, require_app=False).apps == ()


def test_port_override_clashing_with_another_app(here: Path) -> None:
    cfg = load(write(here, A + "[[apps]]\npath = 'app2'\nport = 4300\n"))
    with pytest.raises(SpaceDevError, match="port 4300 is given to both"):
        apply_overrides(cfg, port=4300, cwd=here)


@pytest.mark.parametrize("port", [-1, 65536])
def test_port_override_out_of_range(here: Path, port: int) -> None:
    with pytest.raises(SpaceDevError, match="out of range"):
        apply_overrides(load(None), port=port, cwd=here / "app")


# --- allow expressions ----------------------------------------------------------------------


def test_a_bad_allow_expression_names_line_and_column(here: Path) -> None:
    (problem,) = problems_of(
        here,
        A
        + """
[[apps.routes]]
micro = "api"
path = "/admin/*"
allow = 'clientType == "admin" &&'
""",
    )
    assert (problem.where, problem.line) == ("apps[0].routes[0].allow", 7)
    assert problem.message.startswith("invalid expression at column 34: ")


def test_a_good_allow_expression_is_kept_as_written(here: Path) -> None:
    text = A + "[[apps.routes]]\nmicro='a'\npath='/'\nallow = '!(user == \"bob\") || groups.ops'\n"
    (rule,) = load(write(here, text)).apps[0].routes
    assert rule.allow == '!(user == "bob") || groups.ops'


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("allow = 'user ? x'", "at column 15: "),
        ('  allow  =  "user ? x"', "at column 19: "),
        # With an escape the file column is unknown: the expression's own column is given.
        ('allow = "\\u0075ser ? x"', "at column 6 of the expression: "),
    ],
)
def test_allow_errors_point_at_the_file_column(here: Path, line: str, where: str) -> None:
    (problem,) = problems_of(here, A + "[[apps.routes]]\nmicro='a'\npath='/'\n" + line + "\n")
    assert problem.line == 6
    assert problem.message.startswith(f"invalid expression {where}")
    assert "?" in problem.message  # the parser's own reason follows


# --- max_body_size and the environment's settings -------------------------------------------


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ("100 MiB", 100 * 1024 * 1024),
        ("1 KiB", 1024),
        ("2GiB", 2 * 1024**3),
        ("512 B", 512),
        ("1.5 mib", 1536 * 1024),
    ],
)
def test_max_body_size_takes_a_size_with_a_binary_unit(here: Path, written: str, size: int) -> None:
    cfg = load(write(here, f'[runtime]\nmax_body_size = "{written}"\n'))
    assert cfg.max_body_size == size == config.max_body_size(cfg)


def test_without_max_body_size_the_cap_is_100_mib(here: Path) -> None:
    assert config.max_body_size(load(write(here, "[runtime]\n"))) == 100 * 1024 * 1024
    assert config.max_body_size(load(None)) == 100 * 1024 * 1024


@pytest.mark.parametrize(
    ("value", "message", "hint"),
    [
        ("1048576", "expected a size, got an integer (1048576)", '"1048576 B"'),
        ('"100 MB"', 'unknown unit "MB"', "KiB, MiB or GiB"),
        ('"0 MiB"', "at least 1 byte", "KiB, MiB or GiB"),
        ('"lots"', "not a size", '"100 MiB"'),
        ("true", "got a boolean", ""),
    ],
)
def test_a_max_body_size_that_is_not_a_size_is_an_error_on_its_line(
    here: Path, value: str, message: str, hint: str
) -> None:
    (problem,) = problems_of(here, f"[runtime]\nport = 4200\nmax_body_size = {value}\n")
    assert problem.where == "runtime.max_body_size" and problem.line == 3
    assert message in problem.message and hint in problem.hint


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan", "inf"])
def test_a_client_timeout_that_is_not_seconds_names_the_variable(raw: str) -> None:
    with pytest.raises(SpaceDevError) as caught:
        config.client_timeout({"SPACE_DEV_CLIENT_TIMEOUT": raw})
    assert "SPACE_DEV_CLIENT_TIMEOUT" in caught.value.message
    assert "SPACE_DEV_CLIENT_TIMEOUT" in caught.value.hint


def test_the_client_and_ready_timeouts_default_and_take_seconds() -> None:
    assert config.client_timeout({}) == 30.0
    assert config.client_timeout({"SPACE_DEV_CLIENT_TIMEOUT": "1.5"}) == 1.5
    assert config.ready_timeout({"SPACE_DEV_READY_TIMEOUT": " 60 "}) == 60.0
    with pytest.raises(SpaceDevError, match="SPACE_DEV_READY_TIMEOUT"):
        config.ready_timeout({"SPACE_DEV_READY_TIMEOUT": "soon"})
