"""The gate in the test's own process: who passes, what is refused and how, what a micro receives,
and what a request to a micro that is starting or down gets. Real sockets, real aiohttp micros;
only the supervisor is a stand-in (`gate_fixtures.FakeRunner`), so each case takes milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from runtime.serve.hosts import AllowedHosts, host_name
from runtime.supervisor.environment import GATE_PROOF_HEADER
from runtime.supervisor.manager import State
from tests.unit.gate_fixtures import (
    KEY_COOKIE,
    PROOF,
    MakeOrigin,
    Origin,
    accounts_template,
    closed_address,
    headers_of,
    make_origin,
    origin,
)

__all__ = ["accounts_template", "make_origin", "origin"]  # fixtures, imported to be found

HTML = {"Accept": "text/html,application/xhtml+xml"}


async def passed(origin: Origin, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """Send a request that must reach a micro; what the micro received."""
    before = len(origin.seen)
    response = await origin.request(method, path, **kwargs)
    assert response.status == 200, (response.status, await response.text())
    assert len(origin.seen) == before + 1
    received = await response.json()
    assert received == origin.seen[-1]
    return received


async def refused(
    origin: Origin, method: str, path: str, status: int, **kwargs: Any
) -> aiohttp.ClientResponse:
    """Send a request that must be refused with `status` before any micro sees it."""
    before = len(origin.seen)
    response = await origin.request(method, path, **kwargs)
    assert response.status == status, (response.status, await response.text())
    assert len(origin.seen) == before, "a refused request reached a micro"
    return response


# --- the decision, in order ------------------------------------------------------------------


async def test_a_public_micro_lets_anyone_in_and_tells_no_identity(origin: Origin) -> None:
    anonymous = await passed(origin, "GET", "/anything/at/all")
    assert anonymous["micro"] == "www"
    assert headers_of(anonymous)["x-space-auth"] == ["public"]
    # Even the owner's session is not told to a public micro: the decision was "public".
    signed_in = headers_of(await passed(origin, "GET", "/x", headers=origin.cookie()))
    assert signed_in["x-space-auth"] == ["public"] and "x-space-user" not in signed_in


async def test_public_routes_pass_without_a_credential(origin: Origin) -> None:
    for path, sub_path in (
        ("/api/public/a", "/public/a"),
        ("/api/open", "/open"),
        ("/api/open?x=1", "/open?x=1"),
    ):
        received = await passed(origin, "GET", path)
        assert (received["micro"], received["path"]) == ("api", sub_path)
        assert headers_of(received)["x-space-auth"] == ["public"]


async def test_beside_a_public_route_a_credential_is_needed(origin: Origin) -> None:
    for path in ("/api/opened", "/api/PUBLIC/a", "/api/public", "/api/x", "/api/Open"):
        response = await refused(origin, "GET", path, 401)
        assert await response.json() == {"errors": ["Unauthorized"]}, path


async def test_a_wrong_key_on_a_public_route_still_passes(origin: Origin) -> None:
    received = await passed(origin, "GET", "/api/open", headers={"X-Space-App-Key": "nope"})
    assert headers_of(received)["x-space-auth"] == ["public"]


@pytest.mark.parametrize("place", ["X-Space-App-Key", "X-API-Key", "cookie"])
async def test_a_valid_key_passes_and_the_micro_learns_its_name(origin: Origin, place: str) -> None:
    key = origin.credentials["key-good"]
    headers = {"Cookie": f"theme=dark; {KEY_COOKIE}={key}"} if place == "cookie" else {place: key}
    received = headers_of(await passed(origin, "GET", "/api/x", headers=headers))
    assert received["x-space-auth"] == ["api-key"]
    assert received["x-space-key-name"] == ["good"]
    assert received["x-space-client-type"] == ["ci"]
    assert "x-space-user" not in received
    # The key itself goes no further than the gate.
    assert not any(key in value for values in received.values() for value in values)


async def test_a_key_that_does_not_count_is_a_401(origin: Origin) -> None:
    good = origin.credentials["key-good"]
    for path, key in (
        ("/api/x", "wrong-key-value"),
        ("/api/x", origin.credentials["key-off"]),  # switched off
        ("/api/x", origin.credentials["key-theirs"]),  # another app's
        ("/api/x", ""),
        ("/api/x", good + "x"),
        ("/api/x", good.swapcase()),
        ("/admin/x", good),  # the admin micro takes no keys
    ):
        response = await refused(origin, "GET", path, 401, headers={"X-Space-App-Key": key})
        assert await response.json() == {"errors": ["Unauthorized"]}, (path, key)
    # The first key header sent is the one that counts.
    await refused(
        origin, "GET", "/api/x", 401, headers={"X-Space-App-Key": "no", "X-API-Key": good}
    )


async def test_a_wrong_key_is_never_rescued_by_the_owners_session(origin: Origin) -> None:
    headers = {"X-Space-App-Key": "wrong", **origin.cookie()}
    await refused(origin, "GET", "/api/x", 401, headers=headers)
    await refused(
        origin,
        "GET",
        "/api/x",
        401,
        headers={"X-Space-App-Key": "wrong", **HTML, **origin.cookie()},
    )
    await passed(origin, "GET", "/api/x", headers=origin.cookie())  # the control


async def test_the_owners_session_passes_and_names_the_user(origin: Origin) -> None:
    for path, micro in (("/api/x", "api"), ("/admin/a/b", "admin")):
        received = await passed(origin, "GET", path, headers=origin.cookie())
        assert received["micro"] == micro
        assert headers_of(received)["x-space-auth"] == ["session"]
        assert headers_of(received)["x-space-user"] == ["dev"]


async def test_a_signed_in_user_who_is_not_the_owner_gets_403(origin: Origin) -> None:
    as_json = await refused(origin, "GET", "/admin/x", 403, headers=origin.cookie("eve"))
    assert (await as_json.json())["errors"][0] == "Forbidden"
    page = await refused(origin, "GET", "/api/x", 403, headers={**origin.cookie("eve"), **HTML})
    assert "text/html" in page.headers["Content-Type"]
    # A public route is public to them too.
    await passed(origin, "GET", "/api/public/a", headers=origin.cookie("eve"))


async def test_a_browser_without_a_session_is_sent_to_sign_in_and_back(origin: Origin) -> None:
    for method in ("GET", "HEAD"):
        reply = await origin.raw(method, "/admin/x?a=1&b=%2F", HTML.items())
        assert reply.status == 303, (method, reply.status)
        location = urlsplit(reply.headers["location"])
        assert location.path == "/__space/login"
        assert parse_qs(location.query) == {"next": ["/admin/x?a=1&b=%2F"]}
    assert origin.seen == []


async def test_a_program_without_a_session_gets_a_401_in_json(origin: Origin) -> None:
    for method, headers in (
        ("GET", {"Accept": "application/json"}),
        ("GET", {}),
        ("POST", HTML),  # a form post is not sent away: what it carried would be lost
        ("DELETE", {}),
    ):
        response = await refused(origin, method, "/admin/x", 401, headers=headers)
        assert await response.json() == {"errors": ["Unauthorized"]}, method


async def test_a_session_cookie_that_is_no_session_is_none(origin: Origin) -> None:
    signed = origin.credentials["owner"]
    for cookie in ("forged", "", "a.b.c", signed[:-2] + "xx", signed + "x"):
        await refused(origin, "GET", "/admin/x", 401, headers={"Cookie": f"space_session={cookie}"})


async def test_auth_switched_off_for_a_micro_makes_it_public(origin: Origin) -> None:
    origin.store.set_auth("gated", "admin", False)
    origin.checker.reload()
    received = await passed(origin, "GET", "/admin/x")
    assert headers_of(received)["x-space-auth"] == ["public"]
    await refused(origin, "GET", "/api/x", 401)  # only that micro


async def test_wrong_keys_from_one_client_are_slowed_and_a_right_key_still_passes(
    origin: Origin,
) -> None:
    for _ in range(20):
        await refused(origin, "GET", "/api/x", 401, headers={"X-API-Key": "guess"})
    slowed = await refused(origin, "GET", "/api/x", 429, headers={"X-API-Key": "guess"})
    assert int(slowed.headers["Retry-After"]) > 0
    await passed(origin, "GET", "/api/x", headers={"X-API-Key": origin.credentials["key-good"]})


async def test_requests_without_a_key_are_no_guesses(origin: Origin) -> None:
    for _ in range(25):
        await refused(origin, "GET", "/api/x", 401)
    await refused(origin, "GET", "/api/x", 401, headers={"X-API-Key": "guess"})


async def test_while_the_app_has_no_routing_yet_the_answer_is_503(origin: Origin) -> None:
    origin.routing = None
    response = await refused(origin, "GET", "/api/open", 503)
    assert (await response.json())["errors"][0] == "Starting"


# --- the path, read once -----------------------------------------------------------------------


BAD_PATHS = [
    b"/api/public%2F..%2Fx",
    b"/api/public%2f..%2fx",
    b"/api/public/..%2Fx",
    b"/api/public\\..\\x",
    b"/api/public%5C..%5Cx",
    b"/api/public/..;/x",
    b"/api/public/..%3B/x",
    b"/api/public/%2E%3B/x",
    b"/api/public/../../../x",
    b"/api/public/%2e%2e/%2e%2e/%2e%2e/x",
    b"/api/open%00",
    b"/api/public/%u002e%u002e/x",
    b"/api/x#/public/a",
    b"/api/\xc0\xae\xc0\xae/x",  # refused by aiohttp's own parser, before the gate
]


async def test_a_path_that_cannot_be_read_one_way_only_is_a_400(origin: Origin) -> None:
    session = [("Cookie", f"space_session={origin.credentials['owner']}")]
    for target in BAD_PATHS:
        reply = await origin.raw("GET", target, session)
        assert reply.status == 400, (target, reply.status, reply.body)
        if reply.headers["content-type"].startswith("application/json"):
            assert reply.json()["errors"][0] == "Bad request path", target
    assert origin.seen == []


async def test_dot_segments_are_resolved_before_the_decision(origin: Origin) -> None:
    for target in (
        "/api/public/../x",
        "/api/public/%2e%2e/x",
        "/api/public/.%2e/x",
        "/api//public/../x",
        "/api/public../x",
        "/api/public/a/../../x",
        "/api/x?/public/a",
        "/api/x%3F/public/a",
        "/api/x;/public/a",
    ):
        reply = await origin.raw("GET", target)
        assert reply.status == 401, (target, reply.status, reply.body)
    assert origin.seen == []
    reply = await origin.raw("GET", "/API/public/x")  # no such mount: the public root micro's
    assert (reply.status, reply.json()["micro"]) == (200, "www")


async def test_the_micro_receives_the_path_that_was_decided_on(origin: Origin) -> None:
    for target, received in (
        ("/api/public/x/../a", "/public/a"),
        ("/api//public//a", "/public/a"),
        ("/api/%70ublic/a", "/public/a"),
        ("/api/public/%7Ea", "/public/~a"),
        ("/api/public/%252e%252e/x", "/public/%252e%252e/x"),
        ("/api/public/a?q=a%20b&next=%2Fx%2F..", "/public/a?q=a%20b&next=%2Fx%2F.."),
        ("/admin/../api/public/a", "/public/a"),
        ("/api", None),  # the mount's root is `/` to the micro; not public here
    ):
        reply = await origin.raw("GET", target)
        if received is None:
            assert reply.status == 401
            continue
        assert reply.status == 200, (target, reply.status, reply.body)
        assert (reply.json()["micro"], reply.json()["path"]) == ("api", received), target
    key = [("X-Space-App-Key", origin.credentials["key-good"])]
    assert (await origin.raw("GET", "/api", key)).json()["path"] == "/"


RUNTIME_SPELLINGS = [
    "/__SPACE/v0/actions",
    "/__Space/login",
    "/%5F%5Fspace/login",
    "/%5f%5fSPACE/x",
    "//__space/login",
    "/x/../__space/login",
    "/__space",
    "/__space%2Fx",
    "/api/__space/v0/actions",
    "/api/__SPACE/v0/actions",
    "/api/%5F%5Fspace/v0/actions",
    "/api//__space/v0/actions",
    "/api/public/../__space/v0/actions",
    "/admin/__space/actions",
    "/api/__space",
]


@pytest.mark.parametrize("who", ["anonymous", "owner", "key"])
async def test_no_spelling_of_the_runtimes_paths_reaches_a_micro(origin: Origin, who: str) -> None:
    """The root micro is public: a path the gate failed to see as the runtime's would reach it."""
    headers = {
        "anonymous": [],
        "owner": [("Cookie", f"space_session={origin.credentials['owner']}")],
        "key": [("X-Space-App-Key", origin.credentials["key-good"])],
    }[who]
    for target in RUNTIME_SPELLINGS:
        for method in ("GET", "POST"):
            reply = await origin.raw(method, target, headers, b"{}" if method == "POST" else b"")
            assert reply.status in (400, 404), (target, method, reply.status, reply.body)
    assert origin.seen == []


