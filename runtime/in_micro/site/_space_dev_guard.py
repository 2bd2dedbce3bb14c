"""The micro's side of the gate: whether a request came through the gate, decided before the
app's code runs. `_space_dev_guard_servers.py` puts this check in front of each server.

A micro listens on 127.0.0.1:$PORT, and a page on any other local origin can send it requests
there (a no-cors fetch, a form), and with DNS rebinding read the answers. So the gate proves
itself on every request it forwards: `X-Space-Gate` carries the per-run secret the micro finds
in `SPACE_DEV_GATE_PROOF`, which no page can know (and a page cannot add a custom header to a
request for another origin without a CORS preflight, which never carries it and is refused).

A request without the proof passes only when it names a loopback Host and comes from a process
of the same app (its server-side code calling its own port, or another micro of the app). On
Linux the calling process is looked up in /proc: the socket at the other end of the connection
(its addresses and ports exactly) must belong to a process with the app's proof in its
environment. Where /proc cannot tell, a request that a browser marked as sent by a page
(`Sec-Fetch-Site`, `Sec-Fetch-Dest`, `Origin`) is refused and others pass.

The standard library only; nothing here may raise into the app. The Node.js side
(`node/guard.cjs`) keeps the same rules.
"""

from __future__ import annotations

import hmac
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable

PROOF_VARIABLE = "SPACE_DEV_GATE_PROOF"
PROOF_HEADER = "x-space-gate"
# The readiness probe, when proved, is answered here with this header: the runtime then knows the
# micro is guarded (a server we do not wrap answers without it, and the owner is told).
PROBE_HEADER = "x-space-probe"
GUARD_HEADER = "X-Space-Guard"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Linux's process table, where callers are looked up; elsewhere it does not exist (tests point it
# at a folder that does not exist to check what the guard does there).
PROC = "/proc"
# Headers a browser adds to what a page sends, and server-side clients do not (Node's fetch sends
# Sec-Fetch-Mode, so that one is no sign); what decides where /proc cannot tell.
BROWSER_MARKS = ("sec-fetch-site", "sec-fetch-dest", "origin")
_NOTE_EVERY_S = 60.0
# A caller found to be the app's is remembered for its connection (its addresses and ports) this
# long, so a kept-alive connection is looked up once, not on each request.
_CALLER_KEPT_S = 2.0
_CALLERS_KEPT = 256

PASS, PROBE = "pass", "probe"
Header = Callable[[str], "str | None"]  # a request header by its lower-case name, or None
Address = tuple[str | None, int]  # (host, port); host None where the server does not say


