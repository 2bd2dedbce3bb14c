"""The gate's decisions in words, made only when someone looks (the requests view, `space-dev
logs --requests`): who asked, and why they passed or were refused."""

from __future__ import annotations

from runtime.auth.policy import INVALID_KEY, Credential, Verdict, Why
from runtime.models import Principal


def who(credential: Credential) -> str:
    """The caller as the requests view names them: owner, user, key, wrong key or anonymous."""
    if credential is None:
        return "anonymous"
    if credential is INVALID_KEY or not isinstance(credential, Principal):
        return "a wrong key"
    if credential.kind == "api-key":
        kind = f" (client type {credential.client_type})" if credential.client_type else ""
        return f"key {credential.key_name or '?'}{kind}"
    if credential.owner:
        return f"owner {credential.user}"
    return f"user {credential.user}"


def verdict_words(
    verdict: Verdict, status: int, micro: str, path: str, credential: Credential
) -> str:
    """Why the gate let the request through, or refused it with `status`."""
    rule = verdict.rule
    on = f"the rule on {rule.pattern.source}" if rule is not None else "a rule"
    caller = who(credential)
    head = "allowed" if verdict.decision.allowed else str(status)
    match verdict.why:
        case Why.PUBLIC_MICRO:
            text = f"{micro} is public (public: true, or its login is switched off)"
        case Why.PUBLIC_ROUTE:
            text = f"a public route of {micro} matches {path}"
        case Why.NO_CREDENTIAL:
            text = f"no session and no key; no public route of {micro} matches {path}"
            if status == 303:
                head = "303 to the login page"
        case Why.WRONG_KEY:
            text = (
                "the key sent is none of this app's keys that are switched on "
                "(unknown, switched off, revoked, or another app's)"
            )
        case Why.KEYS_NOT_ACCEPTED:
            text = f"{micro} does not take API keys (its Spacefile has no presets.api_keys)"
        case Why.UNKNOWN_CREDENTIAL:
            text = "the credential is of no kind the gate knows"
        case Why.KEY_REQUIRED:
            text = f"{on} requires an API key, and {caller} sent none"
        case Why.OWNER_AND_KEYS_ONLY:
            text = f"{on} admits only the owner and the app's keys, not {caller}"
        case Why.ALLOW_FALSE:
            allow = rule.allow_text if rule is not None else ""
            text = f"{on} allows `{allow}`, which is false for {caller}"
        case Why.NO_RULE_ADMITS:
            text = f"{caller} is signed in, but no rule of {micro} admits them at {path}"
        case Why.BY_RULE:
            text = f"{caller} by {on}"
        case Why.OWNER:
            text = f"{caller}'s session"
        case Why.APP_KEY:
            text = f"{caller}, one of the app's keys, which {micro} takes"
        case _:  # pragma: no cover - every kind is named above
            text = verdict.why.value
    return f"{head}: {text}"
