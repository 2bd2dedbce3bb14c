"""The developer's console: the logs page of one app (every micro's lines and space-dev's own,
and a tab of the last requests with the gate's reasons), its live stream, and the same for
`space-dev logs` through the control API. Owner-only; everything is read from memory."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from runtime.errors import NotFound, SpaceDevError
from runtime.models import Principal
from runtime.serve.request_log import RequestLog, RequestRecord
from runtime.supervisor.log_buffer import LEVELS, RUNTIME_SOURCE, LogBuffer, LogEntry
from runtime.web.api import SettingsContext
from runtime.web.control_api import TOKEN_HEADER
from runtime.web.error_answers import Unauthorized
from runtime.web.owner import owner_only
from runtime.web.pages import page

LOGS_PATH = "/__space/logs"
STREAM_PATH = LOGS_PATH + "/stream"
DISMISS_PATH = LOGS_PATH + "/dismiss"
INTERNAL_LOGS_PATH = "/__space/internal/logs"
SHOWN = 500  # lines or requests on the page as first served; the stream adds the rest
STREAM_TICK_S = 1.0  # the stream looks at the micros' states this often
KEEPALIVE_S = 15.0  # a comment line so proxies and browsers keep an idle stream open


@dataclass(frozen=True)
class AppLogs:
    """What the console reads of one app: its micros, the lines, its requests, its states."""

    name: str
    micros: Callable[[], list[str]]
    lines: LogBuffer
    requests: RequestLog
    states: Callable[[], dict[str, dict[str, Any]]]  # micro -> {"state", "notices"}


@dataclass(frozen=True)
class Filters:
    """The page's filters, read from the query string (so the first page needs no script)."""

    micro: str = ""  # "" every micro of the app and space-dev; RUNTIME_SOURCE space-dev alone
    level: str = "info"  # the least level shown
    text: str = ""

    @classmethod
    def of(cls, query: Any) -> Filters:
        level = str(query.get("level", "info"))
        return cls(
            str(query.get("micro", "")).strip(),
            level if level in LEVELS else "info",
            str(query.get("text", ""))[:200],
        )

    def query(self, view: str = "") -> str:
        """The query string of these filters (on `view`), for links and the stream."""
        values = {
            "view": view,
            "micro": self.micro,
            "level": "" if self.level == "info" else self.level,
            "text": self.text,
        }
        return urlencode({k: v for k, v in values.items() if v})

    def keeps_line(self, entry: LogEntry, micros: Iterable[str]) -> bool:
        source = entry.source
        if self.micro:
            if self.micro == RUNTIME_SOURCE:
                if source != RUNTIME_SOURCE:
                    return False
            elif source != self.micro and not (
                source == RUNTIME_SOURCE and _about(entry.text, self.micro)
            ):
                return False
        elif source != RUNTIME_SOURCE and source not in micros:
            return False  # another app's micro
        if LEVELS.index(entry.level) < LEVELS.index(self.level):
            return False
        return not self.text or self.text.lower() in entry.text.lower()

    def keeps_request(self, record: RequestRecord) -> bool:
        if self.micro and self.micro != record.micro:
            return False
        least = {"info": 0, "warn": 400, "error": 500}[self.level]
        if record.status < least and record.status != 0:
            return False
        if not self.text:
            return True
        wanted = self.text.lower()
        return wanted in record.path.lower() or wanted in record.reason().lower()


def _about(text: str, micro: str) -> bool:
    """A line of space-dev's about this micro ("api: restarting ...", "waiting for api ...")."""
    return text.startswith(micro + ":") or f" {micro} " in f" {text} "


def lines_of(logs: AppLogs, filters: Filters, after: int = 0) -> list[LogEntry]:
    micros = set(logs.micros())
    return [e for e in logs.lines.entries(after) if filters.keeps_line(e, micros)]


def requests_of(logs: AppLogs, filters: Filters, after: int = 0) -> list[RequestRecord]:
    return [r for r in logs.requests.records(after) if filters.keeps_request(r)]


def clock(when: float) -> str:
    """A line's time as the page and the terminal show it: local, to the millisecond."""
    return time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when % 1 * 1000):03d}"


