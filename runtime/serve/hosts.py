"""Which `Host` names an app answers to; any other gets 421, so DNS rebinding finds nothing.

A page on an attacker's domain whose name is made to resolve to 127.0.0.1 talks to the app as a
same-origin page: its `Origin` and the `Host` agree, so the cross-site check cannot tell. Only
the `Host` header shows the name the browser used, so every request is checked against the names
the app is served as: the loopback names, the `--host` it listens on, `[runtime] allowed_hosts`,
and, when it listens on every interface, this machine's own name and addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from aiohttp import web

from runtime.web.pages import inline_style, page, problem, wants_html

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_EVERY_INTERFACE = frozenset({"0.0.0.0", "::", ""})
# Addresses asked about once each; a client sending endless made-up ones cannot grow it further.
_MAX_REMEMBERED = 256


def host_name(header: str) -> str | None:
    """The name in a `Host` header, lower case, without port, brackets or a final dot; None when
    it is not a host at all."""
    text = header.strip().lower()
    if text.startswith("["):
        literal, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
        return literal or None
    name, colon, port = text.rpartition(":")
    if colon:
        if not port.isdigit() or ":" in name:
            return None
        text = name
    text = text.rstrip(".")
    return text or None


class AllowedHosts:
    """The names one app answers to."""

    def __init__(self, listen_host: str, extra: Iterable[str] = ()) -> None:
        self._listen_host = listen_host
        self.allow(extra)

    def allow(self, extra: Iterable[str]) -> None:
        """Answer to these names besides the loopback ones and the address listened on (a saved
        `allowed_hosts`: what was allowed before and is no longer is refused at once)."""
        listen_host = self._listen_host
        names = set(LOOPBACK_NAMES)
        suffixes = []
        for given in (listen_host, *extra):
            name = host_name(given) if given else None
            if name is None:
                continue
            if name.startswith("*."):
                suffixes.append(name[1:])  # `*.app.test` -> any name ending in `.app.test`
            else:
                names.add(name)
        self.every_interface = listen_host.strip("[]") in _EVERY_INTERFACE
        if self.every_interface:
            hostname = socket.gethostname().lower()
            names.update({hostname, hostname.split(".", 1)[0]})
        self._names = frozenset(names)
        self._suffixes = tuple(suffixes)
        self._local: dict[str, bool] = {}
        self._accepted: set[str] = set()

    def allows(self, header: str | None) -> bool:
        """Whether a request with this `Host` header (None: sent without one) is for this app."""
        if header is None:
            return True  # HTTP/1.0 clients: no browser sends a request without a Host
        if header in self._accepted:
            return True  # the same few headers come again and again: skip the parsing
        name = host_name(header)
        if name is None:
            return False
        ok = name in self._names or bool(self._suffixes and name.endswith(self._suffixes))
        if not ok and self.every_interface:
            ok = self._is_own_address(name)
        if ok and len(self._accepted) < _MAX_REMEMBERED:
            self._accepted.add(header)
        return ok

    def _is_own_address(self, name: str) -> bool:
        """Whether `name` is an IP address of this machine: only such an address can be bound."""
        known = self._local.get(name)
        if known is not None:
            return known
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((str(address), 0))
            own = True
        except OSError:
            own = False
        if len(self._local) < _MAX_REMEMBERED:
            self._local[name] = own
        return own

    def refusal(self, request: web.Request) -> web.Response:
        """The 421 page: which name was refused, how to allow it, and the app on a name it
        answers to. The page carries its own style: its stylesheet, asked for by the same
        name, would be refused too."""
        shown = host_name(request.headers.get("Host", "")) or "(none)"
        detail = (
            f"This app answers to localhost and 127.0.0.1, not to {shown!r}: a page on "
            "another name could be a DNS-rebinding attack. If you opened it by this name "
            f'on purpose, add it to space-dev.toml: [runtime] allowed_hosts = ["{shown}"] '
            "(applied when the file is saved)."
        )
        if not wants_html(request):
            return problem(request, 421, "Unknown host name", detail)
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
        where = f"http://localhost{f':{port}' if port else ''}"
        path = request.rel_url.raw_path_qs if request.method in ("GET", "HEAD") else "/"
        return page(
            "host_refused.html",
            status=421,
            title="Unknown host name",
            detail=detail,
            app_url=where + path,
            app_origin=where,
            style=inline_style(),
        )
