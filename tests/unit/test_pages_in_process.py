"""Signing in and the owner's settings, in the test's own process: the login form and links, where
`next` may lead, sign-out, the cross-site refusals of every state-changing page, and who sees
the settings page and its JSON API. The same origin as the gate's tests (`gate_fixtures`), so a
key made or switched off here is checked by the gate at once.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

from runtime.auth.credentials import SESSION_COOKIE
from runtime.config.defaults import LOGIN_FAILURES_ALLOWED
from runtime.web.login import safe_next
from tests.unit.gate_fixtures import (
    APP,
    PASSWORD,
    Origin,
    accounts_template,
    headers_of,
    make_origin,
    origin,
)

__all__ = ["accounts_template", "make_origin", "origin"]  # fixtures, imported to be found

HTML = {"Accept": "text/html"}
EVIL = "http://evil.example"


def form(username: str = "dev", password: str = PASSWORD, next_path: str = "") -> dict[str, str]:
    return {"username": username, "password": password, "next": next_path}


def session_from(set_cookie: str) -> str:
    """The session value a `Set-Cookie` header carries."""
    assert set_cookie.startswith(f"{SESSION_COOKIE}="), set_cookie
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


# --- signing in --------------------------------------------------------------------------------


async def test_the_login_page_keeps_where_to_go_next(origin: Origin) -> None:
    response = await origin.request("GET", "/__space/login?next=/admin/x%3Fa%3D1")
    assert response.status == 200
    page = await response.text()
    assert 'name="next" value="/admin/x?a=1"' in page
    assert response.headers["X-Frame-Options"] == "DENY"
    offsite = await (await origin.request("GET", "/__space/login?next=//evil.example")).text()
    assert 'name="next" value="/"' in offsite


async def test_the_right_password_signs_in_and_goes_back(origin: Origin) -> None:
    response = await origin.request(
        "POST",
        "/__space/login",
        data=form(next_path="/admin/x?a=1"),
        headers={"Origin": origin.url},
    )
    assert response.status == 303
    assert response.headers["Location"] == "/admin/x?a=1"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert response.headers["Cache-Control"] == "no-store"
    session = session_from(cookie)
    reply = await origin.request("GET", "/admin/x", headers={"Cookie": f"space_session={session}"})
    assert reply.status == 200
    assert headers_of(await reply.json())["x-space-user"] == ["dev"]


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("dev", "wrong password"),
        ("nobody", PASSWORD),
        ("", ""),
    ],
)
async def test_a_wrong_name_or_password_is_a_401_without_a_session(
    origin: Origin, username: str, password: str
) -> None:
    response = await origin.request("POST", "/__space/login", data=form(username, password))
    assert response.status == 401
    assert "Set-Cookie" not in response.headers
    assert "Wrong user name or password." in await response.text()


async def test_next_leads_only_to_this_origin(origin: Origin) -> None:
    # Each is a sign-in (scrypt): the few kinds here, every other case in test_safe_next.
    for next_path, went in (
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/settings%0d%0aSet-Cookie:x=1", "/settings%0d%0aSet-Cookie:x=1"),
        ("/__space/settings#keys", "/__space/settings#keys"),
    ):
        response = await origin.request("POST", "/__space/login", data=form(next_path=next_path))
        assert response.status == 303, next_path
        # As sent (aiohttp writes a percent escape in upper case).
        assert unquote(response.headers["Location"]) == unquote(went), next_path


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/a?b=c", "/a?b=c"),
        ("/", "/"),
        ("", "/"),
        (None, "/"),
        ("a", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/a\\b", "/"),
        ("/a\nb", "/"),
        ("/a\x7fb", "/"),
        ("http://evil.example/", "/"),
        ("/http://evil.example/", "/http://evil.example/"),
    ],
)
def test_safe_next(given: str | None, kept: str) -> None:
    assert safe_next(given) == kept


async def test_too_many_wrong_passwords_lock_that_name_for_that_client(origin: Origin) -> None:
    for _ in range(LOGIN_FAILURES_ALLOWED):
        origin.limiter.failed("dev", "127.0.0.1")
    response = await origin.request("POST", "/__space/login", data=form())
    assert response.status == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Set-Cookie" not in response.headers
    # Another name is not held up by it.
    other = await origin.request("POST", "/__space/login", data=form("eve"))
    assert other.status == 303


async def test_a_sign_in_form_that_cannot_be_read_is_a_400(origin: Origin) -> None:
    response = await origin.request(
        "POST",
        "/__space/login",
        data=b"username=dev&password=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=no-such-charset"},
    )
    assert response.status == 400
    assert "could not be read" in await response.text()


async def test_a_sign_in_link_works_once_and_a_head_does_not_use_it(origin: Origin) -> None:
    token = origin.links.issue("dev")
    path = f"/__space/login?token={quote(token)}&next=/admin/"
    head = await origin.request("HEAD", path)
    assert head.status == 200 and "Set-Cookie" not in head.headers
    used = await origin.request("GET", path)
    assert used.status == 303 and used.headers["Location"] == "/admin/"
    session = session_from(used.headers["Set-Cookie"])
    reply = await origin.request("GET", "/admin/", headers={"Cookie": f"space_session={session}"})
    assert reply.status == 200
    again = await origin.request("GET", path)
    assert again.status == 400 and "Set-Cookie" not in again.headers
    forged = await origin.request("GET", "/__space/login?token=forged")
    assert forged.status == 400


async def test_signing_out_ends_the_session(origin: Origin) -> None:
    response = await origin.request(
        "POST", "/__space/logout", headers={"Origin": origin.url, **origin.cookie()}
    )
    assert response.status == 303 and response.headers["Location"] == "/__space/login"
    assert response.headers["Set-Cookie"].startswith(f'{SESSION_COOKIE}="";')
    assert (await origin.request("GET", "/admin/x", headers=origin.cookie())).status == 401


# --- cross-site refusals of the runtime's own pages ------------------------------------------

CHANGES = [
    ("POST", "/__space/login", {"data": form()}),
    ("POST", "/__space/logout", {}),
    ("POST", "/__space/settings/keys", {"data": {"name": "planted"}}),
    ("POST", "/__space/settings/keys/good/disable", {}),
    ("POST", "/__space/settings/env", {"data": {}}),
    ("POST", "/__space/settings/micros/api/restart", {"data": {}}),
    ("POST", "/__space/api/keys", {"json": {"name": "planted"}}),
    ("PATCH", "/__space/api/keys/good", {"json": {"active": False}}),
    ("DELETE", "/__space/api/keys/good", {}),
    ("PUT", "/__space/api/env", {"json": {}}),
]


@pytest.mark.parametrize(
    "sender",
    [
        {"Origin": EVIL},
        {"Origin": "http://127.0.0.1:1"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_another_origin_changes_nothing_here(origin: Origin, sender: dict[str, str]) -> None:
    for method, path, body in CHANGES:
        response = await origin.request(method, path, headers={**sender, **origin.cookie()}, **body)
        assert response.status == 403, (method, path, response.status)
        assert "Set-Cookie" not in response.headers
    # Nothing happened: the key is there and switched on, the session still works, no restart.
    keys = {k.name: k.active for k in origin.store.keys.list(APP)}
    assert keys == {"good": True, "off": False}
    assert origin.restarted == []
    assert (await origin.request("GET", "/admin/x", headers=origin.cookie())).status == 200


async def test_another_origins_page_cannot_load_the_settings_with_the_session(
    origin: Origin,
) -> None:
    for dest, mode in (("image", "no-cors"), ("iframe", "navigate"), ("empty", "cors")):
        response = await origin.request(
            "GET",
            "/__space/settings",
            headers={
                "Sec-Fetch-Site": "same-site",
                "Sec-Fetch-Mode": mode,
                "Sec-Fetch-Dest": dest,
                **origin.cookie(),
            },
        )
        assert response.status == 403, dest
    # A link to it from elsewhere is a navigation, and passes.
    link = await origin.request(
        "GET",
        "/__space/settings",
        headers={
            "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "document",
            **origin.cookie(),
        },
    )
    assert link.status == 200


# --- the settings page and its API: the owner's alone ------------------------------------------


async def test_the_owner_sees_the_settings_page(origin: Origin) -> None:
    response = await origin.request("GET", "/__space/settings", headers=origin.cookie())
    assert response.status == 200
    page = await response.text()
    assert f"{APP} settings" in page
    for micro in ("www", "api", "admin"):
        assert micro in page
    assert "good" in page and origin.credentials["key-good"] not in page
    assert response.headers["Cache-Control"] == "no-store"


async def test_others_do_not_see_the_settings_page(origin: Origin) -> None:
    eve = await origin.request("GET", "/__space/settings", headers={**HTML, **origin.cookie("eve")})
    assert eve.status == 403
    text = await eve.text()
    assert "signed in as eve" in text and "good" not in text
    anonymous = await origin.request("GET", "/__space/settings?done=x")
    assert anonymous.status == 303
    location = urlsplit(anonymous.headers["Location"])
    assert location.path == "/__space/login"
    assert parse_qs(location.query) == {"next": ["/__space/settings?done=x"]}
    form_post = await origin.request(
        "POST", "/__space/settings/keys", data={"name": "x"}, headers=HTML
    )
    assert form_post.status == 303
    assert form_post.headers["Location"] == "/__space/login?next=/__space/settings"
    program = await origin.request("POST", "/__space/settings/keys", data={"name": "x"})
    assert program.status == 401
    # A key is no way in: keys cannot manage keys.
    key = await origin.request(
        "GET", "/__space/settings", headers={"X-Space-App-Key": origin.credentials["key-good"]}
    )
    assert key.status == 303
    assert [k.name for k in origin.store.keys.list(APP)] == ["good", "off"]


async def test_the_json_api_is_the_owners_alone(origin: Origin) -> None:
    for method, path in (
        ("GET", "/__space/api/keys"),
        ("GET", "/__space/api/env"),
        ("GET", "/__space/api/micros"),
        ("DELETE", "/__space/api/keys/good"),
    ):
        anonymous = await origin.request(method, path)
        assert (anonymous.status, await anonymous.json()) == (401, {"errors": ["Unauthorized"]})
        eve = await origin.request(method, path, headers=origin.cookie("eve"))
        assert eve.status == 403, path
    listed = await origin.request("GET", "/__space/api/keys", headers=origin.cookie())
    assert [k["name"] for k in await listed.json()] == ["good", "off"]
    micros = await (
        await origin.request("GET", "/__space/api/micros", headers=origin.cookie())
    ).json()
    assert {m["name"]: m["port"] for m in micros} == {
        name: address[1] for name, address in origin.micro_addresses.items()
    }


async def test_a_key_made_by_the_owner_opens_the_micro_at_once(origin: Origin) -> None:
    made = await origin.request(
        "POST",
        "/__space/api/keys",
        json={"name": "fresh"},
        headers={"Origin": origin.url, **origin.cookie()},
    )
    assert made.status == 201
    key = (await made.json())["api_key"]
    reply = await origin.request("GET", "/api/x", headers={"X-Space-App-Key": key})
    assert reply.status == 200
    assert headers_of(await reply.json())["x-space-key-name"] == ["fresh"]
    # Switched off from the settings page's form, it is refused at once.
    off = await origin.request(
        "POST",
        "/__space/settings/keys/fresh/disable",
        headers={"Origin": origin.url, **origin.cookie()},
    )
    assert off.status == 303
    assert off.headers["Location"] == "/__space/settings?done=key-disabled&key=fresh#result"
    assert (await origin.request("GET", "/api/x", headers={"X-Space-App-Key": key})).status == 401
    notice = await origin.request(
        "GET", off.headers["Location"].split("#")[0], headers=origin.cookie()
    )
    assert "Key fresh is switched off" in await notice.text()


async def test_the_settings_form_makes_a_key_and_shows_it_once(origin: Origin) -> None:
    response = await origin.request(
        "POST",
        "/__space/settings/keys",
        data={"name": "by-form", "client_type": "ci"},
        headers={"Origin": origin.url, **origin.cookie()},
    )
    assert response.status == 201
    page = await response.text()
    made = {k.name: k for k in origin.store.keys.list(APP)}["by-form"]
    assert made.prefix in page and "curl -H" in page
    taken = await origin.request(
        "POST",
        "/__space/settings/keys",
        data={"name": "by-form"},
        headers={"Origin": origin.url, **origin.cookie()},
    )
    assert taken.status == 409


async def test_the_restart_button_restarts_the_micro_and_goes_back(origin: Origin) -> None:
    response = await origin.request(
        "POST",
        "/__space/settings/micros/api/restart",
        data={"next": "/api/open"},
        headers={"Origin": origin.url, **origin.cookie()},
    )
    assert response.status == 303 and response.headers["Location"] == "/api/open"
    assert origin.restarted == [("api", "restarted from the settings page")]
    unknown = await origin.request(
        "POST",
        "/__space/settings/micros/nope/restart",
        headers={"Origin": origin.url, **origin.cookie()},
    )
    assert unknown.status == 404


async def test_the_owners_api_switches_revokes_and_configures(origin: Origin) -> None:
    owner = {"Origin": origin.url, **origin.cookie()}
    good = {"X-Space-App-Key": origin.credentials["key-good"]}
    off = await origin.request(
        "PATCH", "/__space/api/keys/good", json={"active": False}, headers=owner
    )
    assert off.status == 200 and (await off.json())["active"] is False
    assert (await origin.request("GET", "/api/x", headers=good)).status == 401
    on = await origin.request(
        "PATCH", "/__space/api/keys/good", json={"active": True}, headers=owner
    )
    assert on.status == 200
    assert (await origin.request("GET", "/api/x", headers=good)).status == 200
    for body in ({"active": "no"}, {"name": "renamed"}, ["not", "an", "object"]):
        bad = await origin.request("PATCH", "/__space/api/keys/good", json=body, headers=owner)
        assert bad.status == 400, body
    gone = await origin.request("DELETE", "/__space/api/keys/good", headers=owner)
    assert gone.status == 204
    assert (await origin.request("GET", "/api/x", headers=good)).status == 401
    missing = await origin.request("DELETE", "/__space/api/keys/good", headers=owner)
    assert missing.status == 404
    env = await (await origin.request("GET", "/__space/api/env", headers=owner)).json()
    assert env["values"] == {"GREETING": "hello"}
    saved = await origin.request("PUT", "/__space/api/env", json={"GREETING": "hi"}, headers=owner)
    assert saved.status == 200 and (await saved.json())["values"] == {"GREETING": "hi"}
    unknown = await origin.request("PUT", "/__space/api/env", json={"NOPE": "x"}, headers=owner)
    assert unknown.status == 400
    assert origin.store.get_env(APP) == {"GREETING": "hi"}


async def test_the_settings_forms_save_the_configuration_and_revoke_a_key(origin: Origin) -> None:
    owner = {"Origin": origin.url, **origin.cookie()}
    saved = await origin.request(
        "POST", "/__space/settings/env", data={"env.GREETING": "hey"}, headers=owner
    )
    assert saved.status == 303
    assert origin.store.get_env(APP) == {"GREETING": "hey"}
    page = await origin.request(
        "GET", saved.headers["Location"].split("#")[0], headers=origin.cookie()
    )
    assert "Configuration saved." in await page.text()
    unknown = await origin.request(
        "POST", "/__space/settings/env", data={"env.NOPE": "x"}, headers=owner
    )
    assert unknown.status == 400 and "unknown configuration name" in (await unknown.text()).lower()
    revoked = await origin.request("POST", "/__space/settings/keys/good/revoke", headers=owner)
    assert revoked.status == 303
    assert [k.name for k in origin.store.keys.list(APP)] == ["off"]
    again = await origin.request("POST", "/__space/settings/keys/good/revoke", headers=owner)
    assert again.status == 404
    odd = await origin.request("POST", "/__space/settings/keys/off/explode", headers=owner)
    assert odd.status == 404
    typed = await origin.request("GET", "/__space/settings/keys", headers=origin.cookie())
    assert typed.status == 303 and typed.headers["Location"] == "/__space/settings#keys"
