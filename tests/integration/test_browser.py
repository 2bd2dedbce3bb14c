"""The login and settings pages driven in headless Chromium: what a person does, end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.conftest import OWNER_PASSWORD, Up, fetch, login, run_up
from tests.integration.micros import PY_ECHO, write_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; CI installs it
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Outside the tree: the tracked picture of the README is made by docs/screenshot.py alone.
SCREENSHOT_DIR = Path(
    os.environ.get("SPACE_DEV_SCREENSHOTS", Path(tempfile.gettempdir()) / "space-dev-screenshots")
)
PASSWORD = OWNER_PASSWORD

SPACEFILE = """
v: 0
app_name: notes
micros:
  - name: www
    src: www
    engine: static
    serve: .
    primary: true
  - name: api
    src: api
    engine: python3.9
    run: python main.py
    public_routes:
      - /health
    presets:
      api_keys: true
      env:
        - name: GREETING
          description: How the app says hello
          default: hello
        - name: SHELL_TOKEN
          description: A token for the upstream service
    actions:
      - id: cleanup
        name: Clean up old notes
        trigger: schedule
        default_interval: 1 hour
"""


def need_browser() -> None:
    """Skip (or, where CI demands the browser, fail) when Chromium or Playwright is missing."""
    reason = ""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing (pip install playwright)"
    if not reason:
        return
    if os.environ.get("SPACE_DEV_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SPACE_DEV_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    app = write_app(
        tmp_path / "notes", SPACEFILE, {"api/main.py": PY_ECHO, "www/index.html": "<h1>notes</h1>"}
    )
    # A long value from the shell: the Configuration's placeholder must still show whole.
    running = run_up(
        app,
        "--no-schedule",
        "--no-reload",
        data_dir=tmp_path / "data",
        env={"SHELL_TOKEN": "tok_live_0123456789abcdefghijklmnopqrstuvwxyz"},
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def call_with(up: Up, key: str) -> int:
    return fetch("GET", up.url + "/api/", headers={"X-Space-App-Key": key})[0]


def test_login_and_keys_in_a_browser(up: Up) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1180, "height": 900})
            page.set_default_timeout(10_000)

            # A private app: the browser is sent to sign in, then back where it was going.
            page.goto(up.url + "/")
            assert "/__space/login?next=" in page.url
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(up.url + "/")
            assert "notes" in page.inner_text("h1")

            page.goto(up.url + "/__space/settings")
            assert page.inner_text("#micros h3 >> nth=1") == "api"

            # A key with a value made by the page's Generate button...
            page.fill("#key-name", "ci-deploy")
            page.fill("#key-description", "GitHub Actions deploy")
            page.fill("#key-client-type", "ci")
            page.click("#generate-key")
            generated = page.input_value("#key-value")
            assert re.fullmatch(r"[A-Za-z0-9]{8}\.[A-Za-z0-9_-]{32}", generated)
            page.click("form.create-key button[type=submit]")
            assert page.inner_text("#new-key") == generated

            # ...and one the runtime generates (empty value), read from the page, used from here.
            page.fill("#key-name", "browser-test")
            page.fill("#key-description", "made by the browser test")
            page.click("form.create-key button[type=submit]")
            key = page.inner_text("#new-key")
            assert page.is_visible("[data-copy=new-key]")
            assert f'"X-Space-App-Key: {key}"' in page.inner_text("#new-curl")
            assert call_with(up, key) == 200

            page.goto(up.url + "/__space/settings")
            assert page.is_visible('tr[data-key="browser-test"]')
            assert key not in page.content()
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT_DIR / "settings.png"), full_page=True)

            page.on("dialog", lambda dialog: dialog.accept())  # "Revoke the key ...?"
            page.click('tr[data-key="browser-test"] button.danger')
            page.wait_for_url(re.compile(r".*done=key-revoked.*"))
            assert "revoked" in page.inner_text("[role=status]")
            assert not page.is_visible('tr[data-key="browser-test"]')
            assert call_with(up, key) == 401
            assert call_with(up, generated) == 200
        finally:
            browser.close()


DATA_MICRO = """
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from deta import Deta

notes = Deta().Base("notes")

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/put":
            answer = notes.put({"text": "written by the micro"}, "n1")
        else:
            answer = notes.get("n1")
        body = json.dumps(answer).encode()
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


