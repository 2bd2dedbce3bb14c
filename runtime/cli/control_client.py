"""The CLI side of the running runtime's control API: tell it of changes, run actions."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any

from runtime.datadir.store import Store
from runtime.errors import SpaceDevError

# The same names as runtime/web/control_api.py (the server side); not imported from there because
# that module loads aiohttp, which would double the start-up time of every CLI command.
TOKEN_HEADER = "X-Space-Dev-Token"
REFRESH_PATH = "/__space/internal/refresh"
ACTIONS_PATH = "/__space/internal/actions/"
STATUS_PATH = "/__space/internal/status"
TIMEOUT_S = 3.0
# `trigger` waits for the run: up to 30 s for the micro to be ready, then 60 s for its answer
# (config.ACTION_READY_WAIT_S and ACTION_TIMEOUT_S; not imported, for the start-up time).
TRIGGER_TIMEOUT_S = 100.0

# No proxies: the runtime is on this machine, and an HTTP_PROXY from the shell must never see the
# token (nor turn a local call into a slow failure).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Unreachable(Exception):
    """The runtime did not answer: refused, timed out, or runtime.json names no usable URL."""


def post(
    info: dict[str, Any], path: str, body: dict[str, Any] | None = None, timeout: float = TIMEOUT_S
) -> tuple[int, bytes]:
    """POST to the running runtime (as found in runtime.json) with its token; (status, body).

    An HTTP error status is an answer, returned like any other; no answer raises Unreachable.
    """
    url, token = info.get("url"), info.get("token")
    if (
        not isinstance(url, str)
        or not url.startswith(("http://", "https://"))
        or not isinstance(token, str)
    ):
        raise Unreachable("runtime.json names no usable URL and token")
    data = json.dumps(body).encode() if body is not None else b""
    headers = {TOKEN_HEADER: token, "Content-Type": "application/json"}
    request = urllib.request.Request(
        url.rstrip("/") + path, data=data, headers=headers, method="POST"
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise Unreachable(f"no answer from {url} ({reason})") from err


def ask(
    info: dict[str, Any], path: str, body: dict[str, Any] | None = None, timeout: float = TIMEOUT_S
) -> tuple[int, dict[str, Any], list[str]]:
    """POST to the running runtime and read its JSON answer: (status, the answer (empty when
    it is not a JSON object), its `errors` as words). No answer at all is a user error."""
    try:
        status, raw = post(info, path, body, timeout)
    except Unreachable as err:
        raise SpaceDevError(
            f"could not reach the running runtime: {err}", "is `space-dev up` still running?"
        ) from None
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    errors = answer.get("errors")
    return status, answer, [str(e) for e in errors] if isinstance(errors, list) else []


def refresh(store: Store, said: str = "") -> None:
    """Ask the running runtime, if any, to re-read the data dir now, and wait until it has;
    `said`, what the command did, is then one line in its terminal.

    Never an error: the runtime also watches the data dir, so a missed call only delays the
    change by a moment. A failure is one line on stderr.
    """
    try:
        info = store.read_runtime_info()
    except SpaceDevError as err:
        _note(f"could not read runtime.json ({err.message})")
        return
    if info is None:
        return  # no runtime is running: it reads the data dir when it starts
    try:
        status, _ = post(info, REFRESH_PATH, {"said": said} if said else None)
    except Unreachable as err:
        _note(f"could not tell the running runtime: {err}")
        return
    if not 200 <= status < 300:
        _note(f"the running runtime answered {status} to the refresh")


def require_running(store: Store) -> dict[str, Any]:
    """runtime.json of the running runtime, or a SpaceDevError saying to start one."""
    info = store.read_runtime_info()
    if info is None:
        raise SpaceDevError(
            f"no space-dev runtime is running with the data dir {store.data_dir}",
            "start it with `space-dev up` first (in another terminal, with the same config or "
            "--data-dir), then run this again",
        )
    return info


def _note(text: str) -> None:
    print(
        f"note: {text}; it will still see the change from the data dir in a moment", file=sys.stderr
    )
