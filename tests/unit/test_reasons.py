"""Why the gate decided: each kind of decision in the words the requests view shows, and what a
request record keeps (never a query value)."""

from __future__ import annotations

import pytest

from runtime.auth.policy import (
    INVALID_KEY,
    Credential,
    MicroPolicy,
    Why,
    compile_rules,
    decide,
    judge,
)
from runtime.auth.reasons import verdict_words, who
from runtime.auth.routes import PublicRoutes
from runtime.models import Principal, RouteRule
from runtime.serve.request_log import GateWhy, RequestLog, RequestRecord, masked_path

OWNER = Principal(kind="session", user="dev", owner=True)
BOB = Principal(kind="session", user="bob", groups=frozenset({"ops"}))
LAPTOP = Principal(kind="api-key", owner=True, key_name="laptop", client_type="admin")
READER = Principal(kind="api-key", owner=True, key_name="phone", client_type="reader")

RULES = compile_rules(
    [
        RouteRule(micro="api", path="/admin/*", allow='clientType == "admin"'),
        RouteRule(micro="api", path="/keys-only/*", api_key_required=True),
        RouteRule(micro="api", path="/owner/*"),
        RouteRule(micro="api", path="/ops/*", allow="groups.ops"),
    ]
)
API = MicroPolicy(micro="api", public_routes=PublicRoutes(["/health"]), api_keys=True, rules=RULES)
NO_KEYS = MicroPolicy(micro="web")
PUBLIC = MicroPolicy(micro="site", public=True)


def words(
    policy: MicroPolicy, path: str, credential: Credential, status: int = 0, method: str = "GET"
) -> str:
    verdict = judge(policy, path, method, credential)
    # `decide` is `judge` without the why: the two never disagree.
    assert verdict.decision is decide(policy, path, method, credential)
    return verdict_words(
        verdict, status or (verdict.decision.status or 200), policy.micro, path, credential
    )


@pytest.mark.parametrize(
    ("policy", "path", "credential", "status", "expected"),
    [
        (
            PUBLIC,
            "/x",
            None,
            0,
            "allowed: site is public (public: true, or its login is switched off)",
        ),
        (API, "/health", None, 0, "allowed: a public route of api matches /health"),
        (
            API,
            "/notes",
            None,
            401,
            "401: no session and no key; no public route of api matches /notes",
        ),
        (
            API,
            "/notes",
            None,
            303,
            "303 to the login page: no session and no key; no public route of api matches /notes",
        ),
        (
            API,
            "/notes",
            INVALID_KEY,
            0,
            "401: the key sent is none of this app's keys that are "
            "switched on (unknown, switched off, revoked, or another "
            "app's)",
        ),
        (
            NO_KEYS,
            "/",
            LAPTOP,
            0,
            "401: web does not take API keys (its Spacefile has no presets.api_keys)",
        ),
        (
            API,
            "/keys-only/x",
            OWNER,
            0,
            "403: the rule on /keys-only/* requires an API key, and owner dev sent none",
        ),
        (
            API,
            "/owner/x",
            BOB,
            0,
            "403: the rule on /owner/* admits only the owner and the app's keys, not user bob",
        ),
        (
            API,
            "/admin/x",
            READER,
            0,
            '403: the rule on /admin/* allows `clientType == "admin"`, '
            "which is false for key phone (client type reader)",
        ),
        (
            API,
            "/notes",
            BOB,
            0,
            "403: user bob is signed in, but no rule of api admits them at /notes",
        ),
        (
            API,
            "/admin/x",
            LAPTOP,
            0,
            "allowed: key laptop (client type admin) by the rule on /admin/*",
        ),
        (API, "/ops/x", BOB, 0, "allowed: user bob by the rule on /ops/*"),
        (API, "/notes", OWNER, 0, "allowed: owner dev's session"),
        (
            API,
            "/notes",
            LAPTOP,
            0,
            "allowed: key laptop (client type admin), one of the app's keys, which api takes",
        ),
    ],
)
def test_each_decision_in_words(
    policy: MicroPolicy, path: str, credential: Credential, status: int, expected: str
) -> None:
    assert words(policy, path, credential, status) == expected


def test_every_kind_of_why_has_its_own_words() -> None:
    cases = {
        Why.PUBLIC_MICRO: (PUBLIC, "/", None),
        Why.PUBLIC_ROUTE: (API, "/health", None),
        Why.NO_CREDENTIAL: (API, "/", None),
        Why.WRONG_KEY: (API, "/", INVALID_KEY),
        Why.KEYS_NOT_ACCEPTED: (NO_KEYS, "/", LAPTOP),
        Why.UNKNOWN_CREDENTIAL: (API, "/", object()),
        Why.KEY_REQUIRED: (API, "/keys-only/a", OWNER),
        Why.OWNER_AND_KEYS_ONLY: (API, "/owner/a", BOB),
        Why.ALLOW_FALSE: (API, "/admin/a", READER),
        Why.NO_RULE_ADMITS: (API, "/", BOB),
        Why.BY_RULE: (API, "/admin/a", LAPTOP),
        Why.OWNER: (API, "/", OWNER),
        Why.APP_KEY: (API, "/", LAPTOP),
    }
    assert set(cases) == set(Why)
    seen = set()
    for why, (policy, path, credential) in cases.items():
        verdict = judge(policy, path, "GET", credential)  # type: ignore[arg-type]
        assert verdict.why is why
        text = verdict_words(verdict, 401, policy.micro, path, credential)  # type: ignore[arg-type]
        assert text not in seen and text.split(": ", 1)[1] != why.value  # never the bare code
        seen.add(text)


def test_the_rule_that_refused_is_named_even_when_another_admitted_first() -> None:
    rules = compile_rules(
        [
            RouteRule(micro="api", path="/a/*", allow="true"),
            RouteRule(micro="api", path="/a/b", api_key_required=True),
        ]
    )
    policy = MicroPolicy(micro="api", rules=rules)
    verdict = judge(policy, "/a/b", "GET", OWNER)
    assert verdict.why is Why.KEY_REQUIRED and verdict.rule is rules[1]


def test_who_is_asking_in_words() -> None:
    assert who(None) == "anonymous"
    assert who(INVALID_KEY) == "a wrong key"
    assert who(OWNER) == "owner dev"
    assert who(BOB) == "user bob"
    assert who(Principal(kind="api-key", owner=True, key_name="ci")) == "key ci"


def test_a_kept_path_has_the_query_names_never_the_values() -> None:
    assert masked_path("/notes", "") == "/notes"
    assert masked_path("/a", "token=s3cr3t&x=1&flag") == "/a?token=…&x=…&flag=…"
    assert len(masked_path("/" + "x" * 5000, "")) < 400


def test_gate_refusals_in_words_and_a_bounded_log() -> None:
    log = RequestLog(3)
    for status, why in (
        (403, GateWhy.CROSS_SITE_LOAD),
        (404, GateWhy.NO_MICRO),
        (400, GateWhy.BAD_PATH),
        (429, GateWhy.TOO_MANY_WRONG_KEYS),
    ):
        record = RequestRecord("GET")
        record.status, record.why = status, why
        log.add(record)
    kept = log.records()
    assert [r.seq for r in kept] == [2, 3, 4]  # the oldest went
    assert log.records(3)[0].reason() == "429: too many wrong keys from this client: slowed down"
    first = RequestRecord("GET")
    first.status, first.why = 403, GateWhy.CROSS_SITE_LOAD
    assert first.reason() == "403: cross-site load of a private resource"
    assert RequestRecord("GET").reason() == ""  # the gate did not decide (yet)