def test_data_page_shows_and_edits_what_a_micro_wrote(tmp_path: Path) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    app = write_app(
        tmp_path / "app",
        """
        v: 0
        app_name: data
        micros:
          - name: api
            src: .
            engine: python3.9
            run: python main.py
            public: true
        """,
        {"main.py": DATA_MICRO},
    )
    up = run_up(app, "--no-schedule", "--no-reload", data_dir=tmp_path / "data")
    try:
        up.wait_ready()
        assert fetch("GET", up.url + "/put")[0] == 200
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(10_000)
                page.goto(up.url + "/__space/settings/data")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(re.compile(r".*/__space/settings/data$"))
                page.click("text=notes")
                assert "written by the micro" in page.inner_text("table.items")
                page.click("table.items a:has-text('Edit')")
                editor = page.locator("textarea[name=item]").first
                assert "written by the micro" in editor.input_value()
                editor.fill('{"key": "n1", "text": "edited in the browser"}')
                page.click("text=Save item")
                page.wait_for_load_state()
                assert "edited in the browser" in page.content()
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 1280, f"the data page is {width} px wide"
            finally:
                browser.close()
        status, _, body = fetch("GET", up.url + "/read")
        assert status == 200 and b"edited in the browser" in body
    finally:
        up.stop()


# --- what a new user trips on, seen in the browser -----------------------------------------------


def _sign_in(page: object, up: Up, path: str) -> None:
    page.goto(up.url + path)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(up.url + path)  # type: ignore[attr-defined]


# Each element that spills over its box: a card, a table's scroll box, the page itself.
OVERFLOWING = """() => {
  const out = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) out.push("page " + root.scrollWidth);
  for (const el of document.querySelectorAll("section.card, .table-wrap, .notice")) {
    if (el.scrollWidth > el.clientWidth + 1) {
      out.push((el.id || el.className) + " " + el.scrollWidth + ">" + el.clientWidth);
    }
  }
  return out;
}"""


# Whether an input's placeholder text is shown whole, in the input's own font.
PLACEHOLDER_FITS = """e => {
  const style = getComputedStyle(e);
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.font = style.font;
  const room = e.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return ctx.measureText(e.placeholder).width <= room;
}"""


def test_settings_cards_do_not_overflow_with_used_keys(up: Up) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    owner = login(up.url)
    for name, desc in (
        ("ci-deploy", "GitHub Actions deploy of the production site"),
        ("laptop", "my laptop, for scripts run by hand"),
        ("monitoring.prod", "uptime checks every minute from the status page"),
    ):
        status, _, body = fetch(
            "POST",
            up.url + "/__space/api/keys",
            body=json.dumps(
                {"name": name, "description": desc, "client_type": "automation"}
            ).encode(),
            headers={
                "Cookie": f"space_session={owner}",
                "Origin": up.url,
                "Content-Type": "application/json",
            },
        )
        assert status == 201, body
        assert call_with(up, json.loads(body)["api_key"]) == 200
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # "last used" is written every few seconds
        listed = json.loads(
            fetch(
                "GET", up.url + "/__space/api/keys", headers={"Cookie": f"space_session={owner}"}
            )[2]
        )
        if all(k["last_used"] for k in listed):
            break
        time.sleep(0.5)
    assert all(k["last_used"] for k in listed), listed

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for width in (1280, 1440):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.set_default_timeout(10_000)
                _sign_in(page, up, "/__space/settings")
                assert page.locator("table.keys tbody tr").count() == 3
                assert page.evaluate(OVERFLOWING) == [], width
                revoke = page.locator('tr[data-key="monitoring.prod"] button.danger')
                box, card = revoke.bounding_box(), page.locator("#keys").bounding_box()
                assert box and card and box["x"] + box["width"] <= card["x"] + card["width"]
                for field in page.locator("#configuration input[type=text]").all():
                    assert field.evaluate(PLACEHOLDER_FITS), field.get_attribute("placeholder")
                SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT_DIR / f"settings-{width}.png"), full_page=True)
                page.close()
        finally:
            browser.close()


