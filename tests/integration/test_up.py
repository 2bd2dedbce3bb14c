"""`space-dev up` end to end: real python, node and static micros behind one origin."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Up, fetch, get_json
from tests.integration.micros import NODE_ECHO, PY_ECHO, PY_NEVER_READY, PY_WITH_CHILD, write_app

pytestmark = pytest.mark.skipif(
    subprocess.run(["node", "--version"], capture_output=True).returncode != 0,
    reason="Node.js is not installed",
)

SPACEFILE = """
v: 0
app_name: mixed
micros:
  - name: site
    src: ./site
    engine: static
    serve: public
    primary: true
    public: true
  - name: api
    src: ./api
    engine: python3.9
    run: python echo.py
    public: true
    presets:
      env:
        - name: GREETING
          default: from-default
        - name: ONLY_DEFAULT
          default: kept
        - name: SHELL_VALUE
        - name: UNSET_VALUE
  - name: node
    src: ./node
    engine: nodejs16
    path: /js/
    public: true
  - name: tool
    src: ./tool
    engine: custom
    run: exec python3 echo.py
    public: true
"""


@pytest.fixture(scope="module")
def mixed_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed") / "app"
    return write_app(
        root,
        SPACEFILE,
        {
            "site/public/index.html": "<h1>home</h1>",
            "site/public/docs/index.html": "<h1>docs</h1>",
            "api/echo.py": PY_ECHO,
            "node/index.js": NODE_ECHO,
            "tool/echo.py": PY_ECHO,
        },
    )


@pytest.fixture(scope="module")
def mixed(mixed_app: Path, tmp_path_factory: pytest.TempPathFactory):
    from tests.integration.conftest import run_up

    config = mixed_app.parent / "space-dev.toml"
    config.write_text('[[apps]]\npath = "app"\n[apps.env]\nGREETING = "from-config"\n')
    up = run_up(
        mixed_app, "--config", str(config), env={"SHELL_VALUE": "from-shell"}, cwd=mixed_app.parent
    )
    try:
        up.wait_ready(60)
        yield up
    finally:
        up.stop()


def test_ready_line_names_app_and_url(mixed) -> None:
    # localhost, not 127.0.0.1 (the browser SDK uses plain http only there).
    assert f"ready: mixed http://localhost:{mixed.port}/" in mixed.output


def test_each_micro_answers_at_its_path_with_the_prefix_removed(mixed) -> None:
    status, _, body = fetch("GET", mixed.url + "/")
    assert status == 200 and b"home" in body
    status, data = get_json(mixed.url + "/api/items/7?q=a%20b&x=1")
    assert status == 200
    assert data["micro"] == "api" and data["path"] == "/items/7?q=a%20b&x=1"
    status, data = get_json(mixed.url + "/api")
    assert data["path"] == "/"
    status, data = get_json(mixed.url + "/js/hello")
    assert data["micro"] == "node" and data["path"] == "/hello"
    status, data = get_json(mixed.url + "/tool/x")  # a custom engine's `run`
    assert data["micro"] == "tool" and data["path"] == "/x"
    # Not a segment prefix: the primary's, which has no such file.
    status, _, _ = fetch("GET", mixed.url + "/apix")
    assert status == 404


def test_paths_are_normalised_before_routing(mixed) -> None:
    status, data = get_json(mixed.url + "/js/../api//a/./b/%7Euser")
    assert data["micro"] == "api" and data["path"] == "/a/b/~user"
    for bad in ("/api/a%2Fb", "/api/%00", "/../etc/passwd", "/api/..%2f..%2f"):
        status, _, _ = fetch("GET", mixed.url + bad)
        assert status == 400, bad


def test_runtime_paths_are_never_forwarded(mixed) -> None:
    status, _, _ = fetch("POST", mixed.url + "/api/__space/v0/actions", body=b"{}")
    assert status == 404
    status, _, _ = fetch("GET", mixed.url + "/__space/nothing-here")
    assert status == 404


def test_environment_of_each_micro(mixed) -> None:
    _, data = get_json(mixed.url + "/api/")
    env = data["env"]
    port = int(env["PORT"])
    assert env["UVICORN_PORT"] == str(port) and port != mixed.port
    project_id, _, secret = env["DETA_PROJECT_KEY"].partition("_")
    assert project_id and len(secret) >= 16
    assert env["DETA_SPACE_APP"] == "true"
    # The address the user browses, as every address space-dev prints.
    assert env["DETA_SPACE_APP_HOSTNAME"] == f"localhost:{mixed.port}"
    assert env["DETA_SPACE_APP_MICRO_NAME"] == "api"
    assert env["DETA_SPACE_APP_MICRO_TYPE"] == "normal"
    assert env["DETA_SPACE_APP_VERSION"] == "dev"
    assert env["GREETING"] == "from-config"  # [apps.env] over the default
    assert env["ONLY_DEFAULT"] == "kept"
    assert env["SHELL_VALUE"] == "from-shell"
    assert "UNSET_VALUE" not in env
    _, node = get_json(mixed.url + "/js/")
    assert node["env"]["DETA_PROJECT_KEY"] == env["DETA_PROJECT_KEY"]  # one per app
    assert "UVICORN_PORT" not in node["env"]


def test_forwarded_headers_are_set_by_the_runtime(mixed) -> None:
    spoofed = {
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Host": "evil.example",
        "X-Space-User": "dev",
        "X_Space_Auth": "session",
        "Forwarded": "for=6.6.6.6",
        "Connection": "keep-alive, X-Custom-Hop",
        "X-Custom-Hop": "should go",
        "X-Keep": "stays",
    }
    # http.client, as urllib would replace the Connection header with its own.
    conn = http.client.HTTPConnection("127.0.0.1", mixed.port, timeout=10)
    conn.request("GET", "/api/", headers=spoofed)
    data = json.loads(conn.getresponse().read())
    conn.close()
    headers = {k.lower(): v for k, v in data["headers"].items()}
    assert headers.get("connection", "keep-alive").lower() == "keep-alive"  # pooled upstream
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{mixed.port}"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-space-auth"] == "public"
    assert "x-space-user" not in headers and "x_space_auth" not in headers
    assert "forwarded" not in headers and "x-custom-hop" not in headers
    assert headers["x-keep"] == "stays"


def test_static_files_with_validators(mixed) -> None:
    status, headers, _ = fetch("GET", mixed.url + "/docs/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    status, _, _ = fetch("GET", mixed.url + "/docs/", headers={"If-None-Match": headers["ETag"]})
    assert status == 304


def test_health(mixed) -> None:
    status, data = get_json(mixed.url + "/__space/health")
    assert status == 200 and data == {"status": "ok"}


def test_crashed_micro_is_restarted(mixed) -> None:
    _, before = get_json(mixed.url + "/api/")
    status, _, _ = fetch("GET", mixed.url + "/api/crash")
    assert status == 502
    # The next request waits for the restart instead of failing.
    status, after = get_json(mixed.url + "/api/")
    assert status == 200 and after["env"]["PORT"] != before["env"]["PORT"]
    mixed.wait_for(r"api: exited with code 3; starting again in 0\.5 s")


def test_no_orphans_after_ctrl_c(tmp_path: Path, up_factory) -> None:
    pid_file = tmp_path / "child.pid"
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: parent
            src: .
            engine: python3.9
            run: python main.py
            public: true
        """,
        {"main.py": PY_WITH_CHILD},
    )
    up = up_factory(app, env={"CHILD_PID_FILE": str(pid_file)})
    up.wait_ready()
    child = int(pid_file.read_text())
    os.kill(child, 0)  # alive while the app runs
    assert up.stop(signal.SIGINT) == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the micro's child outlived the runtime"
    assert "stopped" in up.output


