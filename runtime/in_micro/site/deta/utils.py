"""The project key and project id, from arguments or from the micro's environment."""

from __future__ import annotations

import os

KEY_VARIABLE = "DETA_PROJECT_KEY"


def _get_project_key_id(
    project_key: str | None = None, project_id: str | None = None
) -> tuple[str, str]:
    """Return (key, id); the id is the key's part before `_` unless given."""
    given = bool(project_key)
    key = project_key or os.environ.get(KEY_VARIABLE, "")
    where = "the project key passed to Deta()" if given else KEY_VARIABLE
    # AssertionError, as deta-python raises, so code written against it catches the same class;
    # raised explicitly so `python -O` keeps the check.
    if not key:
        raise AssertionError(
            f"No project key: {KEY_VARIABLE} is not set. Every Space micro gets one; "
            f"outside a micro, set {KEY_VARIABLE} or pass Deta(project_key=...)"
        )
    if not project_id:
        project_id, sep, secret = key.partition("_")
        if not sep or not project_id or not secret:
            # The key itself is a secret: the message describes it without showing it.
            raise AssertionError(
                f"Bad project key in {where}: expected <project id>_<secret> "
                "(the id, an underscore, then the secret)"
            )
    return key, project_id
