"""The gate: normalise the path once, pick the micro, decide who passes, forward what passed."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from runtime.auth.credentials import SESSION_COOKIE, Credentials
from runtime.auth.policy import Credential, Decision, MicroPolicy, decide, judge
from runtime.auth.routes import BadPath, MountTable, normalise_path
from runtime.models import AuthConfig, Principal
from runtime.serve.bodies import CollectedBody, collect, is_chunked
from runtime.serve.forwarded import (
    ForwardedHeaders,
    cookie_value,
    dropped_names,
    forwarded_headers,
)
from runtime.serve.key_guesses import KeyGuesses
from runtime.serve.micro_call import NoAddress, call_micro
from runtime.serve.proxy import (
    Address,
    Proxy,
    UpgradeRefused,
    UpstreamFailed,
    UpstreamUnavailable,
    is_websocket,
)
from runtime.serve.request_log import GateWhy, RequestLog, RequestRecord, masked_path
from runtime.serve.static import StaticSite
from runtime.supervisor.environment import GATE_PROOF_HEADER
from runtime.supervisor.location import MicroLocation
from runtime.supervisor.manager import State
from runtime.supervisor.output import Printer
from runtime.web.csrf import SAFE_METHODS, changes_state, loaded_from_elsewhere, same_origin
from runtime.web.login import LOGIN_PATH
from runtime.web.micro_error import micro_error, unavailable_words
from runtime.web.pages import problem, wants_html

RUNTIME_PREFIX = "/__space"


@dataclass(frozen=True)
class GatedMicro:
    """One micro as the gate sees it: who may pass, and who serves it."""

    name: str
    policy: MicroPolicy
    static: StaticSite | None = None
    runner: MicroLocation | None = None


@dataclass(frozen=True)
class Routing:
    """Everything the gate needs for one app, swapped as one value when the Spacefile or the
    config changes, so a request never sees half of an edit."""

    mounts: MountTable
    micros: Mapping[str, GatedMicro]
    auth: AuthConfig
    # Cookies never forwarded: the session and every app's key cookies. A browser sends all
    # cookies of 127.0.0.1 to every port, so another app's key cookie arrives here too.
    credential_cookies: frozenset[str] = frozenset({SESSION_COOKIE})

    @cached_property
    def dropped_headers(self) -> frozenset[bytes]:
        """The client's headers no micro receives (see `forwarded.dropped_names`)."""
        return dropped_names(self.auth.key_headers)


def is_runtime_path(path: str) -> bool:
    """Paths under /__space/ belong to the runtime and are never forwarded.

    In any case: Express and koa route case-insensitively, so `/__SPACE/v0/actions` would reach
    a micro's action handler.
    """
    head = path[: len(RUNTIME_PREFIX) + 1].lower()
    return head == RUNTIME_PREFIX or head == RUNTIME_PREFIX + "/"