def test_reloading_after_a_form_shows_the_settings_page(up: Up) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(10_000)
            _sign_in(page, up, "/__space/settings")
            page.fill("#key-name", "reload-test")
            page.click("form.create-key button[type=submit]")
            key = page.inner_text("#new-key")
            assert urlsplit(page.url).path == "/__space/settings"
            assert key not in page.url
            page.reload()
            assert urlsplit(page.url).path == "/__space/settings"
            assert page.inner_text("#app h1") == "notes"
            assert key not in page.content()  # shown once: not again on a reload
            # A form error, then a reload.
            page.fill("#key-name", "twice")
            page.click("form.create-key button[type=submit]")
            page.fill("#key-name", "twice")
            page.click("form.create-key button[type=submit]")
            assert page.is_visible("[role=alert]")
            page.reload()
            assert page.inner_text("#app h1") == "notes"
            # The form's own address, typed in, leads to the page too.
            page.goto(up.url + "/__space/settings/keys")
            assert page.inner_text("#app h1") == "notes"
            # The port shown after Restart is the new process's.
            before = _shown_port(page)
            page.click("#micros .micro:has(h3:text-is('api')) button:has-text('Restart')")
            page.wait_for_url(re.compile(r".*done=restarted.*"))
            after = _shown_port(page)
            micros = json.loads(
                fetch(
                    "GET",
                    up.url + "/__space/api/micros",
                    headers={"Cookie": "space_session=" + page.context.cookies()[0]["value"]},
                )[2]
            )
            serving = next(m for m in micros if m["name"] == "api")["port"]
            assert after != before and after == serving
        finally:
            browser.close()


def _shown_port(page: object) -> int:
    facts = page.inner_text("#micros .micro:has(h3:text-is('api')) dl.facts")  # type: ignore[attr-defined]
    return int(re.search(r"Port\s+(\d+)", facts).group(1))  # type: ignore[union-attr]


CRASHING = """
v: 0
micros:
  - name: www
    src: www
    engine: static
    serve: .
    primary: true
  - name: api
    src: api
    engine: python3.9
    path: /api
"""

BROKEN_API = """
def connect():
    raise RuntimeError("the database at DB_URL is not there")

connect()
app = None
"""

FIXED_API = """
from aiohttp import web

async def hello(request):
    return web.Response(text="fixed and restarted")

app = web.Application()
app.router.add_get("/", hello)
"""


def test_502_page_of_a_crashed_micro_shows_its_error_once_and_restarts_it(tmp_path: Path) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    app = write_app(
        tmp_path / "notes",
        CRASHING,
        {"api/main.py": BROKEN_API, "www/index.html": "<h1>notes</h1>"},
    )
    up = run_up(app, "--no-schedule", "--no-reload", data_dir=tmp_path / "data")
    try:
        up.wait_for(r"ready: \S+ \S+ \(api: crashed\)", 60)
        up.wait_for(r"api .*the same \d+ lines as at the last start", 30)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(15_000)
                page.goto(up.url + "/api/")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(up.url + "/api/")
                assert "The micro api has crashed" in page.inner_text("h1")
                assert page.inner_text(".overlay .state") == "crashed"
                error = page.inner_text("#error")
                assert error.count("RuntimeError: the database at DB_URL is not there") == 1
                assert error.count("Traceback") == 1
                assert "RuntimeError" in page.inner_text("#latest-error")
                # Wide, as error overlays are.
                assert page.locator(".overlay").bounding_box()["width"] > 900  # type: ignore[index]
                assert (
                    page.get_attribute("a:has-text('Settings of this app')", "href")
                    == "/__space/settings#micros"
                )
                assert page.locator("a[href='/']").count() >= 1
                SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT_DIR / "502.png"), full_page=True)
                (app / "api" / "main.py").write_text(FIXED_API)
                page.click("#restart")
                page.wait_for_load_state()
                assert urlsplit(page.url).path == "/api/"
                assert "fixed and restarted" in page.content()
            finally:
                browser.close()
    finally:
        up.stop()


def test_the_runtimes_own_404_links_home(up: Up) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(up.url + "/__space/nothing-here")
            assert page.inner_text("h1") == "404 Not Found"
            assert "/__space/nothing-here" in page.inner_text("main")
            page.click("text=Go to the app's home page")
            assert urlsplit(page.url).path in ("/", "/__space/login")
        finally:
            browser.close()


# --- the README's tour, as a newcomer walks it -------------------------------------------------

IN_VIEW = """(selector) => {
  const box = document.querySelector(selector).getBoundingClientRect();
  return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
}"""
WIDTHS = (1280, 390)


