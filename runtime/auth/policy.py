"""Who may pass the gate: route rules and one decision over plain values.

Loaders (gate) only find out who is asking; `decide` alone says whether they pass, in this
order: public, then an API key, then a session, else "sign in". Decisions made where the
contract is silent:

- Public wins outright: on a public micro or public route, route rules are not consulted (and a
  bad key is ignored), as the contract's order says (docs/contract.md, "The decision, in
  order"). `auth disable` makes a micro public the same way.
- Every rule matching (micro, path, method) must pass. A rule listing GET also covers HEAD, which
  frameworks answer with the GET handler. A rule's limits (`api_key_required`, a false `allow`)
  hold in every letter case of its path, since Express and koa route `/ADMIN` to `/admin`, and
  a `/x/*` rule's hold at `/x` too, which a router mounted at `/x` answers; the access it grants
  a signed-in non-owner holds only in the case and the paths it names. Public routes, too,
  are public only in the case they name.
- A rule with no `allow` admits the owner's session and the app's keys (keys belong to the owner).
- With an `allow`, keys pass when it is true. The owner's session passes too, unless the
  expression mentions `user`: then it is evaluated for the owner like anyone else, so
  `user == "alice"` really means alice alone.
- In `allow`, `clientType` is the key's client type (null for a session and for a key without
  one) and `user` the session's user name (null for a key); `groups.X` is true when the session's
  user is in group X (never for a key). Null equals nothing, not even null, and `a != b` is
  always `!(a == b)`: `clientType != "guest"` is true for a session.
- The expression language itself is in `allow.py` (re-exported here).

`judge` gives the decision with why it was made (`Verdict`: a kind and the rule, if one
decided); `reasons.py` turns that into words only when someone looks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from runtime.auth.allow import MAX_DEPTH, Context, Expr, ExpressionError
from runtime.auth.allow_parser import parse_allow
from runtime.auth.routes import PublicRoutes, RoutePattern, compile_pattern
from runtime.errors import SpaceDevError
from runtime.models import AppConfig, Micro, Principal, RouteRule, Spacefile

__all__ = [
    "INVALID_KEY",
    "MAX_DEPTH",
    "CompiledRule",
    "Context",
    "Credential",
    "Decision",
    "Verdict",
    "Why",
    "Expr",
    "ExpressionError",
    "InvalidKey",
    "MicroPolicy",
    "compile_rule",
    "compile_rules",
    "decide",
    "judge",
    "parse_allow",
    "policy_for",
]

# --- route rules and the decision ----------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    """A route rule ready for every request: pattern compiled, expression parsed."""

    micro: str
    pattern: RoutePattern
    methods: frozenset[str] | None  # None: every method
    api_key_required: bool = False
    allow: Expr | None = None
    names_user: bool = False  # the allow expression mentions `user`
    line: int | None = None
    allow_text: str | None = None  # as written, for the reason shown in the requests view

    def applies(self, sub_path: str, method: str) -> bool:
        """Whether the rule covers this method and normalised path relative to the micro, in
        the letter case the pattern names: where the rule admits someone."""
        methods = self.methods
        return (methods is None or method in methods) and self.pattern.matches(sub_path)

    def restricts(self, sub_path: str, method: str) -> bool:
        """Whether the rule's limits hold here: the same in any letter case, and a `/x/*` rule at
        `/x` as well (`RoutePattern.restricts`)."""
        methods = self.methods
        return (methods is None or method in methods) and self.pattern.restricts(sub_path)


def compile_rule(rule: RouteRule) -> CompiledRule:
    """One rule, its allow parsed; a bad expression names the rule and its line."""
    allow = None
    if rule.allow is not None:
        try:
            allow = parse_allow(rule.allow)
        except ExpressionError as err:
            raise ExpressionError(
                err.reason,
                err.column,
                source=err.source,
                line=rule.line,
                where=f'route rule for micro "{rule.micro}", path "{rule.path}"',
            ) from None
    methods = None
    if rule.methods is not None:
        names = {m.upper() for m in rule.methods}
        if "GET" in names:
            names.add("HEAD")
        methods = frozenset(names)
    return CompiledRule(
        micro=rule.micro,
        pattern=compile_pattern(rule.path),
        methods=methods,
        api_key_required=rule.api_key_required,
        allow=allow,
        names_user=allow is not None and allow.mentions_user(),
        line=rule.line,
        allow_text=rule.allow,
    )


def compile_rules(rules: Iterable[RouteRule]) -> tuple[CompiledRule, ...]:
    """Every rule compiled once, at load time; the first bad expression raises."""
    return tuple(compile_rule(rule) for rule in rules)


@dataclass(frozen=True)
class MicroPolicy:
    """Everything the gate needs to decide for one micro."""

    micro: str
    public: bool = False  # `public: true`, or auth switched off for it
    public_routes: PublicRoutes = PublicRoutes()
    api_keys: bool = False  # `presets.api_keys`
    rules: tuple[CompiledRule, ...] = ()  # this micro's rules only


def policy_for(
    micro: Micro, rules: Iterable[CompiledRule] = (), *, auth_enabled: bool = True
) -> MicroPolicy:
    """The policy of one micro of a Spacefile, with the app's compiled rules for it."""
    return MicroPolicy(
        micro=micro.name,
        public=micro.public or not auth_enabled,
        public_routes=PublicRoutes(micro.public_routes),
        api_keys=micro.api_keys,
        rules=tuple(r for r in rules if r.micro == micro.name),
    )