async def test_the_runtimes_own_paths_go_to_its_pages(origin: Origin) -> None:
    response = await refused(origin, "GET", "/__space/login", 200)
    assert "text/html" in response.headers["Content-Type"]
    await refused(origin, "GET", "/__space/no-such-page", 404)


# --- what a micro receives -------------------------------------------------------------------

SPOOFED = [
    ("X-Space-User", "mallory"),
    ("X_Space_Auth", "spoofed-auth"),
    ("x-space-key-name", "spoofed-key"),
    ("X-SPACE-CLIENT-TYPE", "spoofed-type"),
    ("X-Forwarded-For", "6.6.6.6"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "gopher"),
    ("X_Forwarded_User", "mallory"),
    ("Forwarded", "for=6.6.6.6"),
    (GATE_PROOF_HEADER, "a-proof-the-client-made-up"),
    ("Connection", "X-Space-Auth, X-Space-User, X-Forwarded-For"),
]


@pytest.mark.parametrize("who", ["owner", "key", "public"])
async def test_identity_headers_are_the_runtimes_alone(origin: Origin, who: str) -> None:
    credential = {
        "owner": [("Cookie", f"theme=dark; space_session={origin.credentials['owner']}; lang=en")],
        "key": [
            ("X-Space-App-Key", origin.credentials["key-good"]),
            ("Cookie", f"theme=dark; {KEY_COOKIE}={origin.credentials['key-good']}; lang=en"),
        ],
        "public": [("Cookie", "theme=dark; lang=en")],
    }[who]
    path = "/api/public/a" if who == "public" else "/api/x"
    reply = await origin.raw("GET", path, [*SPOOFED, *credential])
    assert reply.status == 200, reply.body
    got = headers_of(reply.json())
    expected = {
        "owner": ("session", ["dev"], None),
        "key": ("api-key", None, ["good"]),
        "public": ("public", None, None),
    }[who]
    assert got["x-space-auth"] == [expected[0]]
    assert got.get("x-space-user") == expected[1]
    assert got.get("x-space-key-name") == expected[2]
    assert got[GATE_PROOF_HEADER.lower()] == [PROOF]
    assert got["x-forwarded-for"] == ["127.0.0.1"]
    assert got["x-forwarded-host"] == [f"127.0.0.1:{origin.port}"]
    assert got["x-forwarded-proto"] == ["http"]
    assert got["cookie"] == ["theme=dark; lang=en"]  # credentials out, the rest in order
    for name, values in got.items():
        assert not name.replace("_", "-").startswith(("x-space-", "x-forwarded-")) or (
            len(values) == 1
            and name
            in {
                "x-space-auth",
                "x-space-user",
                "x-space-key-name",
                "x-space-client-type",
                GATE_PROOF_HEADER.lower(),
                "x-forwarded-for",
                "x-forwarded-host",
                "x-forwarded-proto",
            }
        ), (name, values)
        assert name not in ("forwarded", "x-space-app-key", "x-api-key")
        assert "mallory" not in values and "6.6.6.6" not in values
        assert not any(origin.credentials["owner"] in value for value in values)


