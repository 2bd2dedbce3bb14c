"""The micro-side guard's decision, as a table: the proof, the Host, the caller, the browser's
marks; and the names it shares with the runtime, which live in two processes and must agree."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.supervisor import environment

SITE = Path(environment.__file__).resolve().parents[1] / "in_micro" / "site"
NODE_GUARD = environment.NODE_PRELOADS[1]


def _load_guard():  # the module runs inside micros, outside the package: load it by its path
    spec = importlib.util.spec_from_file_location("_space_dev_guard", SITE / "_space_dev_guard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_space_dev_guard_under_test", module)
    spec.loader.exec_module(module)
    return module


guard_module = _load_guard()
PROOF = "s3cret-proof-of-the-gate"


def verdict(headers: dict[str, str], caller: bool | None, path: str = "/x") -> str:
    guard = guard_module.Guard(PROOF, "localhost:4200")
    guard.from_this_app = lambda peer, local: caller  # type: ignore[method-assign]
    lower = {k.lower(): v for k, v in headers.items()}
    return guard.verdict(path, lower.get, ("127.0.0.1", 50000), ("127.0.0.1", 4201))


@pytest.mark.parametrize(
    ("headers", "caller", "expected"),
    [
        ({"X-Space-Gate": PROOF, "Host": "localhost:4200"}, False, "pass"),
        # The gate forwards the Host it checked, which may be a name of the LAN.
        ({"X-Space-Gate": PROOF, "Host": "box.lan:4200"}, False, "pass"),
        ({"X-Space-Gate": PROOF + "x", "Host": "127.0.0.1:4201"}, False, "refused"),
        ({"X-Space-Gate": "", "Host": "127.0.0.1:4201"}, False, "refused"),
        ({"Host": "127.0.0.1:4201"}, True, "pass"),  # the app calling its own port
        ({"Host": "localhost:4201"}, True, "pass"),
        ({"Host": "[::1]:4201"}, True, "pass"),
        ({}, True, "pass"),  # HTTP/1.0 with no Host: no browser sends that
        ({"Host": "127.0.0.1:4201"}, False, "refused"),  # any other process
        # DNS rebinding: a page's own name, even from a process of the app.
        ({"Host": "rebind.attacker.example:4201"}, True, "refused"),
        ({"Host": "localhost.attacker.example:4201"}, True, "refused"),
        ({"Host": "0.0.0.0:4201"}, True, "refused"),
        # Where /proc cannot tell (not Linux), the browser's marks decide.
        ({"Host": "127.0.0.1:4201"}, None, "pass"),
        ({"Host": "127.0.0.1:4201", "Sec-Fetch-Site": "same-site"}, None, "refused"),
        ({"Host": "127.0.0.1:4201", "Origin": "http://localhost:3000"}, None, "refused"),
        ({"Host": "127.0.0.1:4201", "Sec-Fetch-Dest": "script"}, None, "refused"),
        # Node's own fetch sends Sec-Fetch-Mode: no sign of a browser.
        ({"Host": "127.0.0.1:4201", "Sec-Fetch-Mode": "cors"}, None, "pass"),
        # A process of the app that forwards a browser's headers to its own API still passes.
        ({"Host": "127.0.0.1:4201", "Sec-Fetch-Site": "same-origin"}, True, "pass"),
    ],
)
def test_verdict(headers: dict[str, str], caller: bool | None, expected: str) -> None:
    found = verdict(headers, caller)
    assert (found if found == "pass" else "refused") == expected, found


def test_the_proved_probe_is_answered_by_the_guard() -> None:
    probe = {"X-Space-Gate": PROOF, "X-Space-Probe": "ready"}
    assert verdict(probe, False, path="/") == "probe"
    # Unproved, the header is the app's own business; proved without it, a request to pass on.
    assert verdict({"X-Space-Probe": "ready"}, True, path="/") == "pass"
    assert verdict({"X-Space-Gate": PROOF}, False, path="/") == "pass"


def test_the_caller_lookup_reads_the_calling_process() -> None:
    """Real loopback connections: one from a process started with the app's proof in its
    environment (a process of the app), one from this test process (not)."""
    import socket

    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux's /proc")
    guard = guard_module.Guard(PROOF, "localhost:4200")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import socket,sys; s=socket.create_connection(('127.0.0.1',{port})); "
                "print(s.getsockname()[1], flush=True); sys.stdin.read()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, guard_module.PROOF_VARIABLE: PROOF},
        )
        try:
            assert holder.stdout is not None
            app_port = int(holder.stdout.readline())
            with socket.create_connection(("127.0.0.1", port)) as mine:
                server_address = ("127.0.0.1", port)
                assert guard.from_this_app(("127.0.0.1", app_port), server_address) is True
                assert guard.from_this_app(mine.getsockname(), server_address) is False
                other = guard_module.Guard(PROOF + "-other-app", "localhost:4300")
                assert other.from_this_app(("127.0.0.1", app_port), server_address) is False
                # The same ports from another address (an IPv6 client, another machine) are
                # another connection: the app's socket says nothing of it.
                assert guard.from_this_app(("::1", app_port), ("::1", port)) is False
                assert guard.from_this_app(("10.1.2.3", app_port), server_address) is False
                assert guard.from_this_app(("127.0.0.1", app_port), ("127.0.0.2", port)) is False
                # Where the server does not give its own address, the port decides that side.
                assert guard.from_this_app(("127.0.0.1", app_port), (None, port)) is True
        finally:
            holder.kill()
            holder.wait()


ADDRESSES = [
    ("127.0.0.1", 8080, "/proc/net/tcp", "0100007F:1F90"),
    ("10.0.0.2", 80, "/proc/net/tcp", "0200000A:0050"),
    ("::ffff:127.0.0.1", 4201, "/proc/net/tcp", "0100007F:1069"),
    ("::1", 4201, "/proc/net/tcp6", "00000000000000000000000001000000:1069"),
    ("fe80::1%eth0", 1, "/proc/net/tcp6", "000080FE000000000000000001000000:0001"),
    ("2001:db8::ff00:42:8329", 443, "/proc/net/tcp6", "B80D01200000000000FF000029834200:01BB"),
]


@pytest.mark.parametrize(("host", "port", "table", "text"), ADDRESSES)
def test_addresses_as_the_kernel_writes_them(host: str, port: int, table: str, text: str) -> None:
    assert guard_module.table_address(host, port) == (table, text)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_the_node_guard_writes_addresses_as_the_python_one() -> None:
    script = (
        "const {tableAddress} = require(process.argv[1]);"
        "const cases = JSON.parse(process.argv[2]);"
        "console.log(JSON.stringify(cases.map(([h, p]) => tableAddress(h, p))));"
    )
    cases = [[h, p] for h, p, _, _ in ADDRESSES] + [["not an address", 1]]
    done = subprocess.run(
        ["node", "-e", script, str(NODE_GUARD), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found[:-1] == [{"table": t, "text": x} for _, _, t, x in ADDRESSES]
    assert found[-1] is None


def test_the_runtime_and_the_micros_agree_on_names() -> None:
    assert guard_module.PROOF_VARIABLE == environment.GATE_PROOF_VARIABLE
    assert guard_module.PROOF_HEADER == environment.GATE_PROOF_HEADER.lower()
    assert guard_module.GUARD_HEADER == environment.GUARD_HEADER
    assert guard_module.PROBE_HEADER == environment.PROBE_HEADER.lower()
    node = NODE_GUARD.read_text()
    assert f'const PROOF_HEADER = "{environment.GATE_PROOF_HEADER.lower()}";' in node
    assert f'const GUARD_HEADER = "{environment.GUARD_HEADER}";' in node
    assert f'const PROBE_HEADER = "{environment.PROBE_HEADER.lower()}";' in node
    assert re.search(rf"process\.env\.{environment.GATE_PROOF_VARIABLE}\b", node)
    assert f"\\0{environment.GATE_PROOF_VARIABLE}=" in node


@pytest.mark.parametrize(("given", "expected"), [("", None), ("the-runs-own", "the-runs-own")])
def test_only_the_runtimes_proof_reaches_a_micro(given: str, expected: str | None) -> None:
    from runtime.models import Micro
    from runtime.spacefile import engines

    micro = Micro("api", Path("/app/api"), "nodejs16", True, "/")
    engine = engines.lookup("nodejs16")
    assert engine is not None
    shell = {"PATH": "/bin", environment.GATE_PROOF_VARIABLE: "from-the-shell"}
    env = environment.micro_environment(
        micro,
        engine,
        hostname="localhost:4200",
        project_key="k_s",
        presets={},
        shell=shell,
        gate_proof=given,
    )
    assert env.get(environment.GATE_PROOF_VARIABLE) == expected
    assert str(NODE_GUARD) in env["NODE_OPTIONS"]


# --- where there is no /proc (not Linux): the browser's marks decide ---------------------------


def _app_connection(port: int) -> subprocess.Popen[str]:
    """A process of the app (the proof in its environment) holding a connection to `port`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import socket,sys; s=socket.create_connection(('127.0.0.1',{port})); "
            "print(s.getsockname()[1], flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, guard_module.PROOF_VARIABLE: PROOF},
    )


