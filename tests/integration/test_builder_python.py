"""Python micros set up as Space's builder did: each its own environment from its
requirements.txt, on real packages from PyPI (one shared download cache per test run)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.integration.conftest import fetch, get_json
from tests.integration.micros import write_app

SPACEFILE = """
v: 0
micros:
  - name: api
    src: api
    engine: python3.9
    primary: true
    public: true
  - name: web
    src: web
    engine: python3.9
    run: gunicorn main:app
    public: true
  - name: broken
    src: broken
    engine: python3.9
    public: true
  - name: pages
    src: pages
    engine: python3.9
    run: uvicorn main:app
    public: true
"""

# Written against the FastAPI of Space's days, unpinned, as many Space apps were: Starlette 1.0
# dropped this call's (name, context) form, so today's releases answer 500 here.
PAGES_MAIN = """
from fastapi import FastAPI, Request
from fastapi.templating import Jinja2Templates

app = FastAPI()
pages = Jinja2Templates(directory="templates")

@app.get("/")
async def home(request: Request):
    return pages.TemplateResponse("index.html", {"request": request})
"""

FASTAPI_MAIN = """
import os, sys
import deta
from fastapi import FastAPI

app = FastAPI()

@app.get("/")
def root():
    try:
        import six
        six_version = six.__version__
    except ImportError:
        six_version = None
    return {"python": sys.executable, "deta": deta.__file__, "six": six_version,
            "virtual_env": os.environ.get("VIRTUAL_ENV")}
"""

FLASK_MAIN = """
import shutil, sys
from flask import Flask, jsonify

app = Flask(__name__)

@app.get("/")
def root():
    return jsonify(python=sys.executable, gunicorn=shutil.which("gunicorn"))
"""


def wait_states(url: str, wanted: dict[str, str], timeout: float = 60.0) -> dict[str, str]:
    """The micros' states once they are `wanted`, or as they are at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            get_json(url + "/__space/health")
            break
        except OSError:  # not listening yet
            time.sleep(0.05)
    while True:
        _, health = get_json(url + "/__space/health")
        states = health.get("micros") or dict.fromkeys(wanted, "ready")  # 200: all ready
        if states == wanted or time.monotonic() > deadline:
            return states
        time.sleep(0.05)


def _answer(url: str) -> dict:
    status, _, body = fetch("GET", url)
    assert status == 200, body[:500]
    return json.loads(body)


def test_environments_made_reused_and_remade(tmp_path: Path, up_factory, package_caches) -> None:
    app = write_app(
        tmp_path / "app",
        SPACEFILE,
        {
            # Only the framework (and Deta's SDK): the engine default brings its own server.
            "api/requirements.txt": "fastapi\ndeta~=1.1.0\n",
            "api/main.py": FASTAPI_MAIN,
            "web/requirements.txt": "flask\ngunicorn\n",
            "web/main.py": FLASK_MAIN,
            "broken/requirements.txt": "space-dev-no-such-package-zzz==1.0\n",
            "broken/main.py": "app = None\n",
            "pages/requirements.txt": "fastapi\nuvicorn\njinja2\n",
            "pages/main.py": PAGES_MAIN,
            "pages/templates/index.html": "<h1>Made on {{ request.url.path }}</h1>",
        },
    )
    envs = tmp_path / "data" / "envs" / "app"
    up = up_factory(app, env=package_caches)
    up.wait_for(r"api +\| installed in [0-9.]+ s", timeout=60)
    up.wait_for(r"web +\| installed in [0-9.]+ s", timeout=60)
    up.wait_for(r"broken +\| .*space-dev-no-such-package-zzz", timeout=60)
    wanted = {"api": "ready", "web": "ready", "broken": "crashed", "pages": "ready"}
    assert wait_states(up.url, wanted) == wanted, up.output
    # Installed as of the day Space stopped, as its builder last could: the page renders.
    status, _, page = fetch("GET", up.url + "/pages/")
    assert status == 200 and page == b"<h1>Made on /</h1>", (status, page[:300])
    assert "installing 3 packages (uv, as of 2024-10-17)" in up.output or "(pip" in up.output

    api = _answer(up.url + "/")
    assert api["python"].startswith(str(envs / "api")), api
    assert api["virtual_env"] and api["python"].startswith(api["virtual_env"])
    assert api["deta"].endswith("in_micro/site/deta/__init__.py")  # ours, not PyPI's `deta`
    assert api["six"] is None
    out = up.output
    assert "`deta~=1.1.0` is Deta's SDK" in out
    assert "adding uvicorn" in out
    assert "runs on python3.11" in out or "runs on python3.1" in out
    web = _answer(up.url + "/web/")
    assert web["python"].startswith(str(envs / "web"))
    assert web["gunicorn"].startswith(str(envs / "web"))  # its own gunicorn, first on PATH
    assert "adding uvicorn" not in "\n".join(x for x in up.lines if x.startswith("web"))

    # The broken micro is crashed with the installer's message on the settings page's API.
    from tests.integration.conftest import login

    cookie = f"space_session={login(up.url)}"
    _, micros = get_json(up.url + "/__space/api/micros", headers={"Cookie": cookie})
    rows = {m["name"]: m for m in (micros["micros"] if isinstance(micros, dict) else micros)}
    assert rows["broken"]["state"] == "crashed"
    assert any("space-dev-no-such-package-zzz" in n for n in rows["broken"]["notices"])
    assert fetch("GET", up.url + "/broken/")[0] == 502

    # A saved requirements.txt installs again, then the micro reloads onto it.
    first_env = Path(api["python"]).parent.parent
    start = len(up.lines)
    # six 1.17.0 came out after Space stopped: the newest releases are installed instead.
    (app / "api" / "requirements.txt").write_text("fastapi\ndeta\nsix==1.17.0\n")
    up.wait_for(r"api: reloaded in .*requirements.txt changed", timeout=60, start=start)
    api2 = _answer(up.url + "/")
    assert api2["six"] == "1.17.0"
    assert "cannot be met as of 2024-10-17" in "\n".join(up.lines[start:]) or "(pip" in up.output
    assert api2["python"] != api["python"]
    deadline = time.monotonic() + 10  # its successor works: the older one is removed
    while first_env.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not first_env.exists()
    assert up.stop() == 0

    # The second start reuses every environment: no installer runs.
    again = up_factory(app, env=package_caches)
    assert wait_states(again.url, wanted, 30) == wanted, again.output
    assert "installing" not in "\n".join(x for x in again.lines if x.startswith(("api", "web"))), (
        again.output
    )
    assert _answer(again.url + "/")["six"] is not None