class Gate:
    """The handler for every request that is not the runtime's own."""

    def __init__(
        self,
        app: str,
        proxy: Proxy,
        routing: Callable[[], Routing | None],
        credentials: Credentials,
        printer: Printer,
        request_wait: float,
        spool_dir: Path,
        gate_proof: str,
        key_guesses: KeyGuesses,
        requests: RequestLog | None = None,
        owner_notice: Callable[[], Callable[[bytes], bytes] | None] | None = None,
    ) -> None:
        self._app = app
        self.requests = requests
        # What to add to an HTML page the owner is shown while a micro is down (None: nothing).
        self._owner_notice = owner_notice
        self._key_guesses = key_guesses
        # Sent with every request forwarded: the micro's guard refuses a request without it.
        self._proof = (GATE_PROOF_HEADER, gate_proof)
        self._spool_dir = spool_dir  # where a long chunked request body waits to be sent
        self._proxy = proxy
        self._routing = routing
        self._credentials = credentials
        self._printer = printer
        self._request_wait = request_wait

    async def handle(self, request: web.Request) -> web.StreamResponse:
        requests = self.requests
        if requests is None:
            return await self._handle(request, RequestRecord(request.method))
        # Kept in memory once the answer is made (no disk, no words until someone looks).
        record = RequestRecord(request.method)
        started = time.perf_counter()
        try:
            response = await self._handle(request, record)
            record.status = response.status
            return response
        except web.HTTPException as answer:  # the redirect to the login page
            record.status = answer.status
            raise
        finally:
            record.took = time.perf_counter() - started
            requests.add(record)

    async def _handle(self, request: web.Request, record: RequestRecord) -> web.StreamResponse:
        raw_path, sep, query = request.raw_path.partition("?")
        record.path = masked_path(raw_path, query)
        try:
            path = normalise_path(raw_path)
        except BadPath as err:
            record.why = GateWhy.BAD_PATH
            return problem(request, 400, "Bad request path", str(err))
        if is_runtime_path(path):
            record.why = GateWhy.RUNTIME_PATH
            return problem(request, 404, "Not found")
        routing = self._routing()
        if routing is None:
            record.why = GateWhy.STARTING
            return problem(request, 503, "Starting", "The app is starting; try again in a moment.")
        resolved = routing.mounts.resolve(path)
        if resolved is None:
            record.why = GateWhy.NO_MICRO
            return problem(request, 404, "Not found", "No micro is mounted at this path.")
        micro, sub_path = resolved
        record.micro = micro
        record.sub_path = sub_path[:300]
        if is_runtime_path(sub_path):
            # A micro's own /__space/ paths (such as its action endpoint) are for the runtime only.
            record.why = GateWhy.RUNTIME_PATH
            return problem(request, 404, "Not found")
        gated = routing.micros[micro]
        policy = gated.policy
        if not policy.public and not self._credentials.snapshot.auth_enabled(self._app, micro):
            policy = replace(policy, public=True)  # `space-dev auth disable`
        credential, from_cookie, by_key = self._credential(request, routing.auth)
        record.credential = credential
        verdict = judge(policy, sub_path, request.method, credential)
        record.why = verdict
        decision = verdict.decision
        if not decision.allowed:
            if by_key and not isinstance(credential, Principal):  # a wrong key, not a right one
                slowed = self._key_guesses.wrong_key(request)  # refused where it does not admit
                if slowed is not None:
                    record.why = GateWhy.TOO_MANY_WRONG_KEYS
                    return slowed
            return self._refuse(request, decision, path + sep + query)
        if from_cookie and decision is not Decision.ALLOW_PUBLIC and _ambient_risk(request):
            # Every port of 127.0.0.1 is the same site, so SameSite=Lax does not keep another
            # local page from sending the cookie; its Origin and Fetch Metadata tell.
            record.why = (
                GateWhy.CROSS_SITE_LOAD
                if loaded_from_elsewhere(request)
                else GateWhy.CROSS_SITE_CHANGE
            )
            return problem(
                request,
                403,
                "Cross-site request refused",
                "A page of another origin cannot act here, or load this, with your session.",
            )
        return await self._pass(
            request, routing, gated, policy, decision, credential, sub_path, sep + query
        )

    async def _pass(
        self,
        request: web.Request,
        routing: Routing,
        gated: GatedMicro,
        policy: MicroPolicy,
        decision: Decision,
        credential: Credential,
        sub_path: str,
        query: str,
    ) -> web.StreamResponse:
        """An admitted request, served: a static micro's file, or the micro's answer to exactly
        the path that was checked (`query`: the query string with its `?`, or empty)."""
        if gated.static is not None:

            def admits(served_path: str) -> bool:
                # A symlink's target must pass the rule the URL passed (a public route must not
                # serve a private file through a link).
                return decide(policy, served_path, request.method, credential).allowed

            return await gated.static.handle(request, sub_path, admits)
        assert gated.runner is not None
        headers = forwarded_headers(
            request.raw_headers,
            routing.dropped_headers,
            routing.credential_cookies,
            self._identity_headers(request, decision, credential),
        )
        owner = (
            isinstance(credential, Principal) and credential.kind == "session" and credential.owner
        )
        expects = request.headers.get("Expect", "").lower() == "100-continue"
        if expects and request.version >= (1, 1):
            # Only now that the request has passed is the client asked for its body.
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # as aiohttp's own: the answer has not started yet
        body = await collect(request, self._spool_dir) if is_chunked(request) else None
        rewrite = None
        if (
            owner
            and decision is not Decision.ALLOW_PUBLIC
            and self._owner_notice is not None
            and request.method == "GET"
            and wants_html(request)
        ):
            rewrite = self._owner_notice()  # only while a micro is down: None the rest of the time
        try:
            return await self._forward(
                request, gated.runner, sub_path + query, headers, owner, body, rewrite
            )
        finally:
            if body is not None:
                body.close()

    # --- who is asking ----------------------------------------------------------------------

    def _credential(self, request: web.Request, auth: AuthConfig) -> tuple[Credential, bool, bool]:
        """A key if one was sent (and then only the key counts), else the session, else None;
        whether it came in a cookie (which a browser adds on its own); whether it is a key."""
        headers = request.headers
        for name in auth.key_headers:
            value = headers.get(name)
            if value is not None:
                return self._credentials.key(self._app, value.strip()), False, True
        cookies = "; ".join(headers.getall("Cookie", ()))
        if auth.key_cookies or SESSION_COOKIE in cookies:
            for name in auth.key_cookies:
                value = cookie_value(cookies, name)
                if value is not None:
                    return self._credentials.key(self._app, value), True, True
            session = cookie_value(cookies, SESSION_COOKIE)
            if session:
                return self._credentials.session(session), True, False
        return None, False, False

    def _refuse(self, request: web.Request, decision: Decision, target: str) -> web.Response:
        if decision is Decision.UNAUTHENTICATED:
            if request.method in ("GET", "HEAD") and wants_html(request):
                raise web.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(target, safe='')}")
            return web.json_response({"errors": ["Unauthorized"]}, status=401)
        if decision is Decision.FORBIDDEN_403:
            return problem(
                request,
                403,
                "Forbidden",
                "You are signed in, but this app does not let you in here.",
            )
        return web.json_response({"errors": ["Unauthorized"]}, status=401)

    # --- what the micro receives ------------------------------------------------------------

    def _identity_headers(
        self, request: web.Request, decision: Decision, credential: Credential
    ) -> list[tuple[str, str]]:
        added = [
            ("X-Forwarded-For", request.remote or ""),
            ("X-Forwarded-Proto", request.scheme),
            ("X-Forwarded-Host", request.host),
            ("X-Space-Auth", decision.how or "public"),
            self._proof,
        ]
        if isinstance(credential, Principal) and decision is not Decision.ALLOW_PUBLIC:
            if credential.kind == "session" and credential.user:
                added.append(("X-Space-User", credential.user))
            elif credential.kind == "api-key":
                added.append(("X-Space-Key-Name", credential.key_name or ""))
                added.append(("X-Space-Client-Type", credential.client_type or ""))
        return added

    # --- forwarding -------------------------------------------------------------------------

    async def _forward(
        self,
        request: web.Request,
        runner: MicroLocation,
        path_qs: str,
        headers: ForwardedHeaders,
        owner: bool,
        body: CollectedBody | None,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> web.StreamResponse:
        runner.requests += 1
        websocket = is_websocket(request)

        async def attempt(address: Address) -> web.StreamResponse:
            if websocket:
                return await self._proxy.forward_websocket(request, address, path_qs, headers)
            return await self._proxy.forward(request, address, path_qs, headers, body, rewrite)

        # A safe request does nothing on the server (RFC 9110 9.2.1): sent again, nothing is
        # done twice. call_micro sends it again only if the process died under it.
        replayable = request.method in SAFE_METHODS and not request.body_exists and not websocket
        try:
            return await call_micro(
                runner,
                attempt,
                wait=self._request_wait,
                refused=(UpstreamUnavailable,),
                broken=(UpstreamFailed,),
                replayable=replayable,
            )
        except (NoAddress, UpstreamUnavailable):
            return self._unavailable(request, runner, owner)
        except UpgradeRefused as err:
            # An error status (a 404 for a wrong path, a 403) is the micro's answer and is
            # kept; anything else (a 200 page) means the micro does not speak WebSocket there.
            return problem(
                request,
                err.status if 400 <= err.status <= 599 else 502,
                f"The micro {runner.name} refused the WebSocket",
                f"It answered the upgrade with {err} instead of 101 Switching Protocols.",
            )
        except UpstreamFailed as err:
            # What the micro sent and where it listens are for its owner alone.
            return micro_error(
                request,
                micro=runner.name,
                state=runner.state.value,
                owner=owner,
                title=f"The micro {runner.name} did not answer",
                detail="The connection closed before a response.",
                owner_detail=str(err),
                lines=self._logs(runner, owner),
                failures=runner.failures,
                last_exit=runner.last_exit,
            )

    def _logs(self, runner: MicroLocation, owner: bool) -> list[str]:
        """The micro's last output lines for its error page: they can hold secrets, so only its
        owner sees them. Read only when a page is made, never per request."""
        return self._printer.last_lines(runner.name, 30) if owner else []

    def _unavailable(
        self, request: web.Request, runner: MicroLocation, owner: bool
    ) -> web.Response:
        state = runner.state
        if state is State.NOT_LISTENING:
            return micro_error(
                request,
                micro=runner.name,
                state=state.value,
                owner=owner,
                title=f"The micro {runner.name} is not listening on $PORT",
                detail="It runs, but its server listens on no port the runtime can reach.",
                lines=self._logs(runner, owner),
                owner_detail=runner.not_listening_hint(),
                failures=runner.failures,
                last_exit=runner.last_exit,
                status=503,
            )
        # A crashed micro whose setup failed was never started (nor is it tried again).
        never_ran = state is State.CRASHED and not runner.supervised
        setup_error = runner.notices.get("setup", "") if never_ran else ""
        title, detail = unavailable_words(runner.name, state.value, setup_error, self._request_wait)
        return micro_error(
            request,
            micro=runner.name,
            state=state.value,
            owner=owner,
            title=title,
            detail=detail,
            lines=self._logs(runner, owner),
            failures=runner.failures,
            last_exit=runner.last_exit,
            setup_error=setup_error,
        )


def _ambient_risk(request: web.Request) -> bool:
    """A state-changing request or a WebSocket from a page of another origin, or that page
    loading one of the micro's resources (a script, an image, a frame)."""
    changes = changes_state(request.method) or is_websocket(request)
    return (changes and not same_origin(request)) or loaded_from_elsewhere(request)
