"""What a new user trips on, each against the real `space-dev` command."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.integration.conftest import Up, fetch, login, run_up
from tests.integration.micros import PY_ECHO, write_app
from tests.integration.raw_micro import RAW_MICRO

KEYS_SPACEFILE = """
v: 0
micros:
  - name: api
    src: api
    engine: python3.9
    run: python main.py
    primary: true
    presets:
      api_keys: true
  - name: raw
    src: raw
    engine: python3.9
    run: python raw.py
    path: /raw
    public: true
"""


def space_dev(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    full.pop("SPACE_DEV_PASSWORD", None)
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=60,
        env={**full, **(env or {})},
    )


@pytest.fixture(scope="module")
def keys_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Up, str]]:
    root = tmp_path_factory.mktemp("newcomer")
    app = write_app(root / "app", KEYS_SPACEFILE, {"api/main.py": PY_ECHO, "raw/raw.py": RAW_MICRO})
    up = run_up(app, "--no-schedule", "--no-reload", data_dir=root / "data")
    try:
        up.wait_ready(60)
        yield up, login(up.url)
    finally:
        up.stop()


# --- item 5: a key name keeps to the rule its hint gives, everywhere ---------------------------

BAD_NAMES = ["with space", "<script>", "a/b", "caf\u00e9", "semi;colon"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_cli_refuses_a_key_name_outside_the_rule(tmp_path: Path, name: str) -> None:
    app = write_app(tmp_path / "notes", KEYS_SPACEFILE, {})
    done = space_dev(app, "keys", "create", "--data-dir", str(tmp_path / "data"), "--name", name)
    assert done.returncode == 1, done.stdout
    assert "only letters, digits and - _ ." in done.stderr and "Traceback" not in done.stderr


def test_cli_accepts_every_character_the_hint_names(tmp_path: Path) -> None:
    app = write_app(tmp_path / "notes", KEYS_SPACEFILE, {})
    done = space_dev(
        app, "keys", "create", "--data-dir", str(tmp_path / "data"), "--name", "Ci-deploy_2.prod"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "Ci-deploy_2.prod"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_page_and_api_refuse_a_key_name_outside_the_rule(
    keys_up: tuple[Up, str], name: str
) -> None:
    up, owner = keys_up
    cookie = f"space_session={owner}"
    status, _, body = fetch(
        "POST",
        up.url + "/__space/api/keys",
        body=json.dumps({"name": name}).encode(),
        headers={"Cookie": cookie, "Content-Type": "application/json", "Origin": up.url},
    )
    assert status == 400, body
    assert "only letters, digits and - _ ." in json.loads(body)["errors"][0]
    status, _, body = fetch(
        "POST",
        up.url + "/__space/settings/keys",
        body=urlencode({"name": name}).encode(),
        headers={
            "Cookie": cookie,
            "Origin": up.url,
            "Accept": "text/html",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert status == 400 and b"only letters, digits and - _ ." in body
    listed = json.loads(fetch("GET", up.url + "/__space/api/keys", headers={"Cookie": cookie})[2])
    assert name not in {k["name"] for k in listed}


def test_page_form_says_the_rule_it_enforces(keys_up: tuple[Up, str]) -> None:
    up, owner = keys_up
    page = fetch("GET", up.url + "/__space/settings", headers={"Cookie": f"space_session={owner}"})[
        2
    ].decode()
    field = re.search(r'<input[^>]*id="key-name"[^>]*pattern="([^"]*)"', page)
    assert field and html.unescape(field.group(1)) == r"[A-Za-z0-9._\-]+"
    # Browsers compile `pattern` with the `v` (unicodeSets) flag, where an unescaped `-` at the
    # end of a class is an error, and an invalid pattern checks nothing at all.
    node = shutil.which("node")
    if node is not None:
        check = (
            "const p = process.argv[1]; const r = new RegExp(`^(?:${p})$`, 'v');"
            "console.log(r.test('ci-deploy.v2_x'), r.test('bad name!'))"
        )
        out = subprocess.run(
            [node, "-e", check, html.unescape(field.group(1))],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.stdout.split() == ["true", "false"], out.stderr


# --- item 5: SPACE_DEV_PASSWORD keeps to the users' rule ---------------------------------------


def test_a_short_space_dev_password_is_refused(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", KEYS_SPACEFILE, {})
    done = space_dev(
        tmp_path,
        "up",
        str(app),
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "data"),
        env={"SPACE_DEV_PASSWORD": "abc"},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "SPACE_DEV_PASSWORD is too short (3 characters, at least 8" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "data" / "users.json").exists()


def test_up_says_the_owner_was_made_from_the_variable(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        "v: 0\nmicros:\n  - name: site\n    src: .\n    engine: static\n    serve: .\n",
        {"index.html": "hi"},
    )
    up = run_up(app, "--no-reload", "--no-schedule", data_dir=tmp_path / "data")
    try:
        up.wait_ready(30)
        assert (
            "created the owner account 'dev' with the password from SPACE_DEV_PASSWORD" in up.output
        )
    finally:
        up.stop()


# --- a 502 shows nothing internal to anyone but the owner -------------------------------------

INTERNAL = re.compile(r"127\.0\.0\.1|localhost:\d+|NOT HTTP|Server disconnected|:\d{4,5}/")


def test_502_page_shows_nothing_internal_to_an_anonymous_visitor(keys_up: tuple[Up, str]) -> None:
    up, owner = keys_up
    for path in ("/raw/garbage", "/raw/no-answer"):
        for accept in ("text/html", "application/json"):
            status, _, body = fetch("GET", up.url + path, headers={"Accept": accept})
            assert status == 502, (path, body)
            text = body.decode()
            assert not INTERNAL.search(text.replace(up.url, "")), (path, text)
            assert "raw" in text  # which micro, and that it failed, are said
    # The owner is shown what went wrong.
    status, _, body = fetch(
        "GET",
        up.url + "/raw/garbage",
        headers={"Accept": "text/html", "Cookie": f"space_session={owner}"},
    )
    assert status == 502 and b"NOT HTTP" in body


# --- item 2: a micro that never starts does not hide the app -----------------------------------

CRASHING_SPACEFILE = """
v: 0
micros:
  - name: www
    src: www
    engine: static
    serve: .
    primary: true
  - name: api
    src: api
    engine: python3.9
    run: no-such-command-here --port 1
    path: /api
  - name: boom
    src: boom
    engine: python3.9
    path: /boom