def test_sigterm_stops_cleanly(tmp_path: Path, up_factory) -> None:
    app = write_app(
        tmp_path / "app",
        "v: 0\nmicros:\n  - name: a\n    src: .\n    engine: python3.9\n"
        "    run: python echo.py\n    public: true\n",
        {"echo.py": PY_ECHO},
    )
    up = up_factory(app)
    up.wait_ready()
    _, data = get_json(up.url + "/")
    micro_port = int(data["env"]["PORT"])
    assert up.stop(signal.SIGTERM) == 0
    status, _, _ = _try_connect(micro_port)
    assert status is None


def test_micro_that_never_gets_ready_is_reported(tmp_path: Path, up_factory) -> None:
    app = write_app(
        tmp_path / "app",
        "v: 0\nmicros:\n  - name: slow\n    src: .\n    engine: python3.9\n"
        "    run: python main.py\n    public: true\n",
        {"main.py": PY_NEVER_READY},
    )
    up = up_factory(app, env={"SPACE_DEV_READY_TIMEOUT": "2"})
    up.wait_for(r"waiting for slow on port \d+", 10)
    up.wait_for(
        r"slow: not listening on \$PORT \(\d+\) nor on any other loopback port "
        r"after 2 s",
        10,
    )
    up.wait_for(r"thinking very hard", 10)
    status, data = get_json(up.url + "/__space/health")
    assert status == 503 and data["micros"] == {"slow": "not listening on $PORT"}