def test_without_proc_the_python_guard_cannot_tell_and_the_marks_decide(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    monkeypatch.setattr(guard_module, "PROC", str(tmp_path / "no-proc"))
    guard = guard_module.Guard(PROOF, "localhost:4200")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        holder = _app_connection(port)
        try:
            assert holder.stdout is not None
            app_port = int(holder.stdout.readline())
            with socket.create_connection(("127.0.0.1", port)) as mine:
                local = ("127.0.0.1", port)
                # Neither the app's process nor another one can be told apart here.
                assert guard.from_this_app(("127.0.0.1", app_port), local) is None
                assert guard.from_this_app(mine.getsockname(), local) is None
                plain = {"host": "127.0.0.1:4201"}.get
                marked = {"host": "127.0.0.1:4201", "sec-fetch-site": "cross-site"}.get
                assert guard.verdict("/x", plain, mine.getsockname(), local) == "pass"
                assert "browser page" in guard.verdict("/x", marked, mine.getsockname(), local)
                proved = {"host": "box.lan", "x-space-gate": PROOF}.get
                assert guard.verdict("/x", proved, mine.getsockname(), local) == "pass"
        finally:
            holder.kill()
            holder.wait()


# A Node.js server behind the guard, in a process where fs finds no /proc when HIDE_PROC is set.
NODE_SERVER = """
const fs = require("fs");
if (process.env.HIDE_PROC) {
  for (const name of ["readFileSync", "readdirSync", "readlinkSync", "existsSync"]) {
    const real = fs[name];
    fs[name] = function (path, ...rest) {
      if (String(path).startsWith("/proc")) {
        if (name === "existsSync") return false;
        const err = new Error(`ENOENT: no such file or directory, '${path}'`);
        err.code = "ENOENT";
        throw err;
      }
      return real.call(this, path, ...rest);
    };
  }
}
require(process.argv[1]);
const server = require("http").createServer((req, res) => res.end("app"));
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
"""


def _node_answers(hide_proc: bool) -> tuple[int, int]:
    """The statuses the guarded Node.js server gives a request from this test's process (not
    the app's) without the proof: unmarked, then marked as a browser page's."""
    import http.client

    env = {**os.environ, "SPACE_DEV_GATE_PROOF": PROOF}
    env.pop("HIDE_PROC", None)
    if hide_proc:
        env["HIDE_PROC"] = "1"
    node = subprocess.Popen(
        ["node", "-e", NODE_SERVER, str(NODE_GUARD)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert node.stdout is not None
        port = int(node.stdout.readline())
        statuses = []
        for headers in ({}, {"Sec-Fetch-Site": "cross-site"}):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/", headers=headers)
            statuses.append(connection.getresponse().status)
            connection.close()
        return statuses[0], statuses[1]
    finally:
        node.kill()
        node.wait()


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_without_proc_the_node_guard_lets_the_marks_decide() -> None:
    if Path("/proc/net/tcp").exists():
        # Where /proc tells, a caller outside the app is refused, marked or not.
        assert _node_answers(hide_proc=False) == (403, 403)
    assert _node_answers(hide_proc=True) == (200, 403)
