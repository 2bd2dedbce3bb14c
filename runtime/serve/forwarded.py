"""The headers a micro receives: the client's own, minus every hop-by-hop, identity and credential
header, plus the runtime's; read from the bytes the client sent and written as the upstream head's
lines in one pass (this runs on every request, so it does the work once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from multidict import CIMultiDict, CIMultiDictProxy

# Headers that describe one connection, not the message (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# Headers some servers and frameworks trust as the client's address, the original URL or the
# real method (a method override would dodge a rule written for DELETE). The client-address family
# is every name a proxy or CDN sets and a library reads (npm's request-ip reads X-Client-IP first).
_TRUSTED_ELSEWHERE = frozenset(
    {
        "forwarded",
        "forwarded-for",
        "x-forwarded",
        "x-real-ip",
        "client-ip",
        "x-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "cf-connecting-ipv6",
        "cf-pseudo-ipv4",
        "fastly-client-ip",
        "x-cluster-client-ip",
        "x-appengine-user-ip",
        "fly-client-ip",
        "x-envoy-external-address",
        "x-originating-ip",
        "x-remote-ip",
        "x-remote-addr",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    }
)
# Identity headers only the runtime sets: whatever a client sent under them is dropped.
_RESERVED_PREFIXES = ("x-space-", "x-forwarded-")
# `Expect: 100-continue` is answered by the gate once the request has passed; a micro that never
# sends `100 Continue` itself must not leave the body waiting.
_ANSWERED_HERE = frozenset({"expect"})
# Headers a client's `Connection` tokens may never remove: without `Host` the micro would see its
# own internal address, and the body's framing is the runtime's to write.
_NEVER_HOP_BY_HOP = frozenset({b"host", b"content-length"})


def connection_tokens(values: Iterable[str]) -> frozenset[str]:
    """Header names the values of `Connection` headers mark as hop-by-hop, in lower case."""
    return frozenset(t.strip().lower() for v in values for t in v.split(",") if t.strip())


def dropped_names(key_headers: Iterable[str]) -> frozenset[bytes]:
    """Every header name (lower case, `_` read as `-`) a micro never receives from a client, but
    for the `x-space-` and `x-forwarded-` families, which go by prefix: the hop-by-hop ones, the
    client-address family, `Expect`, and the headers that carry API keys."""
    names = HOP_BY_HOP | _TRUSTED_ELSEWHERE | _ANSWERED_HERE | {"content-length"}
    names |= {h.lower().replace("_", "-") for h in key_headers}
    return frozenset(n.encode("ascii") for n in names)


_PREFIXES = tuple(p.encode("ascii") for p in _RESERVED_PREFIXES)
# How aiohttp reads header bytes as text, so that they go out again as the same bytes.
AS_SENT = ("utf-8", "surrogateescape")


@dataclass(frozen=True)
class ForwardedHeaders:
    """A request's header lines as the micro gets them (each `Name: value\\r\\n`), and what the
    upstream head must add: a `Host` if the client sent none, and a `Content-Length: 0` for a
    client that sent one with no body."""

    lines: tuple[bytes, ...]
    has_host: bool
    sent_length: bool

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> ForwardedHeaders:
        """Headers exactly as given, as names and values (the upstream client's tests)."""
        lines, host, length = [], False, False
        for name, value in pairs:
            lower = name.lower()
            if lower == "content-length":
                length = True
                continue
            if lower == "transfer-encoding":
                continue
            host = host or lower == "host"
            lines.append(f"{name}: {value}\r\n".encode(*AS_SENT))
        return cls(tuple(lines), host, length)

    def as_multidict(self) -> CIMultiDict[str]:
        """The same as names and values (for aiohttp's WebSocket client)."""
        out: CIMultiDict[str] = CIMultiDict()
        for line in self.lines:
            name, _, value = line[:-2].partition(b": ")
            out.add(name.decode(*AS_SENT), value.decode(*AS_SENT))
        return out


def forwarded_headers(
    raw: Iterable[tuple[bytes, bytes]],
    dropped: frozenset[bytes],
    credential_cookies: frozenset[str],
    added: Iterable[tuple[str, str]],
) -> ForwardedHeaders:
    """The client's headers (`raw`, as aiohttp read them) minus `dropped` (see `dropped_names`),
    the reserved families and the names its `Connection` headers list; its cookies minus the
    credential ones; then `added`, the runtime's own, which nothing a client sends removes."""
    lines: list[bytes] = []
    cookies: list[bytes] = []
    connection: list[bytes] = []
    host = length = False
    for name, value in raw:
        lower = name.lower()
        if b"_" in lower:
            lower = lower.replace(b"_", b"-")
        if lower in dropped or lower.startswith(_PREFIXES):
            if lower == b"connection":
                connection.append(value)
            elif lower == b"content-length":
                length = True
            continue
        if lower == b"cookie":
            cookies.append(value)
            continue
        if lower == b"host":
            host = True
        lines.append(b"%s: %s\r\n" % (name, value))
    if connection:
        tokens = {
            t.replace("_", "-").encode("ascii", "replace")
            for t in connection_tokens(v.decode("latin-1") for v in connection)
        }
        extra = tokens - dropped - _NEVER_HOP_BY_HOP
        if extra:
            # Rare: a client naming its own hop-by-hop headers. Read again without them.
            return forwarded_headers(raw, dropped | extra, credential_cookies, added)
    for name_text, value_text in added:
        lines.append(f"{name_text}: {value_text}\r\n".encode(*AS_SENT))
    if cookies:
        kept = _kept_cookies(b"; ".join(cookies), credential_cookies)
        if kept:
            lines.append(b"Cookie: %s\r\n" % kept)
    return ForwardedHeaders(tuple(lines), host, length)


# A browser sends the same Cookie header with each of its requests: what is kept of it is
# remembered, up to a bound, so the pairs are split once and not on every request.
_KEPT: dict[tuple[bytes, frozenset[str]], bytes] = {}
_KEPT_ENTRIES = 1024
_KEPT_LONGEST = 4096  # bytes; longer headers (rare) are read every time


def _kept_cookies(header: bytes, names: frozenset[str]) -> bytes:
    """`without_cookies` on the bytes of a Cookie header."""
    found = _KEPT.get((header, names))
    if found is not None:
        return found
    kept = without_cookies(header.decode(*AS_SENT), names).encode(*AS_SENT)
    if len(header) <= _KEPT_LONGEST:
        if len(_KEPT) >= _KEPT_ENTRIES:
            _KEPT.clear()  # many different headers: start again rather than grow
        _KEPT[(header, names)] = kept
    return kept


def request_cookie(headers: CIMultiDictProxy[str], name: str) -> str | None:
    """The value of the cookie `name` in a request's Cookie headers, read as the gate reads it."""
    return cookie_value("; ".join(headers.getall("Cookie", ())), name)


def cookie_value(header: str, name: str) -> str | None:
    """The value of the first cookie called `name` in a Cookie header, or None.

    Read with the same split as `without_cookies`, so the cookie the gate checks is the cookie it
    takes out; and several times cheaper than aiohttp's `request.cookies`, which makes a Morsel
    of every cookie of the header on each request.
    """
    for pair in header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]  # a quoted value, as RFC 6265 allows
            return value
    return None


def without_cookies(header: str, names: frozenset[str]) -> str:
    """A Cookie header minus the named cookies, every other pair kept as it was sent.

    Parsers disagree on odd headers (`a=1, space_session=...` is one cookie to some, two to
    others): if a name still shows up in what is left, nothing is forwarded at all.
    """
    kept = [
        pair
        for pair in header.split(";")
        if pair.strip() and pair.split("=", 1)[0].strip() not in names
    ]
    text = ";".join(kept).strip()
    if any(f"{name}=" in text for name in names):
        return ""
    return text
