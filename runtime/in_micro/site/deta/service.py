"""HTTPS calls to Base and Drive over kept-alive connections that are never left broken.

A connection is used by one call at a time and goes back to its host's idle list only after its
answer was read to the end; any error closes it, so the next call starts on a fresh one (an
`http.client` connection left mid-exchange refuses every later request with CannotSendRequest).
Idle lists are per host and process, shared by every Base and Drive on that host: apps that make
a `Base` per request still reuse connections, threads never share one, and a forked worker never
talks on its parent's socket.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import select
import ssl
import threading
import urllib.error
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

JSON_MIME = "application/json"
DETAIL_HEADER = "X-Space-Detail"
OK_STATUSES = (200, 201, 202, 207)
JOINED_BODY_BYTES = 64 * 1024  # a body up to this size goes in one write with its head
MAX_IDLE = 8  # per host; more threads than this still work, the extra connections just close
# Errors that mean "the server had closed this kept-alive connection": safe to send again once.
_STALE = (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class DetaError(urllib.error.HTTPError):
    """Base or Drive answered with an error status.

    An `urllib.error.HTTPError` as deta-python raises (`.code`, `.reason`, `.headers`, and
    `.read()` gives the body), whose message also says what the server said (`.errors`).
    """

    def __init__(
        self, url: str, code: int, reason: str, headers: Any, body: bytes, detail: str = ""
    ) -> None:
        self.errors = _error_messages(body)
        self.detail = detail or "; ".join(self.errors)
        # The Base and Drive of space-dev answer in Deta's words and say why beside them.
        why = _space_detail(headers)
        if why and why not in self.detail:
            self.detail = f"{self.detail}: {why}" if self.detail else why
        super().__init__(url, code, reason, headers, io.BytesIO(body))

    def __str__(self) -> str:
        text = f"HTTP Error {self.code}: {self.reason}"
        return f"{text}: {self.detail}" if self.detail else text

    def __reduce__(self) -> Any:  # HTTPError's file wrapper does not pickle; keep the message
        return (Exception, (str(self),))


def _space_detail(headers: Any) -> str:
    """What `X-Space-Detail` says (JSON escapes undone), or ""."""
    value = headers.get(DETAIL_HEADER) if headers is not None else None
    if not value:
        return ""
    try:
        text = json.loads(f'"{value}"')
    except ValueError:
        return str(value)
    return text if isinstance(text, str) else str(value)


def _error_messages(body: bytes) -> list[str]:
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError):
        text = body.decode("utf-8", "replace").strip()
        return [text[:300]] if text else []
    return [str(e) for e in errors] if isinstance(errors, list) else []


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, PurePath):  # deta-python stores paths as absolute POSIX strings
            return Path(o).resolve().as_posix()
        return super().default(o)


class _Connection(http.client.HTTPSConnection):
    """An HTTPS connection that sends a small body in the same write as the request head:
    `http.client` sends them apart, two TLS records that wake the server twice."""

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if isinstance(message_body, bytes) and len(message_body) <= JOINED_BODY_BYTES:
            self._buffer.extend((b"", b""))  # type: ignore[attr-defined]
            head = b"\r\n".join(self._buffer)  # type: ignore[attr-defined]
            del self._buffer[:]  # type: ignore[attr-defined]
            self.send(head + message_body)
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


class _Pool:
    """The idle kept-alive connections to one host."""

    def __init__(self, host: str, timeout: float, context: ssl.SSLContext) -> None:
        self.host = host
        self.timeout = timeout
        self.context = context
        self._idle: list[http.client.HTTPSConnection] = []
        self._lock = threading.Lock()

    def new(self) -> http.client.HTTPSConnection:
        return _Connection(self.host, timeout=self.timeout, context=self.context)

    def take(self) -> tuple[http.client.HTTPSConnection, bool]:
        """An idle connection that still looks open (and True), else a new one (and False)."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self.new(), False
            if _looks_open(conn):
                return conn, True
            conn.close()

    def close_idle(self) -> None:
        """Close every idle connection; calls under way keep theirs."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def give(self, conn: http.client.HTTPSConnection) -> None:
        with self._lock:
            if conn.sock is not None and len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()


def _looks_open(conn: http.client.HTTPSConnection) -> bool:
    # An idle connection has nothing to read: readable means the server closed it (or sent
    # something unasked), and sending on it would fail or desynchronise.
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


_pools: dict[tuple[str, float, str, str], _Pool] = {}
_pools_pid = os.getpid()
_pools_lock = threading.Lock()


def _pool_for(host: str, timeout: float) -> _Pool:
    global _pools_pid
    # The TLS context reads SSL_CERT_FILE / SSL_CERT_DIR when made: a pool is per their values.
    key = (host, timeout, os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))
    with _pools_lock:
        if _pools_pid != os.getpid():  # forked: the parent's sockets are not ours to use
            _pools.clear()
            _pools_pid = os.getpid()
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = _Pool(host, timeout, ssl.create_default_context())
        return pool


class ServiceClient:
    """`Base.client` and `Drive.client`: deta-python kept one HTTPS connection there, and its
    tests and some apps call `client.close()`. Here connections are pooled per host, so
    `close()` closes the host's idle ones; the next call opens a new one, as it did there."""

    def __init__(self, host: str, timeout: float) -> None:
        self.host = host
        self.timeout = timeout

    def close(self) -> None:
        _pool_for(self.host, self.timeout).close_idle()

    def __repr__(self) -> str:
        return f"<deta client for https://{self.host}>"


