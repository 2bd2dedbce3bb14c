"""The `allow` language and the gate's decision, as tables over plain values."""

from __future__ import annotations

import pytest

from runtime.auth.policy import (
    INVALID_KEY,
    MAX_DEPTH,
    Context,
    Credential,
    Decision,
    ExpressionError,
    MicroPolicy,
    compile_rules,
    decide,
    parse_allow,
    policy_for,
)
from runtime.auth.routes import PublicRoutes
from runtime.errors import SpaceDevError
from runtime.models import Micro, Principal, RouteRule

ADMIN_KEY = Context(client_type="admin")
READER_KEY = Context(client_type="reader")
BARE_KEY = Context()
ALICE = Context(user="alice", groups=frozenset({"ops", "dev-team"}))
BOB = Context(user="bob")

# --- expressions: value -------------------------------------------------------------------

EVALUATED = [
    ("true", BARE_KEY, True),
    ("false", BARE_KEY, False),
    ('clientType == "admin"', ADMIN_KEY, True),
    ('clientType == "admin"', READER_KEY, False),
    ('clientType == "admin"', ALICE, False),  # null equals nothing
    ('clientType != "admin"', READER_KEY, True),
    ('clientType != "admin"', ALICE, True),  # != is !(==), null included
    ("clientType == user", BARE_KEY, False),  # not even null equals null
    ("clientType != user", BARE_KEY, True),
    ("'admin' == clientType", ADMIN_KEY, True),
    ('user == "alice"', ALICE, True),
    ('user == "alice"', BOB, False),
    ('user == "alice"', ADMIN_KEY, False),
    ("groups.ops", ALICE, True),
    ("groups.ops", BOB, False),
    ("groups.ops", ADMIN_KEY, False),
    ("groups.dev-team", ALICE, True),
    ("!groups.ops", BOB, True),
    ("!!groups.ops", ALICE, True),
    ('clientType == "admin" || groups.ops', ADMIN_KEY, True),
    ('clientType == "admin" || groups.ops', ALICE, True),
    ('clientType == "admin" || groups.ops', BOB, False),
    ('groups.ops && user == "alice"', ALICE, True),
    ('groups.ops && user == "bob"', ALICE, False),
    ("true || false && false", BARE_KEY, True),  # && binds tighter than ||
    ("(true || false) && false", BARE_KEY, False),
    ("!true == false", BARE_KEY, True),  # ! binds tighter than ==
    ("!(true == false)", BARE_KEY, True),
    ("groups.ops == true", ALICE, True),
    ("groups.ops != groups.dev-team", ALICE, False),
    ('user == "a\\"b"', Context(user='a"b'), True),
    ("user == 'it\\'s'", Context(user="it's"), True),
    ('user == "back\\\\slash"', Context(user="back\\slash"), True),
    ('user == "tab\\there"', Context(user="tab\there"), True),
    ('user == "ünï"', Context(user="ünï"), True),
    ("  (  groups.ops  )  ", ALICE, True),
    ('clientType=="admin"&&!groups.x', ADMIN_KEY, True),
    (" || ".join(["false"] * 2000 + ["true"]), BARE_KEY, True),  # long chains cost no depth
    ("(" * MAX_DEPTH + "true" + ")" * MAX_DEPTH, BARE_KEY, True),
    ("!" * MAX_DEPTH + "true", BARE_KEY, True),
]


@pytest.mark.parametrize(("source", "ctx", "expected"), EVALUATED)
def test_evaluate(source: str, ctx: Context, expected: bool) -> None:
    assert parse_allow(source).evaluate(ctx) is expected


# --- expressions: shape ---------------------------------------------------------------------

SHAPES = [
    ("true || false && true", "(true || (false && true))"),
    ("true && false || true", "((true && false) || true)"),
    ("!true && false", "((!true) && false)"),
    ("!true == false", "((!true) == false)"),
    ('clientType == "x" && user != "y"', '((clientType == "x") && (user != "y"))'),
    ("groups.a || groups.b", "(groups.a || groups.b)"),
    ("true && true && false", "(true && true && false)"),
    ("((true))", "true"),
    ("user == 'say \"hi\"'", '(user == "say \\"hi\\"")'),
]


@pytest.mark.parametrize(("source", "shape"), SHAPES)
def test_precedence(source: str, shape: str) -> None:
    assert str(parse_allow(source)) == shape


@pytest.mark.parametrize(
    ("source", "mentions"),
    [
        ('user == "a"', True),
        ('groups.ops || !(user != "a")', True),
        ("(user == clientType) == true", True),
        ('clientType == "x"', False),
        ("groups.user", False),
        ('clientType == "user"', False),
    ],
)
def test_mentions_user(source: str, mentions: bool) -> None:
    assert parse_allow(source).mentions_user() is mentions


