"""The runtime's parts exist from its construction (a stop after a start that failed early has
them all), and a micro's launch spec, which reads its files, is made off the event loop."""

from __future__ import annotations

import io
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from runtime.app import runtime as runtime_module
from runtime.app.runtime import Runtime
from runtime.config.defaults import DEFAULT_AUTH
from runtime.models import AppConfig, RuntimeConfig
from runtime.supervisor.output import Printer

SPACEFILE = textwrap.dedent("""
    v: 0
    micros:
      - name: api
        src: api
        engine: python3.9
        run: python main.py
      - name: www
        src: www
        engine: static
        serve: .
        primary: true
    """)


def _runtime(tmp_path: Path) -> Runtime:
    app = tmp_path / "app"
    (app / "api").mkdir(parents=True)
    (app / "www").mkdir()
    (app / "api" / "main.py").write_text("print('hi')\n")
    (app / "api" / "requirements.txt").write_text("six\n")
    (app / "Spacefile").write_text(SPACEFILE)
    config = RuntimeConfig(
        host="127.0.0.1",
        port=0,
        data_dir=tmp_path / "data",
        reload=False,
        schedule=False,
        apps=(AppConfig(path=app, auth=DEFAULT_AUTH, port=0),),
    )
    runtime = Runtime(config, Printer(io.StringIO(), colour=False))
    runtime.load()
    return runtime


async def test_a_runtime_that_never_started_stops(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    await runtime.stop()  # every part is there to close: no AttributeError
    assert runtime.scheduler.actions(runtime.apps[0].name) == []


async def test_one_micros_spec_is_made_off_the_loop_and_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = _runtime(tmp_path)
    await runtime.data_site.start()  # what micros are told of the data API
    host = runtime.apps[0]
    made: list[tuple[str | None, bool]] = []
    real = runtime_module.micro_specs

    def spied(view: Any, only: str | None = None) -> Any:
        made.append((only, threading.current_thread() is threading.main_thread()))
        return real(view, only)

    monkeypatch.setattr(runtime_module, "micro_specs", spied)
    spec = await runtime.spec_of(host, "api")
    assert made == [("api", False)]  # that micro only, in a worker thread
    specs, _ = await runtime.specs(host)
    assert made[1] == (None, False)
    assert spec == specs["api"] and spec is not None
    assert spec.setup is not None and spec.setup.python is not None  # read requirements.txt
    assert await runtime.spec_of(host, "www") is None  # served by the runtime
    assert await runtime.spec_of(host, "gone") is None
    await runtime.stop()
