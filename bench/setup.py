"""Benchmark the builder: the time from `space-dev up` to `ready:` for a FastAPI app whose
requirements.txt lists only `fastapi` (the engine default serves it), with uv and with pip.

Run: python bench/setup.py [--runs 3] [--installer uv,pip]
For each installer and run, in a fresh temp folder: cold (empty download cache, no
environment), warm (the second start: the environment is reused) and edit (requirements.txt
gains one package, then the start makes a new environment from the warm cache). Then the same
app starts once more with nothing to set up (no requirements.txt; `run` names the launcher on
the environment's own python, the same packages): the baseline the warm start is compared with.
The target is that warm adds less than 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 180.0
WARM_TARGET_S = 0.5

SPACEFILE = """\
v: 0
micros:
  - name: api
    src: .
    engine: python3.9
    public: true
"""

MAIN = """\
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def root():
    return {"ok": True}
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_to_ready(app: Path, data: Path, env: dict[str, str]) -> float:
    """Seconds from starting `space-dev up` to its `ready:` line; the runtime is then stopped."""
    began = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime",
            "up",
            str(app),
            "--port",
            str(_port()),
            "--data-dir",
            str(data),
            "--no-reload",
            "--no-schedule",
        ],
        cwd=app.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout
        for line in proc.stdout:
            lines.append(line)
            if re.search(r"\bready: ", line):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(TIMEOUT_S):
            raise SystemExit("no `ready:` within the timeout:\n" + "".join(lines[-30:]))
        return time.monotonic() - began
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        reader.join(5)


def one_run(installer: str | None, root: Path) -> dict[str, float]:
    app = root / "app"
    app.mkdir(parents=True)
    (app / "Spacefile").write_text(SPACEFILE)
    (app / "main.py").write_text(MAIN)
    env = {
        **os.environ,
        "SPACE_DEV_PASSWORD": "bench password here",
        "UV_CACHE_DIR": str(root / "uv-cache"),
        "PIP_CACHE_DIR": str(root / "pip-cache"),
        "SPACE_DEV_READY_TIMEOUT": str(TIMEOUT_S),
    }
    data = root / "data"
    env["SPACE_DEV_INSTALLER"] = installer
    (app / "requirements.txt").write_text("fastapi\n")
    cold = time_to_ready(app, data, env)
    warm = time_to_ready(app, data, env)
    (app / "requirements.txt").write_text("fastapi\nsix\n")
    edit = time_to_ready(app, data, env)
    # The baseline: the same process, with nothing for the builder to do.
    (envs,) = (data / "envs" / "app" / "api").iterdir()
    (app / "requirements.txt").unlink()
    launcher = REPO / "runtime" / "in_micro" / "pyapp.py"
    (app / "Spacefile").write_text(
        SPACEFILE.replace(
            "    public: true", f"    run: {envs}/bin/python {launcher} main:app\n    public: true"
        )
    )
    base = time_to_ready(app, root / "data-baseline", env)
    return {"cold": cold, "warm": warm, "edit": edit, "none": base}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--installer", default="uv,pip")
    args = parser.parse_args()
    rows: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.runs):
        for kind in args.installer.split(","):
            root = Path(tempfile.mkdtemp(prefix="space-dev-bench-setup-"))
            try:
                for phase, seconds in one_run(kind, root).items():
                    rows.setdefault(kind, {}).setdefault(phase, []).append(seconds)
            finally:
                shutil.rmtree(root, ignore_errors=True)
    phases = ("cold", "warm", "edit", "none")
    print(f"time to `ready:` (median of {args.runs}, seconds; none: nothing to set up)")
    print(f"{'installer':<10} " + " ".join(f"{p:>7}" for p in phases))
    med = {k: {p: statistics.median(v) for p, v in got.items()} for k, got in rows.items()}
    for kind, got in med.items():
        print(f"{kind:<10} " + " ".join(f"{got[p]:7.2f}" for p in phases))
    for kind, got in med.items():
        added = got["warm"] - got["none"]
        verdict = "ok" if added < WARM_TARGET_S else "over the target"
        print(
            f"{kind}: warm adds {added:+.2f} s to a start with nothing to set up "
            f"(target < {WARM_TARGET_S} s: {verdict})"
        )
    if "uv" in med and "pip" in med:
        print(
            f"pip / uv: cold x{med['pip']['cold'] / med['uv']['cold']:.1f}, "
            f"edit x{med['pip']['edit'] / med['uv']['edit']:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
