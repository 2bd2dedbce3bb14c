"""Request paths for the gate: one canonical form, the public-route patterns, and the mount table.

The gate decides on the normalised path and the micro receives exactly that path, so the two can
never disagree about which route a request is (the Pomerium GHSA-pvrc-wvj2-f59p class of bug). The
query string never takes part (oauth2-proxy GHSA-7rh7-c77v-6434 matched path and query as one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache


class BadPath(ValueError):
    """A request path the gate refuses to decide on; the gate answers 400."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

_ESCAPE = re.compile(r"%(..)?", re.DOTALL)
# A raw `#` would end the path for any URL parser after us (a fragment is never sent to a
# server), so the micro would get a shorter path than the one checked.
_RAW_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\#]")
_RAW_NAMES = {"\\": "a backslash", "\x00": "a NUL", "#": "a raw # (fragments stay in the browser)"}
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_HEX = frozenset("0123456789abcdefABCDEF")

# What each escape becomes, keyed by its upper-case hex: the character when unreserved, else the
# escape in upper case. Escapes that could change the path's shape or end it are refused instead.
_REFUSED_ESCAPES = {
    "2F": "an encoded slash (%2F)",
    "5C": "an encoded backslash (%5C)",
    "00": "an encoded NUL (%00)",
}
_DECODED = {
    f"{b:02X}": (chr(b) if chr(b) in _UNRESERVED else f"%{b:02X}")
    for b in range(256)
    if f"{b:02X}" not in _REFUSED_ESCAPES
}


def _decode_escape(match: re.Match[str]) -> str:
    hexpair = match.group(1)
    if hexpair is None or hexpair[0] not in _HEX or hexpair[1] not in _HEX:
        start = match.start()
        raise BadPath(f"invalid percent escape {match.string[start : start + 3]!r}")
    upper = hexpair.upper()
    refused = _REFUSED_ESCAPES.get(upper)
    if refused is not None:
        raise BadPath(f"the path holds {refused}")
    return _DECODED[upper]


def _encode_non_ascii(match: re.Match[str]) -> str:
    try:
        # surrogateescape gives back the bytes a server decoded that way; they are not UTF-8.
        data = match.group(0).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise BadPath("the path holds characters that cannot be encoded") from None
    return "".join(f"%{b:02X}" for b in data)


def _canonical_characters(text: str) -> str:
    """Decode unreserved escapes once, upper-case the others, encode non-ASCII as UTF-8 escapes."""
    if "%" in text:
        text = _ESCAPE.sub(_decode_escape, text)
    if not text.isascii():
        text = _NON_ASCII.sub(_encode_non_ascii, text)
    return text


def normalise_path(raw_path: str) -> str:
    """The canonical form of a raw request path (no query string), or BadPath.

    Unreserved escapes are decoded once (so `%252e` stays `%252e`), the hex of the others is upper
    case, non-ASCII characters become UTF-8 escapes, dot segments are resolved (RFC 3986) after
    repeated slashes are merged, and a trailing slash is kept. Refused: a path not starting with
    `/`, an encoded slash, a raw or encoded backslash, NUL or other control characters, invalid
    escapes, `..` climbing above the root, and dot segments with `;` parameters (`..;x`, also
    escaped: `..%3B`), which Tomcat-style servers resolve. Other `;` parameters are kept as they
    are: the micros Space ran (Python, Node.js) treat them as part of the segment.
    """
    if raw_path[:1] != "/":
        raise BadPath("the path does not start with /")
    # The fast path: most requests need no work. Each `in` is one C-speed scan, several times
    # quicker than a regex search; printable ASCII excludes control and non-ASCII characters.
    if (
        "%" not in raw_path
        and "//" not in raw_path
        and "/." not in raw_path
        and "\\" not in raw_path
        and "#" not in raw_path
        and raw_path.isascii()
        and raw_path.isprintable()
    ):
        return raw_path
    bad = _RAW_FORBIDDEN.search(raw_path)
    if bad is not None:
        char = bad.group(0)
        what = _RAW_NAMES.get(char) or f"a control character ({ord(char):#04x})"
        raise BadPath(f"the path holds {what}")
    text = _canonical_characters(raw_path)
    out: list[str] = []
    segments = text.split("/")
    last = len(segments) - 1
    for i, seg in enumerate(segments):
        if not seg:
            continue  # repeated (and the leading) slashes
        if seg[0] == "." and (seg == "." or seg == ".." or _is_dot_with_params(seg)):
            if seg == "..":
                if not out:
                    raise BadPath("the path climbs above the root with ..")
                out.pop()
            elif seg != ".":
                raise BadPath(f"the path holds a dot segment with parameters ({seg!r})")
            if i == last:
                out.append("")  # `/a/.` and `/a/b/..` name a folder: keep the trailing slash
            continue
        out.append(seg)
    if segments[-1] == "" and (not out or out[-1] != ""):
        out.append("")
    return "/" + "/".join(out)


