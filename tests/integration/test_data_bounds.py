"""A costly Base query of one app never stalls another app's data calls or the owner's login.

One real `space-dev up` serves two apps, `alpha` and `beta`. The test reads each app's project key
and data port from its echo micro, fills alpha's Base over the real HTTP API, then sends alpha a
costly query together with as many cheap alpha calls as the default thread pool has workers
(they wait for alpha's Base while the query holds it). Meanwhile it times a write to beta's Base
and a sign-in (scrypt): both must answer at once, and alpha's own cheap calls soon after.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import OWNER_PASSWORD, Up, fetch, free_port
from tests.integration.micros import PY_ECHO, write_app

ITEMS = 3000
LISTS = 6  # each item holds LISTS lists of LIST_LENGTH words
LIST_LENGTH = 20
# What another app's write and a sign-in may take while alpha's query runs (they take
# tens of milliseconds alone; on a busy machine, a few hundred).
QUICK_S = 2.0
# asyncio's default pool (Python 3.8+): this many calls waiting for alpha's Base fill it.
DEFAULT_POOL = min(32, (os.cpu_count() or 1) + 4)

ECHO_SPACEFILE = """
v: 0
micros:
  - name: echo
    src: .
    engine: python3.9
    run: python echo.py
    public: true
"""


@dataclass
class App:
    """One app's data API as its micros reach it."""

    port: int
    host: str
    data_port: int
    project_id: str
    key: str
    context: ssl.SSLContext

    def call(
        self, method: str, path: str, body: Any = None, timeout: float = 120.0
    ) -> tuple[int, Any]:
        connection = http.client.HTTPSConnection(
            self.host, self.data_port, timeout=timeout, context=self.context
        )
        try:
            return self._exchange(connection, method, path, body)
        finally:
            connection.close()

    def _exchange(
        self, connection: http.client.HTTPSConnection, method: str, path: str, body: Any
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"X-API-Key": self.key, "Content-Type": "application/json"}
        connection.request(method, f"/v1/{self.project_id}/things{path}", data, headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None


@dataclass
class Runtime:
    up: Up
    alpha: App
    beta: App


def _read_app(port: int, data_dir: Path) -> App:
    deadline = time.monotonic() + 90
    while True:
        try:
            status, _, body = fetch("GET", f"http://127.0.0.1:{port}/", timeout=10)
        except OSError:
            status, body = 0, b""
        if status == 200:
            break
        assert time.monotonic() < deadline, f"the echo micro on {port} never answered"
        time.sleep(0.2)
    env = json.loads(body)["env"]
    host, _, data_port = env["DETA_BASE_HOST"].partition(":")
    context = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))
    return App(
        port,
        host,
        int(data_port),
        env["DETA_PROJECT_KEY"].partition("_")[0],
        env["DETA_PROJECT_KEY"],
        context,
    )


def _item(number: int) -> dict[str, Any]:
    words = [f"w{n}" for n in range(LIST_LENGTH)]
    return {"key": f"k{number:05d}", "n": number, **{f"l{j}": words for j in range(LISTS)}}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    tmp = tmp_path_factory.mktemp("bounds")
    for name in ("alpha", "beta"):
        write_app(tmp / name, ECHO_SPACEFILE, {"echo.py": PY_ECHO})
    ports = {"alpha": free_port(), "beta": free_port()}
    (tmp / "space-dev.toml").write_text(
        textwrap.dedent(f"""
        [runtime]
        data_dir = "data"
        [[apps]]
        path = "alpha"
        name = "alpha"
        port = {ports["alpha"]}
        [[apps]]
        path = "beta"
        name = "beta"
        port = {ports["beta"]}
    """)
    )
    env = {**os.environ, "SPACE_DEV_PASSWORD": OWNER_PASSWORD}
    env.pop("NO_COLOR", None)
    up = Up(
        ["up", "--config", str(tmp / "space-dev.toml"), "--no-reload", "--no-schedule"],
        tmp,
        env,
        ports["alpha"],
    )
    try:
        alpha = _read_app(ports["alpha"], tmp / "data")
        beta = _read_app(ports["beta"], tmp / "data")
        connection = http.client.HTTPSConnection(
            alpha.host, alpha.data_port, timeout=60, context=alpha.context
        )
        try:
            for first in range(0, ITEMS, 25):
                batch = [_item(n) for n in range(first, min(first + 25, ITEMS))]
                status, _ = alpha._exchange(connection, "PUT", "/items", {"items": batch})
                assert status == 207
        finally:
            connection.close()
        yield Runtime(up, alpha, beta)
    finally:
        up.stop()


