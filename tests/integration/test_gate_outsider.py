"""The gate against an outsider's third round of attacks, one section per class of request that
got through (or crashed) before.

Same runtime as the attack corpus (`attack_env`); each attack is checked by its answer and, where
a micro could see it, by the echo micros' own record, with a positive control beside it.
"""

from __future__ import annotations

import pytest

from tests.integration.attack_env import MARKER, GateEnv, gate_env, received_with_marker

__all__ = ["gate_env"]  # the fixture, imported to be found by pytest

KEY = ("X-Space-App-Key", "{key}")
SESSION = ("Cookie", "space_session={session}")
ALICE = ("Cookie", "space_session={alice_session}")


# --- a `/x/*` rule at `/x` ------------------------------------------------------------------------

# `[[apps.routes]]` in attack_env: `/admin/*` needs a key, `/alice/*` is for alice alone. A
# router mounted at the folder (`app.use("/admin", router)`) answers `/admin` itself.
FOLDER_DODGES = [
    ("DELETE", "/api/admin", SESSION),
    ("GET", "/api/admin", SESSION),
    ("POST", "/api/ADMIN", SESSION),
    ("GET", "/api/Admin", SESSION),
    ("PUT", "/api/alice", SESSION),  # the rule names `user`: the owner is not alice
    ("GET", "/api/ALICE", SESSION),
]


@pytest.mark.parametrize(("method", "target", "cookie"), FOLDER_DODGES,
                         ids=[f"{m}-{t}" for m, t, _ in FOLDER_DODGES])
def test_a_rule_on_a_folder_holds_at_the_folder_itself(
    gate_env: GateEnv, method: str, target: str, cookie: tuple[str, str]
) -> None:
    marker = f"folder-{method}-{target}"
    reply = gate_env.request("gate", method, target, [cookie, (MARKER, marker)])
    assert reply.status == 403, (reply.status, reply.body[:200])
    assert not received_with_marker(gate_env.log, MARKER, marker), "a micro received it"


def test_the_folder_still_opens_for_what_the_rule_asks_and_admits_no_wider(
    gate_env: GateEnv,
) -> None:
    reply = gate_env.request("gate", "DELETE", "/api/admin", [KEY, (MARKER, "folder-key")])
    assert reply.status == 200 and reply.echo is not None and reply.echo["path"] == "/admin"
    assert gate_env.request("gate", "GET", "/api/alice/", [ALICE]).status == 200
    # What a rule grants stays where it says: alice is admitted under /alice/, not at /alice.
    assert gate_env.request("gate", "GET", "/api/alice", [ALICE]).status == 403
    # Another name that merely starts the same is no folder of the rule.
    assert gate_env.request("gate", "GET", "/api/administrator", [SESSION]).status == 200


# --- stored files on the app's origin -------------------------------------------------------------

DRIVE = "/__space/v0/drive/v1/anything/uploads"
STORED = [
    ("page.html", "text/html", b"<script>fetch('/__space/api/keys',{method:'POST'})</script>"),
    ("pic.svg", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
    ("typed-by-name.html", "", b"<script>alert(document.cookie)</script>"),
    ("photo.png", "image/png", b"\x89PNG not really"),
]


@pytest.mark.parametrize(("name", "ctype", "body"), STORED, ids=[s[0] for s in STORED])
def test_a_stored_file_cannot_run_as_a_page_on_the_apps_origin(
    gate_env: GateEnv, name: str, ctype: str, body: bytes
) -> None:
    """The Drive API is also served on the app's origin, where the owner's session opens
    `/__space/api/keys`. A file a visitor got stored (a public upload route) and the owner is
    led to open must not run there; the bytes and their type still arrive, for `fetch`, the
    SDKs and `<img>`."""
    headers = [SESSION, *([("Content-Type", ctype)] if ctype else [])]
    put = gate_env.request("gate", "POST", f"{DRIVE}/files?name={name}", headers, body)
    assert put.status == 201, put
    for method, extra, status in [("GET", [], 200), ("GET", [("Range", "bytes=0-3")], 206),
                                  ("HEAD", [], 200)]:
        got = gate_env.request("gate", method, f"{DRIVE}/files/download?name={name}",
                               [SESSION, ("Accept", "text/html"), *extra])
        assert got.status == status, got
        assert got.header("Content-Security-Policy") == "sandbox", got.headers
        assert got.header("X-Content-Type-Options") == "nosniff", got.headers
        assert (got.header("Content-Type") or "").startswith(ctype or "text/html")
        if method == "GET":
            assert got.body == (body[:4] if status == 206 else body)