def _is_dot_with_params(seg: str) -> bool:
    # `;` may arrive escaped (`..%3B`): servers that resolve `..;` decode it first.
    head = seg.split(";", 1)[0].split("%3B", 1)[0]
    return len(head) < len(seg) and head in (".", "..")


# --- patterns ------------------------------------------------------------------------------

# Reserved characters that are allowed raw in a path, and so may arrive either raw or escaped: a
# pattern's literal one matches both spellings (frameworks decode them before routing).
_SUB_DELIMS = "!$&'()*+,;=:@"
_LITERAL_ALTERNATIVES = {c: f"(?:{re.escape(c)}|%{ord(c):02X})" for c in _SUB_DELIMS}
_LITERAL_ALTERNATIVES.update({f"%{ord(c):02X}": alt for c, alt in _LITERAL_ALTERNATIVES.items()})
_PATTERN_UNIT = re.compile(r"%[0-9A-F]{2}|.", re.DOTALL)


def _literal_regex(text: str) -> str:
    # Bring the literal to the same canonical spelling as a normalised path; a `%` that starts no
    # escape is a percent sign, which a path can only hold as `%25`.
    text = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", text)
    try:
        text = _canonical_characters(text)
    except BadPath:
        return "(?!)"  # e.g. an encoded slash: no normalised path holds one
    parts = []
    for unit in _PATTERN_UNIT.findall(text):
        alt = _LITERAL_ALTERNATIVES.get(unit)
        parts.append(alt if alt is not None else re.escape(unit))
    return "".join(parts)


@dataclass(frozen=True)
class RoutePattern:
    """One compiled `public_routes` or route-rule pattern."""

    source: str  # as written
    regex: re.Pattern[str] = field(compare=False, repr=False)
    limits: re.Pattern[str] = field(compare=False, repr=False)

    def matches(self, path: str) -> bool:
        """Whether the normalised path (no query) matches, letter case as written."""
        return self.regex.fullmatch(path) is not None

    def restricts(self, path: str) -> bool:
        """Whether a rule's limits hold at this path: the pattern in any letter case (`/Admin`
        for `/admin/*`), and a `/x/*` pattern at `/x` too. Express and koa route every spelling
        to the same handler, and a router mounted at `/x` (`app.use("/x", router)`, an
        `APIRouter(prefix="/x")` route "") answers `/x` itself: a rule that restricts must hold
        wherever the micro may serve what it protects."""
        return self.limits.fullmatch(path) is not None