# --- expressions: errors --------------------------------------------------------------------

INVALID = [
    ("", 1, "empty"),
    ("   ", 4, "empty"),
    ("clinetType == 'x'", 1, 'did you mean "clientType"'),
    ("ClientType == 'x'", 1, 'did you mean "clientType"'),
    ("grups.ops", 1, 'did you mean "groups.ops"'),
    ("User == 'x'", 1, 'did you mean "user"'),
    ("True", 1, 'did you mean "true"'),
    ("admin", 1, 'unknown name "admin"'),
    ("groups", 1, "groups.NAME"),
    ("groups.", 1, "groups.NAME"),
    ("groups.ops and true", 12, "use && for and"),
    ("not groups.ops", 1, "use ! for not"),
    ("clientType == null", 15, "missing value"),
    ("clientType = 'x'", 12, "use =="),
    ("groups.a & groups.b", 10, "use &&"),
    ("groups.a | groups.b", 10, "use ||"),
    ("groups.a # x", 10, "unexpected '#'"),
    ("clientType == 'x", 15, "no closing '"),
    ('user == "abc', 9, "no closing"),
    ('user == "a\\qb"', 11, "unknown escape"),
    ("(true", 6, "expected ) to close the ( at column 1"),
    ("(true || (false)", 17, "column 1"),
    ("true)", 5, "unexpected ')'"),
    ("true false", 6, "unexpected 'false'"),
    ("true &&", 8, "end of the expression"),
    ("|| true", 1, "found '||'"),
    ("()", 2, "found ')'"),
    ("!", 2, "end of the expression"),
    ("clientType", 1, "is text"),
    ("'admin'", 1, "is text"),
    ("clientType && true", 1, "is text"),
    ("true || user", 9, "is text"),
    ("!clientType == 'x'", 2, "is text"),
    ("clientType == true", 12, "compares text with text"),
    ("groups.a == 'x'", 10, "compares text with text"),
    ("user == 'a' == true", 13, "do not chain"),
    ("(" * (MAX_DEPTH + 1) + "true" + ")" * (MAX_DEPTH + 1), MAX_DEPTH + 1, "deeper than 100"),
    ("!" * (MAX_DEPTH + 1) + "true", MAX_DEPTH + 1, "deeper than 100"),
    ("(" * 5000, MAX_DEPTH + 1, "deeper than 100"),
    ("!" * 5000 + "true", MAX_DEPTH + 1, "deeper than 100"),
]


