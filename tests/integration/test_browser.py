"""The login and settings pages driven in headless Chromium: what a person does, end to end."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import OWNER_PASSWORD, REPO, Up, fetch, run_up
from tests.integration.micros import PY_ECHO, write_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; CI installs it
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = REPO / "docs" / "settings.png"
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
    app = write_app(tmp_path / "notes", SPACEFILE,
                    {"api/main.py": PY_ECHO, "www/index.html": "<h1>notes</h1>"})
    running = run_up(app, "--no-schedule", "--no-reload", data_dir=tmp_path / "data")
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
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

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

    app = write_app(tmp_path / "app", """
        v: 0
        app_name: data
        micros:
          - name: api
            src: .
            engine: python3.9
            run: python main.py
            public: true
        """, {"main.py": DATA_MICRO})
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
                assert "written by the micro" in page.inner_text("pre.json")
                page.click("summary:has-text('Edit')")
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
