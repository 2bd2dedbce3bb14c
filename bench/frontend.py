"""Benchmark frontend micros run as Space ran them: for a Svelte (Vite) app served from its build
and a SvelteKit app built with adapter-node, the cold start (npm install from an empty download
cache, the build, `ready:`) and a rebuild (a saved source file until the new build is served).

Run: python bench/frontend.py [--apps svelte,svelte-kit]
Each app runs alone, in a fresh temp folder, once (the installs dominate; repeat by hand).
The apps are the integration tests' own (tests/integration/test_frontend_builds.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.integration.test_frontend_builds import KIT_FILES, SV_FILES  # noqa: E402

TIMEOUT_S = 300.0
APPS = {
    # name: (Spacefile micro lines, files, the saved source, its new text, what the page shows)
    "svelte": (
        "engine: svelte",
        {k[3:]: v for k, v in SV_FILES.items()},
        "src/App.svelte",
        "<h1>second</h1>\n",
        b"second",
    ),
    "svelte-kit": (
        "engine: svelte-kit",
        {k[4:]: v for k, v in KIT_FILES.items()},
        "src/routes/+page.svelte",
        "<h1>kit second</h1>\n",
        b"kit second",
    ),
}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return bytes(answer.read())
    except OSError:
        return b""


def _served(url: str, wanted: bytes, began: float) -> float:
    """Seconds from `began` until the page or one of its scripts holds `wanted`."""
    import re

    while time.monotonic() - began < TIMEOUT_S:
        page = _get(url)
        scripts = re.findall(rb'(?:src|import\()\s*=?\s*"(\./[^"]+\.js)"', page)
        if wanted in page or any(wanted in _get(url + s.decode()[2:]) for s in scripts):
            return time.monotonic() - began
        time.sleep(0.1)
    raise SystemExit(f"not served within {TIMEOUT_S} s")


def measure(name: str) -> tuple[float, float]:
    lines, files, source, text, wanted = APPS[name]
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app"
        for rel, content in files.items():
            (app / rel).parent.mkdir(parents=True, exist_ok=True)
            (app / rel).write_text(content)
        (app / "Spacefile").write_text(
            f"v: 0\nmicros:\n  - name: web\n    src: .\n    {lines}\n    public: true\n"
        )
        port = _port()
        env = {
            **os.environ,
            "npm_config_cache": str(Path(tmp) / "npm"),
            "SPACE_DEV_READY_TIMEOUT": "120",
        }
        began = time.monotonic()
        proc = subprocess.Popen(
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
                "--no-schedule",
            ],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        ready = threading.Event()

        def read() -> None:
            assert proc.stdout
            for line in proc.stdout:
                if "ready: " in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            if not ready.wait(TIMEOUT_S):
                raise SystemExit(f"{name}: no ready: line within {TIMEOUT_S} s")
            cold = time.monotonic() - began
            url = f"http://127.0.0.1:{port}/"
            _served(url, b"", began)
            saved = time.monotonic()
            (app / source).write_text(text)
            rebuild = _served(url, wanted, saved)
            return cold, rebuild
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="svelte,svelte-kit")
    args = parser.parse_args()
    for name in args.apps.split(","):
        cold, rebuild = measure(name)
        print(
            f"{name:11} cold start (install + build + ready) {cold:5.1f} s   "
            f"rebuild (save to served) {rebuild:5.1f} s"
        )


if __name__ == "__main__":
    main()
