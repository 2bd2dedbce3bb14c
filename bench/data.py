"""Benchmark the Base emulator through Deta's own npm SDK, over TLS, as a micro calls it.

Run: python bench/data.py [--items 100000] [--seconds 3]
Starts `space-dev up` on a throwaway app whose node micro has `deta` (npm) installed, then asks
the micro to time, with the SDK: single `put` and `get` per second, a 25-item `putMany`, a
`fetch` page with a `?pfx` filter on a base of N items, and the put rate on that base against a
1,000-item one (they should be within 20% of each other). Needs node and npm.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SPACEFILE = """\
v: 0
app_name: databench
micros:
  - name: bench
    src: .
    engine: nodejs16
    public: true
"""

MICRO = r"""
const http = require("http");
const { Deta } = require("deta");
const db = Deta();

async function rate(seconds, fn) {
  let n = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) { await fn(n); n++; }
  return n / seconds;
}

async function fill(base, count) {
  for (let i = 0; i < count; i += 25) {
    const items = [];
    for (let j = i; j < Math.min(i + 25, count); j++) {
      items.push({ key: "k" + String(j).padStart(7, "0"), name: "item" + (j % 1000), n: j });
    }
    await base.putMany(items);
  }
}

async function run(items, seconds) {
  const small = db.Base("small"), large = db.Base("large");
  await fill(small, 1000);
  const filled = Date.now();
  await fill(large, items);
  const fillSeconds = (Date.now() - filled) / 1000;
  const out = { fill_items_per_s: items / fillSeconds };
  out.put_per_s = await rate(seconds, (n) => small.put({ n }, "p" + n));
  out.get_per_s = await rate(seconds, (n) => small.get("p" + (n % 100)));
  out.put_many_25_per_s = await rate(seconds, (n) => small.putMany(
    Array.from({ length: 25 }, (_, j) => ({ key: "m" + n + "-" + j, n: j }))));
  out.fetch_pfx_page_per_s = await rate(seconds, () => large.fetch({ "name?pfx": "item99" },
    { limit: 100 }));
  out.put_small_base_per_s = await rate(seconds, (n) => small.put({ n }, "q" + n));
  out.put_large_base_per_s = await rate(seconds, (n) => large.put({ n }, "q" + n));
  return out;
}

http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname !== "/run") { res.end("bench"); return; }
  const result = await run(Number(url.searchParams.get("items")),
                           Number(url.searchParams.get("seconds")));
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify(result));
}).listen(Number(process.env.PORT), "127.0.0.1");
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if shutil.which("npm") is None:
        print("needs npm", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="space-dev-databench-"))
    app = root / "app"
    app.mkdir()
    (app / "Spacefile").write_text(SPACEFILE)
    (app / "index.js").write_text(MICRO)
    (app / "package.json").write_text(json.dumps({"name": "databench", "version": "1.0.0",
                                                  "dependencies": {"deta": "2.0.0"}}))
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=app, check=True)
    port = free_port()
    env = {**os.environ, "SPACE_DEV_PASSWORD": "bench password 1"}
    up = subprocess.Popen(
        [sys.executable, "-m", "runtime", "up", str(app), "--port", str(port), "--data-dir",
         str(root / "data"), "--no-reload"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        assert up.stdout is not None
        deadline = time.monotonic() + 60
        for line in up.stdout:
            if re.search(r"ready: ", line):
                break
            if time.monotonic() > deadline:
                raise SystemExit("the app did not become ready")
        url = f"http://127.0.0.1:{port}/run?items={args.items}&seconds={args.seconds}"
        with urllib.request.urlopen(url, timeout=3600) as answer:
            result = json.load(answer)
    finally:
        os.killpg(up.pid, signal.SIGINT)
        up.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    print(f"Base through the npm SDK (deta 2.0.0) over TLS, {args.items:,}-item base")
    print(f"{'measure':34} {'per second':>12}")
    for name, value in result.items():
        print(f"{name:34} {value:12,.0f}")
    ratio = result["put_large_base_per_s"] / result["put_small_base_per_s"]
    print(f"put rate, {args.items:,} items vs 1,000: {ratio:.2f}x (within 20%: "
          f"{'yes' if abs(1 - ratio) <= 0.2 else 'no'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
