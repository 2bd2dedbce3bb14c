"""The headers a micro receives of a request, read from the bytes a client sent."""

from __future__ import annotations

from runtime.serve import forwarded
from runtime.serve.forwarded import ForwardedHeaders, dropped_names, forwarded_headers

DROPPED = dropped_names(("X-Space-App-Key", "X-API-Key"))
CREDENTIALS = frozenset({"space_session", "space_key"})


def shaped(raw: list[tuple[bytes, bytes]], added: tuple[tuple[str, str], ...] = ()) -> bytes:
    return b"".join(forwarded_headers(raw, DROPPED, CREDENTIALS, added).lines)


def test_end_to_end_headers_pass_as_sent_and_the_runtimes_own_come_last() -> None:
    raw = [(b"Host", b"app.test"), (b"Accept", b"*/*"), (b"X-Odd", b"caf\xc3\xa9 \xe9")]
    assert shaped(raw, (("X-Space-Auth", "public"),)) == (
        b"Host: app.test\r\nAccept: */*\r\nX-Odd: caf\xc3\xa9 \xe9\r\nX-Space-Auth: public\r\n"
    )


def test_identity_hop_by_hop_key_and_address_headers_never_pass_in_any_spelling() -> None:
    raw = [
        (b"X-Space-User", b"owner"),
        (b"x_space_user", b"owner"),
        (b"X-SPACE-KEY-NAME", b"k"),
        (b"X-Forwarded-For", b"1.2.3.4"),
        (b"X_Forwarded_Host", b"evil"),
        (b"Forwarded", b"x"),
        (b"True-Client-IP", b"1.2.3.4"),
        (b"X-HTTP-Method-Override", b"DELETE"),
        (b"X-Space-App-Key", b"secret"),
        (b"x_api_key", b"secret"),
        (b"Keep-Alive", b"5"),
        (b"TE", b"trailers"),
        (b"Upgrade", b"h2c"),
        (b"Expect", b"100-continue"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Content-Length", b"5"),
        (b"Accept", b"*/*"),
    ]
    result = forwarded_headers(raw, DROPPED, CREDENTIALS, ())
    assert result.lines == (b"Accept: */*\r\n",)
    assert result.sent_length and not result.has_host


def test_connection_tokens_drop_what_they_name_but_never_host_or_the_runtimes_headers() -> None:
    raw = [
        (b"Connection", b"close, X-Debug, host, content-length, x-space-auth"),
        (b"Host", b"app.test"),
        (b"X-Debug", b"1"),
        (b"X-Other", b"2"),
    ]
    assert shaped(raw, (("X-Space-Auth", "public"),)) == (
        b"Host: app.test\r\nX-Other: 2\r\nX-Space-Auth: public\r\n"
    )


def test_credential_cookies_are_taken_out_and_the_others_kept_as_sent() -> None:
    raw = [(b"Cookie", b"a=1; space_session=s.sig"), (b"Cookie", b"space_key=k; b=\xe9")]
    assert shaped(raw) == b"Cookie: a=1; b=\xe9\r\n"
    assert shaped([(b"Cookie", b"space_session=s.sig")]) == b""
    # Read the other way by some parsers, so nothing is forwarded at all.
    assert shaped([(b"Cookie", b"a=1, space_session=s.sig")]) == b""


def test_a_remembered_cookie_header_is_kept_per_set_of_credential_names() -> None:
    forwarded._KEPT.clear()
    header = [(b"Cookie", b"space_session=s; other_key=k; a=1")]
    assert shaped(header) == b"Cookie: other_key=k; a=1\r\n"
    others = frozenset({"space_session", "other_key"})
    assert forwarded_headers(header, DROPPED, others, ()).lines == (b"Cookie: a=1\r\n",)
    assert shaped(header) == b"Cookie: other_key=k; a=1\r\n"


def test_the_multidict_view_reads_the_lines_back() -> None:
    headers = ForwardedHeaders.of([("Host", "h"), ("X-A", "caf\udce9"), ("Content-Length", "3")])
    assert headers.sent_length and headers.has_host
    assert list(headers.as_multidict().items()) == [("Host", "h"), ("X-A", "caf\udce9")]
