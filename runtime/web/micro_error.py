"""The page of a micro that cannot answer (502), as framework error overlays show an error.

For the owner: wide, the latest error first and once, the micro's state, a Restart button and a
link to the settings page, the rest of its output folded away. For anyone else: which micro
failed and nothing more; a micro's output, its internal address and what it sent are the
owner's to see (they can hold secrets).
"""

from __future__ import annotations

import re

from aiohttp import web

from runtime.web.login import safe_next
from runtime.web.pages import page, wants_html

SETTINGS_MICROS = "/__space/settings#micros"
_ERROR_LINES_MAX = 60
_TAIL_LINES = 12  # when no traceback can be found: the last lines are the likeliest error
_TRACEBACK = "Traceback (most recent call last):"
# A Python exception line, `ValueError: bad`, `KeyboardInterrupt`; Node's `TypeError: x`.
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning))\b(:.*)?$")
_REPEAT_MARK = "(the same "  # the printer's count of a crash loop's repeated output
_SETUP_PREFIX = "setup failed: "  # how the runtime's notice of a failed setup begins
_SETUP_HEADLINE = "What failed"  # above a failed setup's error, which begins with its cause


def latest_error(lines: list[str]) -> list[str]:
    """The last error in a micro's output, once: its last Python traceback (with what follows
    it), else the last lines."""
    kept = [line for line in lines if not line.startswith(_REPEAT_MARK)]
    start = next((i for i in range(len(kept) - 1, -1, -1) if kept[i].startswith(_TRACEBACK)), None)
    if start is None:
        block = kept[-_TAIL_LINES:]
    else:
        block = kept[start:]
    while block and not block[0].strip():
        block = block[1:]
    return block[-_ERROR_LINES_MAX:]


def headline(error: list[str]) -> str:
    """The exception line of an error block (`SyntaxError: invalid syntax`), if there is one."""
    for line in reversed(error):
        if _EXCEPTION.match(line.strip()):
            return line.strip()
    return ""


def unavailable_words(micro: str, state: str, setup_error: str, wait_s: float) -> tuple[str, str]:
    """The title and what happens next of a micro that cannot take a request, true to what
    the supervisor does in that state: a crashed process is started again by itself; a failed
    setup is not tried again until a save or the Restart button."""
    if setup_error:
        return (
            f"The setup of the micro {micro} failed",
            "It was not started, and it is not tried again by itself: fix the cause, then "
            "save a file of the micro or press Restart.",
        )
    if state == "crashed":
        return (
            f"The micro {micro} has crashed",
            "It is started again by itself, after a pause that grows with each failure; "
            "fix the error and save to try at once.",
        )
    if state == "stopped":
        return f"The micro {micro} is stopped", ""
    return (
        f"The micro {micro} is not ready",
        f"It is {state} and did not answer within {wait_s:g} s.",
    )


def micro_error(
    request: web.Request,
    *,
    micro: str,
    state: str,
    title: str,
    detail: str,
    owner: bool,
    lines: list[str] | None = None,
    owner_detail: str = "",
    failures: int = 0,
    last_exit: int | None = None,
    status: int = 502,
    setup_error: str = "",
) -> web.Response:
    """A micro's failure: the owner's error overlay, or for anyone else a page (or JSON) that
    says which micro failed and nothing internal. A failed setup's error (its cause first) is
    the error shown, whole, in place of the output's last lines."""
    output = list(lines or []) if owner else []
    # The title says the setup failed; the notice's own "setup failed: " would say it twice.
    setup_error = setup_error.removeprefix(_SETUP_PREFIX)
    error = setup_error.splitlines() if setup_error and owner else latest_error(output)
    if not wants_html(request):
        errors = [title] + ([detail] if detail else [])
        if owner and owner_detail:
            errors.append(owner_detail)
        body: dict[str, object] = {"errors": errors, "micro": micro, "state": state}
        if owner:
            body["error"] = error
        return web.json_response(body, status=status)
    return page(
        "micro_error.html",
        status=status,
        title=title,
        detail=detail,
        owner=owner,
        micro=micro,
        state=state,
        owner_detail=owner_detail if owner else "",
        error=error,
        headline=_SETUP_HEADLINE if setup_error else headline(error),
        lines=output,
        failures=failures,
        last_exit=last_exit,
        next_path=safe_next(request.path_qs),
        settings=SETTINGS_MICROS,
    )
