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
    "Expr",
    "ExpressionError",
    "InvalidKey",
    "MicroPolicy",
    "compile_rule",
    "compile_rules",
    "decide",
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


def decide(policy: MicroPolicy, sub_path: str, method: str, credential: Credential) -> Decision:
    """The gate's decision for a normalised path relative to the micro, the rules in order."""
    if policy.public or policy.public_routes.matches(sub_path):
        return Decision.ALLOW_PUBLIC
    if credential is None:
        return Decision.UNAUTHENTICATED
    if credential is INVALID_KEY or not isinstance(credential, Principal):
        return Decision.UNAUTHORIZED_401
    if credential.kind == "api-key":
        if not policy.api_keys:
            return Decision.UNAUTHORIZED_401
        return _rules_pass(policy, sub_path, method, credential, Decision.ALLOW_API_KEY)
    if credential.kind == "session":
        return _rules_pass(policy, sub_path, method, credential, Decision.ALLOW_SESSION)
    return Decision.UNAUTHORIZED_401


def _rules_pass(
    policy: MicroPolicy, sub_path: str, method: str, who: Principal, allowed: Decision
) -> Decision:
    is_key = allowed is Decision.ALLOW_API_KEY
    ctx: Context | None = None
    matched = False
    method = method.upper()
    for rule in policy.rules:
        if not rule.restricts(sub_path, method):
            continue
        # Limits hold in any letter case, admission only in the case the pattern names: for each
        # direction the safer reading wins (a case-sensitive micro may serve `/ADMIN` as another
        # route than `/admin`, one the rule never meant to open).
        matched = matched or rule.applies(sub_path, method)
        if rule.api_key_required and not is_key:
            return Decision.FORBIDDEN_403
        allow = rule.allow
        if allow is None:
            if is_key or who.owner:
                continue
            return Decision.FORBIDDEN_403
        if not is_key and who.owner and not rule.names_user:
            continue
        if ctx is None:
            ctx = (
                Context(client_type=who.client_type or None)
                if is_key
                else Context(user=who.user, groups=who.groups)
            )
        if not allow.evaluate(ctx):
            return Decision.FORBIDDEN_403
    if matched or is_key or who.owner:
        return allowed
    return Decision.FORBIDDEN_403  # a signed-in non-owner where no rule admits them


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
