"""Actions end to end: `space-dev up` with a python micro that records the events it receives,
run with `space-dev trigger`, the settings page's Run button and the JSON API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.integration.conftest import OWNER_PASSWORD, Up, fetch, login, run_up
from tests.integration.micros import write_app

PASSWORD = OWNER_PASSWORD

# Records every action event (path, content type, body) as one JSON line in $ACTION_LOG; the
# event of the action "boom" gets a 500.
RECORDER = textwrap.dedent(
    """
    import json, os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = 200
            if self.path == "/__space/v0/actions":
                event = json.loads(body)
                line = {"path": self.path, "content_type": self.headers.get("Content-Type"),
                        "body": event}
                with open(os.environ["ACTION_LOG"], "a") as log:
                    log.write(json.dumps(line) + "\\n")
                if event["event"]["id"] == "boom":
                    status = 500
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Recorder).serve_forever()
    """
)

SPACEFILE = """
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
    run: python main.py
    actions:
      - id: tidy
        name: Tidy up
        description: Removes what is old
        trigger: schedule
        default_interval: 1 minute
      - id: boom
        name: Always fails
        trigger: schedule
        default_interval: "0 3 * * *"
"""

NEW_ACTION = """
      - id: fresh
        name: Added while running
        trigger: schedule
        default_interval: 2 hours
