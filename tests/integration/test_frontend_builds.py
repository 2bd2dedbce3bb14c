"""Frontend micros run as Space ran them: a SvelteKit app built with adapter-node and its server
run, a Svelte (Vite) app built and its folder served, each opened by an anonymous visitor with
every asset the page references; a save builds again while the last build keeps serving; and
`--as-space` runs a micro whose `dev` line only works on Windows."""

from __future__ import annotations

import json
import re
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from tests.integration.conftest import fetch
from tests.integration.micros import write_app
from tests.integration.test_builder_python import wait_states

# Pinned releases that build on Node.js 18 and later; both micros share them (one download).
VERSIONS = {"@sveltejs/vite-plugin-svelte": "5.1.0", "svelte": "5.33.0", "vite": "6.3.5"}
KIT_VERSIONS = {**VERSIONS, "@sveltejs/kit": "2.21.1", "@sveltejs/adapter-node": "5.2.12"}

# As Spacefiles of SvelteKit and Svelte apps on Space wrote them: the page and SvelteKit's
# assets public, the rest private; a secondary Svelte micro public as a whole.
SPACEFILE = """
v: 0
micros:
  - name: kit
    src: kit
    engine: svelte-kit
    primary: true
    public_routes:
      - "/"
      - "/_app/*"
  - name: sv
    src: sv
    engine: svelte
    public: true
"""


def _package(name: str, versions: dict[str, str]) -> str:
    return json.dumps(
        {
            "name": name,
            "private": True,
            "type": "module",
            "scripts": {"build": "vite build", "dev": "vite dev"},
            "devDependencies": versions,
        }
    )


KIT_FILES = {
    "kit/package.json": _package("kit", KIT_VERSIONS),
    "kit/svelte.config.js": "import adapter from '@sveltejs/adapter-node';\n"
    "export default { kit: { adapter: adapter() } };\n",
    "kit/vite.config.js": "import { sveltekit } from '@sveltejs/kit/vite';\n"
    "export default { plugins: [sveltekit()] };\n",
    "kit/src/app.html": "<!doctype html><html><head>%sveltekit.head%</head>"
    "<body>%sveltekit.body%</body></html>\n",
    "kit/src/routes/+page.svelte": "<script>let n = $state(0);</script>\n"
    "<h1>kit form</h1><button onclick={() => n++}>{n}</button>\n"
    '<form method="POST"><input name="q"></form>\n',
    "kit/src/routes/+page.server.js": "export const actions = { default: async ({ request }) =>"
    " ({ got: (await request.formData()).get('q') }) };\n",
}
SV_FILES = {
    "sv/package.json": _package("sv", VERSIONS),
    # Served under /sv/: its assets are linked relative to the page.
    "sv/vite.config.js": "import { svelte } from '@sveltejs/vite-plugin-svelte';\n"
    "export default { plugins: [svelte()], base: './' };\n",
    "sv/index.html": "<!doctype html><html><head><title>sv</title></head><body>"
    '<div id="app"></div><script type="module" src="/src/main.js"></script>'
    "</body></html>\n",
    "sv/src/main.js": "import { mount } from 'svelte';\nimport App from './App.svelte';\n"
    "mount(App, { target: document.getElementById('app') });\n",
    "sv/src/App.svelte": "<h1>first</h1>\n<style>h1 { color: teal; }</style>\n",
}


class _Assets(HTMLParser):
    """Every URL a page loads: scripts, stylesheets, module preloads, images, and the modules
    an inline script imports (SvelteKit starts that way)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._inline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and found.get("href"):
            self.urls.append(found["href"] or "")
        elif tag in ("script", "img") and found.get("src"):
            self.urls.append(found["src"] or "")
        self._inline = tag == "script" and not found.get("src")

    def handle_data(self, data: str) -> None:
        if self._inline:
            self.urls.extend(_imports(data))

    def handle_endtag(self, tag: str) -> None:
        self._inline = False


def _imports(code: str) -> list[str]:
    """Relative module specifiers of a script's static and dynamic imports."""
    return re.findall(r"""(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""", code)


