"""Every SPACE_DEV_* variable the runtime reads is checked in one place, and a wrong value is
told with the variable's name and what would be right."""

from __future__ import annotations

import os

import pytest

from runtime.config import environment
from runtime.errors import SpaceDevError
from runtime.supervisor.builder import installers

WRONG = [
    (environment.READY_TIMEOUT_VARIABLE, "abc", "a number above 0"),
    (environment.READY_TIMEOUT_VARIABLE, "-3", "a number above 0"),
    (environment.CLIENT_TIMEOUT_VARIABLE, "inf", "a number above 0"),
    (environment.INSTALLER_VARIABLE, "conda", "`uv` or `pip`"),
    (environment.INSTALLER_VARIABLE, "uv pip", "`uv` or `pip`"),
    (environment.PACKAGES_AS_OF_VARIABLE, "last spring", "YYYY-MM-DD"),
    (environment.PACKAGES_AS_OF_VARIABLE, "2025-13-01", "YYYY-MM-DD"),
]


@pytest.mark.parametrize(("name", "raw", "right"), WRONG)
def test_check_names_the_variable_and_what_would_be_right(name: str, raw: str, right: str) -> None:
    with pytest.raises(SpaceDevError) as caught:
        environment.check({name: raw})
    assert caught.value.message.startswith(f"{name}={raw!r} ")
    assert right in caught.value.hint and name in caught.value.hint


def test_check_takes_every_right_value_and_an_empty_environment() -> None:
    environment.check({})
    environment.check(
        {
            environment.READY_TIMEOUT_VARIABLE: "90",
            environment.CLIENT_TIMEOUT_VARIABLE: "2.5",
            environment.INSTALLER_VARIABLE: "pip",
            environment.PACKAGES_AS_OF_VARIABLE: "latest",
        }
    )


@pytest.mark.parametrize(("raw", "wanted"), [("", None), ("uv", "uv"), (" PIP ", "pip")])
def test_installer(raw: str, wanted: str | None) -> None:
    assert environment.installer({environment.INSTALLER_VARIABLE: raw}) == wanted


def test_an_unknown_installer_is_refused_where_one_is_chosen() -> None:
    # It used to be taken for "no wish", and uv or pip chosen without a word.
    with pytest.raises(SpaceDevError, match=environment.INSTALLER_VARIABLE):
        installers.choose({environment.INSTALLER_VARIABLE: "conda"})


@pytest.mark.parametrize(
    ("raw", "day"), [("", "2024-10-17"), ("Latest", None), (" 2025-06-01 ", "2025-06-01")]
)
def test_packages_as_of(raw: str, day: str | None) -> None:
    assert environment.packages_as_of({environment.PACKAGES_AS_OF_VARIABLE: raw}) == day
    assert installers.as_of({environment.PACKAGES_AS_OF_VARIABLE: raw}) == day


def test_owner_password_is_taken_out_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(environment.PASSWORD_VARIABLE, "long enough password")
    assert environment.owner_password() == "long enough password"
    assert environment.PASSWORD_VARIABLE not in os.environ
    assert environment.owner_password() is None  # unset now
    monkeypatch.setenv(environment.PASSWORD_VARIABLE, "short")
    with pytest.raises(SpaceDevError) as caught:
        environment.owner_password()
    assert caught.value.message.startswith(f"{environment.PASSWORD_VARIABLE} is too short")
    assert environment.PASSWORD_VARIABLE not in os.environ  # gone even when refused