def test_bad_spacefile_is_a_user_error(tmp_path: Path, up_factory) -> None:
    app = write_app(
        tmp_path / "app", "v: 0\nmicros:\n  - name: a\n    src: .\n    engine: pyhton3.9\n", {}
    )
    up = up_factory(app)
    assert up.proc.wait(20) == 1
    assert 'did you mean "python3.9"' in up.output
    assert "Traceback" not in up.output


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _try_connect(port: int):
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return 200, None, None
    except OSError:
        return None, None, None


def test_json_errors_for_api_clients(mixed) -> None:
    status, _, body = fetch("GET", mixed.url + "/api/%2e%2e%2f")
    assert status == 400
    assert json.loads(body)["errors"][0] == "Bad request path"


def test_two_apps_from_the_config_each_on_its_own_port(tmp_path: Path) -> None:
    from tests.integration.conftest import free_port

    for name in ("one", "two"):
        write_app(
            tmp_path / name,
            f"v: 0\napp_name: {name}\nmicros:\n  - name: a\n    src: .\n"
            "    engine: python3.9\n    run: python echo.py\n    public: true\n",
            {"echo.py": PY_ECHO},
        )
    port = free_port()
    (tmp_path / "space-dev.toml").write_text(
        f'[runtime]\nport = {port}\ndata_dir = "data"\n'
        '[[apps]]\npath = "one"\n[[apps]]\npath = "two"\nname = "second"\n'
    )
    up = Up(["up", "--no-reload"], tmp_path, {**os.environ}, port)
    try:
        up.wait_for(r"ready: one http://localhost:\d+/", 60)
        match = up.wait_for(r"ready: second http://localhost:(\d+)/", 60)
        second = int(match[1])
        assert second != port
        assert get_json(f"http://127.0.0.1:{port}/")[1]["env"]["DETA_SPACE_APP_HOSTNAME"].endswith(
            f":{port}"
        )
        assert get_json(f"http://127.0.0.1:{second}/")[1]["env"][
            "DETA_SPACE_APP_HOSTNAME"
        ].endswith(f":{second}")
        # The apps are separate: each has its own project key.
        one_key = get_json(f"http://127.0.0.1:{port}/")[1]["env"]["DETA_PROJECT_KEY"]
        assert get_json(f"http://127.0.0.1:{second}/")[1]["env"]["DETA_PROJECT_KEY"] != one_key
    finally:
        assert up.stop() == 0