def _timed(results: dict[str, Any], name: str, call: Callable[[], Any]) -> threading.Thread:
    def run() -> None:
        start = time.monotonic()
        try:
            results[name] = call()
        except Exception as err:  # noqa: BLE001 - reported by the assertions below
            results[name] = err
        results[name + "_s"] = time.monotonic() - start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _sign_in(port: int) -> int:
    form = urllib.parse.urlencode({"username": "dev", "password": OWNER_PASSWORD, "next": "/"})
    status, _, _ = fetch(
        "POST",
        f"http://127.0.0.1:{port}/__space/login",
        body=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=120,
    )
    return status


def _beside(runtime: Runtime, query: Callable[[], Any]) -> dict[str, Any]:
    """Run `query` on alpha, then alpha's cheap calls, then time beta's write and a sign-in."""
    results: dict[str, Any] = {}
    threads = [_timed(results, "query", query)]
    time.sleep(0.5)  # the query is being scanned by now
    for n in range(DEFAULT_POOL):
        threads.append(
            _timed(results, f"cheap{n}", lambda n=n: runtime.alpha.call("GET", f"/items/k{n:05d}"))
        )
    time.sleep(0.3)  # and the cheap calls are waiting for alpha's Base
    threads.append(
        _timed(
            results,
            "beta_put",
            lambda: runtime.beta.call("PUT", "/items", {"items": [{"key": "b1", "v": 1}]}),
        )
    )
    threads.append(_timed(results, "login", lambda: _sign_in(runtime.beta.port)))
    for thread in threads:
        thread.join(300)
    print({k: round(v, 3) for k, v in results.items() if k.endswith("_s")})
    return results


def test_a_query_of_5000_conditions_is_refused_and_stalls_no_one(runtime: Runtime) -> None:
    conditions = [{"n": -1 - n} for n in range(5000)]
    results = _beside(runtime, lambda: runtime.alpha.call("POST", "/query", {"query": conditions}))
    status, body = results["query"]
    assert status == 400
    assert body == {"errors": ["Bad query"]}  # Deta's words; the runtime's log says why
    runtime.up.wait_for(
        r'answered 400 "Bad query": A query may OR at most 25 objects; '
        r"this one has 5000",
        10,
    )
    assert results["beta_put"][0] == 207 and results["beta_put_s"] < QUICK_S
    assert results["login"] == 303 and results["login_s"] < QUICK_S
    # The control: beta's item was written, and a normal OR query of alpha's answers in full
    # (about 2 MB of items: a page per MB read, as Deta's).
    assert runtime.beta.call("GET", "/items/b1") == (200, {"key": "b1", "v": 1})
    keys, pages = _fetch_all(runtime.alpha, [{"n": 7}, {"n?gte": 2998}])
    assert keys == ["k00007", "k02998", "k02999"] and pages >= 2


def _fetch_all(app: App, query: Any) -> tuple[list[str], int]:
    """Every matching key, page after page as the SDKs fetch them; and how many pages."""
    keys: list[str] = []
    last, pages = None, 0
    while True:
        status, body = app.call("POST", "/query", {"query": query, "last": last})
        assert status == 200, body
        pages += 1
        keys += [item["key"] for item in body["items"]]
        last = body["paging"].get("last")
        if last is None:
            return keys, pages


def test_a_long_scan_within_the_limits_stalls_no_other_app_nor_the_login(
    runtime: Runtime,
) -> None:
    # 25 objects of 13 conditions: every item passes the first 12 of every object (each reads
    # a whole list), so every condition is evaluated for every item; the last picks one item.
    last_word = f"w{LIST_LENGTH - 1}"
    wanted = range(100, 2600, 100)
    query = [
        {
            **{f"l{j}?contains": last_word for j in range(LISTS)},
            **{f"l{j}?not_contains": "nowhere" for j in range(LISTS)},
            "n": n,
        }
        for n in wanted
    ]
    results = _beside(runtime, lambda: _fetch_all(runtime.alpha, query))
    keys, pages = results["query"]
    assert keys == [f"k{n:05d}" for n in wanted]
    assert results["beta_put"][0] == 207 and results["beta_put_s"] < QUICK_S
    assert results["login"] == 303 and results["login_s"] < QUICK_S
    # Alpha's own cheap calls wait for one page of the scan at most, not for the whole of it.
    for n in range(DEFAULT_POOL):
        assert results[f"cheap{n}"] == (200, _item(n))
        assert results[f"cheap{n}_s"] < QUICK_S
