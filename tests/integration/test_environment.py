"""A wrong SPACE_DEV_* value stops `space-dev up` at its start: exit 1, one paragraph naming the
variable and what would be right, no traceback, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.micros import write_app

STATIC = (
    "v: 0\nmicros:\n  - name: site\n    src: .\n    engine: static\n    serve: .\n"
    "    public: true\n"
)


@pytest.mark.parametrize(
    ("variable", "value", "told"),
    [
        (
            "SPACE_DEV_READY_TIMEOUT",
            "abc",
            "SPACE_DEV_READY_TIMEOUT='abc' is not a number of seconds",
        ),
        (
            "SPACE_DEV_INSTALLER",
            "conda",
            "SPACE_DEV_INSTALLER='conda' is not an installer space-dev knows",
        ),
        # Told at the start, not at the first install (an app without requirements has none).
        (
            "SPACE_DEV_PACKAGES_AS_OF",
            "yesterday",
            "SPACE_DEV_PACKAGES_AS_OF='yesterday' is neither a day nor `latest`",
        ),
    ],
)
def test_a_wrong_value_stops_up_with_its_name(
    tmp_path: Path, up_factory, variable: str, value: str, told: str
) -> None:
    app = write_app(tmp_path / "app", STATIC, {"index.html": "<p>hello</p>"})
    up = up_factory(app, env={variable: value})
    assert up.proc.wait(20) == 1
    up.stop()  # the output read to its end
    assert told in up.output
    assert variable in up.output.split(told, 1)[1]  # the hint names it too
    assert "Traceback" not in up.output
    assert "ready:" not in up.output and "sign in" not in up.output


def test_right_values_start(tmp_path: Path, up_factory) -> None:
    app = write_app(tmp_path / "app", STATIC, {"index.html": "<p>hello</p>"})
    up = up_factory(app, env={"SPACE_DEV_READY_TIMEOUT": "45", "SPACE_DEV_INSTALLER": "pip"})
    up.wait_ready(20)
