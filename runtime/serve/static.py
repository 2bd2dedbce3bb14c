"""Serve a `static` micro's `serve` folder from the runtime itself, fresh from disk each request.

Decisions where the contract is silent:
- A folder answers with its `index.html`. A folder asked for without its trailing slash is
  redirected (301) to the slash form, as nginx, GitHub Pages and `python -m http.server` do:
  without it, the page's relative links (`style.css`) would resolve one level too high. The
  `Location` is relative (`./docs/`), so it is right whatever path the micro is mounted at.
  The micro's own root asked for without a slash (`/site` for a micro at `/site`) gets the same.
- Files, redirects and 404s say `Cache-Control: no-cache`: the browser keeps its copy but asks
  each time, and the ETag / Last-Modified check turns that into a cheap 304, so a saved file
  shows on the next reload (the static micro's hot reload; nothing is kept in memory).
- Only the file that was asked for is sent: never a precompressed `x.gz` / `x.br` beside it, which
  could be stale after an edit (and older aiohttp releases followed symlinks when looking for it).
- Names starting with a dot (`.git`, `.env`) are never served, except `.well-known`.
- Anything whose real path (symlinks resolved) is outside the folder is 404, the same answer as a
  missing file, so probing tells nothing.
- A missing file gets the folder's own `404.html` when it has one (as GitHub Pages, Netlify and
  Cloudflare Pages do) and the rules let the asker see `/404.html` itself, else a small built-in
  page: a miss on a public route must not show a visitor a private page.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict

from runtime.auth.routes import BadPath, normalise_path
from runtime.serve.not_found import not_found_html

ALLOWED_METHODS = ("GET", "HEAD")
INDEX = "index.html"
NOT_FOUND_PAGE = "404.html"
# Dot-names that sites legitimately publish (security.txt, app links, ACME checks).
ALLOWED_DOT_NAMES = frozenset({".well-known"})

# A private table: mutating the global `mimetypes` would change it for the user's code too, and
# the system's /etc/mime.types differs between machines.
_TYPES = mimetypes.MimeTypes()
# `x.tar.gz` must not be announced as a tar archive: we send the bytes as they are, unencoded.
_TYPES.encodings_map.clear()
for _ext, _type in {
    ".js": "text/javascript",  # the type the HTML standard names; Python 3.11 says application/
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".xml": "application/xml",
    ".gz": "application/gzip",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}.items():
    _TYPES.add_type(_type, _ext)

# Non-`text/` types that are text all the same, so they get a charset too.
_TEXTUAL = frozenset(
    {
        "application/json",
        "application/manifest+json",
        "application/xml",
        "image/svg+xml",
        "application/javascript",
    }
)
FALLBACK_TYPE = "application/octet-stream"


def content_type(path: str | Path) -> str:
    """The Content-Type a file is served with, charset included for text."""
    guessed = _TYPES.guess_type(os.fspath(path), strict=False)[0] or FALLBACK_TYPE
    if guessed.startswith("text/") or guessed in _TEXTUAL:
        return f"{guessed}; charset=utf-8"
    return guessed


class _Found:
    """A file to send."""

    def __init__(self, path: str) -> None:
        self.path = path


class _Redirect:
    """A folder asked for without its trailing slash."""

    def __init__(self, location: str) -> None:
        self.location = location


class _Missing:
    """Nothing to send: missing, refused, or outside the folder."""

    def __init__(self, root_exists: bool = True) -> None:
        self.root_exists = root_exists


_Outcome = _Found | _Redirect | _Missing
# Whether the gate would let this request through to a path (the micro-relative, normalised one).
Admits = Callable[[str], bool]


class _ExactFileResponse(web.FileResponse):
    """aiohttp's FileResponse (validators, ranges, HEAD) minus its precompressed-sibling lookup."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if hdrs.ACCEPT_ENCODING in request.headers:
            headers = CIMultiDict(request.headers)
            del headers[hdrs.ACCEPT_ENCODING]
            request = request.clone(headers=headers)
        return await super().prepare(request)


def _linked_to_admitted(root: str, asked: str, real: str, admits: Admits) -> bool:
    """Whether `real` (what `asked` resolves to) may be served: trivially when no symlink was
    followed, else when its own path inside the folder passes the rule the URL passed."""
    if real == asked:
        return True
    rel = os.path.relpath(real, root)
    served = "/" if rel == "." else "/" + quote(rel.replace(os.sep, "/"), safe="/")
    if os.path.isdir(real):
        served = served.rstrip("/") + "/"  # a folder is asked for with its slash
    return admits(normalise_path(served))


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _refused_name(name: str) -> bool:
    if name in ("", ".", "..") or "\x00" in name or "\\" in name:
        return True
    return name.startswith(".") and name not in ALLOWED_DOT_NAMES


