"""What a newcomer meets on the README's tour, against one real `space-dev up`: the 421 and
404 pages, `allowed_hosts` saved while it runs, and the commands that talk to it (`status`,
`open`, and the lines that `keys`, `users` and `auth` leave in its terminal)."""

from __future__ import annotations

import html
import json
import os
import re
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.datadir.store import Store
from tests.integration.conftest import Up, fetch, login, run_up
from tests.integration.micros import PY_ECHO, write_app

SPACEFILE = """
v: 0
app_name: notes
micros:
  - name: www
    src: www
    engine: static
    serve: .
    primary: true
  - name: api
    src: api
    engine: python3.9
    run: python main.py
    path: /api
"""
HTML = {"Accept": "text/html"}


@dataclass
class Tour:
    up: Up
    root: Path
    config: Path
    data: Path
    owner: str  # the session cookie's value

    def cli(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        command, rest = args[0], list(args[1:])
        leaf = rest[:1] if command in ("keys", "auth", "users", "data") else []
        argv = [command, *leaf, "--data-dir", str(data_dir or self.data), *rest[len(leaf) :]]
        clean = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        return subprocess.run(
            [sys.executable, "-m", "runtime", *argv],
            cwd=self.root,
            env={**clean, **(env or {})},
            text=True,
            capture_output=True,
            timeout=30,
        )


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    root = tmp_path_factory.mktemp("tour")
    app = write_app(
        root / "notes", SPACEFILE, {"api/main.py": PY_ECHO, "www/index.html": "<h1>notes</h1>"}
    )
    config = root / "space-dev.toml"
    config.write_text('[[apps]]\npath = "notes"\n')
    up = run_up(app, "--config", str(config), "--no-schedule", data_dir=root / "data")
    try:
        up.wait_ready()
        up.wait_for("watching for changes")
        yield Tour(up, root, config, root / "data", login(up.url))
    finally:
        up.stop()


def _page(tour: Tour, path: str, host: str | None = None) -> tuple[int, str]:
    headers = {**HTML, "Cookie": f"space_session={tour.owner}"}
    if host:
        headers["Host"] = host
    status, _, body = fetch("GET", tour.up.url + path, headers=headers)
    return status, body.decode()


# --- 421: a name the app does not answer to ----------------------------------------------------


def test_the_421_page_is_styled_and_links_the_app_and_allowed_hosts_apply_while_up_runs(
    tour: Tour,
) -> None:
    status, page = _page(tour, "/notes?x=1", host=f"myapp.test:{tour.up.port}")
    assert status == 421
    # Its style is in the page: a stylesheet asked for by this name would be refused as well.
    assert "<style>" in page and ".card" in page and "/__space/static/style.css" not in page
    link = re.search(r'<a class="button" href="([^"]+)"', page)
    assert link and html.unescape(link.group(1)) == f"http://localhost:{tour.up.port}/notes?x=1"
    assert (
        "allowed_hosts = [&#34;myapp.test&#34;]" in page
        or 'allowed_hosts = ["myapp.test"]' in html.unescape(page)
    )
    # An API client still gets JSON.
    status, _, body = fetch("GET", tour.up.url + "/api/", headers={"Host": "myapp.test"})
    assert status == 421 and json.loads(body)["errors"][0] == "Unknown host name"

    # Saved while `up` runs: applied at once, and said so.
    mark = len(tour.up.lines)
    tour.config.write_text(
        '[runtime]\nallowed_hosts = ["myapp.test"]\n\n[[apps]]\npath = "notes"\n'
    )
    tour.up.wait_for(r"space-dev.toml applied: allowed_hosts is now myapp\.test", start=mark)
    status, page = _page(tour, "/", host=f"myapp.test:{tour.up.port}")
    assert status == 200 and "<h1>notes</h1>" in page
    # And taken back: refused again.
    mark = len(tour.up.lines)
    tour.config.write_text('[[apps]]\npath = "notes"\n')
    tour.up.wait_for(r"allowed_hosts is now none besides localhost", start=mark)
    assert _page(tour, "/", host="myapp.test")[0] == 421


# --- 404: one page for the runtime's paths and a static micro's --------------------------------


def test_both_404_pages_share_one_design_and_name_the_path_escaped(tour: Tour) -> None:
    status, runtime_page = _page(tour, "/__space/nope%3Cb%3Ebold")
    assert status == 404
    status, static_page = _page(tour, "/missing%3Cscript%3Ealert(1)")
    assert status == 404
    assert "There is nothing at <code>/__space/nope&lt;b&gt;bold</code>" in runtime_page
    assert "There is nothing at <code>/missing&lt;script&gt;alert(1)</code>" in static_page
    assert "<script>alert" not in static_page and "<b>bold" not in runtime_page

    def design(text: str) -> str:  # the page without the path it names
        return re.sub(r"There is nothing at <code>.*?</code>", "", text)

    assert design(runtime_page) == design(static_page)


# --- the commands that ask the running `up` ----------------------------------------------------


def test_status_lists_each_micro_with_its_state_and_url(tour: Tour) -> None:
    done = tour.cli("status")
    assert done.returncode == 0, done.stderr
    base = f"http://localhost:{tour.up.port}"
    assert f"notes  {base}/" in done.stdout
    assert re.search(rf"^  www\s+ready\s+{re.escape(base)}/$", done.stdout, re.M), done.stdout
    assert re.search(rf"^  api\s+ready\s+{re.escape(base)}/api/$", done.stdout, re.M)
    listed = json.loads(tour.cli("status", "--json").stdout)
    assert listed["running"] is True
    assert [(m["name"], m["state"]) for m in listed["apps"][0]["micros"]] == [
        ("www", "ready"),
        ("api", "ready"),
    ]


def test_status_says_plainly_when_nothing_runs(tour: Tour, tmp_path: Path) -> None:
    done = tour.cli("status", data_dir=tmp_path / "elsewhere")
    assert done.returncode == 3
    assert done.stdout.startswith("nothing is running") and "space-dev up" in done.stdout
    assert "Traceback" not in done.stderr
    # A runtime that was killed left its runtime.json behind: still nothing runs.
    Store(tmp_path / "stale").write_runtime_info("http://127.0.0.1:9", "x")
    done = tour.cli("status", "--json", data_dir=tmp_path / "stale")
    assert done.returncode == 3 and json.loads(done.stdout)["running"] is False


def test_open_opens_the_app_in_the_browser(tour: Tour, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    done = tour.cli("open", env={"BROWSER": str(browser), "DISPLAY": ""})
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while not opened.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert opened.read_text() == f"http://localhost:{tour.up.port}/"
    done = tour.cli("open", "nope", env={"BROWSER": str(browser)})
    assert done.returncode == 1 and 'serves no app "nope"' in done.stderr


def test_commands_say_in_ups_terminal_what_they_did(tour: Tour) -> None:
    said = [
        (["keys", "create", "--name", "told"], r'key "told" of app notes made from the command'),
        (["keys", "disable", "told"], r'key "told" of app notes switched off from the command'),
        (["auth", "disable", "--micro", "api"], r"micro api of app notes made PUBLIC from"),
        (["auth", "enable", "--micro", "api"], r"micro api of app notes made PRIVATE from"),
        (["keys", "revoke", "told"], r'key "told" of app notes revoked from the command line'),
    ]
    for args, line in said:
        mark = len(tour.up.lines)
        done = tour.cli(*args)
        assert done.returncode == 0, done.stderr
        tour.up.wait_for(line, start=mark, timeout=10)
    mark = len(tour.up.lines)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime",
            "users",
            "add",
            "ann",
            "--password-stdin",
            "--data-dir",
            str(tour.data),
        ],
        input="a good long password",
        text=True,
        capture_output=True,
        timeout=30,
        cwd=tour.root,
    )
    assert done.returncode == 0, done.stderr
    tour.up.wait_for(r"user ann added from the command line", start=mark, timeout=10)