def _load_as_visitor(page: str) -> tuple[str, list[str]]:
    """The page and every asset it loads, and the modules those import, each fetched with no
    credential at all; all must be 200. Returns the page and the asset URLs."""
    status, _, body = fetch("GET", page)
    assert status == 200, (page, status, body[:300])
    html = body.decode()
    parser = _Assets()
    parser.feed(html)
    queue = [urljoin(page, u) for u in parser.urls]
    assert queue, html
    seen: list[str] = []
    while queue:
        url = queue.pop()
        if url in seen or urlsplit(url).netloc != urlsplit(page).netloc:
            continue
        seen.append(url)
        status, headers, asset = fetch("GET", url)
        assert status == 200, (url, status, asset[:200])
        if url.endswith(".js"):
            queue.extend(urljoin(url, u) for u in _imports(asset.decode()))
    return html, seen


def test_sveltekit_and_svelte_are_built_served_to_visitors_and_rebuilt(
    tmp_path: Path, up_factory, package_caches
) -> None:
    app = write_app(tmp_path / "app", SPACEFILE, {**KIT_FILES, **SV_FILES})
    began = time.monotonic()
    up = up_factory(app, env=package_caches)
    wanted = {"kit": "ready", "sv": "ready"}
    assert wait_states(up.url, wanted, 150) == wanted, up.output
    up.wait_for(r"ready: app .* · as Space ran it · settings: ", 10)
    cold = time.monotonic() - began

    # SvelteKit's own server, from adapter-node's build: the page and /_app/immutable/...
    html, assets = _load_as_visitor(up.url + "/")
    assert "<h1>kit form</h1>" in html and "/@fs/" not in html and "/@vite/" not in html
    assert any("/_app/immutable/" in a for a in assets), assets
    assert len(assets) >= 3, assets  # the entry modules and what they import
    # The form posts from the page's own origin: SvelteKit's check of it passes (adapter-node
    # learns the scheme from the gate; it would assume https and refuse the post with a 403).
    status, _, body = fetch(
        "POST",
        up.url + "/",
        body=b"q=hello",
        headers={
            "Origin": up.url,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "x-sveltekit-action": "true",
        },
    )
    assert status == 200 and b"hello" in body, (status, body[:300])
    # Control: the visitor is anonymous, so what is not public is refused.
    assert fetch("GET", up.url + "/private")[0] in (303, 401)
    # The Svelte build's folder, served as files.
    html, assets = _load_as_visitor(up.url + "/sv/")
    assert '<div id="app">' in html and "/src/main.js" not in html
    assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets)

    # A save builds again; until the new build is ready the last one is served, assets too.
    start = len(up.lines)
    served: list[tuple[str, int]] = []
    stop = threading.Event()

    def keep_loading() -> None:
        while not stop.is_set():
            status, _, body = fetch("GET", up.url + "/sv/")
            served.append(("/sv/", status))
            for asset in re.findall(r'(?:src|href)="\./(assets/[^"]+)"', body.decode()):
                served.append((asset, fetch("GET", up.url + "/sv/" + asset)[0]))
            time.sleep(0.02)

    loader = threading.Thread(target=keep_loading, daemon=True)
    loader.start()
    saved = time.monotonic()
    (app / "sv" / "src" / "App.svelte").write_text("<h1>second</h1>\n")
    up.wait_for(r"sv: rebuilding \(src/App.svelte changed\)", 20, start)
    js_had_second = False
    deadline = time.monotonic() + 60
    while not js_had_second and time.monotonic() < deadline:
        _, assets = _load_as_visitor(up.url + "/sv/")
        js_had_second = any(b"second" in fetch("GET", a)[2] for a in assets if a.endswith(".js"))
        time.sleep(0.1)
    rebuild = time.monotonic() - saved
    stop.set()
    loader.join(10)
    assert js_had_second, up.output
    # The page and the assets it names, whichever build it came from.
    assert len(served) > 10 and all(status == 200 for _, status in served), [
        answer for answer in served if answer[1] != 200
    ]
    print(f"\ncold start (install + build + ready): {cold:.1f} s; sv rebuild: {rebuild:.1f} s")


