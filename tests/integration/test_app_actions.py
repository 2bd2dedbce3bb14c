"""App Actions end to end: a `provide_actions` micro declares its actions at `GET /__space/actions`;
`space-dev actions list|run` and the settings pages list and run them on the micro's own port,
and the gate never forwards the declaration path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.integration.conftest import Up, fetch, login, run_up
from tests.integration.micros import write_app

# Declares three actions; each action's path answers with what it was sent (and who asked), the
# "fail" one with a 500.
MICRO = textwrap.dedent(
    """
    import json, os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    DECLARED = {"actions": [
        {"name": "add_note", "title": "Add a note", "path": "/actions/add",
         "input": [{"name": "title", "type": "string"},
                   {"name": "stars", "type": "number", "optional": True},
                   {"name": "pinned", "type": "boolean", "optional": True}],
         "output": "@deta/detail"},
        {"name": "ping", "path": "actions/ping"},
        {"name": "fail", "title": "Always fails", "path": "/actions/fail"},
        {"title": "no name, left out", "path": "/x"},
    ]}

    class Micro(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status, data):
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/__space/actions":
                self._send(200, DECLARED)
            else:
                self._send(200, {"page": self.path, "auth": self.headers.get("X-Space-Auth")})

        def do_POST(self):
            sent = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            status = 500 if self.path == "/actions/fail" else 200
            self._send(status, {"path": self.path, "got": sent,
                                "type": self.headers.get("Content-Type")})

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Micro).serve_forever()
    """
)

SPACEFILE = """
v: 0
micros:
  - name: notes
    src: notes
    engine: python3.9
    run: python main.py
    provide_actions: true
"""


@dataclass
class Running:
    up: Up
    root: Path
    data: Path
    owner: str

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        return subprocess.run(
            [sys.executable, "-m", "runtime", "actions", *args, "--data-dir", str(self.data)],
            cwd=self.root,
            env=env,
            text=True,
            capture_output=True,
            timeout=120,
        )

    def call(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        sent = {"Cookie": f"space_session={self.owner}", "Accept": "text/html", **(headers or {})}
        body = None
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        status, _, data = fetch(method, self.up.url + path, headers=sent, body=body)
        return status, data.decode()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("app-actions")
    app = write_app(root / "notes-app", SPACEFILE, {"notes/main.py": MICRO})
    up = run_up(app, "--no-reload", data_dir=root / "data")
    try:
        up.wait_ready()
        yield Running(up, root, root / "data", login(up.url))
    finally:
        up.stop()


def test_actions_list_shows_what_the_micro_declares(running: Running) -> None:
    done = running.cli("list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TITLE", "MICRO", "INPUTS"]
    assert any(
        line.startswith("add_note") and "title:string stars:number? pinned:boolean?" in line
        for line in lines
    ), done.stdout
    assert any(line.startswith("ping") for line in lines)
    assert "left out" not in done.stdout
    listed = json.loads(running.cli("list", "--json").stdout)
    names = [a["name"] for a in listed["actions"]]
    assert names == ["add_note", "ping", "fail"]
    assert listed["actions"][1]["path"] == "/actions/ping"  # joined as `space dev` did
    assert "entry 4" in listed["problems"]["notes"]


def test_actions_run_posts_typed_inputs_to_the_actions_path(running: Running) -> None:
    done = running.cli(
        "run",
        "add_note",
        "--input",
        "title=groceries",
        "--input",
        "stars=3",
        "--input",
        "pinned=true",
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer == {
        "path": "/actions/add",
        "type": "application/json",
        "got": {"title": "groceries", "stars": 3, "pinned": True},
    }


def test_actions_run_says_what_is_wrong_with_the_inputs(running: Running) -> None:
    missing = running.cli("run", "add_note")
    assert missing.returncode != 0
    assert 'needs the input "title"' in missing.stderr
    assert "Traceback" not in missing.stderr
    wrong = running.cli("run", "add_note", "--input", "title=x", "--input", "stars=many")
    assert wrong.returncode != 0 and "must be a number" in wrong.stderr
    unknown = running.cli("run", "nope")
    assert unknown.returncode != 0 and 'no App Action "nope"' in unknown.stderr
    assert "add_note" in unknown.stderr  # it says which ones there are
    failing = running.cli("run", "fail")
    assert failing.returncode == 1 and '"path": "/actions/fail"' in failing.stdout


def test_the_settings_page_lists_and_runs_an_action(running: Running) -> None:
    status, settings = running.call("GET", "/__space/settings")
    assert status == 200 and "/__space/settings/app-actions" in settings
    # The settings page itself lists each action with its inputs, as Space's did.
    actions_card = settings[settings.index('id="actions"') :]
    assert 'action="/__space/settings/app-actions/add_note"' in actions_card
    assert 'name="input.title"' in actions_card and 'name="input.pinned"' in actions_card
    assert "Always fails" in actions_card
    status, listing = running.call("GET", "/__space/settings/app-actions")
    assert status == 200
    assert "Add a note" in listing and 'name="input.title"' in listing
    assert 'action="/__space/settings/app-actions/add_note"' in listing
    status, ran = running.call(
        "POST",
        "/__space/settings/app-actions/add_note",
        {"input.title": "from <the> page", "input.stars": "2.5"},
    )
    assert status == 200
    assert "&#34;title&#34;: &#34;from &lt;the&gt; page&#34;" in ran  # shown, escaped
    assert "2.5" in ran and "@deta/detail" in ran
    status, refused = running.call("POST", "/__space/settings/app-actions/add_note", {})
    assert status == 400 and "needs the input" in refused


def test_running_from_another_origin_or_without_the_owner_is_refused(running: Running) -> None:
    status, _ = running.call(
        "POST", "/__space/settings/app-actions/ping", {}, headers={"Origin": "http://evil.example"}
    )
    assert status == 403
    status, _, _ = fetch(
        "POST",
        running.up.url + "/__space/settings/app-actions/ping",
        body=b"",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 401
    status, headers, _ = fetch("GET", running.up.url + "/__space/settings/app-actions")
    assert status == 303 and headers["Location"].startswith("/__space/login")


def test_the_declaration_is_never_reached_through_the_gate(running: Running) -> None:
    for path in ("/__space/actions", "/__SPACE/actions", "/%5F%5Fspace/actions"):
        status, _, body = fetch(
            "GET", running.up.url + path, headers={"Cookie": f"space_session={running.owner}"}
        )
        assert status in (400, 404), path
        assert b"add_note" not in body
    # The micro's other paths are served as usual.
    status, _, body = fetch(
        "GET", running.up.url + "/other", headers={"Cookie": f"space_session={running.owner}"}
    )
    assert status == 200 and json.loads(body)["page"] == "/other"