def _pattern_regex(pattern: str, *, folder_itself: bool = False) -> str:
    """The regex of a pattern; with `folder_itself`, `/x/*` also matches `/x` (for limits)."""
    if not pattern.startswith("/"):
        pattern = "/" + pattern
    trailing_star = pattern.endswith("*")
    body = pattern[:-1] if trailing_star else pattern
    if not trailing_star and len(body) > 1 and body.endswith("/"):
        body = body[:-1]
    pieces = []
    for seg_index, segment in enumerate(body.split("/")):
        if seg_index:
            pieces.append("/")
        if segment == "*":
            pieces.append("[^/]+")  # a whole-segment star stands for one real segment
            continue
        pieces.append("[^/]*".join(_literal_regex(part) for part in segment.split("*")))
    regex = "".join(pieces)
    if trailing_star:
        if folder_itself and len(body) > 1 and body.endswith("/"):
            return regex[:-1] + "(?:/.*)?"  # `/x/*`: `/x`, `/x/` and everything below
        return regex + ".*"
    return regex if body == "/" else regex + "/?"


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> RoutePattern:
    """Compile a pattern once; the rules are those of `public_routes`.

    - No `*`: the path itself. A trailing slash is not significant on either side: `/docs` and
      `/docs/` each match both `/docs` and `/docs/`, as most micro frameworks (Express by default,
      FastAPI by redirect) treat them as one route; a rule written for one must not be dodged by
      the other. The root pattern `/` matches `/` alone.
    - A `*` at the end: anything after it, slashes included, even nothing (`/public/*` matches
      `/public/` and `/public/a/b`, not `/public`; `/api/submit*` matches `/api/submit`).
    - A `*` elsewhere: anything within one segment (`/*.png`); a segment that is only `*`
      (`/api/*/docs`) stands for one non-empty segment.
    - No leading slash: one is added (`"*"` is `/*`, `api/*` is `/api/*`).
    - Case matters for `matches` (a public route is public in the case it names, and no other);
      `restricts` is for rules that restrict: in any case, and `/x/*` at `/x` as well.
    - Literals are read like a path: unreserved escapes decoded, non-ASCII as UTF-8 escapes; a
      reserved character (`:`, `;`, `(`...) matches both its raw and its escaped spelling, and
      `%2A` is a literal star. Patterns with `.`/`..` segments or `//` never match.
    """
    return RoutePattern(
        pattern,
        re.compile(_pattern_regex(pattern), re.DOTALL),
        # ASCII: a normalised path holds nothing else (non-ASCII arrives as escapes).
        re.compile(
            _pattern_regex(pattern, folder_itself=True), re.DOTALL | re.IGNORECASE | re.ASCII
        ),
    )


@dataclass(frozen=True)
class PublicRoutes:
    """A micro's `public_routes`, matched with one precompiled regex."""

    patterns: tuple[RoutePattern, ...] = ()
    _regex: re.Pattern[str] | None = field(default=None, init=False, compare=False, repr=False)

    def __init__(self, patterns: Iterable[str | RoutePattern] = ()) -> None:
        compiled = tuple(p if isinstance(p, RoutePattern) else compile_pattern(p) for p in patterns)
        object.__setattr__(self, "patterns", compiled)
        combined = "|".join(f"(?:{p.regex.pattern})" for p in compiled)
        object.__setattr__(self, "_regex", re.compile(combined, re.DOTALL) if compiled else None)

    def matches(self, path: str) -> bool:
        """Whether the normalised path (relative to the micro, no query) is public."""
        regex = self._regex
        return regex is not None and regex.fullmatch(path) is not None

    def __bool__(self) -> bool:
        return bool(self.patterns)


# --- mounts --------------------------------------------------------------------------------


def _mount_key(path: str) -> str:
    return "/" + path.strip("/")


class MountTable:
    """Which micro a normalised path reaches: the longest segment-prefix mount wins."""

    __slots__ = ("_mounts", "_root")

    def __init__(self, mounts: Mapping[str, str]) -> None:
        by_path: dict[str, str] = {}
        for path, micro in mounts.items():
            key = _mount_key(path)
            if key in by_path and by_path[key] != micro:
                raise ValueError(f"micros {by_path[key]!r} and {micro!r} share the path {key}")
            by_path[key] = micro
        self._root = by_path.pop("/", None)
        # Longest first, so the first hit is the longest prefix; an app has at most a few micros,
        # and a scan of `startswith` beats walking up the path's own prefixes.
        self._mounts = tuple(
            (key, key + "/", micro)
            for key, micro in sorted(by_path.items(), key=lambda kv: len(kv[0]), reverse=True)
        )

    def resolve(self, path: str) -> tuple[str, str] | None:
        """(micro name, path relative to the micro), or None when no micro is mounted there."""
        for key, key_slash, micro in self._mounts:
            if path.startswith(key_slash):
                return micro, path[len(key) :]
            if path == key:
                return micro, "/"
        if self._root is None:
            return None
        return self._root, path

    @property
    def mounts(self) -> dict[str, str]:
        """Mount path to micro name, the primary's `/` included."""
        table = {key: micro for key, _, micro in self._mounts}
        if self._root is not None:
            table["/"] = self._root
        return table