class _Service:
    """One Base or Drive: `https://{host}/v1/{project_id}/{name}` with the project key."""

    def __init__(
        self, project_key: str, project_id: str, host: str, name: str, timeout: float
    ) -> None:
        self.project_key = project_key
        self.project_id = project_id
        self.host = host
        self.name = name
        self.timeout = timeout
        self.base_path = f"/v1/{quote(project_id, safe='')}/{quote(name, safe='')}"
        self.client = ServiceClient(host, timeout)

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"X-API-Key": self.project_key}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _request(
        self,
        path: str,
        method: str,
        data: Any = None,
        *,
        content_type: str | None = None,
        details: dict[int, str] | None = None,
        none_on_404: bool = True,
    ) -> tuple[int, Any]:
        """Send one call; return (status, decoded body), or (404, None); raise DetaError.

        `details` gives, per status, a clearer message than the server's for the error."""
        body = _encode(data, content_type)
        url = self.base_path + path
        response, payload = self._exchange(method, url, self._headers(content_type), body)
        status = response.status
        if status in OK_STATUSES:
            if JSON_MIME in (response.getheader("Content-Type") or ""):
                return status, json.loads(payload) if payload else None
            return status, payload
        if status == 404 and none_on_404:
            return status, None
        raise DetaError(
            f"https://{self.host}{url}",
            status,
            response.reason,
            response.headers,
            payload,
            (details or {}).get(status, ""),
        )

    def _exchange(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        pool = _pool_for(self.host, self.timeout)
        conn, reused = pool.take()
        while True:
            try:
                conn.request(method, url, body=body, headers=headers)
                response = conn.getresponse()
            except _STALE:
                conn.close()
                if not reused:
                    raise
                # Closed by the server while idle, before any answer: the call never arrived,
                # so it is sent once more, on a connection of its own.
                conn, reused = pool.new(), False
                continue
            except BaseException:
                conn.close()
                raise
            try:
                payload = response.read()
            except BaseException:
                conn.close()
                raise
            if response.will_close:
                conn.close()
            else:
                pool.give(conn)
            return response, payload

    def _open_stream(self, path: str) -> http.client.HTTPResponse | None:
        """GET a body to stream on a connection of its own; None on 404; raise DetaError."""
        url = self.base_path + path
        conn = _pool_for(self.host, self.timeout).new()
        headers = self._headers(None)
        # With `Connection: close` http.client hands the socket to the response, which closes
        # it when read to the end or closed: a half-read download never blocks another call.
        headers["Connection"] = "close"
        try:
            conn.request("GET", url, headers=headers)
            response = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if response.status in OK_STATUSES:
            return response
        try:
            payload = response.read()
        finally:
            response.close()
            conn.close()
        if response.status == 404:
            return None
        raise DetaError(
            f"https://{self.host}{url}",
            response.status,
            response.reason,
            response.headers,
            payload,
        )


# Made once: `json.dumps(data, cls=...)` makes a new encoder on every call.
_JSON = _Encoder()


def _encode(data: Any, content_type: str | None) -> bytes | None:
    if content_type == JSON_MIME:
        return _JSON.encode(data).encode("utf-8")
    if isinstance(data, str):
        return data.encode("utf-8")  # http.client would encode a str as Latin-1
    return data  # type: ignore[no-any-return]