class InvalidKey(Enum):
    """The type of INVALID_KEY."""

    INVALID_KEY = "invalid-key"


# A key was presented but is unknown, disabled or another app's: never rescued by a session.
INVALID_KEY = InvalidKey.INVALID_KEY
Credential = Principal | InvalidKey | None


class Decision(Enum):
    """What the gate does with a request."""

    ALLOW_PUBLIC = "public"
    ALLOW_SESSION = "session"
    ALLOW_API_KEY = "api-key"
    UNAUTHENTICATED = "unauthenticated"  # 303 to login for a browser navigation, else 401
    UNAUTHORIZED_401 = "unauthorized"
    FORBIDDEN_403 = "forbidden"

    @property
    def allowed(self) -> bool:
        return self in _ALLOWED

    @property
    def how(self) -> str | None:
        """The `X-Space-Auth` value of an allowed request: public, session or api-key."""
        return self.value if self in _ALLOWED else None

    @property
    def status(self) -> int | None:
        """The HTTP status of a refusal; None when allowed or when it depends on the request."""
        return _STATUS.get(self)


_ALLOWED = frozenset({Decision.ALLOW_PUBLIC, Decision.ALLOW_SESSION, Decision.ALLOW_API_KEY})
_STATUS = {Decision.UNAUTHORIZED_401: 401, Decision.FORBIDDEN_403: 403}


class Why(Enum):
    """Why `judge` decided as it did: a cheap value, put into words only when viewed."""

    PUBLIC_MICRO = "public-micro"  # `public: true`, or the login switched off
    PUBLIC_ROUTE = "public-route"
    NO_CREDENTIAL = "no-credential"  # no session and no key
    WRONG_KEY = "wrong-key"  # unknown, switched off, or another app's
    KEYS_NOT_ACCEPTED = "keys-not-accepted"  # the micro has no `presets.api_keys`
    UNKNOWN_CREDENTIAL = "unknown-credential"
    KEY_REQUIRED = "key-required"  # a rule's `api_key_required`, for a session
    OWNER_AND_KEYS_ONLY = "owner-and-keys-only"  # a rule with no `allow`, for a non-owner
    ALLOW_FALSE = "allow-false"  # a rule's `allow` is false for this caller
    NO_RULE_ADMITS = "no-rule-admits"  # a signed-in non-owner where no rule names the path
    BY_RULE = "by-rule"  # admitted, and a rule covering the path admitted them
    OWNER = "owner"  # the owner's session, no rule on the path
    APP_KEY = "app-key"  # one of the app's keys, no rule on the path


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision and why: the rule that decided it, when one did."""

    decision: Decision
    why: Why
    rule: CompiledRule | None = None


# Made once: most requests end in one of these, so judging them allocates nothing.
_PUBLIC_MICRO = Verdict(Decision.ALLOW_PUBLIC, Why.PUBLIC_MICRO)
_PUBLIC_ROUTE = Verdict(Decision.ALLOW_PUBLIC, Why.PUBLIC_ROUTE)
_NO_CREDENTIAL = Verdict(Decision.UNAUTHENTICATED, Why.NO_CREDENTIAL)
_WRONG_KEY = Verdict(Decision.UNAUTHORIZED_401, Why.WRONG_KEY)
_KEYS_NOT_ACCEPTED = Verdict(Decision.UNAUTHORIZED_401, Why.KEYS_NOT_ACCEPTED)
_UNKNOWN_CREDENTIAL = Verdict(Decision.UNAUTHORIZED_401, Why.UNKNOWN_CREDENTIAL)
_NO_RULE_ADMITS = Verdict(Decision.FORBIDDEN_403, Why.NO_RULE_ADMITS)
_OWNER = Verdict(Decision.ALLOW_SESSION, Why.OWNER)
_APP_KEY = Verdict(Decision.ALLOW_API_KEY, Why.APP_KEY)


def decide(policy: MicroPolicy, sub_path: str, method: str, credential: Credential) -> Decision:
    """The gate's decision for a normalised path relative to the micro, the rules in order."""
    return judge(policy, sub_path, method, credential).decision


