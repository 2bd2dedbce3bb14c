"""The Deta Base and Drive HTTP APIs of every app: who is asking, which app's data, which API.

Micros call `https://<DETA_BASE_HOST>/v1/<project id>/<name>/...` with their app's project key;
a page of the app calls `/__space/v0/base/v1/<any id>/<name>/...` on its own origin with the
owner's session. Both end in `dispatch`, which hands the request to the Base or Drive handler.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Mapping
from urllib.parse import unquote

from aiohttp import web

from runtime.cloud.base.handlers import handle_base
from runtime.cloud.data import DataServices
from runtime.cloud.detail import DETAIL_HEADER, read_header_text
from runtime.cloud.drive.handlers import handle_drive
from runtime.cloud.notices import Notices

# `/v1/<project id>/<name><rest>`, on the raw path: a key in `rest` may hold an encoded `/`.
_API_PATH = re.compile(r"^/v1/(?P<project>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?$")
BROWSER_PREFIXES = {"base": "/__space/v0/base", "drive": "/__space/v0/drive"}
_BASE_ROUTES = ("/items", "/query")
_DRIVE_ROUTES = ("/files", "/uploads")


def _error(status: int, message: str) -> web.Response:
    # JSON always: the npm SDK shows "Something went wrong" for any other error body.
    return web.json_response({"errors": [message]}, status=status)


def service_of(rest: str) -> str | None:
    """Which API a path after `/v1/<id>/<name>` belongs to (their routes do not overlap)."""
    head = "/" + rest.split("?", 1)[0].lstrip("/").split("/", 1)[0]
    if head in _BASE_ROUTES:
        return "base"
    if head in _DRIVE_ROUTES:
        return "drive"
    return None


def split_api_path(raw_path: str) -> tuple[str, str, str] | None:
    """(project id, name, raw rest) of an API path, or None when it is not one."""
    match = _API_PATH.match(raw_path)
    if match is None:
        return None
    name = unquote(match["name"])
    if not name.strip():
        return None
    return unquote(match["project"]), name, match["rest"] or ""


async def dispatch(
    request: web.Request,
    data: DataServices,
    app: str,
    name: str,
    rest: str,
    service: str | None,
    notices: Notices | None = None,
) -> web.StreamResponse:
    """Answer one API request for `app`'s Base or Drive called `name`; an answer in Deta's
    words that has space-dev's detail beside it is also told to the runtime's log."""
    found = service_of(rest)
    if found is None or (service is not None and found != service):
        return _error(404, f"no {service or 'Base or Drive'} API route {rest or '/'}")
    store = data.app(app)
    response: web.StreamResponse
    if found == "base":
        response = await handle_base(request, await store.open_base(), name, rest)
    else:
        response = await handle_drive(request, store.drive, name, rest)
    detail = response.headers.get(DETAIL_HEADER)
    if detail and notices is not None:
        said = _first_error(response)
        notices.say(
            f'{app}: {found.title()} "{name}" answered {response.status} "{said}": '
            f"{read_header_text(detail)}"
        )
    return response


def _first_error(response: web.StreamResponse) -> str:
    """`errors[0]` of an error answer, what the SDKs show."""
    body = response.body if isinstance(response, web.Response) else None
    try:
        return str(json.loads(body)["errors"][0]) if isinstance(body, bytes) else ""
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


class ProjectKeys:
    """Tells which app a project key (`<id>_<secret>`) belongs to, from keys held in memory."""

    def __init__(self, keys: Callable[[], Mapping[str, str]]) -> None:
        self._keys = keys  # app -> its DETA_PROJECT_KEY, as the data dir has them now

    def app_for(self, key: str, project_id: str) -> str | None:
        """The app whose key this is, if the path's project id is that key's too."""
        key_id, sep, secret = key.partition("_")
        if not sep or not secret or "_" in secret or key_id != project_id:
            return None
        try:
            # surrogateescape: a header that was not UTF-8 is a wrong key, not a crash.
            sent = key.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return None
        for app, known in self._keys().items():
            # Every key is compared, matched or not: the time taken says nothing about which.
            if hmac.compare_digest(known.encode(), sent):
                return app
        return None


_KEY_ID = re.compile(r"[A-Za-z0-9]{1,40}")


def refused_key_notice(kind: str, name: str, key: str, settings: Mapping[str, str]) -> str:
    """The log line for a call whose project key is no app's: which key (its id, never its
    secret), and where each app's own key is shown."""
    key_id, sep, secret = key.partition("_")
    if not key:
        which = "no project key"
    elif sep and secret and _KEY_ID.fullmatch(key_id):
        which = f'project key "{key_id}_..."'
    else:
        which = "a project key that is not one (Deta's are <id>_<secret>)"
    pages = ", ".join(f"{url} ({app})" for app, url in sorted(settings.items()))
    return (
        f"{kind} \"{name}\" refused a call with {which}: it is no app's here. Each app's "
        "micros get their own as DETA_PROJECT_KEY; an app that asks for a project key in "
        "its Configuration must be given that one, shown on its settings page: "
        f"{pages or 'none is running'}"
    )


class MicroApi:
    """The API as micros reach it: on the runtime's TLS port, with their app's project key."""

    def __init__(
        self,
        data: DataServices,
        keys: ProjectKeys,
        notices: Notices | None = None,
        settings_pages: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        self._data = data
        self._keys = keys
        self._notices = notices
        self._settings_pages = settings_pages  # app -> its settings page, for the log

    def application(self) -> web.Application:
        # Bodies are read by the handlers as streams, up to their own limits.
        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        parts = split_api_path(request.rel_url.raw_path)
        if parts is None:
            return _error(404, "not a Deta Base or Drive API path: /v1/<project id>/<name>/...")
        project_id, name, rest = parts
        key = request.headers.get("X-API-Key") or request.headers.get("Authorization") or ""
        key = key.removeprefix("Bearer ").strip()
        app = self._keys.app_for(key, project_id)
        if app is None:
            if self._notices is not None:
                kind = (service_of(rest) or "base").title()
                # One line a minute per key, whatever the name: a page may send calls without
                # a key to many names, and one line says what there is to say.
                self._notices.say(
                    refused_key_notice(kind, name, key, self._settings_pages()),
                    topic=f"refused key {key.partition('_')[0][:40]}",
                )
            return _error(401, "Unauthorized")
        return await dispatch(request, self._data, app, name, rest, None, self._notices)


def browser_path(raw_path: str) -> tuple[str, str] | None:
    """(service, the API path after the prefix) of `/__space/v0/base/...` or `.../drive/...`."""
    for service, prefix in BROWSER_PREFIXES.items():
        if raw_path.startswith(prefix + "/"):
            return service, raw_path[len(prefix) :]
    return None