"""


@dataclass
class Running:
    up: Up
    root: Path
    data: Path
    log: Path
    owner: str

    def events(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def call(
        self,
        method: str,
        path: str,
        *,
        cookie: str | None = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        sent = dict(headers or {})
        if cookie:
            sent["Cookie"] = f"space_session={cookie}"
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        status, got, data = fetch(method, self.up.url + path, headers=sent, body=body, timeout=120)
        return status, dict(got.items()), data

    def page(self) -> str:
        status, _, body = self.call("GET", "/__space/settings", cookie=self.owner)
        assert status == 200
        return body.decode()

    def trigger(self, action: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        return subprocess.run(
            [sys.executable, "-m", "runtime", "trigger", action, "--data-dir", str(self.data)],
            cwd=self.root,
            env=env,
            text=True,
            capture_output=True,
            timeout=120,
        )


def start(root: Path, *extra: str) -> Running:
    app = write_app(
        root / "jobs", SPACEFILE, {"api/main.py": RECORDER, "www/index.html": "<h1>jobs</h1>"}
    )
    log = root / "events.jsonl"
    data = root / "data"
    up = run_up(app, *extra, data_dir=data, env={"ACTION_LOG": str(log)})
    up.wait_ready()
    return Running(up, root, data, log, login(up.url))


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    run = start(tmp_path_factory.mktemp("actions"), "--no-reload")
    try:
        yield run
    finally:
        run.up.stop()


def test_trigger_delivers_the_event_and_prints_the_status(running: Running) -> None:
    before = len(running.events())
    done = running.trigger("tidy")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r'action "tidy" of app jobs: 200 in \d+ ms\n', done.stdout), done.stdout
    events = running.events()[before:]
    assert events[-1] == {
        "path": "/__space/v0/actions",
        "content_type": "application/json",
        "body": {"event": {"id": "tidy", "trigger": "schedule"}},
    }
    running.up.wait_for(r"api: action tidy ran in \d+ ms \(200\)$")


def test_a_failing_action_is_reported_and_exits_1(running: Running) -> None:
    done = running.trigger("boom")
    assert done.returncode == 1
    assert 'action "boom" of app jobs: 500' in done.stdout
    running.up.wait_for(r"api: action boom ran in \d+ ms \(500\)$")
    unknown = running.trigger("nope")
    assert unknown.returncode == 1 and "tidy" in unknown.stderr


def test_the_runs_show_on_the_settings_page(running: Running) -> None:
    assert running.trigger("tidy").returncode == 0
    page = running.page()
    section = page[page.index('id="actions"') :]
    assert "Tidy up" in section and "Removes what is old" in section and "1 minute" in section
    assert "Last runs" in section
    assert re.search(
        r'<td class="when"><time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">'
        r".*?\((just now|\d+ min ago)\)",
        section,
    )
    assert re.search(r'<span class="ok">200</span>', section)
    assert re.search(
        r"From a terminal: <code[^>]*>space-dev trigger tidy --app \S+</code>", section
    )
    assert "trigger ID" not in section
    assert re.search(r'<span class="bad">500</span>', section)  # boom's run
    assert re.search(r"<td>\d+ ms</td>", section)
    # Scheduling is on: the next run of a 1-minute action is within the coming minute or two.
    assert "Scheduling is off" not in section
    # The UTC time, and how far off it is.
    assert re.search(
        r'Next run</dt><dd><time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">'
        r'.*?</time> <span class="relative muted nowrap">\(in [^)]+\)</span>',
        section,
    )


def test_the_run_button(running: Running) -> None:
    before = len(running.events())
    status, headers, _ = running.call(
        "POST", "/__space/settings/actions/tidy/run", cookie=running.owner, form={}
    )
    assert status == 303
    assert headers["Location"] == "/__space/settings?done=action-ran&action=tidy#result"
    assert any(e["body"]["event"]["id"] == "tidy" for e in running.events()[before:])
    status, _, body = running.call(
        "GET", "/__space/settings?done=action-ran&action=tidy", cookie=running.owner
    )
    page = body.decode()
    assert re.search(r"Action tidy ran in \d+ ms: the micro answered 200\.", page)
    assert "by hand" in page
    # A failing run comes back as an error notice.
    status, headers, _ = running.call(
        "POST", "/__space/settings/actions/boom/run", cookie=running.owner, form={}
    )
    assert status == 303 and "done=action-failed" in headers["Location"]
    page = running.call("GET", headers["Location"], cookie=running.owner)[2].decode()
    assert re.search(
        r'class="notice bad"[^>]*>Action boom ran in \d+ ms: the micro answered '
        r"500\.",
        page,
    )
    # The owner only.
    status, _, _ = running.call("POST", "/__space/settings/actions/tidy/run", form={})
    assert status in (303, 401)
    status, _, _ = running.call(
        "POST", "/__space/settings/actions/nope/run", cookie=running.owner, form={}
    )
    assert status == 404


def test_the_json_api(running: Running) -> None:
    status, _, body = running.call("POST", "/__space/api/actions/tidy", cookie=running.owner)
    answer = json.loads(body)
    assert status == 200 and answer["status"] == 200 and answer["trigger"] == "manual"
    assert isinstance(answer["duration_ms"], int)
    status, _, body = running.call("POST", "/__space/api/actions/nope", cookie=running.owner)
    assert status == 404 and "tidy" in " ".join(json.loads(body)["errors"])
    assert running.call("POST", "/__space/api/actions/tidy")[0] == 401


def test_the_internal_endpoint_needs_the_token(running: Running) -> None:
    before = len(running.events())
    for headers in ({}, {"X-Space-Dev-Token": "guess"}):
        status, _, _ = running.call(
            "POST", "/__space/internal/actions/tidy", headers=headers, body=b'{"app": "jobs"}'
        )
        assert status == 401
    token = json.loads((running.data / "runtime.json").read_text())["token"]
    status, _, body = running.call(
        "POST", "/__space/internal/actions/nope", body=b"{}", headers={"X-Space-Dev-Token": token}
    )
    assert status == 404 and json.loads(body)["errors"]
    assert len(running.events()) == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/__space/v0/actions",
        "/__space/v0/actions",
        "/api//__space/v0/actions",
        "/api/%5F_space/v0/actions",
    ],
)
def test_nobody_can_post_a_fake_event_through_the_gate(running: Running, path: str) -> None:
    before = len(running.events())
    fake = json.dumps({"event": {"id": "tidy", "trigger": "schedule"}}).encode()
    for cookie in (None, running.owner):
        status, _, _ = running.call(
            "POST", path, cookie=cookie, body=fake, headers={"Content-Type": "application/json"}
        )
        assert status == 404, (path, cookie)
    assert len(running.events()) == before


def test_no_schedule_and_a_reloaded_spacefile(tmp_path: Path) -> None:
    run = start(tmp_path, "--no-schedule")
    try:
        section = run.page().split('id="actions"', 1)[1]
        assert "Scheduling is off" in section and "Next run</dt><dd><span" in section
        assert run.trigger("tidy").returncode == 0  # by hand it still runs
        spacefile = run.root / "jobs" / "Spacefile"
        spacefile.write_text(spacefile.read_text() + NEW_ACTION.lstrip("\n"))
        run.up.wait_for(r"Spacefile reloaded")
        deadline = time.monotonic() + 15
        while True:
            status, _, body = run.call("POST", "/__space/api/actions/fresh", cookie=run.owner)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200 and json.loads(body)["status"] == 200
        assert run.events()[-1]["body"]["event"]["id"] == "fresh"
        assert "Added while running" in run.page()
    finally:
        run.up.stop()
