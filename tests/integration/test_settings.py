"""The settings page and the runtime JSON API against a real `space-dev up`."""

from __future__ import annotations

import html
import http.client
import json
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from multidict import CIMultiDict

from runtime.auth.passwords import hash_password
from runtime.datadir.store import Store
from tests.integration.conftest import OWNER_PASSWORD, Up, fetch, login, run_up
from tests.integration.micros import PY_ECHO, write_app

EVE_PASSWORD = "eve's own password"

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
    presets:
      api_keys: true
      env:
        - name: GREETING
          description: How the app says hello
          default: hello
        - name: ONLY_HERE
          description: Set on the settings page or nowhere
        - name: ONLY_TOML
          description: Set in space-dev.toml
        - name: SHELL_VALUE
          description: Set in the shell
    actions:
      - id: nightly
        name: Nightly clean-up
        trigger: schedule
        default_interval: 1 day
"""

CONFIG = """
[[apps]]
path = "app"
[apps.env]
ONLY_TOML = "from the toml"
[[apps.routes]]
micro = "api"
path = "/admin/*"
methods = ["POST", "DELETE"]
api_key_required = true
allow = 'clientType == "admin"'
[[apps.routes]]
micro = "api"
path = "/reports"
"""

Response = tuple[int, CIMultiDict[str], bytes]


@dataclass
class Running:
    """The running runtime, its data dir and the owner's session cookie."""

    up: Up
    data: Path
    owner: str

    def call(
        self,
        method: str,
        path: str,
        *,
        cookie: str | None = None,
        form: dict[str, str] | None = None,
        body: object = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        sent = dict(headers or {})
        data = None
        if cookie:
            sent["Cookie"] = f"space_session={cookie}"
        if form is not None:
            data = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        return fetch(method, self.up.url + path, headers=sent, body=data)

    def owner_call(self, method: str, path: str, **kwargs: object) -> Response:
        return self.call(method, path, cookie=self.owner, **kwargs)  # type: ignore[arg-type]

    def page(self) -> str:
        status, _, body = self.owner_call("GET", "/__space/settings")
        assert status == 200
        return body.decode()

    def keys(self) -> dict[str, dict]:
        """The app's keys by name, as the JSON API lists them."""
        listed = json.loads(self.owner_call("GET", "/__space/api/keys")[2])
        return {k["name"]: k for k in listed}

    def with_key(self, key: str) -> tuple[int, dict]:
        status, _, body = self.call("GET", "/api/", headers={"X-Space-App-Key": key})
        return status, json.loads(body)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("settings")
    app = write_app(
        root / "app", SPACEFILE, {"api/main.py": PY_ECHO, "www/index.html": "<h1>home</h1>"}
    )
    (root / "space-dev.toml").write_text(CONFIG)
    data = root / "data"
    up = run_up(
        app, "--no-schedule", "--no-reload", data_dir=data, env={"SHELL_VALUE": "from the shell"}
    )
    try:
        up.wait_ready()
        yield Running(up, data, login(up.url, "dev", OWNER_PASSWORD))
    finally:
        up.stop()


def poll(check: object, timeout: float = 15.0) -> None:
    """Wait until `check()` is true, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def new_key_on(page: str) -> str:
    match = re.search(r'<code id="new-key">([^<]+)</code>', page)
    assert match, "the new key is not on the page"
    return html.unescape(match.group(1))


# --- who may see the settings -----------------------------------------------------------------


def test_settings_need_a_session(running: Running) -> None:
    status, headers, _ = running.call("GET", "/__space/settings", headers={"Accept": "text/html"})
    assert status == 303
    assert headers["Location"] == "/__space/login?next=/__space/settings"
    status, _, body = running.call("GET", "/__space/api/keys")
    assert (status, json.loads(body)) == (401, {"errors": ["Unauthorized"]})
    status, _, body = running.call("POST", "/__space/api/keys", body={"name": "sneaky"})
    assert (status, json.loads(body)) == (401, {"errors": ["Unauthorized"]})


def test_another_user_is_forbidden(running: Running) -> None:
    Store(running.data).users.add("eve", hash_password(EVE_PASSWORD))
    eve = login(running.up.url, "eve", EVE_PASSWORD)
    status, _, body = running.call(
        "GET", "/__space/settings", cookie=eve, headers={"Accept": "text/html"}
    )
    assert status == 403 and b"only the owner" in body
    assert running.call("GET", "/__space/api/micros", cookie=eve)[0] == 403
    status, _, _ = running.call("POST", "/__space/api/keys", cookie=eve, body={"name": "eve"})
    assert status == 403
    assert "eve" not in running.keys()


# --- what the page shows ----------------------------------------------------------------------


def test_page_shows_the_app(running: Running) -> None:
    status, headers, body = running.owner_call("GET", "/__space/settings")
    page = body.decode()
    assert status == 200 and headers["Cache-Control"] == "no-store"
    for text in (
        "Micros",
        "Configuration",
        "API keys",
        "Route rules",
        "Actions",
        "nightly",
        "1 day",
        "GREETING",
        "How the app says hello",
        "python3.9",
        "/api",
        "/__space/logout",
        "Leave a field blank",
        "from the toml",
        "space-dev.toml",
        "from the shell",
    ):
        assert text in page, text
    assert 'class="state state-ready">ready<' in page
    # Route rules, as written in space-dev.toml.
    assert "/admin/*" in page and "POST, DELETE" in page
    assert "clientType == &#34;admin&#34;" in page
    assert "the owner and the app&#39;s keys" in page
    assert "echo micro starting" in page  # the last log lines
    assert "This app is PUBLIC" not in page
    status, _, body = running.owner_call("GET", "/__space/api/micros")
    micros = {m["name"]: m for m in json.loads(body)}
    assert micros["www"]["state"] == "ready" and micros["www"]["port"] is None
    assert micros["api"]["api_keys"] is True and isinstance(micros["api"]["port"], int)
    assert running.call("GET", "/__space/static/style.css")[0] == 200


def test_the_page_shows_the_apps_own_project_key_to_copy(running: Running) -> None:
    key = Store(running.data).project_key("app")
    page = running.page()
    shown = re.search(r'<code id="project-key-value">([^<]+)</code>', page)
    assert shown and html.unescape(shown.group(1)) == key
    assert 'data-copy="project-key-value"' in page
    env = json.loads(running.owner_call("GET", "/api/")[2])["env"]
    assert env["DETA_PROJECT_KEY"] == key  # the key the micros get is the one shown


def test_a_data_call_with_a_key_that_is_no_apps_points_to_the_settings_page(
    running: Running,
) -> None:
    env = json.loads(running.owner_call("GET", "/api/")[2])["env"]
    host, _, port = env["DETA_BASE_HOST"].partition(":")
    context = ssl.create_default_context(cafile=str(running.data / "tls" / "ca.pem"))

    def get(key: str) -> int:
        connection = http.client.HTTPSConnection(host, int(port), timeout=10, context=context)
        try:
            project = key.partition("_")[0]
            connection.request("GET", f"/v1/{project}/things/items/k", headers={"X-API-Key": key})
            return connection.getresponse().status
        finally:
            connection.close()

    start = len(running.up.lines)
    assert get("c0ffee12_AKeyFromDetaSpace") == 401  # as an app given its old key would send
    line = running.up.wait_for(
        r'Base "things" refused a call with project key "c0ffee12_\.\.\."', 10, start
    ).string
    assert f"{running.up.url.replace('127.0.0.1', 'localhost')}/__space/settings (app)" in line
    assert "AKeyFromDetaSpace" not in running.up.output
    assert get(env["DETA_PROJECT_KEY"]) == 404  # the control: the app's own key is answered


def test_auth_switched_off_is_a_warning(running: Running) -> None:
    store = Store(running.data)
    store.set_auth("app", "www", False)
    try:
        poll(lambda: "This app is PUBLIC" in running.page())
        assert "login off" in running.page()
    finally:
        store.set_auth("app", "www", True)
    poll(lambda: "This app is PUBLIC" not in running.page())


# --- API keys ---------------------------------------------------------------------------------


def test_key_made_with_the_form(running: Running) -> None:
    status, headers, body = running.owner_call(
        "POST",
        "/__space/settings/keys",
        form={"name": "form-key", "description": "from the form", "client_type": "ci", "value": ""},
    )
    page = body.decode()
    assert status == 201 and headers["Cache-Control"] == "no-store"
    assert "Location" not in headers
    key = new_key_on(page)
    assert re.fullmatch(r"[A-Za-z0-9]{8}\.[A-Za-z0-9_-]{32}", key)
    curl = re.search(r'<code id="new-curl">([^<]+)</code>', page)
    assert curl and html.unescape(curl.group(1)) == (
        f'curl -H "X-Space-App-Key: {key}" {running.up.url}/api/'
    )

    status, echoed = running.with_key(key)
    assert status == 200
    seen = {k.lower(): v for k, v in echoed["headers"].items()}
    assert seen["x-space-key-name"] == "form-key" and seen["x-space-client-type"] == "ci"
    assert key not in json.dumps(echoed)
    assert key not in running.page()  # shown once, never again

    status, headers, _ = running.owner_call("POST", "/__space/settings/keys/form-key/disable")
    assert status == 303 and headers["Location"].startswith("/__space/settings?")
    assert running.with_key(key)[0] == 401
    assert "switched off" in running.owner_call("GET", headers["Location"])[2].decode()
    assert running.owner_call("POST", "/__space/settings/keys/form-key/enable")[0] == 303
    assert running.with_key(key)[0] == 200
    assert running.owner_call("POST", "/__space/settings/keys/form-key/revoke")[0] == 303
    assert running.with_key(key)[0] == 401
    assert "form-key" not in running.page()


def test_key_form_errors_keep_the_input(running: Running) -> None:
    status, _, body = running.owner_call(
        "POST", "/__space/settings/keys", form={"name": "short", "value": "too-short"}
    )
    assert status == 400
    assert b"too short" in body and b'value="short"' in body
    running.owner_call("POST", "/__space/settings/keys", form={"name": "twice"})
    status, _, body = running.owner_call("POST", "/__space/settings/keys", form={"name": "twice"})
    assert status == 409 and b"already has a key" in body
    assert running.owner_call("POST", "/__space/settings/keys/nope/revoke")[0] == 404


def test_key_made_with_the_api(running: Running) -> None:
    own = "my-own-key-value-0123456789"
    status, headers, body = running.owner_call(
        "POST",
        "/__space/api/keys",
        body={"name": "api-key", "description": "d", "client_type": "admin", "value": own},
    )
    made = json.loads(body)
    assert status == 201 and headers["Cache-Control"] == "no-store"
    assert set(made) == {
        "name",
        "description",
        "prefix",
        "api_key",
        "created",
        "client_type",
        "active",
    }
    assert made["api_key"] == own and made["active"] is True and made["prefix"] == "my-o..."
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", made["created"])

    listed = json.loads(running.owner_call("GET", "/__space/api/keys")[2])
    mine = next(k for k in listed if k["name"] == "api-key")
    assert "api_key" not in mine and "key_hash" not in mine and own not in json.dumps(listed)
    assert running.with_key(own)[0] == 200

    status, _, body = running.owner_call(
        "PATCH", "/__space/api/keys/api-key", body={"active": False}
    )
    assert status == 200 and json.loads(body)["active"] is False
    assert running.with_key(own)[0] == 401
    assert running.owner_call("PATCH", "/__space/api/keys/api-key", body={"active": True})[0] == 200
    assert running.with_key(own)[0] == 200
    assert running.owner_call("DELETE", "/__space/api/keys/api-key")[0] == 204
    assert running.with_key(own)[0] == 401

    errors = [
        ("POST", "/__space/api/keys", {"name": "x", "value": "short"}, 400),
        ("POST", "/__space/api/keys", {"name": ""}, 400),
        ("POST", "/__space/api/keys", ["not", "an", "object"], 400),
        ("PATCH", "/__space/api/keys/api-key", {"active": True}, 404),
        ("PATCH", "/__space/api/keys/whatever", {"active": "yes"}, 400),
        ("DELETE", "/__space/api/keys/api-key", None, 404),
    ]
    for method, path, sent, expected in errors:
        status, _, body = running.owner_call(method, path, body=sent)
        assert status == expected, (method, path, sent, body)
        assert json.loads(body)["errors"]
    running.owner_call("POST", "/__space/api/keys", body={"name": "dup"})
    status, _, body = running.owner_call("POST", "/__space/api/keys", body={"name": "dup"})
    assert status == 409 and json.loads(body)["errors"]


def test_descriptions_are_escaped(running: Running) -> None:
    evil = '<script>alert("owned")</script>'
    status, _, body = running.owner_call(
        "POST", "/__space/api/keys", body={"name": "<img src=x onerror=alert(1)>"}
    )
    assert status == 400  # a key name holds only letters, digits and - _ .
    status, _, body = running.owner_call(
        "POST",
        "/__space/api/keys",
        body={
            "name": "escaped",
            "description": evil,
            "client_type": "<img src=x onerror=alert(1)>",
        },
    )
    assert status == 201
    page = running.page()
    assert evil not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


# --- Configuration ----------------------------------------------------------------------------


def test_saving_configuration_restarts_the_micro(running: Running) -> None:
    def env() -> dict:
        status, _, body = running.owner_call("GET", "/api/")
        return json.loads(body)["env"] if status == 200 else {}

    assert env()["GREETING"] == "hello"
    status, headers, _ = running.owner_call(
        "POST", "/__space/settings/env", form={"env.GREETING": "bonjour", "env.ONLY_HERE": ""}
    )
    assert status == 303 and "restarted=api" in headers["Location"]
    poll(lambda: env().get("GREETING") == "bonjour")
    assert "ONLY_HERE" not in env()
    page = running.owner_call("GET", headers["Location"])[2].decode()
    assert "Restarted: api" in page and 'value="bonjour"' in page

    status, _, body = running.owner_call(
        "PUT", "/__space/api/env", body={"values": {"ONLY_HERE": "x"}}
    )
    answer = json.loads(body)
    assert status == 200 and answer["restarted"] == ["api"]
    assert answer["values"] == {
        "GREETING": "bonjour",
        "ONLY_HERE": "x",
        "ONLY_TOML": "from the toml",
        "SHELL_VALUE": "from the shell",
    }
    poll(lambda: env().get("ONLY_HERE") == "x")

    # A blank field removes the saved value: back to the Spacefile's default.
    running.owner_call("POST", "/__space/settings/env", form={"env.GREETING": ""})
    poll(lambda: env().get("GREETING") == "hello")
    variables = json.loads(running.owner_call("GET", "/__space/api/env")[2])["variables"]
    assert {v["name"]: v["source"] for v in variables} == {
        "GREETING": "default",
        "ONLY_HERE": "saved",
        "ONLY_TOML": "config",
        "SHELL_VALUE": "shell",
    }
    assert env()["ONLY_TOML"] == "from the toml" and env()["SHELL_VALUE"] == "from the shell"

    status, _, body = running.owner_call("PUT", "/__space/api/env", body={"NOPE": "1"})
    assert status == 400 and "NOPE" in json.loads(body)["errors"][0]
    status, _, body = running.owner_call("POST", "/__space/settings/env", form={"env.NOPE": "1"})
    assert status == 400 and b"NOPE" in body


def test_restart_button(running: Running) -> None:
    start = len(running.up.lines)
    status, headers, _ = running.owner_call("POST", "/__space/settings/micros/api/restart")
    assert status == 303 and headers["Location"].endswith("#result")
    running.up.wait_for(
        r"api: (reloaded in .*|restarting \()restarted from the settings page", start=start
    )
    status, headers, _ = running.owner_call("POST", "/__space/settings/micros/www/restart")
    assert status == 303
    assert "nothing to restart" in running.owner_call("GET", headers["Location"])[2].decode()
    assert running.owner_call("POST", "/__space/settings/micros/nope/restart")[0] == 404


# --- cross-site requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "sent"),
    [
        ("POST", "/__space/settings/keys", {"name": "evil"}),
        ("POST", "/__space/settings/keys/victim/disable", None),
        ("POST", "/__space/settings/keys/victim/enable", None),
        ("POST", "/__space/settings/keys/victim/revoke", None),
        ("POST", "/__space/settings/env", {"env.GREETING": "pwned"}),
        ("POST", "/__space/settings/micros/api/restart", None),
        ("POST", "/__space/api/keys", {"name": "evil"}),
        ("PATCH", "/__space/api/keys/victim", {"active": False}),
        ("DELETE", "/__space/api/keys/victim", None),
        ("PUT", "/__space/api/env", {"GREETING": "pwned"}),
        ("POST", "/__space/logout", None),
    ],
)
def test_cross_site_requests_are_refused(
    running: Running, method: str, path: str, sent: dict[str, object] | None
) -> None:
    if "victim" not in running.keys():
        running.owner_call("POST", "/__space/api/keys", body={"name": "victim"})
    form = sent if path.startswith("/__space/settings") else None
    body = None if form is not None else sent
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        status, _, _ = running.owner_call(
            method,
            path,
            form=form,
            body=body,  # type: ignore[arg-type]
            headers=headers,
        )
        assert status == 403
    keys = running.keys()
    assert "evil" not in keys and keys["victim"]["active"] is True
    assert "pwned" not in json.dumps(json.loads(running.owner_call("GET", "/__space/api/env")[2]))
