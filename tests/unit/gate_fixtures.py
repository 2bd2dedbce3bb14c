"""One app origin put together in the test's own process, as the runtime puts it together: the
front step (Host check), the gate, the login and settings pages, with a real tiny aiohttp server
behind each process micro and a stand-in for its supervisor that says where it lives now.

Everything goes over real sockets: the test client to the origin, the gate to the micros.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from runtime.actions.scheduler import RunRecord, Scheduler
from runtime.app.host import AppHost
from runtime.auth.credentials import SESSION_COOKIE, Credentials
from runtime.auth.failures import FailureCounter
from runtime.auth.keys import new_key
from runtime.auth.passwords import hash_password
from runtime.auth.policy import compile_app_rules, policy_for
from runtime.auth.routes import MountTable
from runtime.config import defaults
from runtime.datadir.accounts import LoginLimiter, LoginLinks
from runtime.datadir.store import Store
from runtime.models import Action, AppConfig, AuthConfig
from runtime.serve.client_limits import ClientLimits, OpenConnections
from runtime.serve.front import PAGES_PREFIX, FrontRunner
from runtime.serve.gate import Gate, GatedMicro, Routing
from runtime.serve.hosts import AllowedHosts
from runtime.serve.key_guesses import KeyGuesses
from runtime.serve.proxy import Proxy
from runtime.spacefile.reader import check_text
from runtime.supervisor.environment import GATE_PROOF_HEADER
from runtime.supervisor.manager import State
from runtime.supervisor.output import Printer
from runtime.web import error_answers
from runtime.web.api import SettingsApi, SettingsContext
from runtime.web.login import Login
from runtime.web.pages import problem
from runtime.web.settings import Settings

APP = "gated"
PASSWORD = "correct horse battery"
KEY_COOKIE = "space_key"
PROOF = "the-gate-proof-of-this-run"
# www: a public micro at the root; api: private, public routes, API keys; admin: private.
SPACEFILE = """
v: 0
micros:
  - name: www
    src: ./www
    engine: python3.9
    run: python main.py
    primary: true
    public: true
  - name: api
    src: ./api
    engine: python3.9
    run: python main.py
    path: /api
    public_routes: ["/public/*", "/open"]
    presets:
      api_keys: true
      env:
        - name: GREETING
          default: hello
  - name: admin
    src: ./admin
    engine: python3.9
    run: python main.py
    path: /admin
"""
Address = tuple[str, int]


@cache
def password_hash() -> str:
    """scrypt once per run: every origin's users share it."""
    return hash_password(PASSWORD)


# --- the micros ----------------------------------------------------------------------------------


