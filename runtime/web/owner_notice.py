"""The notice added to the app's own HTML pages shown to the owner while a micro is down (crashed,
or its last reload or setup failed), as a dev server's error overlay: a plain HTML element
before `</body>` with a link to the logs and a close button. No script and no inline style, so
a page's Content-Security-Policy has nothing to refuse (its stylesheet is same-origin)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from markupsafe import escape

from runtime.supervisor.manager import State
from runtime.web.api import SettingsApp

NOTICE_STYLESHEET = "/__space/static/notice.css"
_NOTICE_KINDS = ("reload", "setup")  # a runner's notices that mean "not the code you saved"


def problems(app: SettingsApp) -> list[tuple[str, str, str]]:
    """(micro, what, which) of each micro down now; `which` names the trouble, so a dismissed
    notice comes back for another one."""
    found = []
    for name, runner in app.runners.items():
        if runner.state is State.CRASHED or (
            runner.state is State.RESTARTING and runner.failures > 0
        ):
            found.append(
                (name, "has crashed: space-dev restarts it, or fix it and save", f"{name}-down")
            )
            continue
        for kind in _NOTICE_KINDS:
            text = runner.notices.get(kind)
            if text:
                found.append((name, text, f"{name}-{kind}-{text}"))
                break
    return found


class OwnerNotice:
    """What the gate adds to the owner's pages of one app, and its close button's memory."""

    def __init__(self, app: SettingsApp) -> None:
        self._app = app
        self._dismissed: frozenset[str] = frozenset()

    def dismiss(self) -> None:
        """Hide the notice until something else goes down."""
        self._dismissed = frozenset(which for _, _, which in problems(self._app))

    def rewrite(self) -> Callable[[bytes], bytes] | None:
        """A function adding the notice to an HTML body, or None while all is well."""
        found = problems(self._app)
        if self._dismissed:  # what is over is forgotten: it may come back later
            self._dismissed &= {which for _, _, which in found}
        if not found or all(which in self._dismissed for _, _, which in found):
            return None
        html = notice_html([(micro, what) for micro, what, _ in found]).encode()
        return lambda body: inject(body, html)


def notice_html(found: list[tuple[str, str]]) -> str:
    micro = found[0][0] if len(found) == 1 else ""
    logs = "/__space/logs" + (f"?micro={quote(micro)}" if micro else "")
    items = "".join(f"<li><strong>{escape(m)}</strong> {escape(w)}</li>" for m, w in found)
    return (
        f'<aside id="space-dev-notice" class="space-dev-notice" role="alert" '
        f'data-space-dev="notice"><link rel="stylesheet" href="{NOTICE_STYLESHEET}">'
        f"<p><strong>space-dev</strong>: this page is served, but not everything is up:</p>"
        f'<ul>{items}</ul><p><a href="{logs}">See the logs</a> · '
        f'<a href="/__space/settings#micros">Settings</a></p>'
        f'<form method="post" action="/__space/logs/dismiss">'
        f'<button type="submit">Dismiss</button></form></aside>'
    )


def inject(body: bytes, notice: bytes) -> bytes:
    """The body with the notice before its last `</body>` (any letter case); unchanged when it
    has none (a fragment, or not really a page)."""
    at = body.lower().rfind(b"</body")
    if at < 0:
        return body
    return body[:at] + notice + body[at:]
