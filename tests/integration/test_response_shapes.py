"""No answer a micro gives can wedge the proxy: every shape HTTP allows, and some it does not.

Each case is sent through the gate to a raw-socket micro, three times (a broken pooled
connection shows on its second use), with a timeout; after each, a plain request must still be
answered at once, by the right answer.
"""

from __future__ import annotations

import http.client
import threading
import time

import pytest

from tests.integration.conftest import run_up
from tests.integration.micros import write_app
from tests.integration.raw_micro import RAW_MICRO

CASE_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("shapes")
    app = write_app(
        root / "app",
        """
        v: 0
        micros:
          - name: raw
            src: .
            engine: custom
            run: python3 raw.py
            public: true
        """,
        {"raw.py": RAW_MICRO},
    )
    up = run_up(app, "--no-reload")
    try:
        up.wait_ready(60)
        yield up
    finally:
        up.stop()


def exchange(port: int, method: str, path: str) -> tuple[int | str, dict[str, str], bytes]:
    """One request on a fresh connection: status (or what went wrong), headers and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CASE_TIMEOUT)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        try:
            body = response.read()
        except http.client.IncompleteRead as err:
            return "truncated", headers, err.partial
        return response.status, headers, body
    except (OSError, http.client.HTTPException) as err:  # timed out, reset, closed early
        return type(err).__name__, {}, b""
    finally:
        conn.close()


# case -> (method, the answers allowed: status and body, or "truncated" for a body cut short)
CASES = {
    "/304": ("GET", {(304, b"")}),
    "/304-length": ("GET", {(304, b"")}),
    "/304-close": ("GET", {(304, b"")}),
    "/204": ("GET", {(204, b"")}),
    "/204-length": ("GET", {(204, b"")}),
    "/100": ("GET", {(200, b"after")}),
    "/103": ("GET", {(200, b"hints")}),
    "/head": ("HEAD", {(200, b"")}),
    "/head-chunked": ("HEAD", {(200, b"")}),
    "/until-close": ("GET", {(200, b"body ends at close")}),
    "/http10": ("GET", {(200, b"old style")}),
    "/short": ("GET", {("truncated", b"only ten.."), (502, None)}),
    "/long": ("GET", {(200, b"ok"), (502, None)}),
    "/chunked-dies": ("GET", {("truncated", b"hello"), (502, None)}),
    "/chunked-ok": ("GET", {(200, b"hello world")}),
    "/both-lengths": ("GET", {(200, b"hello"), (502, None)}),
    "/garbage": ("GET", {(502, None)}),
    "/no-answer": ("GET", {(502, None)}),
}


@pytest.mark.parametrize("path", list(CASES))
def test_shape_is_relayed_and_the_proxy_stays_up(raw, path: str) -> None:
    method, allowed = CASES[path]
    for attempt in range(3):
        started = time.monotonic()
        status, _, body = exchange(raw.port, method, path)
        took = time.monotonic() - started
        assert took < CASE_TIMEOUT, f"{path} took {took:.1f} s"
        assert (status, body) in allowed or (status, None) in allowed, (
            f"{method} {path} (try {attempt + 1}) gave {status} {body[:80]!r}"
        )
        # The runtime still answers, and with the right answer (nothing left over from above).
        for _ in range(3):
            assert exchange(raw.port, "GET", "/ok")[::2] == (200, b"ok"), f"after {path}"


def test_head_keeps_the_length_the_micro_gave(raw) -> None:
    status, headers, body = exchange(raw.port, "HEAD", "/head")
    assert (status, headers.get("content-length"), body) == (200, "1000", b"")


def test_a_stalled_body_holds_up_nobody_else(raw) -> None:
    result: list[object] = []
    thread = threading.Thread(
        target=lambda: result.append(exchange(raw.port, "GET", "/head-only-then-hang"))
    )
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert exchange(raw.port, "GET", "/ok")[::2] == (200, b"ok")
    assert time.monotonic() - started < 1.0
    thread.join(CASE_TIMEOUT + 1)
    assert result and result[0][0] in ("truncated", 502)


def test_many_not_modified_answers_in_a_row(raw) -> None:
    # A browser reload of a page with twenty assets: every one of them a 304.
    for _ in range(40):
        assert exchange(raw.port, "GET", "/304")[0] == 304
    assert exchange(raw.port, "GET", "/ok")[::2] == (200, b"ok")
