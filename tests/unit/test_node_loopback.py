"""The Node.js preload every micro gets: each way of calling listen() without a host binds
loopback, and a host the app names is kept."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runtime.supervisor import environment

FORMS = """
const http = require("http");
const forms = [
  (s, cb) => s.listen(0, cb),
  (s, cb) => s.listen("0", cb),
  (s, cb) => s.listen(0, 511, cb),
  (s, cb) => s.listen({ port: 0 }, cb),
  (s, cb) => s.listen(0, "0.0.0.0", cb),
  (s, cb) => s.listen({ port: 0, host: "0.0.0.0" }, cb),
];
(async () => {
  for (const form of forms) {
    const server = http.createServer();
    await new Promise((done) => form(server, done));
    console.log(server.address().address);
    server.close();
  }
})();
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_listen_without_a_host_binds_loopback(tmp_path: Path) -> None:
    (tmp_path / "forms.js").write_text(FORMS)
    env = environment.node_options("")
    done = subprocess.run(
        ["node", "forms.js"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ.get("PATH", ""), **env},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["127.0.0.1"] * 4 + ["0.0.0.0"] * 2


def test_node_options_keep_what_the_shell_gave() -> None:
    given = environment.node_options("--max-old-space-size=256")["NODE_OPTIONS"]
    assert given.startswith("--max-old-space-size=256 --require ")
    assert str(environment.NODE_PRELOADS[0]) in given
    assert environment.node_options(given) == {}  # not twice