class StaticSite:
    """One `serve` folder, served read-only with no memory of earlier requests."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    async def handle(
        self, request: web.Request, sub_path: str, admits: Admits = lambda path: True
    ) -> web.StreamResponse:
        """Answer `request` for `sub_path` (the micro-relative path, `/`-rooted, still escaped).

        A symlink serves its target only when `admits` the target's own path (relative to the
        folder, normalised like a request path): the gate's rule for the URL holds for the file.
        """
        if request.method not in ALLOWED_METHODS:
            return web.Response(
                status=405,
                text="405: only GET and HEAD are served by a static micro\n",
                headers={hdrs.ALLOW: ", ".join(ALLOWED_METHODS)},
            )
        if sub_path in ("", "/"):
            # The micro's own root asked for without a slash (`/site` for a micro at `/site`):
            # only the request's own path shows it, since `sub_path` is `/` either way.
            seen = request.rel_url.raw_path
            if seen != "/" and not seen.endswith("/"):
                return self._redirect(request, "./" + seen.rsplit("/", 1)[-1] + "/")
        loop = asyncio.get_running_loop()
        # realpath and stat touch the disk; keep the event loop free even on a slow filesystem.
        outcome = await loop.run_in_executor(None, self._locate, sub_path, admits)
        if isinstance(outcome, _Found):
            return _ExactFileResponse(
                outcome.path,
                headers={
                    hdrs.CONTENT_TYPE: content_type(outcome.path),
                    hdrs.CACHE_CONTROL: "no-cache",
                    "X-Content-Type-Options": "nosniff",
                },
            )
        if isinstance(outcome, _Redirect):
            return self._redirect(request, outcome.location)
        return await loop.run_in_executor(
            None, self._not_found, request.rel_url.raw_path, outcome, admits
        )

    @staticmethod
    def _redirect(request: web.Request, location: str) -> web.Response:
        if request.rel_url.raw_query_string:
            location += "?" + request.rel_url.raw_query_string
        # no-cache: a permanent redirect cached by the browser would outlive a folder renamed
        # while developing.
        return web.Response(
            status=301, headers={hdrs.LOCATION: location, hdrs.CACHE_CONTROL: "no-cache"}
        )

    def _locate(self, sub_path: str, admits: Admits) -> _Outcome:
        """Map `sub_path` to a file strictly inside the folder, or say why not."""
        try:
            return self._resolve(sub_path, admits)
        except (OSError, ValueError, BadPath):  # a symlink loop, a name the OS refuses...
            return _Missing()

    def _resolve(self, sub_path: str, admits: Admits) -> _Outcome:
        root = os.path.realpath(self.root)
        if not os.path.isdir(root):
            return _Missing(root_exists=False)
        try:
            decoded = unquote(sub_path, errors="strict")
        except UnicodeDecodeError:
            return _Missing()
        names = [n for n in decoded.split("/") if n]
        # An empty name in the middle (`a//b`) is harmless; `..`, `.`, NUL and dot-names are not.
        if any(_refused_name(n) for n in names):
            return _Missing()
        # Joining the names (never the raw string) means `//etc/passwd` cannot become absolute.
        asked = os.path.join(root, *names)
        target = os.path.realpath(asked)
        if not _inside(root, target) or self._hidden_below(root, target):
            return _Missing()
        if not _linked_to_admitted(root, asked, target, admits):
            return _Missing()  # the same answer as a missing file: probing tells nothing
        if os.path.isdir(target):
            if names and not decoded.endswith("/"):
                last = sub_path.rstrip("/").rsplit("/", 1)[-1]
                # `./` keeps a name like `a:b` from reading as a URL scheme.
                return _Redirect(f"./{last}/")
            named = os.path.join(target, INDEX)
            index = os.path.realpath(named)
            if _inside(root, index) and not self._hidden_below(root, index):
                if os.path.isfile(index) and _linked_to_admitted(root, named, index, admits):
                    return _Found(index)
            return _Missing()
        if os.path.isfile(target) and not decoded.endswith("/"):
            return _Found(target)
        return _Missing()

    @staticmethod
    def _hidden_below(root: str, path: str) -> bool:
        """Whether the real path goes through a dot-name (a symlink `docs -> .git`, say)."""
        rel = os.path.relpath(path, root)
        if rel == ".":
            return False
        return any(_refused_name(n) for n in rel.split(os.sep))

    def _not_found(self, asked: str, outcome: _Missing, admits: Admits) -> web.Response:
        """The folder's own 404.html when it has one and the asker may see it (a visitor of a
        public route is not shown a private page), else the runtime's 404 page naming the
        path `asked` (the request's, still escaped)."""
        headers = {hdrs.CACHE_CONTROL: "no-cache"}
        if outcome.root_exists:
            root = os.path.realpath(self.root)
            named = os.path.join(root, NOT_FOUND_PAGE)
            page = os.path.realpath(named)
            if (
                _inside(root, page)
                and not self._hidden_below(root, page)
                and admits("/" + NOT_FOUND_PAGE)
                and _linked_to_admitted(root, named, page, admits)
                and os.path.isfile(page)
            ):
                try:
                    body = Path(page).read_bytes()
                except OSError:
                    body = None
                if body is not None:
                    return web.Response(
                        status=404,
                        body=body,
                        content_type="text/html",
                        charset="utf-8",
                        headers=headers,
                    )
            detail = ""
        else:
            detail = (
                f"This static micro's serve folder `{self.root.name}` does not exist yet. "
                "Build it, or fix `serve` in the Spacefile."
            )
        text = not_found_html(unquote(asked), detail)
        return web.Response(
            status=404, text=text, content_type="text/html", charset="utf-8", headers=headers
        )