"""

BOOM = """
import json

def helper():
    raise RuntimeError("the database is not there")

helper()
app = None
"""


def test_ready_line_names_the_micros_that_are_down(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "notes",
        CRASHING_SPACEFILE,
        {
            "www/index.html": "<h1>notes</h1>",
            "boom/main.py": BOOM,
            "api/README": "nothing runs here",
        },
    )
    up = run_up(app, "--no-reload", "--no-schedule", data_dir=tmp_path / "data")
    try:
        match = up.wait_for(r"ready: (\S+) (http://\S+/)(.*)", 60)
        assert match.group(2) == f"http://localhost:{up.port}/"
        assert "api: crashed" in match.group(3) and "boom: crashed" in match.group(3)
        # The app itself is served meanwhile.
        assert fetch("GET", f"http://localhost:{up.port}/__space/health")[0] == 503
        # Exit 127 says which field of the Spacefile to check, once.
        up.wait_for(
            r"api: exit code 127: .*`no-such-command-here --port 1`.*the `run` field "
            r"of micro api in the Spacefile",
            10,
        )
        assert up.output.count("exit code 127: the shell did not find `no-such-command-here`") == 1
        # The traceback is shown once; its repeats are counted, not printed again.
        up.wait_for(
            r"boom .*\(the same \d+ lines as at the last start, not shown again: "
            r"3 starts in a row\)",
            30,
        )
        lines = up.output.splitlines()
        assert sum("RuntimeError: the database is not there" in line for line in lines) == 1
        assert sum(line.startswith("boom") and "Traceback" in line for line in lines) == 1
    finally:
        up.stop()


# --- item 4: notices show backticks as code; the pages have an icon ---------------------------


def test_a_notice_shows_a_command_as_code_in_one_piece(keys_up: tuple[Up, str]) -> None:
    up, owner = keys_up
    headers = {
        "Cookie": f"space_session={owner}",
        "Origin": up.url,
        "Accept": "text/html",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    form = urlencode({"name": "twice"}).encode()
    fetch("POST", up.url + "/__space/settings/keys", body=form, headers=headers)
    status, _, body = fetch("POST", up.url + "/__space/settings/keys", body=form, headers=headers)
    assert status == 409
    notice = re.search(r'<p class="notice bad" role="alert">(.*?)</p>', body.decode(), re.S)
    assert notice, body
    assert "`" not in notice.group(1)
    assert '<code class="command">space-dev keys revoke twice --app app</code>' in notice.group(1)


def test_pages_have_a_favicon(keys_up: tuple[Up, str]) -> None:
    up, _ = keys_up
    page = fetch("GET", up.url + "/__space/login", headers={"Accept": "text/html"})[2].decode()
    icon = re.search(r'<link rel="icon" href="([^"]+)"', page)
    assert icon
    status, headers, body = fetch("GET", up.url + icon.group(1))
    assert status == 200 and headers["Content-Type"].startswith("image/svg") and b"<svg" in body


# --- item 8: help -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["up"],
        ["validate"],
        ["keys", "revoke"],
        ["keys", "disable"],
        ["keys", "enable"],
        ["users", "add"],
        ["users", "passwd"],
        ["users", "remove"],
        ["trigger"],
        ["data", "export"],
        ["data", "import"],
    ],
)
def test_every_positional_argument_is_described(tmp_path: Path, command: list[str]) -> None:
    done = space_dev(tmp_path, *command, "--help")
    assert done.returncode == 0
    positional = done.stdout.split("positional arguments:")[1].split("options:")[0]
    # An argument's row starts two spaces in; a description wrapped onto more lines, further.
    rows = [line for line in positional.splitlines() if re.match(r"  \S", line)]
    assert rows and all(len(line.split(None, 1)) == 2 for line in rows), positional


def test_up_help_names_its_environment_variables(tmp_path: Path) -> None:
    text = space_dev(tmp_path, "up", "--help").stdout
    assert "SPACE_DEV_PASSWORD" in text and "SPACE_DEV_READY_TIMEOUT" in text


def test_an_empty_config_gets_a_hint_that_fits(tmp_path: Path) -> None:
    (tmp_path / "space-dev.toml").write_text("")
    done = space_dev(tmp_path, "up", env={"SPACE_DEV_PASSWORD": "long enough"})
    assert done.returncode == 1
    assert "create space-dev.toml" not in done.stderr and "[[apps]]" in done.stderr


# --- item 6: the sample app keeps its notes in Base, a note's file in Drive --------------------


def test_sample_app_keeps_notes_and_files_across_restarts(tmp_path: Path) -> None:
    import shutil

    from tests.integration.conftest import REPO

    app = tmp_path / "notes"
    shutil.copytree(REPO / "sample_apps" / "notes", app)
    data = tmp_path / "data"
    boundary = "----newcomer"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n'
        "buy milk\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="list.txt"\r\nContent-Type: text/plain\r\n\r\n'
        "milk, eggs\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    up = run_up(app, "--no-reload", "--no-schedule", data_dir=data)
    try:
        up.wait_for(r"ready: notes ", 90)
        owner = login(up.url)
        cookie = {"Cookie": f"space_session={owner}", "Origin": up.url}
        status, _, made = fetch(
            "POST",
            up.url + "/api/notes",
            body=body,
            headers={**cookie, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert status == 201, made
        note = json.loads(made)
        assert note["file"] == f"{note['key']}/list.txt"
        # The README's App Actions commands, word for word, against the sample app.
        listed = space_dev(app, "actions", "list", "--data-dir", str(data))
        assert listed.returncode == 0 and "add_note" in listed.stdout, listed
        ran = space_dev(
            app,
            "actions",
            "run",
            "add_note",
            "--input",
            "title=groceries",
            "--input",
            "stars=3",
            "--data-dir",
            str(data),
        )
        assert ran.returncode == 0, ran
        assert json.loads(ran.stdout)["text"] == "groceries", ran.stdout
    finally:
        up.stop()
    again = run_up(app, "--no-reload", "--no-schedule", data_dir=data)
    try:
        again.wait_for(r"ready: notes ", 90)
        owner = login(again.url)
        cookie = {"Cookie": f"space_session={owner}"}
        status, _, listed = fetch("GET", again.url + "/api/notes", headers=cookie)
        assert status == 200, listed
        assert sorted(n["text"] for n in json.loads(listed)) == ["buy milk", "groceries"]
        status, _, file = fetch("GET", again.url + f"/api/notes/{note['key']}/file", headers=cookie)
        assert status == 200 and file == b"milk, eggs"
        status, _, page = fetch(
            "GET",
            again.url + "/__space/settings/data/base/notes",
            headers={**cookie, "Accept": "text/html"},
        )
        assert status == 200 and b"buy milk" in page
        status, _, page = fetch(
            "GET",
            again.url + "/__space/settings/data/drive/attachments",
            headers={**cookie, "Accept": "text/html"},
        )
        assert status == 200 and b"list.txt" in page
    finally:
        again.stop()
