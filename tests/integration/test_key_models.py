"""The three API-key models, end to end: Space's, Deta Micros' and Mia-Platform's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import fetch, get_json, login, run_up
from tests.integration.micros import PY_ECHO, write_app

SPACEFILE = """
v: 0
app_name: seeds
micros:
  - name: api
    src: ./api
    engine: python3.9
    run: python echo.py
    primary: true
    presets:
      api_keys: true
  - name: site
    src: ./site
    engine: static
    serve: .
"""

CONFIG = """
[[apps]]
path = "app"
[apps.auth]
key_headers = ["X-Space-App-Key", "X-API-Key", "client-key", "secret"]
key_cookies = ["mia_client_key"]

[[apps.routes]]
micro = "api"
path = "/admin/*"
methods = ["POST", "DELETE"]
api_key_required = true
allow = 'clientType == "admin"'

[[apps.routes]]
micro = "api"
path = "/ops/*"
allow = 'groups.ops || clientType == "ops-bot"'
"""


def cli(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args, "--data-dir", str(root / "data")],
        cwd=root,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )


def session_cookie(up, user: str, password: str) -> str:
    return f"space_session={login(up.url, user, password)}"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("seeds")
    app = write_app(root / "app", SPACEFILE, {"api/echo.py": PY_ECHO, "site/index.html": "hi"})
    (root / "space-dev.toml").write_text(CONFIG)
    up = run_up(app, "--config", str(root / "space-dev.toml"), cwd=root, data_dir=root / "data")
    up.wait_ready(60)
    keys = {}
    for name, client_type in (("plain", ""), ("admin", "admin"), ("bot", "ops-bot")):
        args = ["keys", "create", "--name", name]
        if client_type:
            args += ["--client-type", client_type]
        done = cli(root, *args)
        assert done.returncode == 0, done.stderr
        keys[name] = json.loads(done.stdout)["api_key"]
    mia = "mia-own-value-0123456789"
    assert (
        cli(
            root, "keys", "create", "--name", "mia", "--value", mia, "--client-type", "admin"
        ).returncode
        == 0
    )
    keys["mia"] = mia
    assert (
        cli(
            root,
            "users",
            "add",
            "olga",
            "--group",
            "ops",
            "--password-stdin",
            stdin="olga-password\n",
        ).returncode
        == 0
    )
    assert (
        cli(root, "users", "add", "eve", "--password-stdin", stdin="eve-password\n").returncode == 0
    )
    try:
        yield root, up, keys
    finally:
        up.stop()


def test_deta_micros_create_api_key_and_x_api_key(seeds) -> None:
    root, up, _ = seeds
    done = cli(root, "auth", "create-api-key", "--name", "tut", "--desc", "for the tutorial")
    assert done.returncode == 0
    assert done.stderr.strip() == "THE FOLLOWING API-KEY WILL ONLY BE SHOWN ONCE."
    shown = json.loads(done.stdout)
    assert list(shown) == ["name", "description", "prefix", "api_key", "created"]
    assert shown["api_key"].startswith(shown["prefix"] + ".")
    # curl --header 'X-API-Key: <key>' <app>/tut
    status, data = get_json(up.url + "/tut", headers={"X-API-Key": shown["api_key"]})
    assert status == 200 and data["path"] == "/tut"
    sent = {k.lower(): v for k, v in data["headers"].items()}
    assert sent["x-space-auth"] == "api-key" and sent["x-space-key-name"] == "tut"
    assert "x-api-key" not in sent


@pytest.mark.parametrize("header", ["secret", "client-key", "X-Space-App-Key", "x-space-app-key"])
def test_mia_headers_carry_a_key(seeds, header: str) -> None:
    _, up, keys = seeds
    status, data = get_json(up.url + "/x", headers={header: keys["mia"]})
    assert status == 200
    sent = {k.lower(): v for k, v in data["headers"].items()}
    assert sent["x-space-key-name"] == "mia" and sent["x-space-client-type"] == "admin"
    assert header.lower() not in sent


def test_mia_cookie_carries_a_key_and_is_not_forwarded(seeds) -> None:
    _, up, keys = seeds
    status, data = get_json(
        up.url + "/x", headers={"Cookie": f"theme=dark; mia_client_key={keys['mia']}"}
    )
    assert status == 200
    sent = {k.lower(): v for k, v in data["headers"].items()}
    assert sent["cookie"] == "theme=dark"
    assert sent["x-space-key-name"] == "mia"


def test_key_on_a_micro_without_api_keys_is_refused(seeds) -> None:
    _, up, keys = seeds
    status, _, _ = fetch("GET", up.url + "/site/", headers={"X-API-Key": keys["plain"]})
    assert status == 401


@pytest.mark.parametrize(
    ("who", "method", "path", "expected"),
    [
        ("admin", "POST", "/admin/users", 200),
        ("mia", "DELETE", "/admin/users", 200),
        ("plain", "POST", "/admin/users", 403),  # the wrong client type
        ("bot", "POST", "/admin/users", 403),
        ("owner", "POST", "/admin/users", 403),  # api_key_required: a session alone fails
        ("none", "POST", "/admin/users", 401),
        ("plain", "GET", "/admin/users", 200),  # the rule covers POST and DELETE only
        ("olga", "GET", "/ops/status", 200),  # in group ops
        ("bot", "GET", "/ops/status", 200),
        ("eve", "GET", "/ops/status", 403),  # signed in, not in the group
        ("plain", "GET", "/ops/status", 403),
        ("owner", "GET", "/ops/status", 200),  # the owner passes unless the rule names `user`
        ("eve", "GET", "/elsewhere", 403),  # no rule admits her elsewhere
        ("owner", "GET", "/elsewhere", 200),
    ],
)
def test_route_rules(seeds, who: str, method: str, path: str, expected: int) -> None:
    _, up, keys = seeds
    headers: dict[str, str] = {}
    if who in keys:
        headers["X-Space-App-Key"] = keys[who]
    elif who == "owner":
        headers["Cookie"] = session_cookie(up, "dev", "correct horse battery")
    elif who == "olga":
        headers["Cookie"] = session_cookie(up, "olga", "olga-password")
    elif who == "eve":
        headers["Cookie"] = session_cookie(up, "eve", "eve-password")
    status, _, _ = fetch(
        method, up.url + path, headers=headers, body=b"" if method != "GET" else None
    )
    assert status == expected


def test_auth_disable_makes_public_until_enable(seeds) -> None:
    root, up, _ = seeds
    assert fetch("GET", up.url + "/site/")[0] == 401
    done = cli(root, "auth", "disable", "--micro", "site")
    assert done.returncode == 0 and "PUBLIC" in done.stdout
    status, headers, body = fetch("GET", up.url + "/site/")  # the very next request
    assert status == 200 and body == b"hi"
    assert fetch("GET", up.url + "/x")[0] == 401  # only that micro
    assert cli(root, "auth", "enable", "--micro", "site").returncode == 0
    assert fetch("GET", up.url + "/site/")[0] == 401
    assert cli(root, "auth", "disable").returncode == 0
    assert get_json(up.url + "/x")[0] == 200
    assert cli(root, "auth", "enable").returncode == 0
    assert fetch("GET", up.url + "/x")[0] == 401


def test_disable_and_revoke_from_another_process_take_effect_at_once(seeds) -> None:
    root, up, keys = seeds
    assert (
        cli(
            root, "keys", "create", "--name", "temp", "--value", "temporary-key-value-42"
        ).returncode
        == 0
    )
    headers = {"X-API-Key": "temporary-key-value-42"}
    assert fetch("GET", up.url + "/x", headers=headers)[0] == 200
    assert cli(root, "keys", "disable", "temp").returncode == 0
    assert fetch("GET", up.url + "/x", headers=headers)[0] == 401
    assert cli(root, "keys", "enable", "temp").returncode == 0
    assert fetch("GET", up.url + "/x", headers=headers)[0] == 200
    assert cli(root, "keys", "revoke", "temp").returncode == 0
    assert fetch("GET", up.url + "/x", headers=headers)[0] == 401