# A svelte-kit micro whose `commands` are its build: a Node.js server written to build/, as
# adapter-node's is, slowly enough to be asked during the build.
SLOW_BUILD = """
const fs = require("fs");
fs.rmSync("build", { recursive: true, force: true });
const text = fs.readFileSync("src/message.txt", "utf8").trim();
setTimeout(() => {
  fs.mkdirSync("build", { recursive: true });
  fs.writeFileSync("build/index.js", `require("http").createServer((q, s) => s.end(${
    JSON.stringify(text)})).listen(Number(process.env.PORT));`);
  console.log("built " + text);
}, 1500);
"""


def test_a_built_server_is_replaced_only_once_the_new_build_answers(
    tmp_path: Path, up_factory
) -> None:
    spacefile = (
        "v: 0\nmicros:\n  - name: web\n    src: web\n    engine: svelte-kit\n"
        "    primary: true\n    public: true\n    commands:\n      - node build.cjs\n"
    )
    app = write_app(
        tmp_path / "app",
        spacefile,
        {
            "web/build.cjs": SLOW_BUILD,
            "web/src/message.txt": "old",
            # adapter-node's output is an ES module package of the app's own: this one is not.
            "web/package.json": '{"name": "web", "private": true}',
            "web/svelte.config.js": "import adapter from '@sveltejs/adapter-node';\n",
        },
    )
    up = up_factory(app)
    assert wait_states(up.url, {"web": "ready"}, 60) == {"web": "ready"}, up.output
    assert fetch("GET", up.url + "/")[2] == b"old"
    start = len(up.lines)
    (app / "web" / "src" / "message.txt").write_text("new")
    answers = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, body = fetch("GET", up.url + "/")
        answers.append((status, body))
        if body == b"new":
            break
        time.sleep(0.05)
    assert answers[-1] == (200, b"new"), up.output
    # The build emptied build/ for 1.5 s: the old server answered all along, from its copy.
    assert all(a == (200, b"old") for a in answers[:-1]) and len(answers) > 10, answers
    assert up.output.count("built new") == 1
    # What the build wrote (build/index.js) did not restart it again.
    time.sleep(1.5)
    assert "reloaded" in "\n".join(up.lines[start:])
    assert "\n".join(up.lines[start:]).count("reloaded") == 1, up.output


# Space's own docs once suggested this `dev` line; it only works in Windows' cmd.exe.
WINDOWS_DEV = """
v: 0
micros:
  - name: api
    src: api
    engine: python3.9
    primary: true
    public: true
    dev: uvicorn main:app --reload --port %PORT%
"""

WSGI = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"engine default"]
"""


def test_as_space_ignores_a_windows_dev_line_and_runs_the_engine_default(
    tmp_path: Path, up_factory
) -> None:
    app = write_app(tmp_path / "app", WINDOWS_DEV, {"api/main.py": WSGI})
    up = up_factory(app, "--as-space", "--no-reload")
    assert wait_states(up.url, {"api": "ready"}, 60) == {"api": "ready"}, up.output
    assert fetch("GET", up.url + "/")[2] == b"engine default"
    up.wait_for(r"ready: app \S+ · as Space ran it \(--as-space", 10)
    assert "%PORT%" not in up.output


DEV_THEN_BUILT = """
v: 0
micros:
  - name: web
    src: web
    engine: vue
    primary: true
    public: true
    commands:
      - node build.cjs
{dev}"""

TINY_BUILD = """
const fs = require("fs");
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", "built page");
"""

TINY_DEV = """
require("http").createServer((q, s) => s.end("dev server"))
  .listen(Number(process.env.PORT), "127.0.0.1");
"""


def test_removing_the_dev_line_serves_the_build(tmp_path: Path, up_factory) -> None:
    app = write_app(
        tmp_path / "app",
        DEV_THEN_BUILT.format(dev="    dev: node dev.cjs\n"),
        {"web/build.cjs": TINY_BUILD, "web/dev.cjs": TINY_DEV},
    )
    up = up_factory(app)
    assert wait_states(up.url, {"web": "ready"}, 60) == {"web": "ready"}, up.output
    assert fetch("GET", up.url + "/")[2] == b"dev server"
    up.wait_for(r"ready: app \S+ · dev servers: web runs its `dev` line", 10)
    (app / "Spacefile").write_text(DEV_THEN_BUILT.format(dev=""))
    deadline = time.monotonic() + 30
    while fetch("GET", up.url + "/")[2] != b"built page" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fetch("GET", up.url + "/")[2] == b"built page", up.output