class Guard:
    """The check for one micro process, made from its environment."""

    def __init__(self, proof: str, app_address: str) -> None:
        self._proof = proof.encode()
        self._marker = f"\0{PROOF_VARIABLE}={proof}\0".encode()
        self._app_address = app_address
        self._noted_at = -_NOTE_EVERY_S
        self._callers: dict[tuple[Address, Address], float] = {}

    def verdict(
        self, path: str, header: Header, peer: Address | None, local: Address | None
    ) -> str:
        """PASS, PROBE (answer the runtime's readiness probe), or why the request is refused."""
        first = self.first_look(path, header)
        return first if first is not None else self.by_caller(header, peer, local)

    def first_look(self, path: str, header: Header) -> str | None:
        """What the headers alone decide; None when the calling process must be looked up (a
        request without the proof, which may be the app calling itself)."""
        given = header(PROOF_HEADER)
        if given is not None and hmac.compare_digest(given.encode(), self._proof):
            return PROBE if header(PROBE_HEADER) is not None else PASS
        host = header("host")
        if host is not None and _host_name(host) not in LOOPBACK_NAMES:
            return f"its Host ({host[:80]}) is not a loopback name (DNS rebinding?)"
        return None

    def by_caller(self, header: Header, peer: Address | None, local: Address | None) -> str:
        """PASS for a process of this app at the other end, else why not (may read /proc)."""
        if peer is None or local is None or peer[0] is None:
            return "it did not come through the gate"
        key = (peer, local)
        if self._callers.get(key, 0.0) > time.monotonic():
            return PASS
        caller = self.from_this_app(peer, local)
        if caller is False:
            return "it did not come through the gate, nor from a process of the app"
        if caller is None and any(header(mark) is not None for mark in BROWSER_MARKS):
            return "a browser page sent it straight to the micro's port"
        if caller:
            if len(self._callers) >= _CALLERS_KEPT:
                self._callers.clear()
            self._callers[key] = time.monotonic() + _CALLER_KEPT_S
        return PASS

    def from_this_app(self, peer: Address, local: Address) -> bool | None:
        """Whether the process at the other end of a connection belongs to this app; None
        where the kernel's tables cannot be read (not Linux)."""
        inode, readable = _socket_inode(peer, local)
        if not readable:
            return None
        if inode is None:
            return False
        link = f"socket:[{inode}]"
        for pid in _pids():
            try:
                with open(f"{PROC}/{pid}/environ", "rb") as f:
                    environ = b"\0" + f.read()
            except OSError:
                continue
            if self._marker not in environ:
                continue
            try:
                fds = os.listdir(f"{PROC}/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"{PROC}/{pid}/fd/{fd}") == link:
                        return True
                except OSError:
                    continue
        return False

    def refusal_text(self, why: str) -> str:
        return (
            f"space-dev: this micro answers only requests that come through its app at "
            f"http://{self._app_address}/ ; this one was refused: {why}.\n"
        )

    def note(self, method: str, path: str, local: Address | None, why: str) -> None:
        """One line in the micro's log, at most once a minute (a port scan sends hundreds)."""
        now = time.monotonic()
        if now - self._noted_at < _NOTE_EVERY_S:
            return
        self._noted_at = now
        print(
            f"space-dev: refused {method} {path[:100]} on port {local[1] if local else '?'}: "
            f"{why} (requests to a micro must come through its app's address)",
            file=sys.stderr,
            flush=True,
        )


def _host_name(header: str) -> str:
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    name, colon, port = text.rpartition(":")
    return (name if colon and port.isdigit() else text).rstrip(".")


def table_address(host: str, port: int) -> tuple[str, str] | None:
    """The socket table that holds a connection of `host`, and the address as that table
    writes it (`0100007F:1F90` for 127.0.0.1:8080); None for what is not an IP address."""
    host = host.partition("%")[0]  # an IPv6 zone
    if host.lower().startswith("::ffff:") and "." in host:
        host = host[7:]  # an IPv4 client of a dual-stack server: its socket is in the v4 table
    try:
        if ":" in host:
            raw, table = socket.inet_pton(socket.AF_INET6, host), f"{PROC}/net/tcp6"
        else:
            raw, table = socket.inet_pton(socket.AF_INET, host), f"{PROC}/net/tcp"
    except OSError:
        return None
    # The kernel prints each 32-bit word of the address in the machine's order (little-endian).
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return table, f"{words.hex().upper()}:{port:04X}"


def _socket_inode(peer: Address, local: Address) -> tuple[str | None, bool]:
    """The inode of the client's socket of a connection: its own address is `peer` and it is
    connected to `local` (the port alone where the server does not give its address); and
    whether the table could be read at all."""
    assert peer[0] is not None
    client = table_address(peer[0], peer[1])
    if client is None:
        return None, os.path.exists(f"{PROC}/net/tcp")
    table, client_text = client
    server = table_address(local[0], local[1]) if local[0] else None
    server_port = f":{local[1]:04X}"
    try:
        with open(table, encoding="latin-1") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return None, False
    for line in lines:
        fields = line.split()
        if len(fields) < 10 or fields[1] != client_text:
            continue
        if fields[2] == server[1] if server else fields[2].endswith(server_port):
            return fields[9], True
    return None, True


def _pids() -> Iterable[str]:
    try:
        return [p for p in os.listdir(PROC) if p.isdigit()]
    except OSError:
        return []


def install() -> None:
    """Guard this process's servers, if it is a micro's process (its environment says)."""
    proof = os.environ.get(PROOF_VARIABLE)
    if not proof:
        return
    import _space_dev_guard_servers

    _space_dev_guard_servers.install(
        Guard(proof, os.environ.get("DETA_SPACE_APP_HOSTNAME", "localhost"))
    )