class Console:
    """`/__space/logs` (the page), `/__space/logs/stream` (its live stream), the dismissal of
    the notice on the app's pages, and the control API's `/__space/internal/logs`."""

    def __init__(
        self,
        ctx: SettingsContext,
        logs: AppLogs,
        closing: asyncio.Event,
        dismiss: Callable[[], None],
    ) -> None:
        self._ctx = ctx
        self._logs = logs
        self._closing = closing  # set when the runtime stops: every stream ends
        self._dismiss = dismiss

    def add_routes(self, app: web.Application) -> None:
        guard = owner_only(self._ctx, "an app's logs", LOGS_PATH)
        app.router.add_get(LOGS_PATH, guard(self.show))
        app.router.add_get(STREAM_PATH, guard(self.stream))
        app.router.add_post(DISMISS_PATH, guard(self.dismiss))

    async def show(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        filters = Filters.of(request.query)
        view = "requests" if request.query.get("view") == "requests" else "lines"
        logs = self._logs
        after_lines = logs.lines.last_seq  # before reading: the stream goes on from there
        lines = (
            [e for e in lines_of(logs, filters) if e.seq <= after_lines][-SHOWN:]
            if view == "lines"
            else []
        )
        requests = requests_of(logs, filters)[-SHOWN:] if view == "requests" else []
        return page(
            "console.html",
            title=f"{logs.name} logs",
            app=self._ctx.app,
            user=principal.user or "",
            view=view,
            filters=filters,
            levels=LEVELS,
            micros=logs.micros(),
            runtime_source=RUNTIME_SOURCE,
            lines=[_line_row(e) for e in lines],
            requests=[_request_row(r) for r in requests],
            after_lines=after_lines,
            after_requests=logs.requests.last_seq,
            lines_query=filters.query(),
            requests_query=filters.query(view="requests"),
        )

    async def stream(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        """Server-Sent Events: `line`, `request` and `states`, from where the page left off."""
        filters = Filters.of(request.query)
        kinds = set(str(request.query.get("kinds", "lines")).split(","))
        after_lines = _number(request.query.get("lines_after"), self._logs.lines.last_seq)
        after_requests = _number(request.query.get("requests_after"), self._logs.requests.last_seq)
        last_id = request.headers.get("Last-Event-ID", "")
        if last_id.count(".") == 1:  # the browser reconnects from the last event it saw
            first, second = last_id.split(".")
            after_lines, after_requests = (
                _number(first, after_lines),
                _number(second, after_requests),
            )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        states: dict[str, Any] | None = None
        quiet_since = time.monotonic()
        logs = self._logs
        try:
            while not self._closing.is_set():
                if request.transport is None or request.transport.is_closing():
                    break  # the page went away
                out: list[str] = []
                if "lines" in kinds:
                    # Up to the last line there was before looking: one a thread adds meanwhile
                    # is sent the next time round, never skipped.
                    last = logs.lines.last_seq
                    for entry in lines_of(logs, filters, after_lines):
                        if entry.seq <= last:
                            out.append(_event("line", _line_row(entry)))
                    after_lines = max(after_lines, last)
                if "requests" in kinds:
                    for record in requests_of(logs, filters, after_requests):
                        out.append(_event("request", _request_row(record)))
                    after_requests = max(after_requests, logs.requests.last_seq)
                if "states" in kinds:
                    now = logs.states()
                    if now != states:
                        states = now
                        out.append(_event("states", now))
                if out:
                    out.append(f"id: {after_lines}.{after_requests}\n\n")
                    await response.write("".join(out).encode())
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > KEEPALIVE_S:
                    await response.write(b": still here\n\n")
                    quiet_since = time.monotonic()
                await self._next(kinds, after_lines, after_requests)
        except (ConnectionResetError, asyncio.CancelledError):
            return response
        return response

    async def _next(self, kinds: set[str], after_lines: int, after_requests: int) -> None:
        """Until something new may be there: a line, a request, or a tick for the states."""
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._closing.wait())]
        if "lines" in kinds:
            waits.append(
                asyncio.ensure_future(self._logs.lines.wait_after(after_lines, STREAM_TICK_S))
            )
        if "requests" in kinds:
            waits.append(
                asyncio.ensure_future(self._logs.requests.wait_after(after_requests, STREAM_TICK_S))
            )
        try:
            await asyncio.wait(waits, timeout=STREAM_TICK_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waits, return_exceptions=True)

    async def dismiss(self, request: web.Request, principal: Principal) -> web.StreamResponse:
        """The notice's close button: hidden until another micro goes down; back to the page."""
        self._dismiss()
        back = "/"
        referer = urlsplit(request.headers.get("Referer", ""))
        if (
            referer.netloc == request.host
            and referer.path.startswith("/")
            and not referer.path.startswith("//")
        ):
            back = referer.path + (f"?{referer.query}" if referer.query else "")
        raise web.HTTPSeeOther(back)


def add_control_api_routes(
    app: web.Application, token: str, logs_of: Callable[[str], AppLogs | None], default_app: str
) -> None:
    """`POST /__space/internal/logs` with `{"app", "micro", "level", "text", "requests",
    "after"}`: the lines (or requests) kept after `after`, for `space-dev logs [-f]`."""

    async def handle(request: web.Request) -> web.Response:
        sent = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), token.encode()):
            raise Unauthorized()
        try:
            body = json.loads(await request.read() or b"{}")
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise SpaceDevError("the body must be a JSON object")
        name = body.get("app") or default_app
        logs = logs_of(name) if isinstance(name, str) else None
        if logs is None:
            raise NotFound(f"no app called {name!r} is running")
        filters = Filters.of({k: v for k, v in body.items() if isinstance(v, str)})
        if filters.micro and filters.micro not in (*logs.micros(), RUNTIME_SOURCE):
            raise NotFound(
                f"the app {logs.name} has no micro called {filters.micro!r}",
                f"its micros: {', '.join(logs.micros())}",
            )
        after = body.get("after")
        after = after if isinstance(after, int) and after >= 0 else 0
        if body.get("requests"):
            records = requests_of(logs, filters, after)
            return web.json_response(
                {"requests": [r.as_dict() for r in records], "last": logs.requests.last_seq}
            )
        entries = lines_of(logs, filters, after)
        return web.json_response(
            {"lines": [e.as_dict() for e in entries], "last": logs.lines.last_seq}
        )

    app.router.add_post(INTERNAL_LOGS_PATH, handle)


def _line_row(entry: LogEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "time": clock(entry.time),
        "micro": entry.source,
        "level": entry.level,
        "text": entry.text,
    }


def _request_row(record: RequestRecord) -> dict[str, Any]:
    row = record.as_dict()
    row["time"] = clock(record.time)
    return row


def _event(kind: str, data: Any) -> str:
    # json.dumps puts the whole value on one line: an SSE data line cannot hold a newline.
    return f"event: {kind}\ndata: {json.dumps(data)}\n"


def _number(text: str | None, default: int) -> int:
    try:
        value = int(text) if text is not None else default
    except ValueError:
        return default
    return max(0, value)
