"""The developer's console from outside: `space-dev logs` (lines, --requests, -f) over a real
`up`, the gate's reasons for real requests, no secret ever kept, the notice on the owner's
pages while a micro is down (and never for anyone else, nor in a compressed, streamed or non-HTML
answer), and a failed reload told on the settings page."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Up, fetch, login, run_up
from tests.integration.console_app import API, write_console_app


class Console:
    """The running app, its owner's cookie, and `space-dev` commands against its data dir."""

    def __init__(self, up: Up, root: Path) -> None:
        self.up = up
        self.root = root
        self.cookie = login(up.url)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "runtime",
                *args,
                "--config",
                str(self.root / "space-dev.toml"),
                "--data-dir",
                str(self.root / "data"),
            ],
            cwd=self.root,
            env=_env(),
            text=True,
            capture_output=True,
            timeout=30,
        )

    def owner(self, path: str, accept: str = "text/html") -> tuple[int, dict, bytes]:
        return fetch(
            "GET",
            self.up.url + path,
            headers={"Cookie": f"space_session={self.cookie}", "Accept": accept},
        )  # type: ignore[return-value]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    app = write_console_app(root)
    up = run_up(app, "--config", str(root / "space-dev.toml"), cwd=root, data_dir=root / "data")
    try:
        up.wait_for(
            r"ready: notes \S+ \(broken: crashed\) · as Space ran it · settings: http://localhost:\d+/"
            r"__space/settings",
            60,
        )
        yield Console(up, root)
    finally:
        try:
            up.stop()
        except subprocess.TimeoutExpired:
            up.kill()


