"""The runtime's own pages and APIs (`/__space/...`) loaded into another origin's page.

Every port of 127.0.0.1 is the same site to a browser, so the owner's Lax session cookie goes
along when a page on another local port puts `<script src>`, `<link rel=stylesheet>` or `<img>`
on the app's origin. The gate refuses that for the micros (Fetch Metadata); here the same rule is
checked on every page and API of the runtime, through a real `space-dev up` (`attack_env`), for
each route x `Sec-Fetch-Site` x what loads it, with the owner's cookie. Navigations, the app's own
pages and programs (no Fetch Metadata) are the controls beside each refusal.
"""

from __future__ import annotations

import json
import socket
import ssl
import time

import pytest

from tests.integration.attack_env import GateEnv, Reply, gate_env, micro_environment, parse_reply

__all__ = ["gate_env"]  # the fixture, imported to be found by pytest

SESSION = ("Cookie", "space_session={session}")
OWN_PAGE = (
    ("Origin", "{gate_origin}"),
    ("Sec-Fetch-Site", "same-origin"),
    ("Sec-Fetch-Mode", "cors"),
    ("Sec-Fetch-Dest", "empty"),
)
DRIVE = "/__space/v0/drive/v1/anything/uploads"
BASE = "/__space/v0/base/v1/anything/notes"
SECRET_JS = b'window.stolen = "the owner\'s secret";'
SECRET_CSS = b":root { --secret: 'the owner\\'s secret'; }"

# Every page and API of the runtime a GET reaches with the owner's session, with what it answers
# the owner on a plain request. The exports build a zip of all the app's data and the queries
# read a Base: work an `<img>` must not set off.
ROUTES = {
    "settings-page": ("/__space/settings", 200),
    "app-actions-page": ("/__space/settings/app-actions", 200),
    "keys-api": ("/__space/api/keys", 200),
    "env-api": ("/__space/api/env", 200),
    "micros-api": ("/__space/api/micros", 200),
    "data-page": ("/__space/settings/data", 200),
    "data-page-export": ("/__space/settings/data/export", 200),
    "data-page-base": ("/__space/settings/data/base/notes", 200),
    "data-page-drive": ("/__space/settings/data/drive/uploads", 200),
    "data-page-download": ("/__space/settings/data/drive/uploads/file?name=secret.js", 200),
    "data-api": ("/__space/api/data", 200),
    "data-api-export": ("/__space/api/data/export", 200),
    "data-api-query": ("/__space/api/data/bases/notes", 200),
    "data-api-drive": ("/__space/api/data/drives/uploads", 200),
    "data-api-download": ("/__space/api/data/drives/uploads/file?name=secret.js", 200),
    "browser-drive-js": (f"{DRIVE}/files/download?name=secret.js", 200),
    "browser-drive-css": (f"{DRIVE}/files/download?name=secret.css", 200),
    "browser-drive-list": (f"{DRIVE}/files", 200),
    "browser-base-item": (f"{BASE}/items/k1", 200),
    "login-page": ("/__space/login", 200),
}

# What puts the request on the wire: a link followed, and a page's subresources.
LOADS = {
    "navigate": ("navigate", "document"),
    "script": ("no-cors", "script"),
    "image": ("no-cors", "image"),
    "style": ("no-cors", "style"),
    "iframe": ("navigate", "iframe"),
    "fetch": ("cors", "empty"),
}
SITES = ("same-origin", "same-site", "cross-site", "none")


def _refused(site: str, load: str) -> bool:
    return site in ("same-site", "cross-site") and load != "navigate"


CASES = [
    pytest.param(route, site, load, id=f"{route}-{site}-{load}")
    for route in ROUTES
    for site in SITES
    for load in LOADS
    # The table the rule is about; the other loads are checked on a few routes only.
    if load in ("navigate", "script", "image") or route in ("keys-api", "browser-drive-js")
]


@pytest.fixture(scope="module")
def stored(gate_env: GateEnv) -> GateEnv:
    """A private script and stylesheet in the app's Drive, an item in its Base."""
    for name, body, ctype in (
        ("secret.js", SECRET_JS, "text/javascript"),
        ("secret.css", SECRET_CSS, "text/css"),
    ):
        put = gate_env.request(
            "gate",
            "POST",
            f"{DRIVE}/files?name={name}",
            [SESSION, *OWN_PAGE, ("Content-Type", ctype)],
            body,
        )
        assert put.status == 201, put
    item = json.dumps({"items": [{"key": "k1", "secret": "the owner's note"}]}).encode()
    put = gate_env.request(
        "gate",
        "PUT",
        f"{BASE}/items",
        [SESSION, *OWN_PAGE, ("Content-Type", "application/json")],
        item,
    )
    assert put.status == 207, put
    return gate_env


