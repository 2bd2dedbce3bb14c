"""Make the README's picture: the sample app, with a note and its file, in headless Chromium.

    .venv/bin/python docs/screenshot.py            # writes docs/notes.png

It runs `space-dev up` on a copy of sample_apps/notes with a throwaway data dir, signs in, adds
a note with a file, and takes the page. The tests never write into the tree; only this does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "notes.png"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "screenshot password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print(
            "docs/screenshot.py needs Playwright, which comes with the test extra: "
            "pip install -e '.[test]' (Chromium itself: apt-get install chromium)",
            file=sys.stderr,
        )
        return 1

    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "notes"
        shutil.copytree(REPO / "sample_apps" / "notes", app)
        (Path(tmp) / "list.txt").write_text("milk, eggs, bread\n")
        port = _free_port()
        env = {**os.environ, "SPACE_DEV_PASSWORD": PASSWORD}
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runtime",
                "up",
                str(app),
                "--port",
                str(port),
                "--data-dir",
                str(Path(tmp) / "data"),
                "--no-reload",
                "--no-schedule",
            ],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert up.stdout is not None
            deadline = time.monotonic() + 90
            for line in up.stdout:
                if "ready: notes" in line:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("space-dev up did not get ready")
            url = f"http://localhost:{port}"
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page(viewport={"width": 900, "height": 640})
                page.goto(url + "/")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(url + "/")
                for text, file in (
                    ("Buy milk", str(Path(tmp) / "list.txt")),
                    ("Call the plumber", None),
                ):
                    page.fill("input[name=text]", text)
                    if file:
                        page.set_input_files("input[name=file]", file)
                    page.click("#add button")
                    page.wait_for_selector(f"li:has-text('{text}')")
                page.wait_for_function("document.getElementById('clock').textContent.length > 2")
                page.screenshot(path=str(OUT), full_page=True)
                browser.close()
        finally:
            up.terminate()
            up.wait(20)
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
