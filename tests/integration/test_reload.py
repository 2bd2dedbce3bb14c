"""Hot reload: a save restarts its micro, new process first, and no request ever fails."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import fetch, get_json, run_up
from tests.integration.micros import PY_ECHO, write_app

SPACEFILE = """
v: 0
app_name: live
micros:
  - name: site
    src: ./site
    engine: static
    serve: .
    primary: true
    public: true
  - name: api
    src: ./api
    engine: python3.9
    run: python echo.py
    public: true
  - name: other
    src: ./other
    engine: python3.9
    run: python echo.py
    public: true
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("reload")
    app = write_app(
        root / "app",
        SPACEFILE,
        {
            "site/index.html": "v1",
            "api/echo.py": PY_ECHO,
            "api/.gitignore": "generated/\n*.log\n",
            "other/echo.py": PY_ECHO,
        },
    )
    up = run_up(app)
    try:
        up.wait_ready(60)
        up.wait_for("watching for changes")
        yield app, up
    finally:
        up.stop()


def _set_version(path: Path, version: int) -> None:
    text = path.read_text()
    start = text.index("VERSION = ")
    end = text.index("\n", start)
    path.write_text(text[:start] + f"VERSION = {version}" + text[end:])


def _version(up, micro: str = "api") -> int:
    status, data = get_json(f"{up.url}/{micro}/")
    assert status == 200, data
    return int(data["version"])


