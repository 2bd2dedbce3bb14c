"""App Actions end to end: a `provide_actions` micro lists its actions at `GET /__space/actions`;
the settings page, the JSON API and `space-dev actions` list and run them with their inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlencode

from tests.integration.conftest import fetch, get_json, login
from tests.integration.micros import write_app

MICRO = textwrap.dedent(
    """
    import json, os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    LISTING = {"actions": [
        {"name": "greet", "title": "Say hello", "path": "/actions/greet",
         "input": [{"name": "name", "type": "string"},
                   {"name": "times", "type": "number", "optional": True},
                   {"name": "loud", "type": "boolean", "optional": True}]},
        {"name": "ping", "title": "Ping", "path": "actions/ping"},
    ]}

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status, value):
            data = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/__space/actions":
                return self._send(200, LISTING)
            self._send(200, {"page": self.path})

        do_HEAD = do_GET

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if self.path == "/actions/greet":
                text = ("hello " + body["name"]) * int(body.get("times", 1))
                return self._send(200, {"text": text.upper() if body.get("loud") else text,
                                        "got": body})
            if self.path == "/actions/ping":
                return self._send(200, "pong")
            self._send(404, {"path": self.path})

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    """
)

SPACEFILE = """
v: 0
micros:
  - name: api
    src: api
    engine: python3.9
    run: python main.py
    provide_actions: true
    public: true
"""


def _cli(root: Path, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runtime", "actions", *args, "--data-dir",
                           str(data)], cwd=root, env=dict(os.environ), text=True,
                          capture_output=True, timeout=60)


def test_app_actions_listed_and_run(tmp_path: Path, up_factory) -> None:
    app = write_app(tmp_path / "app", SPACEFILE, {"api/main.py": MICRO})
    up = up_factory(app, "--no-reload")
    up.wait_ready()
    # The gate never forwards it: only the runtime asks the micro, on its own port.
    assert fetch("GET", up.url + "/__space/actions")[0] == 404

    cookie = {"Cookie": f"space_session={login(up.url)}"}
    status, listing = get_json(up.url + "/__space/api/app-actions", headers=cookie)
    assert status == 200 and listing["errors"] == {}
    greet = next(a for a in listing["actions"] if a["name"] == "greet")
    assert greet["path"] == "/actions/greet" and greet["micro"] == "api"
    assert [i["type"] for i in greet["inputs"]] == ["string", "number", "boolean"]
    assert next(a for a in listing["actions"] if a["name"] == "ping")["path"] == "/actions/ping"

    status, _, body = fetch("POST", up.url + "/__space/api/app-actions/api/greet",
                            headers={**cookie, "Content-Type": "application/json"},
                            body=json.dumps({"inputs": {"name": "ann", "times": 2}}).encode())
    answer = json.loads(body)
    assert status == 200 and answer["status"] == 200
    assert json.loads(answer["answer"]) == {"text": "hello annhello ann",
                                            "got": {"name": "ann", "times": 2, "loud": False}}

    # The page under the settings page: a form per action, and the answer once run.
    status, _, page = fetch("GET", up.url + "/__space/settings/app-actions", headers=cookie)
    assert status == 200 and b'name="input.name"' in page and b"Say hello" in page
    status, _, settings = fetch("GET", up.url + "/__space/settings", headers=cookie)
    assert b"/__space/settings/app-actions" in settings
    form = urlencode({"micro": "api", "name": "greet", "input.name": "bo", "input.loud": "true"})
    status, _, ran = fetch("POST", up.url + "/__space/settings/app-actions/run",
                           headers={**cookie, "Origin": up.url,
                                    "Content-Type": "application/x-www-form-urlencoded"},
                           body=form.encode())
    assert status == 200 and b"HELLO BO" in ran
    # A required input left out is said, not sent.
    form = urlencode({"micro": "api", "name": "greet"})
    _, _, ran = fetch("POST", up.url + "/__space/settings/app-actions/run",
                      headers={**cookie, "Origin": up.url,
                               "Content-Type": "application/x-www-form-urlencoded"},
                      body=form.encode())
    assert b"needs its input name" in ran

    data = tmp_path / "data"
    listed = _cli(tmp_path, data, "list")
    assert listed.returncode == 0, listed.stderr
    assert "api/greet  Say hello  POST /actions/greet" in listed.stdout
    run = _cli(tmp_path, data, "run", "greet", "--input", "name=cy")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["text"] == "hello cy"
    missing = _cli(tmp_path, data, "run", "nope")
    assert missing.returncode != 0 and 'no app action "nope"' in missing.stderr