def test_logs_prints_lines_with_time_micro_and_level_and_follows(console: Console) -> None:
    assert console.owner("/api/say?text=hello-console")[0] == 200
    done = console.cli("logs", "--micro", "api")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.endswith("hello-console"))
    when, micro, level, text = line.split(maxsplit=3)
    assert (micro, level, text) == ("api", "info", "hello-console")
    assert time.strptime(when.split(".")[0], "%H:%M:%S")
    assert "broken" not in done.stdout.replace("hello-console", "")  # one micro's lines only
    # The crashed micro's error, as an error; space-dev's own lines about it come along.
    errors = console.cli("logs", "notes", "--micro", "broken", "--level", "error", "-n", "0")
    assert "RuntimeError: the broken micro cannot start" in errors.stdout
    assert "space-dev  error  broken: exited with code 1" in errors.stdout
    assert " info " not in errors.stdout
    # -f: a line printed after the command started arrives, with no polling by the user.
    follow = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime",
            "logs",
            "-f",
            "--micro",
            "api",
            "-n",
            "1",
            "--config",
            str(console.root / "space-dev.toml"),
            "--data-dir",
            str(console.root / "data"),
        ],
        cwd=console.root,
        env=_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen: list[str] = []
    reader = threading.Thread(
        target=lambda: seen.extend(iter(follow.stdout.readline, "")), daemon=True
    )  # type: ignore[union-attr]
    reader.start()
    try:
        time.sleep(1.0)
        assert console.owner("/api/say?text=followed-later")[0] == 200
        deadline = time.monotonic() + 15
        while not any("followed-later" in x for x in seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any(x.rstrip().endswith("api  info   followed-later") for x in seen), seen
    finally:
        follow.terminate()
        follow.wait(10)
    # A micro the app lacks is an error naming its micros.
    wrong = console.cli("logs", "--micro", "nope")
    assert wrong.returncode == 1 and "has no micro called 'nope'" in wrong.stderr


def test_every_request_with_who_and_why_and_never_a_secret(console: Console) -> None:
    made = console.cli(
        "keys", "create", "--name", "laptop", "--client-type", "admin", "--app", "notes"
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["api_key"]
    url = console.up.url
    secret_query = "tok-7f3a9c1e55"
    assert fetch("GET", f"{url}/api/notes?token={secret_query}")[0] == 401
    assert fetch("GET", f"{url}/api/admin/x?key={key}", headers={"X-Space-App-Key": key})[0] == 200
    assert fetch("GET", f"{url}/api/x", headers={"X-Space-App-Key": key + "x"})[0] == 401
    assert (
        fetch(
            "GET",
            f"{url}/api/x",
            headers={
                "Cookie": f"space_session={console.cookie}",
                "Sec-Fetch-Site": "cross-site",
                "Sec-Fetch-Mode": "no-cors",
                "Sec-Fetch-Dest": "script",
            },
        )[0]
        == 403
    )
    done = console.cli("logs", "--requests", "-n", "0")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert (
        "GET /api/notes?token=…  api  401" in out
        and "anonymous  (401: no session and no key; no public route of api matches /notes)" in out
    ), out
    assert (
        "key laptop (client type admin)  (allowed: key laptop (client type admin) by the "
        "rule on /admin/*)" in out
    )
    assert "a wrong key  (401: the key sent is none of this app's keys" in out
    assert "owner dev  (403: cross-site load of a private resource)" in out
    as_json = [
        json.loads(x)
        for x in console.cli("logs", "--requests", "--json", "-n", "0").stdout.splitlines()
    ]
    refused = next(r for r in as_json if r["path"].startswith("/api/notes"))
    assert refused["status"] == 401 and refused["who"] == "anonymous"
    assert isinstance(refused["took_ms"], float) and refused["micro"] == "api"
    # No secret, in any view: not the session cookie, not the key, not a query value.
    page = console.owner("/__space/logs?view=requests")[2].decode()
    assert "/api/admin/x?key=…" in page
    lines = console.cli("logs", "-n", "0").stdout
    for shown in (out, json.dumps(as_json), page, lines):
        for secret in (console.cookie, key, key.split(".")[1], secret_query):
            assert secret not in shown
    # The requests view, like the logs page, is the owner's alone.
    assert fetch("GET", f"{url}/__space/logs?view=requests")[0] == 303
    assert (
        fetch("GET", f"{url}/__space/logs/stream?kinds=requests", headers={"X-Space-App-Key": key})[
            0
        ]
        == 303
    )


def test_the_owner_sees_a_notice_while_a_micro_is_down_and_nobody_else(console: Console) -> None:
    status, headers, body = console.owner("/")
    assert status == 200 and b'id="space-dev-notice"' in body
    assert b"<strong>broken</strong> has crashed" in body
    assert b'href="/__space/logs?micro=broken"' in body
    assert int(headers["Content-Length"]) == len(body)
    assert body.index(b'id="space-dev-notice"') < body.rindex(b"</body>")
    # A Content-Security-Policy is kept, and the notice asks nothing of it: no script, no style.
    status, headers, body = console.owner("/csp")
    assert headers["Content-Security-Policy"] == "default-src 'self'"
    notice = body[body.index(b"<aside") : body.index(b"</aside>")]
    assert b"<script" not in notice and b"style=" not in notice
    # Not in what is not plain HTML: compressed, streamed with no length, JSON.
    status, headers, body = console.owner("/gz")
    assert gzip.decompress(body).endswith(b"<h1>Home</h1></body></html>")
    status, headers, body = console.owner("/chunked")
    assert body.endswith(b"<h1>Home</h1></body></html>") and b"space-dev" not in body
    assert console.owner("/json")[2] == b'{"page": "</body>"}'
    # Not for a call that is no page view, not on a public route, never for a visitor.
    assert b"space-dev-notice" not in console.owner("/", accept="*/*")[2]
    assert b"space-dev-notice" not in console.owner("/public/page")[2]
    status, _, body = fetch("GET", console.up.url + "/public/page", headers={"Accept": "text/html"})
    assert status == 200 and b"space-dev-notice" not in body and b"broken" not in body
    # Dismissed, it stays away while the same micro stays down.
    status, headers, _ = fetch(
        "POST",
        console.up.url + "/__space/logs/dismiss",
        headers={
            "Cookie": f"space_session={console.cookie}",
            "Origin": console.up.url,
            "Referer": console.up.url + "/csp",
        },
        body=b"",
    )
    assert status == 303 and headers["Location"] == "/csp"
    assert b"space-dev-notice" not in console.owner("/")[2]


def test_a_failed_reload_is_told_with_its_error_and_the_old_version_serves(
    console: Console,
) -> None:
    source = console.root / "notes" / "api" / "main.py"
    mark = len(console.up.lines)
    source.write_text('raise SystemExit("api cannot start: bad config")\n')
    try:
        console.up.wait_for(r"api: reload failed", 60, start=mark)
        deadline = time.monotonic() + 10
        settings = b""
        while time.monotonic() < deadline:
            settings = console.owner("/__space/settings")[2]
            if b"reload failed" in settings:
                break
            time.sleep(0.2)
        assert (
            b"reload failed, serving the previous version: api cannot start: bad config" in settings
        )
        assert b'href="/__space/logs?micro=api"' in settings  # every card links its logs
        assert console.owner("/api/say?text=still-served")[0] == 200  # the old process
        body = console.owner("/")[2]
        assert b"<strong>api</strong> reload failed, serving the previous version" in body
    finally:
        mark = len(console.up.lines)
        source.write_text(API)
        console.up.wait_for(r"api: reloaded", 60, start=mark)
    deadline = time.monotonic() + 10
    while b"reload failed" in console.owner("/__space/settings")[2]:
        assert time.monotonic() < deadline, "the notice stayed after a good reload"
        time.sleep(0.2)
