"""Node and static micros set up as Space's builder did: npm installs from the registry (one
shared cache per test run), a static micro's `commands` build its `serve` folder and build it
again on a save, and a static micro's `dev` server is proxied to."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.integration.conftest import fetch
from tests.integration.micros import write_app
from tests.integration.test_builder_python import wait_states

SPACEFILE = """
v: 0
micros:
  - name: api
    src: api
    engine: nodejs16
    primary: true
    public: true
  - name: site
    src: site
    engine: static
    serve: dist
    public: true
    commands:
      - node build.js
  - name: live
    src: live
    engine: static
    serve: dist
    dev: node dev.js
    public: true
"""

EXPRESS = """
const express = require("express");
const app = express();
app.get("/", (req, res) => res.json({ express: require("express/package.json").version }));
app.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("express up"));
"""

# The build: dist/index.html from src/page.txt, as `npm run build` would make it.
BUILD = """
const fs = require("fs");
fs.mkdirSync("dist", { recursive: true });
const text = fs.readFileSync("src/page.txt", "utf8").trim();
fs.writeFileSync("dist/index.html", `<h1>${text}</h1>`);
console.log("built dist/index.html");
"""

DEV = """
const http = require("http");
http.createServer((req, res) => res.end("dev server: " + req.url))
  .listen(Number(process.env.PORT), "127.0.0.1", () => console.log("dev server up"));
"""


def _body(url: str) -> str:
    status, _, body = fetch("GET", url)
    assert status == 200, (status, body[:300])
    return body.decode()


def test_npm_install_static_build_and_dev(tmp_path: Path, up_factory, package_caches) -> None:
    package = {"name": "api", "version": "1.0.0", "dependencies": {"express": "^4.19.0"}}
    app = write_app(
        tmp_path / "app",
        SPACEFILE,
        {
            "api/package.json": json.dumps(package),
            "api/index.js": EXPRESS,
            "site/build.js": BUILD,
            "site/src/page.txt": "first",
            "live/dev.js": DEV,
        },
    )
    wanted = {"api": "ready", "site": "ready", "live": "ready"}
    up = up_factory(app, env=package_caches)
    assert wait_states(up.url, wanted, 90) == wanted, up.output
    assert "api       | installing node packages (npm install, as of 2024-10-17)..." in up.output
    assert json.loads(_body(up.url + "/"))["express"].startswith("4.")
    assert (app / "api" / "node_modules" / "express").is_dir()
    assert _body(up.url + "/site/") == "<h1>first</h1>"
    assert "site      | built dist/index.html" in up.output
    assert _body(up.url + "/live/x") == "dev server: /x"  # proxied, not served from dist

    # A saved source file builds again; what the build writes does not.
    start = len(up.lines)
    (app / "site" / "src" / "page.txt").write_text("second")
    up.wait_for(r"site: rebuilding \(src/page.txt changed\)", timeout=20, start=start)
    deadline = time.monotonic() + 20
    while _body(up.url + "/site/") != "<h1>second</h1>" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _body(up.url + "/site/") == "<h1>second</h1>"
    time.sleep(0.5)
    assert up.output.count("built dist/index.html") == 2, up.output
    assert up.stop() == 0

    # The second start installs and builds nothing: the inputs are what they were.
    again = up_factory(app, env=package_caches)
    assert wait_states(again.url, wanted, 30) == wanted, again.output
    assert "installing" not in again.output and "built dist" not in again.output, again.output
    assert _body(again.url + "/site/") == "<h1>second</h1>"


# A repository that brought its node_modules along, with a package the registry no longer has
# (as npm's `fs` placeholder went): what it brought is what its lockfile says, so it runs.
GONE = "space-dev-gone-from-the-registry"
COMMITTED_INDEX = f"""
const gone = require("{GONE}");
require("http").createServer((req, res) => res.end(gone.hello))
  .listen(Number(process.env.PORT), "127.0.0.1", () => console.log("up"));
"""


def test_a_committed_node_modules_runs_as_it_is(tmp_path: Path, up_factory, package_caches) -> None:
    entry = {
        "version": "0.0.1",
        "resolved": f"https://registry.npmjs.org/{GONE}/-/{GONE}-0.0.1.tgz",
        "integrity": "sha512-" + "A" * 86 + "==",
    }
    lock = {
        "name": "site",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {"": {"dependencies": {GONE: "^0.0.1"}}, f"node_modules/{GONE}": entry},
    }
    hidden = {
        "name": "site",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {f"node_modules/{GONE}": entry},
    }
    app = write_app(
        tmp_path / "app",
        """
        v: 0
        micros:
          - name: site
            src: site
            engine: nodejs16
            primary: true
            public: true
        """,
        {
            f"site/node_modules/{GONE}/package.json": json.dumps(
                {"name": GONE, "version": "0.0.1"}
            ),
            f"site/node_modules/{GONE}/index.js": 'exports.hello = "brought along";',
            "site/node_modules/.package-lock.json": json.dumps(hidden),
            "site/package.json": json.dumps({"name": "site", "dependencies": {GONE: "^0.0.1"}}),
            "site/package-lock.json": json.dumps(lock),
            "site/index.js": COMMITTED_INDEX,
        },
    )
    # As a clone leaves them: the lockfile checked out after node_modules, so newer.
    site = app / "site"
    old = time.time() - 5
    for path in (site / "node_modules", site / "node_modules" / ".package-lock.json"):
        os.utime(path, (old, old))
    up = up_factory(app, "--no-reload", env=package_caches)
    assert wait_states(up.url, {"site": "ready"}, 60) == {"site": "ready"}, up.output
    assert _body(up.url + "/") == "brought along"
    assert "npm ci" not in up.output, up.output
