"""The gate's own Cookie header reading: the cookie it checks is the cookie it takes out."""

from __future__ import annotations

import pytest

from runtime.serve.forwarded import cookie_value, without_cookies

S = "space_session"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("space_session=abc", "abc"),
        ("theme=dark; space_session=abc; lang=en", "abc"),
        ("theme=dark;space_session=abc", "abc"),
        ("  space_session = abc  ", "abc"),
        ('space_session="abc"', "abc"),
        ("space_session=abc; space_session=later", "abc"),  # the first, as browsers order them
        ("space_session=", ""),
        ("space_session=a=b", "a=b"),
        ("a=1, space_session=abc", None),  # one cookie named `a` to this reading...
        ("xspace_session=abc", None),
        ("space_sessionx=abc", None),
        ("space_session", None),
        ("", None),
    ],
)
def test_cookie_value(header: str, value: str | None) -> None:
    assert cookie_value(header, S) == value


@pytest.mark.parametrize(
    "header",
    [
        "a=1, space_session=abc",
        "theme=dark; space_session=abc",
        'space_session="abc"; x=1',
    ],
)
def test_what_is_not_read_as_the_session_is_not_forwarded_either(header: str) -> None:
    """...and, whatever a micro's parser makes of it, the stripped header never holds it."""
    assert "space_session=" not in without_cookies(header, frozenset({S}))
