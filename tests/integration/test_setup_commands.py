"""A micro's `commands`: run once before the first start, shown in the log, retried on restart."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.conftest import fetch, get_json, login
from tests.integration.micros import PY_ECHO, write_app

SPACEFILE = """
v: 0
micros:
  - name: api
    src: .
    engine: python3.9
    run: python echo.py
    public: true
    commands:
      - echo preparing the micro
      - test -f ready.flag
"""


def test_failed_commands_then_restart_from_settings(tmp_path: Path, up_factory) -> None:
    app = write_app(tmp_path / "app", SPACEFILE, {"echo.py": PY_ECHO})
    up = up_factory(app, "--no-reload")
    up.wait_for(r"api +\| preparing the micro")
    up.wait_for(r"api: `test -f ready.flag` failed with exit code 1; the micro is not started")
    status, data = get_json(up.url + "/__space/health")
    assert status == 503 and data["micros"] == {"api": "crashed"}
    assert fetch("GET", up.url + "/x")[0] == 502

    (app / "ready.flag").write_text("")
    cookie = f"space_session={login(up.url)}"
    status, _, _ = fetch(
        "POST",
        up.url + "/__space/settings/micros/api/restart",
        headers={"Cookie": cookie, "Origin": up.url},
        body=b"",
    )
    assert status == 303
    up.wait_ready()
    assert get_json(up.url + "/x")[0] == 200


def test_commands_run_once_across_starts(tmp_path: Path, up_factory) -> None:
    app = write_app(tmp_path / "app", SPACEFILE, {"echo.py": PY_ECHO, "ready.flag": ""})
    first = up_factory(app, "--no-reload")
    first.wait_ready()
    assert first.stop() == 0
    assert first.output.count("| preparing the micro") == 1
    second = up_factory(app, "--no-reload")
    second.wait_ready()
    time.sleep(0.2)
    assert "preparing the micro" not in second.output  # unchanged: not run again
