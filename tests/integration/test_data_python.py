"""space-dev's own `deta` module, as a python micro imports it (`from deta import Deta`, ahead of
anything installed), calls every Base and Drive operation over TLS against the runtime."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.conftest import fetch, run_up
from tests.integration.micros import write_app

MICRO = r"""
import io, json, os, time, traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import deta
from deta import Deta

def scenario():
    r = {}
    def step(name, fn):
        try:
            r[name] = {"ok": fn()}
        except Exception as err:
            r[name] = {"error": f"{type(err).__name__}: {err}"}
    d = Deta()
    db = d.Base("py_things")
    step("module", lambda: deta.__file__.split(os.sep)[-3:])
    step("put", lambda: db.put({"n": 1, "tags": ["x"]}, "a"))
    step("put_value", lambda: db.put("plain", "s"))
    step("put_many", lambda: db.put_many([{"key": "b", "n": 2}, {"key": "c/d", "n": 3}]))
    step("get_slash", lambda: db.get("c/d"))
    step("get_missing", lambda: db.get("missing"))
    step("insert_taken", lambda: db.insert({"n": 0}, "a"))
    step("insert_new", lambda: db.insert({"n": 9}))
    step("update", lambda: db.update({"n": db.util.increment(2), "tags": db.util.append("y")}, "a"))
    step("after_update", lambda: db.get("a"))
    step("fetch", lambda: sorted(i["key"] for i in db.fetch({"n?gte": 2}).items))
    def paging():
        first = db.fetch(limit=2)
        second = db.fetch(limit=2, last=first.last)
        return [first.count, first.last, [i["key"] for i in second.items]]
    step("paging", paging)
    step("expire", lambda: [db.put({"v": 1}, "e", expire_in=60)["__expires"] > time.time(),
                            db.put({"v": 1}, "old", expire_at=1000) and db.get("old")])
    step("delete", lambda: [db.delete("b"), db.get("b")])
    drive = d.Drive("py_files")
    step("drive_put", lambda: drive.put("docs/a.txt", "hello"))
    step("drive_get", lambda: drive.get("docs/a.txt").read().decode())
    big = os.urandom(11 * 1024 * 1024)
    step("drive_put_big", lambda: drive.put("big.bin", io.BytesIO(big)))
    step("drive_get_big", lambda: b"".join(drive.get("big.bin").iter_chunks(1 << 20)) == big)
    step("drive_list", lambda: drive.list()["names"])
    step("drive_list_prefix", lambda: drive.list(prefix="docs/")["names"])
    step("drive_delete_many", lambda: drive.delete_many(["docs/a.txt", "big.bin"])["deleted"])
    step("drive_missing", lambda: drive.get("docs/a.txt"))
    return r

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(scenario() if self.path == "/run" else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_HEAD = do_GET
    def log_message(self, *a):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def test_every_call_of_the_python_module_works(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: py
            src: .
            engine: python3.9
            run: python main.py
            public: true
        """,
        # A `deta.py` of the app's own would shadow ours; an installed `deta` never does.
        {"main.py": MICRO},
    )
    up = run_up(app, "--no-reload", "--no-schedule")
    try:
        up.wait_ready(30)
        status, _, body = fetch("GET", up.url + "/run", timeout=120)
        assert status == 200
        r = json.loads(body)
    finally:
        up.stop()
    ok = {name: step.get("ok") for name, step in r.items()}
    errors = {name: step["error"] for name, step in r.items() if "error" in step}
    assert set(errors) == {"insert_taken"}, errors
    assert "already exists" in errors["insert_taken"].lower()
    assert ok["module"] == ["site", "deta", "__init__.py"]
    assert ok["put"] == {"key": "a", "n": 1, "tags": ["x"]}
    assert ok["put_value"] == {"key": "s", "value": "plain"}
    assert ok["get_slash"] == {"key": "c/d", "n": 3}
    assert ok["get_missing"] is None
    assert len(ok["insert_new"]["key"]) == 12
    assert ok["after_update"] == {"key": "a", "n": 3, "tags": ["x", "y"]}
    assert ok["fetch"] == sorted(["a", "b", "c/d", ok["insert_new"]["key"]])
    count, last, second = ok["paging"]
    assert count == 2 and second and second[0] > last
    assert ok["expire"] == [True, None]
    assert ok["delete"] == [None, None]
    assert ok["drive_put"] == "docs/a.txt" and ok["drive_get"] == "hello"
    assert ok["drive_put_big"] == "big.bin" and ok["drive_get_big"] is True
    assert ok["drive_list"] == ["big.bin", "docs/a.txt"]
    assert ok["drive_list_prefix"] == ["docs/a.txt"]
    assert sorted(ok["drive_delete_many"]) == ["big.bin", "docs/a.txt"]
    assert ok["drive_missing"] is None