async def test_a_body_reaches_the_micro_whether_sized_chunked_or_after_100_continue(
    origin: Origin,
) -> None:
    sized = await passed(origin, "POST", "/api/x", data=b"sized body", headers=origin.cookie())
    assert sized["body"] == "sized body"

    async def chunks() -> Any:
        for part in (b"chunked ", b"body"):
            yield part

    chunked = await passed(origin, "POST", "/api/x", data=chunks(), headers=origin.cookie())
    assert chunked["body"] == "chunked body"
    assert "transfer-encoding" not in headers_of(chunked)  # sent on with its length
    continued = await passed(
        origin, "PUT", "/api/x", data=b"after continue", expect100=True, headers=origin.cookie()
    )
    assert continued["body"] == "after continue"


async def test_a_websocket_passes_the_same_gate(origin: Origin) -> None:
    async with origin.client.ws_connect("/api/ws", headers=origin.cookie()) as socket:
        await socket.send_str("hello")
        assert (await socket.receive()).data == "api: hello"
    assert headers_of(origin.seen[-1])["x-space-user"] == ["dev"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refusal:
        await origin.client.ws_connect("/api/ws")
    assert refusal.value.status == 401
    # ...and from another origin's page, the session does not open one.
    with pytest.raises(aiohttp.WSServerHandshakeError) as cross:
        await origin.client.ws_connect(
            "/api/ws", origin="http://evil.example", headers=origin.cookie()
        )
    assert cross.value.status == 403


# --- cross-site requests to micros -------------------------------------------------------------


CROSS_SITE = [
    ({"Origin": "http://evil.example"}, "POST"),
    ({"Origin": "http://127.0.0.1:1"}, "DELETE"),
    ({"Origin": "null"}, "PUT"),
    ({"Sec-Fetch-Site": "cross-site"}, "MKCOL"),
    (
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script"},
        "GET",
    ),
    (
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"},
        "GET",
    ),
    ({"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, "GET"),
]


async def test_another_origin_cannot_use_the_session_cookie(origin: Origin) -> None:
    for headers, method in CROSS_SITE:
        response = await refused(
            origin, method, "/admin/x", 403, headers={**headers, **origin.cookie()}
        )
        assert (await response.json())["errors"][0] == "Cross-site request refused", headers


async def test_what_another_origin_may_still_do(origin: Origin) -> None:
    """Controls: the app's own page, a link from elsewhere, a key in a header, a public route."""
    await passed(origin, "POST", "/admin/x", headers={"Origin": origin.url, **origin.cookie()})
    await passed(
        origin,
        "GET",
        "/admin/x",
        headers={
            "Sec-Fetch-Site": "same-site",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "document",
            **origin.cookie(),
        },
    )
    await passed(
        origin,
        "POST",
        "/api/x",
        headers={
            "Origin": "http://evil.example",
            "X-Space-App-Key": origin.credentials["key-good"],
        },
    )
    await passed(
        origin,
        "POST",
        "/api/public/a",
        headers={"Origin": "http://evil.example", **origin.cookie()},
    )
    # A key in a cookie is as ambient as the session.
    await refused(
        origin,
        "GET",
        "/api/x.js",
        403,
        headers={
            "Cookie": f"{KEY_COOKIE}={origin.credentials['key-good']}",
            "Sec-Fetch-Site": "same-site",
            "Sec-Fetch-Mode": "no-cors",
            "Sec-Fetch-Dest": "script",
        },
    )


# --- the Host check ----------------------------------------------------------------------------


async def test_a_host_the_app_is_not_served_as_gets_421(origin: Origin) -> None:
    for host in (
        "evil.example",
        f"evil.example:{origin.port}",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "2130706433",
        "[::1",
        "a:b:c",
    ):
        for path in ("/api/open", "/admin/x", "/__space/login", "/__space/settings"):
            response = await refused(
                origin, "GET", path, 421, headers={"Host": host, **origin.cookie(), **HTML}
            )
            assert "allowed_hosts" in await response.text()
    response = await refused(
        origin,
        "POST",
        "/__space/api/keys",
        421,
        json={"name": "x"},
        headers={"Host": "evil.example", **origin.cookie()},
    )
    assert "x" not in {k.name for k in origin.store.keys.list("gated")}


async def test_the_loopback_names_are_served(origin: Origin) -> None:
    for host in (f"localhost:{origin.port}", f"127.0.0.1:{origin.port}", "LOCALHOST.", "[::1]"):
        await passed(origin, "GET", "/api/open", headers={"Host": host})


async def test_allowed_hosts_add_names_and_suffixes(make_origin: MakeOrigin) -> None:
    origin = await make_origin(allowed_hosts=("dev.test", "*.app.test"))
    for host in ("dev.test", "dev.test:80", "a.app.test", "b.a.app.test"):
        await passed(origin, "GET", "/api/open", headers={"Host": host})
    for host in ("app.test", "evil.dev.test", "xapp.test"):
        await refused(origin, "GET", "/api/open", 421, headers={"Host": host})


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("LocalHost:4200", "localhost"),
        ("example.com.", "example.com"),
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("[::1]x", None),
        ("[::1]:", None),
        ("[]", None),
        ("host:port", None),
        ("a:b:1", None),
        (":80", None),
        ("", None),
    ],
)
def test_host_name_reads_the_name_alone(header: str, name: str | None) -> None:
    assert host_name(header) == name


def test_listening_on_every_interface_adds_this_machines_names_and_addresses() -> None:
    import socket

    every = AllowedHosts("0.0.0.0")
    assert every.allows(socket.gethostname())
    assert every.allows("127.0.0.1:80") and every.allows(None)
    assert not every.allows("192.0.2.1")  # TEST-NET: no address of this machine
    assert not every.allows("192.0.2.1")  # remembered, still not
    assert not AllowedHosts("127.0.0.1").allows(socket.gethostname() + ".invalid")


# --- a micro that is starting, moving or down --------------------------------------------------


async def test_a_request_to_a_starting_micro_waits_for_it(origin: Origin) -> None:
    runner = origin.runners["api"]
    runner.set(State.STARTING)
    pending = asyncio.ensure_future(origin.request("GET", "/api/open"))
    await asyncio.sleep(0.2)
    assert not pending.done() and origin.seen == []
    runner.set(State.READY, origin.micro_addresses["api"])
    response = await asyncio.wait_for(pending, 5)
    assert response.status == 200 and (await response.json())["path"] == "/open"
    assert runner.requests == 1


async def test_a_micro_that_stays_starting_gets_a_502_after_the_wait(
    make_origin: MakeOrigin,
) -> None:
    origin = await make_origin(request_wait=0.3)
    origin.runners["api"].set(State.STARTING)
    response = await refused(origin, "GET", "/api/open", 502)
    body = await response.json()
    assert (body["micro"], body["state"]) == ("api", "starting")
    assert "did not answer within 0.3 s" in body["errors"][1]


async def test_a_crashed_micro_gets_its_error_page_at_once_and_logs_to_the_owner_only(
    origin: Origin,
) -> None:
    origin.runners["www"].set(State.CRASHED, exit_code=3)
    for line in (
        "Traceback (most recent call last):",
        '  File "main.py", line 1',
        "ValueError: token=hunter2",
    ):
        origin.printer.line("www", line)
    stranger = await refused(origin, "GET", "/page", 502, headers=HTML)
    text = await stranger.text()
    assert "The micro www has crashed" in text and "hunter2" not in text
    owner = await refused(origin, "GET", "/page", 502, headers={**HTML, **origin.cookie()})
    assert "ValueError: token=hunter2" in await owner.text()
    as_json = await (await refused(origin, "GET", "/page", 502, headers=origin.cookie())).json()
    assert as_json["state"] == "crashed" and "ValueError: token=hunter2" in as_json["error"]
    assert "error" not in await (await refused(origin, "GET", "/page", 502)).json()


async def test_a_micro_that_listens_nowhere_is_answered_at_once_with_its_hint(
    make_origin: MakeOrigin,
) -> None:
    origin = await make_origin(request_wait=5)
    origin.runners["api"].set(State.NOT_LISTENING)
    started = time.monotonic()
    owner = await refused(origin, "GET", "/api/open", 503, headers=origin.cookie())
    assert time.monotonic() - started < 2  # no wait for a server that listens nowhere
    assert "give it $PORT" in json.dumps(await owner.json())
    stranger = await refused(origin, "GET", "/api/open", 503)
    assert "give it $PORT" not in json.dumps(await stranger.json())


async def test_a_stopped_micro_says_so(origin: Origin) -> None:
    origin.runners["api"].set(State.STOPPED)
    response = await refused(origin, "GET", "/api/open", 502)
    assert (await response.json())["errors"] == ["The micro api is stopped"]


async def test_a_request_follows_the_micro_to_its_new_process(origin: Origin) -> None:
    """The old process of a reload is gone before anything was sent: asked again, the runner
    gives the new address."""
    runner = origin.runners["api"]
    runner.set(State.READY, closed_address())
    pending = asyncio.ensure_future(origin.request("GET", "/api/open"))
    await asyncio.sleep(0.2)
    assert not pending.done()
    runner.set(State.READY, origin.micro_addresses["api"])
    response = await asyncio.wait_for(pending, 5)
    assert response.status == 200


async def test_a_refused_request_goes_at_the_swap_not_at_its_next_try(origin: Origin) -> None:
    """Waiting on a reload's old process (gone), a request goes to the new one the moment the
    runner's address changes: not up to a retry interval later. The swap comes at three points
    of a 50 ms cycle, so a request that polled would be late at least once."""
    runner = origin.runners["api"]
    late: list[float] = []
    for delay in (0.105, 0.12, 0.135):
        runner.set(State.READY, closed_address())
        pending = asyncio.ensure_future(origin.request("GET", "/api/open"))
        await asyncio.sleep(delay)
        assert not pending.done()
        swapped = time.monotonic()
        runner.set(State.READY, origin.micro_addresses["api"])
        response = await asyncio.wait_for(pending, 5)
        late.append(time.monotonic() - swapped)
        assert response.status == 200
    assert max(late) < 0.015, [f"{t * 1000:.1f} ms" for t in late]


async def test_a_micro_that_is_never_reachable_gets_a_502(make_origin: MakeOrigin) -> None:
    origin = await make_origin(request_wait=0.3)
    origin.runners["api"].set(State.READY, closed_address())
    response = await refused(origin, "GET", "/api/open", 502)
    assert (await response.json())["errors"][0] == "The micro api is not ready"


async def dying_micro(then: Any) -> tuple[tuple[str, int], asyncio.Server]:
    """A process that reads a request head, calls `then()` and closes the connection unanswered."""

    async def take(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        then()
        writer.close()

    server = await asyncio.start_server(take, "127.0.0.1", 0)
    return ("127.0.0.1", server.sockets[0].getsockname()[1]), server


async def test_a_safe_request_is_sent_again_when_the_process_died_under_it(origin: Origin) -> None:
    runner = origin.runners["api"]
    address, server = await dying_micro(
        lambda: runner.set(State.READY, origin.micro_addresses["api"])
    )
    async with server:
        runner.set(State.READY, address)
        received = await passed(origin, "GET", "/api/open")
    assert received["path"] == "/open"


async def test_an_unsafe_request_is_not_sent_twice_and_its_owner_learns_why(origin: Origin) -> None:
    runner = origin.runners["api"]
    address, server = await dying_micro(
        lambda: runner.set(State.READY, origin.micro_addresses["api"])
    )
    async with server:
        runner.set(State.READY, address)
        response = await refused(
            origin, "POST", "/api/x", 502, data=b"once", headers=origin.cookie()
        )
    body = await response.json()
    assert body["errors"][0] == "The micro api did not answer"
    assert len(body["errors"]) == 3  # the owner sees what the connection did


async def test_a_live_micro_that_drops_a_get_is_not_asked_twice(origin: Origin) -> None:
    runner = origin.runners["api"]
    calls: list[int] = []
    address, server = await dying_micro(lambda: calls.append(1))
    async with server:
        runner.set(State.READY, address)
        response = await refused(origin, "GET", "/api/open", 502)
    assert calls == [1]
    assert (await response.json())["errors"] == [
        "The micro api did not answer",
        "The connection closed before a response.",
    ]
