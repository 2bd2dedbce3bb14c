"""The owner's password from `SPACE_DEV_PASSWORD` is used to make the owner, then let go: nothing
the runtime keeps for the rest of the run holds it."""

from __future__ import annotations

import gc
import io
import textwrap
import types
from collections import deque
from pathlib import Path

import pytest

from runtime.app.runtime import Runtime
from runtime.auth.passwords import verify_password
from runtime.config.defaults import DEFAULT_AUTH
from runtime.datadir.store import Store
from runtime.models import AppConfig, RuntimeConfig
from runtime.supervisor.output import Printer

PASSWORD = "the owner's chosen password, 8+"

# What the walk does not enter: code and the places every object reaches (modules, classes,
# frames), where the test's own copy of the password lives.
_NOT_ENTERED = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.FrameType,
    types.CodeType,
    types.CoroutineType,
    types.MethodType,
    types.BuiltinFunctionType,
)


def _holders(root: object, secret: str, limit: int = 200_000) -> list[str]:
    """The types of the containers reachable from `root` that hold a string equal to `secret`."""
    seen: set[int] = {id(root)}
    queue: deque[object] = deque([root])
    found = []
    while queue and len(seen) < limit:
        current = queue.popleft()
        for child in gc.get_referents(current):
            if isinstance(child, str):
                if child == secret:
                    found.append(type(current).__name__)
                continue
            if id(child) in seen or isinstance(child, _NOT_ENTERED):
                continue
            seen.add(id(child))
            queue.append(child)
    return found


async def test_the_password_is_let_go_once_the_owner_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    (app / "public").mkdir(parents=True)
    (app / "Spacefile").write_text(
        textwrap.dedent("""
        v: 0
        micros:
          - name: www
            src: .
            engine: static
            serve: public
        """)
    )
    config = RuntimeConfig(
        host="127.0.0.1",
        port=0,
        data_dir=tmp_path / "data",
        reload=False,
        schedule=False,
        apps=(AppConfig(path=app, auth=DEFAULT_AUTH, port=0),),
    )
    monkeypatch.setenv("SPACE_DEV_PASSWORD", PASSWORD)
    runtime = Runtime(config, Printer(io.StringIO(), colour=False))
    runtime.load()
    await runtime.start()
    try:
        owner = Store(config.data_dir).users.owner()
        assert owner is not None and verify_password(PASSWORD, owner.password_hash)
        assert _holders(runtime, PASSWORD) == []
    finally:
        await runtime.stop()


def test_the_walk_finds_a_password_kept_anywhere_below() -> None:
    """The control: a password kept in an attribute, a dict or a list is found."""

    class Holder:
        pass

    kept = Holder()
    kept.nested = {"a": [Holder()]}  # type: ignore[attr-defined]
    kept.nested["a"][0].secret = "".join(["the owner's ", "password"])  # type: ignore[attr-defined]
    assert _holders(kept, "the owner's password") == ["Holder"]
    assert _holders(kept, "another password") == []