def _shoot(page: object, name: str) -> None:
    """The page at each width, whole, into the screenshots folder."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})  # type: ignore[attr-defined]
        page.screenshot(
            path=str(SCREENSHOT_DIR / f"{name}-{width}.png"),  # type: ignore[attr-defined]
            full_page=True,
        )
    page.set_viewport_size({"width": 1280, "height": 900})  # type: ignore[attr-defined]


def _space_dev(up: Up, *args: str, input: str | None = None) -> None:
    data = Path(up.proc.args[up.proc.args.index("--data-dir") + 1])  # type: ignore[index,union-attr]
    done = subprocess.run(
        [sys.executable, "-m", "runtime", *args[:2], "--data-dir", str(data), *args[2:]],
        input=input,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_the_tour_in_a_browser(up: Up, tmp_path: Path) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as z:
        z.writestr(
            "bases/many.json",
            json.dumps(
                [
                    {
                        "key": f"k{n:03d}",
                        "n": n,
                        "title": f"item {n}",
                        "tags": ["a", "b"],
                        "profile": {"age": n % 90, "city": "Oslo"},
                    }
                    for n in range(250)
                ]
            ),
        )
    _space_dev(up, "data", "import", str(many), "--app", "notes")
    _space_dev(up, "users", "add", "eve", "--password-stdin", input="eve's long password")

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP myapp.test 127.0.0.1"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(10_000)
            _sign_in(page, up, "/__space/settings")

            # A bad key name is flagged by the browser itself: its pattern compiles (v flag).
            page.fill("#key-name", "bad name!")
            assert page.eval_on_selector("#key-name", "e => e.validity.patternMismatch")
            page.fill("#key-name", "good-name.v2_x")
            assert page.eval_on_selector("#key-name", "e => e.checkValidity()")
            page.click("form.create-key button[type=submit]")
            assert page.evaluate(IN_VIEW, "#new-key-card")  # the new key, where it was made
            # The server's refusal (the name is taken) is shown by the form, in view.
            page.goto(up.url + "/__space/settings")
            page.fill("#key-name", "good-name.v2_x")
            page.click("form.create-key button[type=submit]")
            assert "already" in page.inner_text("#result [role=alert]")
            assert page.evaluate(IN_VIEW, "#result")
            # A form answered by a redirect: its result is in view too.
            page.click('tr[data-key="good-name.v2_x"] button:has-text("Switch off")')
            page.wait_for_url(re.compile(r".*done=key-disabled.*#result$"))
            assert "switched off" in page.inner_text("#keys #result")
            assert page.evaluate(IN_VIEW, "#result")
            _shoot(page, "settings")

            # The data table pages through 250 items, 100 at a time.
            page.goto(up.url + "/__space/settings/data/base/many")
            assert "250 items" in page.inner_text(".base-count")
            seen: list[str] = []
            while True:
                keys = page.locator("table.items tbody tr td:first-child").all_inner_texts()
                assert len(keys) <= 100
                seen += keys
                if page.locator("a[rel=next]").count() == 0:
                    break
                with page.expect_navigation():
                    page.click("a[rel=next]")
            assert seen == [f"k{n:03d}" for n in range(250)]
            page.goto(up.url + "/__space/settings/data/base/many")
            page.click("table.items tbody tr:first-child summary:has-text('2 fields')")  # folded
            assert "Oslo" in page.inner_text("table.items tbody tr:first-child")
            _shoot(page, "data")

            # 421 on a name the app does not answer to, styled, linking the app.
            page.goto(f"http://myapp.test:{up.port}/")
            assert page.inner_text("h1") == "Unknown host name"
            assert page.eval_on_selector(".card", "e => getComputedStyle(e).borderRadius") != "0px"
            _shoot(page, "421")
            page.click("a.button")
            assert urlsplit(page.url).hostname == "localhost"

            # The 404 pages: the runtime's and the static micro's, one design.
            page.goto(up.url + "/__space/no-such-page")
            _shoot(page, "404-runtime")
            page.goto(up.url + "/no-such-file.html")
            assert "/no-such-file.html" in page.inner_text("main")
            _shoot(page, "404-static")

            # A user who is not the owner: who they are, and a way to sign in as someone else.
            eve = browser.new_page(viewport={"width": 1280, "height": 900})
            eve.set_default_timeout(10_000)
            eve.goto(up.url + "/__space/login?next=/__space/settings")
            eve.fill("#username", "eve")
            eve.fill("#password", "eve's long password")
            eve.click("button[type=submit]")
            eve.wait_for_url(up.url + "/__space/settings")
            assert eve.inner_text("h1") == "Forbidden"
            assert "signed in as eve" in eve.inner_text("header")
            _shoot(eve, "forbidden")
            eve.click("text=Sign out and sign in as someone else")
            eve.wait_for_url(re.compile(r".*/__space/login\?next=/__space/settings$"))
            eve.fill("#username", "dev")
            eve.fill("#password", PASSWORD)
            eve.click("button[type=submit]")
            eve.wait_for_url(up.url + "/__space/settings")
            assert eve.inner_text("#app h1") == "notes"
        finally:
            browser.close()


# --- the developer's console ---------------------------------------------------------------------


def test_logs_arrive_live_filter_show_the_gates_reason_and_the_owner_sees_a_notice(
    tmp_path: Path,
) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    from tests.integration.console_app import write_console_app

    app = write_console_app(tmp_path)
    up = run_up(
        app,
        "--no-schedule",
        "--config",
        str(tmp_path / "space-dev.toml"),
        cwd=tmp_path,
        data_dir=tmp_path / "data",
    )
    try:
        up.wait_for(r"ready: \S+ \S+ \(broken: crashed\)", 60)
        cookie = login(up.url)

        def say(text: str) -> None:
            assert (
                fetch(
                    "GET",
                    f"{up.url}/api/say?text={text}",
                    headers={"Cookie": f"space_session={cookie}"},
                )[0]
                == 200
            )

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(15_000)
                _sign_in(page, up, "/__space/logs")
                page.wait_for_selector("#live-state[data-live='1']")
                page.evaluate("window.notReloaded = true")
                say("first-live-line")
                page.wait_for_selector("#rows tr:has-text('first-live-line')")
                row = page.locator("#rows tr:has-text('first-live-line')")
                assert row.locator("td").nth(1).inner_text() == "api"
                assert row.locator("td").nth(2).inner_text() == "info"
                assert page.evaluate("window.notReloaded === true")  # it came with no reload
                # The filter narrows, in the address (works without a script), and stays live.
                page.select_option("#filter-micro", "api")
                page.fill("#filter-text", "wanted")
                page.click("form.filters button[type=submit]")
                page.wait_for_url(re.compile(r".*micro=api.*text=wanted.*"))
                assert page.locator("#rows tr").count() == 0
                page.wait_for_selector("#live-state[data-live='1']")
                say("other-line")
                say("wanted-line")
                page.wait_for_selector("#rows tr:has-text('wanted-line')")
                assert len(page.locator("#rows tr").all_inner_texts()) == 1
                assert "other-line" not in page.inner_text("#rows")
                # A refused request, with the gate's reason, arrives in the requests view.
                page.click("a:has-text('Requests')")
                page.wait_for_url(re.compile(r".*view=requests.*"))
                page.goto(up.url + "/__space/logs?view=requests")
                page.wait_for_selector("#live-state[data-live='1']")
                assert fetch("GET", up.url + "/api/notes")[0] == 401
                refused = page.locator("#rows tr:has-text('GET /api/notes')")
                refused.wait_for()
                assert (
                    "401: no session and no key; no public route of api matches /notes"
                    in refused.inner_text()
                )
                assert "anonymous" in refused.inner_text()
                # The owner's own page of the app says a micro is down, with a way to its logs.
                page.goto(up.url + "/")
                notice = page.locator("#space-dev-notice")
                assert notice.is_visible() and "broken" in notice.inner_text()
                assert notice.evaluate("e => getComputedStyle(e).position") == "fixed"
                page.click("#space-dev-notice a:has-text('See the logs')")
                page.wait_for_url(up.url + "/__space/logs?micro=broken")
                assert "RuntimeError: the broken micro cannot start" in page.inner_text("#rows")
                page.goto(up.url + "/")
                page.click("#space-dev-notice button:has-text('Dismiss')")
                page.wait_for_url(up.url + "/")
                assert page.locator("#space-dev-notice").count() == 0
                # A visitor never sees it: not on a public page, and the rest asks to sign in.
                visitor = browser.new_page()
                visitor.goto(up.url + "/public/page")
                assert visitor.locator("#space-dev-notice").count() == 0
                assert "broken" not in visitor.content()
                visitor.goto(up.url + "/")
                assert "/__space/login" in visitor.url
                assert visitor.locator("#space-dev-notice").count() == 0
            finally:
                browser.close()
    finally:
        up.stop()
