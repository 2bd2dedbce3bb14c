"""Deta's own npm SDK, 1.1.0 and 2.0.0, installed from the registry into node micros, calls
every Base and Drive operation against space-dev over TLS with only the variables space-dev
gives; the data stays between runs and is the app's own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import fetch, login, run_up
from tests.integration.micros import write_app

SCENARIO = (Path(__file__).parent / "data" / "sdk_scenario.js").read_text()
VERSIONS = ("1.1.0", "2.0.0")


def _npm_install(folder: Path, version: str) -> None:
    (folder / "package.json").write_text(
        json.dumps(
            {"name": f"sdk-{version}", "version": "1.0.0", "dependencies": {"deta": version}}
        )
    )
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent"],
        cwd=folder,
        check=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def sdk_app(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("npm") is None:
        pytest.skip("needs npm to install Deta's SDK")
    root = tmp_path_factory.mktemp("sdks")
    files = {f"v{v[0]}/index.js": SCENARIO for v in VERSIONS}
    app = write_app(
        root / "app",
        """
        v: 0
        app_name: sdks
        micros:
          - name: v1
            src: ./v1
            engine: nodejs16
            primary: true
            public: true
          - name: v2
            src: ./v2
            engine: nodejs16
            public: true
        """,
        files,
    )
    for version in VERSIONS:
        _npm_install(app / f"v{version[0]}", version)
    return app


def _run(up, micro: str, base: str, drive: str) -> dict:
    prefix = "" if micro == "v1" else "/v2"
    status, _, body = fetch("GET", f"{up.url}{prefix}/run?base={base}&drive={drive}", timeout=120)
    assert status == 200, body[:500]
    return json.loads(body)


def _check(results: dict) -> None:
    ok = {name: step.get("ok") for name, step in results.items()}
    errors = {name: step["error"] for name, step in results.items() if "error" in step}
    assert set(errors) == {"insert_taken", "update_missing", "fetch_mixed_key"}, errors
    assert errors["fetch_mixed_key"] == "Bad query"  # Deta's words, as the SDK shows them
    assert "already exists" in errors["insert_taken"].lower()
    assert "not found" in errors["update_missing"].lower()
    assert ok["put"] == {"key": "a", "n": 1, "tags": ["x"], "nested": {"deep": True}}
    assert ok["put_value"] == {"key": "s", "value": "plain string"}
    assert ok["get_slash"] == {"key": "c/d", "n": 3}
    assert ok["get_missing"] is None
    assert len(ok["insert_new"]["key"]) == 12 and ok["insert_new"]["n"] == 9
    assert ok["after_update"] == {"key": "a", "n": 3, "tags": ["x", "y"], "nested": {"deep": False}}
    assert sorted(i["key"] for i in ok["fetch_gte"]) == sorted(
        ["a", "b", "c/d", ok["insert_new"]["key"]]
    )
    assert sorted(i["key"] for i in ok["fetch_or"]) == sorted(["b", ok["insert_new"]["key"]])
    # "c/", not "c": the generated key of insert_new may start with a c.
    assert [i["key"] for i in ok["fetch_key_or"]] == ["c/d"]
    page1, page2 = ok["page1"], ok["page2"]
    assert page1["count"] == 2 and page1["last"] == page1["items"][-1]["key"]
    assert page2["count"] == 2 and page2["items"][0]["key"] > page1["last"]
    assert ok["expiring"]["key"] == "e" and "__expires" in ok["expiring"]
    assert ok["expired"] is None
    assert ok["delete"]["after"] is None
    assert ok["drive_put"] == "docs/hello.txt"
    assert ok["drive_get"] == "hello drive"
    assert ok["drive_get_missing"] is None
    assert ok["drive_put_big"] == "big.bin"
    assert ok["drive_get_big"] == {"size": 12 * 1024 * 1024 + 5, "same": True}
    assert ok["drive_list"]["names"] == ["big.bin", "docs/hello.txt"]
    assert ok["drive_list_prefix"]["names"] == ["docs/hello.txt"]
    assert ok["drive_list_page"]["names"] == ["big.bin"]
    assert ok["drive_list_page"]["paging"]["last"] == "big.bin"
    assert ok["drive_delete"] == "big.bin"
    assert ok["drive_delete_many"]["deleted"] == ["docs/hello.txt", "never.txt"]
    assert ok["drive_after"]["names"] == []


@pytest.mark.parametrize("micro", ["v1", "v2"])
def test_every_call_of_the_npm_sdk_works(sdk_app: Path, micro: str) -> None:
    up = run_up(sdk_app, "--no-reload", "--no-schedule")
    try:
        up.wait_ready(60)
        _check(_run(up, micro, f"things_{micro}", f"files_{micro}"))
    finally:
        up.stop()


def test_data_stays_between_runs_and_belongs_to_its_app(sdk_app: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    up = run_up(sdk_app, "--no-reload", "--no-schedule", data_dir=data_dir)
    try:
        up.wait_ready(60)
        _run(up, "v1", "kept", "kept_files")
    finally:
        up.stop()
    # The next run of the same app reads what the first one wrote: 1.1.0 wrote, 2.0.0 reads.
    up = run_up(sdk_app, "--no-reload", "--no-schedule", data_dir=data_dir)
    try:
        up.wait_ready(60)
        cookie = login(up.url)
        status, _, body = fetch(
            "POST",
            up.url + "/__space/v0/base/v1/dummy/kept/query",
            headers={
                "Cookie": f"space_session={cookie}",
                "Content-Type": "application/json",
                "Origin": up.url,
            },
            body=b"{}",
        )
        assert status == 200, body
        keys = sorted(i["key"] for i in json.loads(body)["items"])
        assert "a" in keys and "c/d" in keys
        # The browser path needs the owner's session; the dummy key alone is nothing.
        status, _, _ = fetch(
            "POST",
            up.url + "/__space/v0/base/v1/dummy/kept/query",
            headers={"X-API-Key": "dummy", "Content-Type": "application/json"},
            body=b"{}",
        )
        assert status == 401
    finally:
        up.stop()
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime",
            "data",
            "list",
            "--data-dir",
            str(data_dir),
            "--app",
            "sdks",
        ],
        capture_output=True,
        text=True,
        cwd=sdk_app,
    )
    assert "base  kept" in listing.stdout, listing.stdout + listing.stderr
