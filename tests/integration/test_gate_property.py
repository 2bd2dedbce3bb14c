"""Property: without a credential, a micro only ever receives requests for its public routes.

Hypothesis builds request paths from the characters that tricks are made of (dots, slashes,
percent escapes, `;`, backslashes, the letters of "public") and from pieces of the public routes,
sends each raw to one running `space-dev up` with no credential, and then reads the echo micros'
own log: every request a micro received must be one of `api`'s public routes, as the micro sees
it, and must say `X-Space-Auth: public`. The answer must also be the one the gate's rules give
for the normalised path (400, 401, 404, or the micro's answer for a public route), so the gate
neither lets too much through nor blocks the public routes.
"""

from __future__ import annotations

import subprocess
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runtime.auth.routes import BadPath, normalise_path
from tests.integration.attack_env import (
    API_ROUTES,
    GATE_SPACEFILE,
    LOGGING_ECHO,
    Reply,
    send,
)
from tests.integration.conftest import Up, run_up
from tests.integration.micros import write_app

PROBE = "X-Probe"
# The characters path tricks are spelt with (percent escapes, dots, slashes, `;` and `\`).
ALPHABET = "/.%25ef5c;\\apublic"
TOKENS = (
    "public",
    "open",
    "docs",
    "raw",
    "x.png",
    ".png",
    "logo.png",
    "..",
    ".",
    "%2e",
    "%2E%2e",
    "%252e%252e",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "..;",
    ";",
    "%3B",
    "",
    "PUBLIC",
    "Public",
    "admin",
    "api",
    "%70ublic",
    "%7E",
    "%00",
    "%25",
    "%",
    "%c0%ae",
    "__space",
    "%5F%5Fspace",
    "*",
)
PREFIXES = (
    "/api/",
    "/api",
    "//api/",
    "/api//",
    "/",
    "/admin/",
    "/api/public/",
    "/api/docs/",
    "/API/",
    "/ap%69/",
    "/api/public/../",
    "/admin/../api/",
)
TAILS = ("", "/", "?/public/a", "?x=1", "/..", "/.", "/raw", ".png")


def _paths(alphabet: str, tokens: tuple[str, ...]) -> st.SearchStrategy[str]:
    segment = st.one_of(
        st.text(alphabet, max_size=10),
        st.sampled_from(tokens),
        st.lists(st.sampled_from(tokens), max_size=3).map("".join),
    )
    return st.builds(
        lambda prefix, segments, tail: prefix + "/".join(segments) + tail,
        # Half the paths start inside a public route, where a trick has something to escape.
        st.one_of(st.just("/api/public/"), st.sampled_from(PREFIXES)),
        st.lists(segment, max_size=6),
        st.sampled_from(TAILS),
    )