def test_a_said_line_cannot_carry_terminal_escapes(tour: Tour) -> None:
    info = Store(tour.data).read_runtime_info()
    assert info is not None
    mark = len(tour.up.lines)
    status, _, _ = fetch(
        "POST",
        tour.up.url + "/__space/internal/refresh",
        headers={"X-Space-Dev-Token": info["token"], "Content-Type": "application/json"},
        body=json.dumps({"said": "\x1b[2Jcleared\nspace-dev | forged"}).encode(),
    )
    assert status == 204
    line = tour.up.wait_for(r"cleared", start=mark).string
    assert "\x1b" not in line and line.endswith("cleared space-dev | forged")
    # Without the token nothing is said.
    status, _, _ = fetch(
        "POST",
        tour.up.url + "/__space/internal/refresh",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"said": "not from the CLI"}).encode(),
    )
    assert status == 401 and "not from the CLI" not in tour.up.output


# --- data commands -----------------------------------------------------------------------------


def test_data_list_shows_sizes_and_json_and_an_empty_import_fails(
    tour: Tour, tmp_path: Path
) -> None:
    empty = tmp_path / "nothing.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("readme.txt", "no data")
    done = tour.cli("data", "import", str(empty))
    assert done.returncode == 1
    assert f"nothing to import in {empty}" in done.stderr and "Traceback" not in done.stderr
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("bases/todos.json", '[{"key": "a", "title": "milk"}]')
        z.writestr("drives/photos/cat.txt", "meow" * 100)
    assert tour.cli("data", "import", str(good)).returncode == 0
    listing = tour.cli("data", "list").stdout
    assert re.search(r"^base  todos\s+1 item \s+\d+ B$", listing, re.M), listing
    assert re.search(r"^drive photos\s+1 file \s+400 B$", listing, re.M), listing
    listed = json.loads(tour.cli("data", "list", "--json").stdout)
    assert listed["drives"] == [{"name": "photos", "files": 1, "bytes": 400}]
    assert listed["bases"][0]["name"] == "todos" and listed["bases"][0]["items"] == 1