def _get(
    env: GateEnv, target: str, site: str | None, load: str | None, *extra: tuple[str, str]
) -> Reply:
    headers = [SESSION, *extra]
    if site is not None:
        headers.append(("Sec-Fetch-Site", site))
    if load is not None:
        mode, dest = LOADS[load]
        headers += [("Sec-Fetch-Mode", mode), ("Sec-Fetch-Dest", dest)]
    return env.request("gate", "GET", target, headers)


@pytest.mark.parametrize(("route", "site", "load"), CASES)
def test_runtime_route_with_the_owners_cookie(
    stored: GateEnv, route: str, site: str, load: str
) -> None:
    target, status = ROUTES[route]
    reply = _get(stored, target, site, load)
    if _refused(site, load):
        assert reply.status == 403, (reply.status, reply.body[:300])
        for secret in (b"secret", b"PK\x03\x04", b"the owner"):
            assert secret not in reply.body, reply.body[:300]
    else:
        assert reply.status == status, (reply.status, reply.body[:300])


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_program_without_fetch_metadata_still_gets_every_route(
    stored: GateEnv, route: str
) -> None:
    target, status = ROUTES[route]
    assert _get(stored, target, None, None).status == status


def test_the_stolen_script_and_stylesheet_are_what_a_page_would_read(stored: GateEnv) -> None:
    """What the refused loads would hand to the other page: the control shows the bytes are
    there for the app's own page, and only refused to the other one."""
    own = _get(stored, ROUTES["browser-drive-js"][0], "same-origin", "script")
    assert own.status == 200 and own.body == SECRET_JS
    css = _get(stored, ROUTES["browser-drive-css"][0], "same-origin", "style")
    assert css.status == 200 and css.body == SECRET_CSS
    for target in (ROUTES["browser-drive-js"][0], ROUTES["browser-drive-css"][0]):
        stolen = _get(stored, target, "same-site", "script")
        assert stolen.status == 403 and b"secret" not in stolen.body


@pytest.mark.parametrize("site", ["same-site", "cross-site"])
@pytest.mark.parametrize("load", ["image", "script"])
def test_health_answers_anyone(stored: GateEnv, site: str, load: str) -> None:
    """`/__space/health` takes no credential: a monitor on another origin may load it."""
    assert _get(stored, "/__space/health", site, load).status == 200


def test_a_one_use_link_followed_from_another_page_signs_in(stored: GateEnv) -> None:
    link = stored.up.wait_for(r"sign in as dev: \S+(/__space/login\?token=\S+)").group(1)
    # A link in a mail or a chat page: a top-level navigation from another site.
    reply = stored.request(
        "gate",
        "GET",
        link,
        [
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Mode", "navigate"),
            ("Sec-Fetch-Dest", "document"),
            ("Accept", "text/html"),
        ],
    )
    assert reply.status == 303 and any(
        "space_session=" in v for v in reply.header_all("Set-Cookie")
    ), reply


def test_an_image_cannot_make_the_runtime_build_an_export(stored: GateEnv) -> None:
    """Refused before the work starts: a stream of `<img>`s answered at once, each one 403."""
    started = time.monotonic()
    for _ in range(20):
        reply = _get(stored, ROUTES["data-api-export"][0], "same-site", "image")
        assert reply.status == 403
    assert time.monotonic() - started < 5


# --- Cross-Origin-Resource-Policy on every Drive download ---------------------------------------


def _data_port_download(env: GateEnv, method: str, name: str) -> Reply:
    environ = micro_environment(env.log, "api")
    host, _, port = environ["DETA_DRIVE_HOST"].partition(":")
    project_key = environ["DETA_PROJECT_KEY"]
    project_id = project_key.partition("_")[0]
    context = ssl.create_default_context(cafile=environ["NODE_EXTRA_CA_CERTS"])
    with (
        socket.create_connection((host, int(port)), 10) as plain,
        context.wrap_socket(plain, server_hostname=host) as tls,
    ):
        tls.sendall(
            f"{method} /v1/{project_id}/uploads/files/download?name={name} HTTP/1.1\r\n"
            f"Host: {host}\r\nConnection: close\r\nX-API-Key: {project_key}\r\n\r\n".encode()
        )
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    return parse_reply(data)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    "where", ["browser-path", "data-page", "data-api", "data-port", "browser-path-range"]
)
def test_every_drive_download_keeps_to_its_origin(stored: GateEnv, where: str, method: str) -> None:
    """`Cross-Origin-Resource-Policy: same-origin`: a browser hands a Drive file's bytes only to
    a page of the origin that served them, whatever else lets the request through."""
    if where == "data-port":
        reply = _data_port_download(stored, method, "secret.js")
    else:
        route = {
            "browser-path": "browser-drive-js",
            "browser-path-range": "browser-drive-js",
            "data-page": "data-page-download",
            "data-api": "data-api-download",
        }[where]
        extra = [("Range", "bytes=0-3")] if where.endswith("range") else []
        reply = stored.request("gate", method, ROUTES[route][0], [SESSION, *extra])
    assert reply.status in (200, 206), reply
    assert reply.header("Cross-Origin-Resource-Policy") == "same-origin", reply.headers
