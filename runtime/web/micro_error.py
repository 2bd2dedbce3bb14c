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


def latest_error(lines: list[str]) -> list[str]:
    """The last error in a micro's output, once: its last Python traceback (with what follows
    it), else the last lines."""
    kept = [line for line in lines if not line.startswith(_REPEAT_MARK)]
    start = next((i for i in range(len(kept) - 1, -1, -1) if kept[i].startswith(_TRACEBACK)),
                 None)
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
) -> web.Response:
    """A micro's failure: the owner's error overlay, or for anyone else a page (or JSON) that
    says which micro failed and nothing internal."""
    output = list(lines or []) if owner else []
    error = latest_error(output)
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
        headline=headline(error),
        lines=output,
        failures=failures,
        last_exit=last_exit,
        next_path=safe_next(request.path_qs),
        settings=SETTINGS_MICROS,
    )