def judge(policy: MicroPolicy, sub_path: str, method: str, credential: Credential) -> Verdict:
    """`decide`, with why."""
    if policy.public:
        return _PUBLIC_MICRO
    if policy.public_routes.matches(sub_path):
        return _PUBLIC_ROUTE
    if credential is None:
        return _NO_CREDENTIAL
    if credential is INVALID_KEY:
        return _WRONG_KEY
    if not isinstance(credential, Principal):
        return _UNKNOWN_CREDENTIAL
    if credential.kind == "api-key":
        if not policy.api_keys:
            return _KEYS_NOT_ACCEPTED
        return _rules_pass(policy, sub_path, method, credential, Decision.ALLOW_API_KEY)
    if credential.kind == "session":
        return _rules_pass(policy, sub_path, method, credential, Decision.ALLOW_SESSION)
    return _UNKNOWN_CREDENTIAL


def _rules_pass(
    policy: MicroPolicy, sub_path: str, method: str, who: Principal, allowed: Decision
) -> Verdict:
    is_key = allowed is Decision.ALLOW_API_KEY
    ctx: Context | None = None
    admitting: CompiledRule | None = None  # the first rule naming the path in its own case
    method = method.upper()
    for rule in policy.rules:
        if not rule.restricts(sub_path, method):
            continue
        # Limits hold in any letter case, admission only in the case the pattern names: for each
        # direction the safer reading wins (a case-sensitive micro may serve `/ADMIN` as another
        # route than `/admin`, one the rule never meant to open).
        if admitting is None and rule.applies(sub_path, method):
            admitting = rule
        if rule.api_key_required and not is_key:
            return Verdict(Decision.FORBIDDEN_403, Why.KEY_REQUIRED, rule)
        allow = rule.allow
        if allow is None:
            if is_key or who.owner:
                continue
            return Verdict(Decision.FORBIDDEN_403, Why.OWNER_AND_KEYS_ONLY, rule)
        if not is_key and who.owner and not rule.names_user:
            continue
        if ctx is None:
            ctx = (
                Context(client_type=who.client_type or None)
                if is_key
                else Context(user=who.user, groups=who.groups)
            )
        if not allow.evaluate(ctx):
            return Verdict(Decision.FORBIDDEN_403, Why.ALLOW_FALSE, rule)
    if admitting is not None:
        return Verdict(allowed, Why.BY_RULE, admitting)
    if is_key:
        return _APP_KEY
    if who.owner:
        return _OWNER
    return _NO_RULE_ADMITS  # a signed-in non-owner where no rule admits them


def compile_app_rules(cfg: AppConfig, sf: Spacefile) -> tuple[CompiledRule, ...]:
    """The app's route rules, parsed once; a rule for a micro the Spacefile lacks is an error."""
    names = [m.name for m in sf.micros]
    for rule in cfg.routes:
        if rule.micro not in names:
            where = f" (line {rule.line})" if rule.line else ""
            raise SpaceDevError(
                f"a route rule{where} names the micro {rule.micro!r}, which {cfg.path.name}'s "
                "Spacefile does not have",
                f"use one of: {', '.join(names)}",
            )
    return compile_rules(cfg.routes)
