"""What a saved space-dev.toml changes of a running runtime: what applies at once, what waits
for the next start, and what is refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runtime.app.changes import app_change, runtime_wide
from runtime.config.defaults import DEFAULT_AUTH
from runtime.models import AppConfig, RouteRule, RuntimeConfig, Spacefile

APP = AppConfig(Path("/apps/todo"), DEFAULT_AUTH, env={"A": "1"})
RUNNING = RuntimeConfig("127.0.0.1", 4200, Path("/data"), True, True, (APP,))
EMPTY = Spacefile(Path("/apps/todo/Spacefile"), ())


def test_an_unchanged_file_changes_nothing_and_says_nothing() -> None:
    assert runtime_wide(RUNNING, RUNNING) == (RUNNING, [])
    assert app_change("todo", APP, 4200, APP, EMPTY).config is None
    assert app_change("todo", APP, 4200, None, EMPTY).config is None  # no longer listed


def test_body_cap_and_allowed_hosts_apply_at_once() -> None:
    fresh = dataclasses.replace(
        RUNNING, max_body_size=1024, allowed_hosts=("dev.test",), port=9999, host="0.0.0.0"
    )
    applied, said = runtime_wide(RUNNING, fresh)
    assert (applied.max_body_size, applied.allowed_hosts) == (1024, ("dev.test",))
    assert (applied.port, applied.host) == (4200, "127.0.0.1")  # bound already: not changed
    assert said == [
        "space-dev.toml applied: request bodies up to 1 KiB",
        "space-dev.toml applied: allowed_hosts is now dev.test",
    ]


def test_as_space_waits_for_the_next_start() -> None:
    applied, said = runtime_wide(RUNNING, dataclasses.replace(RUNNING, as_space=True))
    assert applied.as_space is False
    assert said == ["space-dev.toml: as_space takes effect at the next `space-dev up`"]


def test_new_env_values_apply_but_name_and_port_wait() -> None:
    fresh = dataclasses.replace(APP, env={"A": "2"}, name="renamed", port=5000)
    change = app_change("todo", APP, 4200, fresh, EMPTY)
    assert change.config is not None and change.config.env == {"A": "2"}
    assert (change.config.name, change.config.port) == (None, None)  # as it runs
    assert change.said == ("todo: a new name or port takes effect at the next `space-dev up`",)


def test_a_rule_for_an_unknown_micro_is_not_applied() -> None:
    fresh = dataclasses.replace(APP, routes=(RouteRule("nowhere", "/x", line=3),))
    change = app_change("todo", APP, 4200, fresh, EMPTY)
    assert change.config is None
    assert len(change.said) == 1 and change.said[0].startswith("todo: space-dev.toml not applied.")