def echo_app(name: str, seen: list[dict[str, Any]]) -> web.Application:
    """A micro that answers every request with what it received (and keeps it in `seen`)."""

    async def echo(request: web.Request) -> web.Response:
        record = {
            "micro": name,
            "method": request.method,
            "path": request.raw_path,
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers],
            "body": (await request.read()).decode("utf-8", "replace"),
        }
        seen.append(record)
        return web.json_response(record)

    async def websocket(request: web.Request) -> web.StreamResponse:
        seen.append(
            {
                "micro": name,
                "method": "WEBSOCKET",
                "path": request.raw_path,
                "headers": [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers
                ],
                "body": "",
            }
        )
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            await socket.send_str(f"{name}: {message.data}")
        return socket

    app = web.Application()
    app.router.add_get("/ws", websocket)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def headers_of(record: dict[str, Any]) -> dict[str, list[str]]:
    """A received record's headers by lower-case name."""
    out: dict[str, list[str]] = {}
    for name, value in record["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


class FakeRunner:
    """Stands in for `MicroRunner` (it is a `MicroLocation`): the test says where the micro
    lives and in which state; a request waits for it as it waits for a real runner."""

    def __init__(self, name: str, address: Address | None, state: State = State.READY) -> None:
        self.name = name
        self.state = state
        self._address = address
        self._change = asyncio.Event()  # set, then replaced, by each `set`
        self.requests = 0
        self.failures = 0
        self.last_exit: int | None = None
        self.notices: dict[str, str] = {}  # what the settings page reads besides
        self.supervised = True  # False: not started (a failed setup is so)
        self.pid: int | None = None
        self.waits = 0  # times the gate or an action waited for it to change

    @property
    def address(self) -> Address | None:
        return self._address if self.state is State.READY else None

    @property
    def port(self) -> int | None:
        return self._address[1] if self._address else None

    @property
    def gate_proof(self) -> dict[str, str]:
        return {GATE_PROOF_HEADER: PROOF}

    def serves(self, address: Address) -> bool:
        return self.state is State.READY and address == self._address

    def not_listening_hint(self) -> str:
        return "its server listens on no port: give it $PORT"

    async def wait_changed(self, timeout: float) -> bool:
        self.waits += 1
        change = self._change
        try:
            await asyncio.wait_for(change.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # --- what the test does to it ----------------------------------------------------------

    def set(
        self, state: State, address: Address | None = None, *, exit_code: int | None = None
    ) -> None:
        self.state = state
        if address is not None or state is not State.READY:
            self._address = address
        if state is State.CRASHED:
            self.failures += 1
            self.last_exit = exit_code
        self._change.set()
        self._change = asyncio.Event()


def closed_address() -> Address:
    """An address where nothing listens (a process that is gone)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return "127.0.0.1", int(probe.getsockname()[1])


# --- raw HTTP, for targets a client library would tidy up -----------------------------------------


@dataclass(frozen=True)
class RawReply:
    status: int
    headers: dict[str, str]  # lower-case names, the last value of each
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(
    port: int,
    method: str,
    target: bytes | str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> RawReply:
    """One request written byte for byte (no URL normalisation on the way), its answer read."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    lines = [method.encode() + b" " + target + b" HTTP/1.1", f"Host: 127.0.0.1:{port}".encode()]
    given = list(headers)
    lines += [f"{k}: {v}".encode("latin-1") for k, v in given]
    lines.append(b"Connection: close")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}".encode())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    if found.get("transfer-encoding", "").lower() == "chunked":
        rest = _dechunk(rest)
    return RawReply(int(status_line.split()[1]), found, rest)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


# --- the origin ----------------------------------------------------------------------------------


class FrontServer(TestServer):
    """aiohttp's test server with the runtime's runner: the front step before the pages' app."""

    def __init__(
        self, app: web.Application, gate: Gate, allowed: AllowedHosts, limits: ClientLimits
    ) -> None:
        super().__init__(app)
        self._front = (gate, allowed, limits)

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        gate, allowed, limits = self._front
        return FrontRunner(self.app, gate.handle, allowed, limits, access_log=None, **kwargs)


@dataclass
class Origin:
    """One app's origin on a real port, with what the test needs to drive and inspect it."""

    client: TestClient
    store: Store
    checker: Credentials
    printer: Printer
    runners: dict[str, FakeRunner]
    micro_addresses: dict[str, Address]
    seen: list[dict[str, Any]]  # every request any micro received, in order
    credentials: dict[str, str]
    key_guesses: KeyGuesses
    limiter: LoginLimiter
    links: LoginLinks
    restarted: list[tuple[str, str]]
    # What the gate reads per request: a test may take it away (None: the app is starting).
    routing: Routing | None

    @property
    def port(self) -> int:
        port = self.client.server.port
        assert port is not None
        return port

    @property
    def url(self) -> str:
        """This origin as a browser names it in `Origin`."""
        return f"http://127.0.0.1:{self.port}"

    def cookie(self, who: str = "owner") -> dict[str, str]:
        """The Cookie header of a signed-in user (owner or eve)."""
        return {"Cookie": f"{SESSION_COOKIE}={self.credentials[who]}"}

    async def request(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        """Through the test client, redirects not followed (the tests read them)."""
        kwargs.setdefault("allow_redirects", False)
        return await self.client.request(method, path, **kwargs)

    async def raw(
        self,
        method: str,
        target: bytes | str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> RawReply:
        return await raw_request(self.port, method, target, headers, body)


MakeOrigin = Callable[..., Awaitable[Origin]]


@pytest.fixture(scope="session")
def accounts_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A data dir with the accounts and keys every origin starts from, made once (its writes are
    locked and synced: a fifth of a second), copied for each test."""
    folder = tmp_path_factory.mktemp("accounts") / "data"
    store = Store(folder)
    return folder, _accounts(store, Credentials(store))


@pytest.fixture
async def make_origin(
    tmp_path: Path,
    aiohttp_client: Any,
    aiohttp_server: Any,
    accounts_template: tuple[Path, dict[str, str]],
) -> AsyncIterator[MakeOrigin]:
    """Makes the test's origin, with the request wait or extra host names it needs (one per
    test: it takes the test's data dir); closed, with its proxy, at the end of the test."""
    proxies: list[Proxy] = []

    async def make(*, request_wait: float = 5.0, allowed_hosts: tuple[str, ...] = ()) -> Origin:
        folder = tmp_path / "app"
        folder.mkdir(exist_ok=True)
        spacefile, errors, _ = check_text(SPACEFILE, folder / "Spacefile", check_paths=False)
        assert spacefile is not None, errors
        auth = AuthConfig(defaults.DEFAULT_KEY_HEADERS, (KEY_COOKIE,))
        config = AppConfig(folder, auth, name=APP)

        template, credentials = accounts_template
        shutil.copytree(template, tmp_path / "data")
        store = Store(tmp_path / "data")
        checker = Credentials(store)

        seen: list[dict[str, Any]] = []
        runners: dict[str, FakeRunner] = {}
        addresses: dict[str, Address] = {}
        for micro in spacefile.micros:
            server = await aiohttp_server(echo_app(micro.name, seen))
            addresses[micro.name] = ("127.0.0.1", server.port)
            runners[micro.name] = FakeRunner(micro.name, addresses[micro.name])

        rules = compile_app_rules(config, spacefile)
        gated = {
            m.name: GatedMicro(m.name, policy_for(m, rules), runner=runners[m.name])
            for m in spacefile.micros
        }
        routing = Routing(
            MountTable({m.path: m.name for m in spacefile.micros}),
            gated,
            auth,
            frozenset({SESSION_COOKIE, KEY_COOKIE}),
        )
        printer = Printer(stream=io.StringIO(), colour=False)
        proxy = Proxy()
        await proxy.start()
        proxies.append(proxy)
        key_guesses = KeyGuesses(
            FailureCounter(
                defaults.KEY_FAILURES_ALLOWED,
                defaults.KEY_FAILURE_WINDOW_S,
                defaults.FAILURE_CLIENTS_KEPT,
            )
        )
        spool = tmp_path / "spool"
        spool.mkdir(exist_ok=True)
        made: list[Origin] = []
        gate = Gate(
            APP,
            proxy,
            lambda: made[0].routing,
            checker,
            printer,
            request_wait,
            spool,
            PROOF,
            key_guesses,
        )

        host = AppHost(APP, config, spacefile, "127.0.0.1", 0, rules, runners=runners)  # type: ignore[arg-type]  # the fakes stand in
        restarted: list[tuple[str, str]] = []
        tasks: set[asyncio.Task[Any]] = set()

        async def save_env(values: Any) -> list[str]:
            store.set_env(APP, values)
            checker.reload()
            return []

        async def restart(micro: str, reason: str) -> None:
            restarted.append((micro, reason))

        def spawn(coro: Any) -> None:
            task = asyncio.ensure_future(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        async def no_fire(app: str, action: Action, trigger: Any) -> RunRecord:
            raise AssertionError("no action runs in this test")

        scheduler = Scheduler({APP: spacefile.actions}, no_fire, printer.info)
        settings = SettingsContext(
            host, store, checker, printer, save_env, checker.reload, spawn, restart, scheduler
        )
        pages = web.Application(
            handler_args={"max_field_size": 65536}, middlewares=error_answers.pages_middlewares()
        )
        limiter, links = LoginLimiter(), LoginLinks(store.secret())
        Login(APP, store, checker, limiter, links, checker.reload).add_routes(pages)
        Settings(settings).add_routes(pages)
        SettingsApi(settings).add_routes(pages)

        async def not_found(request: web.Request) -> web.Response:
            return problem(request, 404, "Not found")

        pages.router.add_route("*", PAGES_PREFIX + "{tail:.*}", not_found)
        limits = ClientLimits(
            lambda: defaults.DEFAULT_MAX_BODY_SIZE, timeout=10.0, connections=OpenConnections(1000)
        )
        server = FrontServer(pages, gate, AllowedHosts("127.0.0.1", allowed_hosts), limits)
        client = await aiohttp_client(server, cookie_jar=aiohttp.DummyCookieJar())
        made.append(
            Origin(
                client,
                store,
                checker,
                printer,
                runners,
                addresses,
                seen,
                dict(credentials),
                key_guesses,
                limiter,
                links,
                restarted,
                routing,
            )
        )
        return made[0]

    yield make
    for proxy in proxies:
        await proxy.close()


@pytest.fixture
async def origin(make_origin: MakeOrigin) -> Origin:
    return await make_origin()


def _accounts(store: Store, checker: Credentials) -> dict[str, str]:
    """The owner `dev` and a second user `eve` signed in; keys of this app and another."""
    store.users.add("dev", password_hash())
    store.users.add("eve", password_hash())
    made = {
        "owner": checker.sign_session(store.sessions.create("dev")),
        "eve": checker.sign_session(store.sessions.create("eve")),
    }
    for app, name, kind in ((APP, "good", "ci"), (APP, "off", ""), ("other", "theirs", "")):
        record, key = new_key(app, name, client_type=kind)
        store.keys.create(record)
        made[f"key-{name}"] = key
    store.keys.set_active(APP, "off", False)
    return made