class Runtime:
    """The running runtime and a reader that hands out the echo log's new lines."""

    def __init__(self, up: Up, log: Path) -> None:
        self.up = up
        self.log = log
        self._offset = 0
        self._sent = 0

    def probe(self, target: str) -> tuple[Reply, str, list[dict[str, Any]]]:
        """Send `target` with no credential; the answer, its probe id, and what micros received."""
        self._sent += 1
        probe = f"p{self._sent}"
        reply = send(self.up.port, "GET", target, [(PROBE, probe)])
        return reply, probe, self._new_records()

    def _new_records(self) -> list[dict[str, Any]]:
        import json

        if not self.log.exists():
            return []
        with open(self.log, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        records = [json.loads(line) for line in complete.splitlines() if line.strip()]
        # The runtime's own readiness probe goes straight to the micro, not through the gate.
        return [r for r in records if ["User-Agent", READINESS_PROBE] not in r["headers"]]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("gate-property")
    app = write_app(
        root / "app",
        GATE_SPACEFILE,
        {
            "www/public/index.html": "<h1>private home</h1>",
            "api/echo.py": LOGGING_ECHO,
            "admin/echo.py": LOGGING_ECHO,
        },
    )
    log = root / "echo.log"
    up = run_up(app, "--no-reload", "--no-schedule", env={"ECHO_LOG": str(log)})
    try:
        up.wait_ready(60)
        yield Runtime(up, log)
    finally:
        try:
            up.stop()
        except subprocess.TimeoutExpired:
            up.kill()


READINESS_PROBE = "space-dev-readiness-check"


def _headers(record: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in record["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def _expected(target: str) -> tuple[set[int], str | None]:
    """The gate's answers for a request with no credential, and the public sub-path if public."""
    raw_path = target.partition("?")[0]
    try:
        path = normalise_path(raw_path)
    except BadPath:
        return {400}, None
    if path == "/__space" or path.startswith("/__space/"):
        return set(range(200, 600)), None  # the runtime's own pages: never a micro
    for mount in ("/api", "/admin"):
        if path == mount or path.startswith(mount + "/"):
            sub = path[len(mount) :] or "/"
            if sub == "/__space" or sub.startswith("/__space/"):
                return {404}, None
            if mount == "/api" and API_ROUTES.matches(sub):
                return {200}, sub
            return {401}, None
    return {401}, None  # the private static primary


def _check(runtime: Runtime, target: str, seen: Counter[str], exact: bool = False) -> None:
    reply, probe, records = runtime.probe(target)
    # 1. What the micros received, whoever sent it: public routes only, marked public.
    for record in records:
        headers = _headers(record)
        received = record["path"].partition("?")[0]
        assert record["micro"] == "api", (target, record["micro"], received)
        assert headers.get("x-space-auth") == ["public"], (target, headers.get("x-space-auth"))
        assert "x-space-user" not in headers and "x-space-key-name" not in headers
        assert API_ROUTES.matches(received), f"{target!r} reached the micro as {received!r}"
    # 2. The answer is the one docs/contract.md ("The decision, in order") gives for the
    # normalised path.
    statuses, sub = _expected(target)
    assert reply.status in statuses, (target, reply.status, reply.body[:200])
    mine = [r for r in records if _headers(r).get(PROBE.lower()) == [probe]]
    if sub is None:
        assert not mine and reply.echo is None, (target, mine)
        seen["refused"] += 1
        return
    assert len(mine) == 1 and reply.echo is not None, (target, reply.status)
    received = mine[0]["path"].partition("?")[0]
    # The micro decodes what it gets once, as the gate did: both must name the same route.
    assert urllib.parse.unquote(received) == urllib.parse.unquote(sub), (target, received, sub)
    if exact:
        assert received == sub, (target, received, sub)
    seen["public"] += 1


def test_without_credential_micros_only_receive_public_routes(runtime: Runtime) -> None:
    seen: Counter[str] = Counter()

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(target=_paths(ALPHABET, TOKENS))
    @example(target="/api/public/%252e%252e/x")
    @example(target="/api/%70ublic/%2e%2e/x")
    @example(target="/api/public/..;/x")
    @example(target="/api/x.png/..%2f")
    @example(target="/ap%69/open")
    def check(target: str) -> None:
        _check(runtime, target, seen)

    check()
    # The run means something only if both sides of the gate were exercised.
    assert seen["public"] >= 10 and seen["refused"] >= 50, seen


def test_micro_receives_exactly_the_normalised_path(runtime: Runtime) -> None:
    seen: Counter[str] = Counter()

    @settings(
        max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(target=_paths(ALPHABET, TOKENS))
    @example(target="/api/public/%2c")
    def check(target: str) -> None:
        _check(runtime, target, seen, exact=True)

    check()


def test_raw_fragment_characters_keep_the_property(runtime: Runtime) -> None:
    seen: Counter[str] = Counter()
    tokens = (*TOKENS, "#", "#.png", "?", "%23", '"', "{x}")

    @settings(
        max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(target=_paths(ALPHABET + "#", tokens))
    @example(target="/api/#.png")
    def check(target: str) -> None:
        _check(runtime, target, seen)

    check()