def _wait_version(up, version: int, micro: str = "api", timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while _version(up, micro) != version:
        assert time.monotonic() < deadline, f"{micro} never served version {version}"
        time.sleep(0.02)


def test_polling_through_five_reloads_never_fails(live) -> None:
    app, up = live
    failures: list[str] = []
    seen: set[int] = set()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                status, _, body = fetch("GET", up.url + "/api/", timeout=30)
                if status != 200:
                    failures.append(f"{status} {body[:200]!r}")
                else:
                    seen.add(json.loads(body)["version"])
            except OSError as err:
                failures.append(repr(err))

    pollers = [threading.Thread(target=poll) for _ in range(3)]
    for t in pollers:
        t.start()
    try:
        for version in range(2, 7):
            _set_version(app / "api" / "echo.py", version)
            _wait_version(up, version)
        deadline = time.monotonic() + 10
        while 6 not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        for t in pollers:
            t.join(30)
    assert failures == []
    assert {2, 3, 4, 5, 6} <= seen
    up.wait_for(r"api: reloaded in \d+\.\d\d s \(echo\.py changed\)")


def test_only_the_changed_micro_restarts(live) -> None:
    app, up = live
    _, before = get_json(up.url + "/other/")
    version = _version(up) + 1
    _set_version(app / "api" / "echo.py", version)
    _wait_version(up, version)
    _, after = get_json(up.url + "/other/")
    assert after["env"]["PORT"] == before["env"]["PORT"]


def test_syntax_error_keeps_the_old_process_serving(live) -> None:
    app, up = live
    good = _version(up)
    source = app / "api" / "echo.py"
    text = source.read_text()
    mark = len(up.lines)
    source.write_text(text + "\nthis is not python(\n")
    up.wait_for(
        r"api: reload failed \(exit code 1\); still serving the previous version", start=mark
    )
    assert "SyntaxError" in "\n".join(up.lines[mark:])
    assert _version(up) == good
    _set_version(source, good + 1)  # also drops the broken line: the text had none of it
    source.write_text(source.read_text().replace("\nthis is not python(\n", "\n"))
    _wait_version(up, good + 1)


def test_burst_of_saves_is_one_restart(live) -> None:
    app, up = live
    mark = len(up.lines)
    for i in range(10):
        (app / "api" / f"module_{i}.py").write_text(f"X = {i}\n")
    up.wait_for(r"api: reloaded in .* \(module_\d\.py and 9 more changed\)", start=mark)
    time.sleep(1.0)  # a second restart would show up within this time
    reloads = [line for line in up.lines[mark:] if "api: reloaded" in line]
    assert len(reloads) == 1, reloads


def test_ignored_folders_never_restart(live) -> None:
    app, up = live
    port = get_json(up.url + "/api/")[1]["env"]["PORT"]
    mark = len(up.lines)
    for rel in (
        "node_modules/x/index.js",
        "__pycache__/x.pyc",
        ".venv/lib/x.py",
        ".git/HEAD",
        "generated/out.py",
        "debug.log",
        "venv/bin/activate",
    ):
        path = app / "api" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    # A change that does restart, afterwards: once it is done, the others were seen and ignored.
    (app / "other" / "touch.py").write_text("")
    up.wait_for(r"other: reloaded", start=mark)
    assert not any("api: reloaded" in line for line in up.lines[mark:])
    assert get_json(up.url + "/api/")[1]["env"]["PORT"] == port


def test_static_file_served_fresh_without_restart(live) -> None:
    app, up = live
    mark = len(up.lines)
    (app / "site" / "index.html").write_text("v2")
    status, _, body = fetch("GET", up.url + "/")
    assert body == b"v2"
    assert not any("reloaded" in line for line in up.lines[mark:])


def test_spacefile_edit_applies_routes_and_invalid_edit_keeps_running(live) -> None:
    app, up = live
    spacefile = app / "Spacefile"
    original = spacefile.read_text()
    mark = len(up.lines)
    # Make `other` private and move it: routes apply at once, no restart needed for that.
    spacefile.write_text(
        original.replace(
            "  - name: other\n    src: ./other\n    engine: python3.9\n    run: python echo.py\n"
            "    public: true\n",
            "  - name: other\n    src: ./other\n    engine: python3.9\n    run: python echo.py\n"
            "    path: /elsewhere\n",
        )
    )
    up.wait_for(r"live: Spacefile reloaded in .* \(routes updated\)", start=mark)
    status, _, _ = fetch("GET", up.url + "/elsewhere/")
    assert status == 401
    # An invalid Spacefile: errors shown, everything keeps serving.
    mark = len(up.lines)
    spacefile.write_text(original.replace("engine: python3.9", "engine: pyhton3.9"))
    up.wait_for(r"the saved Spacefile is not valid", start=mark)
    up.wait_for(r'did you mean "python3\.9"', start=mark)
    assert fetch("GET", up.url + "/elsewhere/")[0] == 401
    assert _version(up) >= 1
    # Back to the original: `other` public at /other again.
    mark = len(up.lines)
    spacefile.write_text(original)
    up.wait_for(r"live: Spacefile reloaded", start=mark)
    assert get_json(up.url + "/other/")[0] == 200


def test_no_reload_turns_it_off(tmp_path: Path, up_factory) -> None:
    app = write_app(
        tmp_path / "app",
        "v: 0\nmicros:\n  - name: a\n    src: .\n    engine: python3.9\n"
        "    run: python echo.py\n    public: true\n",
        {"echo.py": PY_ECHO},
    )
    up = up_factory(app, "--no-reload")
    up.wait_ready()
    _set_version(app / "echo.py", 9)
    time.sleep(1.0)  # nothing may happen in this time
    assert _version(up, "") == 1
    assert "watching for changes" not in up.output


def test_config_edit_restarts_the_micros_it_touches(tmp_path: Path, up_factory) -> None:
    spacefile = (
        "v: 0\nmicros:\n  - name: a\n    src: ./a\n    engine: python3.9\n"
        "    run: python echo.py\n    primary: true\n    public: true\n"
        "    presets:\n      env:\n        - name: GREETING\n"
        "  - name: b\n    src: ./b\n    engine: python3.9\n    run: python echo.py\n"
        "    public: true\n"
    )
    app = write_app(tmp_path / "app", spacefile, {"a/echo.py": PY_ECHO, "b/echo.py": PY_ECHO})
    config = tmp_path / "space-dev.toml"
    config.write_text('[[apps]]\npath = "app"\n[apps.env]\nGREETING = "first"\n')
    up = up_factory(app, "--config", str(config), cwd=tmp_path)
    up.wait_ready()
    up.wait_for("watching for changes")
    b_port = get_json(up.url + "/b/")[1]["env"]["PORT"]
    assert get_json(up.url + "/")[1]["env"]["GREETING"] == "first"
    mark = len(up.lines)
    config.write_text('[[apps]]\npath = "app"\n[apps.env]\nGREETING = "second"\n')
    up.wait_for(r"app: space-dev.toml applied, restarting a", start=mark)
    deadline = time.monotonic() + 20
    while get_json(up.url + "/")[1]["env"].get("GREETING") != "second":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert get_json(up.url + "/b/")[1]["env"]["PORT"] == b_port  # b uses no such variable
    # A broken config changes nothing.
    mark = len(up.lines)
    config.write_text('[[apps]]\npath = "app"\nbogus = 1\n')
    up.wait_for(r"space-dev.toml is not valid; nothing changed", start=mark)
    assert get_json(up.url + "/")[1]["env"]["GREETING"] == "second"