@pytest.mark.parametrize(("source", "column", "message"), INVALID)
def test_invalid(source: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_allow(source)
    error = caught.value
    assert error.column == column
    assert message in error.reason
    assert isinstance(error, SpaceDevError)
    assert f"column {column}" in error.message


def test_error_shows_where() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_allow("groups.ops || clinetType == 'x'")
    assert caught.value.hint.splitlines() == [
        "  groups.ops || clinetType == 'x'",
        "                ^",
    ]


def test_compile_rules_names_the_rule_and_line() -> None:
    rules = [
        RouteRule(micro="api", path="/a/*", allow="groups.ops"),
        RouteRule(micro="api", path="/admin/*", allow="grups.ops || x", line=12),
    ]
    with pytest.raises(ExpressionError) as caught:
        compile_rules(rules)
    error = caught.value
    assert (error.line, error.column) == (12, 1)
    assert error.message.startswith('line 12: route rule for micro "api", path "/admin/*"')
    assert 'did you mean "groups.ops"' in error.message


def test_compile_rules_methods() -> None:
    (rule,) = compile_rules([RouteRule(micro="api", path="/x", methods=("get", "Post"))])
    assert rule.methods == frozenset({"GET", "HEAD", "POST"})
    (every,) = compile_rules([RouteRule(micro="api", path="/x")])
    assert every.methods is None and every.allow is None


# --- decisions -----------------------------------------------------------------------------

OWNER = Principal(kind="session", user="dev", owner=True)
ALICE_S = Principal(kind="session", user="alice", groups=frozenset({"ops"}))
BOB_S = Principal(kind="session", user="bob")
KEY = Principal(kind="api-key", owner=True, key_name="ci", client_type="")
ADMIN_K = Principal(kind="api-key", owner=True, key_name="adm", client_type="admin")
READER_K = Principal(kind="api-key", owner=True, key_name="rd", client_type="reader")

RULES = compile_rules(
    [
        RouteRule(micro="api", path="/admin/*", methods=("POST", "DELETE"), api_key_required=True),
        RouteRule(micro="api", path="/admin/*", allow='clientType == "admin" || groups.ops'),
        RouteRule(micro="api", path="/ops/*", allow="groups.ops"),
        RouteRule(micro="api", path="/alice", allow='user == "alice"'),
        RouteRule(micro="api", path="/keys-only/*", api_key_required=True),
        RouteRule(micro="api", path="/get-only", methods=("GET",), allow="false"),
        RouteRule(micro="www", path="/*", allow="false"),  # another micro's rule: ignored
    ]
)
API = MicroPolicy(
    micro="api",
    public_routes=PublicRoutes(["/public/*", "/*.png"]),
    api_keys=True,
    rules=tuple(r for r in RULES if r.micro == "api"),
)
NO_KEYS = MicroPolicy(micro="www", public_routes=PublicRoutes(["/login"]))
OPEN = MicroPolicy(micro="open", public=True, rules=API.rules)

A = Decision
DECISIONS: list[tuple[MicroPolicy, str, str, Credential, Decision]] = [
    # 1. public: no credential needed, a bad key ignored, rules not consulted
    (API, "/public/x", "GET", None, A.ALLOW_PUBLIC),
    (API, "/public/", "POST", INVALID_KEY, A.ALLOW_PUBLIC),
    (API, "/logo.png", "GET", BOB_S, A.ALLOW_PUBLIC),
    (OPEN, "/admin/x", "DELETE", None, A.ALLOW_PUBLIC),
    (OPEN, "/anything", "GET", INVALID_KEY, A.ALLOW_PUBLIC),
    (NO_KEYS, "/login", "GET", KEY, A.ALLOW_PUBLIC),
    # 4. nothing: sign in
    (API, "/", "GET", None, A.UNAUTHENTICATED),
    (API, "/public", "GET", None, A.UNAUTHENTICATED),
    (API, "/admin/x", "POST", None, A.UNAUTHENTICATED),
    (NO_KEYS, "/", "GET", None, A.UNAUTHENTICATED),
    # 2. keys: a bad one is 401 whatever else; a good one only where api_keys is on
    (API, "/", "GET", INVALID_KEY, A.UNAUTHORIZED_401),
    (NO_KEYS, "/", "GET", INVALID_KEY, A.UNAUTHORIZED_401),
    (API, "/", "GET", KEY, A.ALLOW_API_KEY),
    (NO_KEYS, "/", "GET", KEY, A.UNAUTHORIZED_401),
    (API, "/keys-only/x", "GET", KEY, A.ALLOW_API_KEY),
    (API, "/admin/x", "POST", ADMIN_K, A.ALLOW_API_KEY),
    (API, "/admin/x", "POST", READER_K, A.FORBIDDEN_403),
    (API, "/admin/x", "GET", KEY, A.FORBIDDEN_403),  # no client type: null
    (API, "/ops/x", "GET", ADMIN_K, A.FORBIDDEN_403),  # keys are in no group
    (API, "/alice", "GET", ADMIN_K, A.FORBIDDEN_403),
    # 3. sessions: the owner
    (API, "/", "GET", OWNER, A.ALLOW_SESSION),
    (NO_KEYS, "/", "GET", OWNER, A.ALLOW_SESSION),
    (API, "/admin/x", "GET", OWNER, A.ALLOW_SESSION),  # allow without `user`: owner passes
    (API, "/admin/x", "POST", OWNER, A.FORBIDDEN_403),  # api_key_required
    (API, "/keys-only/", "GET", OWNER, A.FORBIDDEN_403),
    (API, "/ops/x", "GET", OWNER, A.ALLOW_SESSION),
    (API, "/alice", "GET", OWNER, A.FORBIDDEN_403),  # mentions `user`: evaluated literally
    # 3. sessions: others only where a rule admits them
    (API, "/", "GET", ALICE_S, A.FORBIDDEN_403),
    (NO_KEYS, "/", "GET", ALICE_S, A.FORBIDDEN_403),
    (API, "/ops/x", "GET", ALICE_S, A.ALLOW_SESSION),
    (API, "/ops/x", "GET", BOB_S, A.FORBIDDEN_403),
    (API, "/admin/x", "GET", ALICE_S, A.ALLOW_SESSION),
    (API, "/admin/x", "DELETE", ALICE_S, A.FORBIDDEN_403),
    (API, "/alice", "GET", ALICE_S, A.ALLOW_SESSION),
    (API, "/alice/", "GET", ALICE_S, A.ALLOW_SESSION),
    (API, "/alice", "GET", BOB_S, A.FORBIDDEN_403),
    (API, "/keys-only/x", "GET", ALICE_S, A.FORBIDDEN_403),
    # methods: a GET rule covers HEAD, not POST; method case does not matter
    (API, "/get-only", "GET", OWNER, A.ALLOW_SESSION),
    (API, "/get-only", "GET", KEY, A.FORBIDDEN_403),
    (API, "/get-only", "HEAD", KEY, A.FORBIDDEN_403),
    (API, "/get-only", "POST", KEY, A.ALLOW_API_KEY),
    (API, "/admin/x", "post", OWNER, A.FORBIDDEN_403),
    # the query never reaches decide; the path is the micro's own, after normalisation
    # a `/x/*` rule's limits hold at `/x` too: a router mounted at `/admin` answers `/admin`
    (API, "/admin", "POST", OWNER, A.FORBIDDEN_403),
    (API, "/ADMIN", "DELETE", OWNER, A.FORBIDDEN_403),
    (API, "/admin", "GET", KEY, A.FORBIDDEN_403),
    (API, "/admin", "POST", ADMIN_K, A.ALLOW_API_KEY),
    (API, "/keys-only", "GET", OWNER, A.FORBIDDEN_403),
    (API, "/ops", "GET", OWNER, A.ALLOW_SESSION),
    (API, "/administrator", "POST", OWNER, A.ALLOW_SESSION),  # another folder
    # ...but what a rule admits stays where it says: alice is in `/ops/*`, not at `/ops`
    (API, "/ops", "GET", ALICE_S, A.FORBIDDEN_403),
    (API, "/ops/", "GET", ALICE_S, A.ALLOW_SESSION),
    # letter case: limits hold in every case (Express routes `/ADMIN` to `/admin`)...
    (API, "/ADMIN/x", "POST", OWNER, A.FORBIDDEN_403),
    (API, "/Admin/x", "DELETE", OWNER, A.FORBIDDEN_403),
    (API, "/aDmIn/x", "POST", READER_K, A.FORBIDDEN_403),
    (API, "/ADMIN/x", "POST", ADMIN_K, A.ALLOW_API_KEY),
    (API, "/KEYS-ONLY/x", "GET", OWNER, A.FORBIDDEN_403),
    (API, "/ALICE", "GET", OWNER, A.FORBIDDEN_403),
    (API, "/Get-Only", "GET", KEY, A.FORBIDDEN_403),
    (API, "/OPS/x", "GET", BOB_S, A.FORBIDDEN_403),
    # ...admission only in the case the rule names; public routes likewise
    (API, "/ALICE", "GET", ALICE_S, A.FORBIDDEN_403),
    (API, "/Ops/x", "GET", ALICE_S, A.FORBIDDEN_403),
    (API, "/ADMIN/x", "GET", ALICE_S, A.FORBIDDEN_403),
    (API, "/PUBLIC/x", "GET", None, A.UNAUTHENTICATED),
    (API, "/logo.PNG", "GET", None, A.UNAUTHENTICATED),
]


@pytest.mark.parametrize(("policy", "path", "method", "credential", "expected"), DECISIONS)
def test_decide(
    policy: MicroPolicy, path: str, method: str, credential: Credential, expected: Decision
) -> None:
    assert decide(policy, path, method, credential) is expected


@pytest.mark.parametrize(
    ("decision", "allowed", "how", "status"),
    [
        (Decision.ALLOW_PUBLIC, True, "public", None),
        (Decision.ALLOW_SESSION, True, "session", None),
        (Decision.ALLOW_API_KEY, True, "api-key", None),
        (Decision.UNAUTHENTICATED, False, None, None),
        (Decision.UNAUTHORIZED_401, False, None, 401),
        (Decision.FORBIDDEN_403, False, None, 403),
    ],
)
def test_decision_values(decision: Decision, allowed: bool, how: str | None, status: int) -> None:
    assert (decision.allowed, decision.how, decision.status) == (allowed, how, status)


def _micro(**fields: object) -> Micro:
    base: dict[str, object] = {
        "name": "api",
        "src": "/",
        "engine": "python3.9",
        "primary": False,
        "path": "/api",
    }
    return Micro(**{**base, **fields})  # type: ignore[arg-type]


def test_policy_for() -> None:
    micro = _micro(public_routes=("/docs",), api_keys=True)
    policy = policy_for(micro, RULES)
    assert policy.micro == "api" and policy.api_keys and not policy.public
    assert policy.public_routes.matches("/docs")
    assert {r.micro for r in policy.rules} == {"api"}
    assert decide(policy, "/x", "GET", None) is Decision.UNAUTHENTICATED
    switched_off = policy_for(micro, RULES, auth_enabled=False)
    assert decide(switched_off, "/x", "GET", None) is Decision.ALLOW_PUBLIC
    assert policy_for(_micro(public=True)).public
