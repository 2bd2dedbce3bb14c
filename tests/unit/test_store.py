"""The data dir: round trips of every area, file modes, crash safety, concurrent writers, and
refusal to touch broken or foreign files. Real files in tmp_path, real processes."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import re
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runtime.datadir.datafile import FORMAT_VERSION
from runtime.datadir.store import Store
from runtime.errors import DataDirError, SpaceDevError
from runtime.models import ApiKey

T0 = datetime(2021, 4, 22, 11, 50, 8, tzinfo=UTC)


class Clock:
    """A settable clock, so session expiry is tested without waiting."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / ".space-dev"


@pytest.fixture
def store(data_dir: Path) -> Store:
    return Store(data_dir)


def key(name: str, app: str = "notes", **extra: object) -> ApiKey:
    fields: dict = {"key_hash": f"hash-{app}-{name}", "prefix": "abcd1234", **extra}
    return ApiKey(app=app, name=name, **fields)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def temp_files(data_dir: Path) -> list[str]:
    return [p.name for p in data_dir.iterdir() if p.name.endswith(".tmp")]


# --- the directory and its files -------------------------------------------------------------


def test_reads_on_a_fresh_dir_are_empty_and_create_nothing(store: Store, data_dir: Path) -> None:
    assert store.users.list() == []
    assert store.keys.list("notes") == []
    assert store.get_env("notes") == {}
    assert store.known_apps() == {}
    assert store.read_runtime_info() is None
    assert store.version() == (0, 0, 0)
    assert store.snapshot().users == {}
    assert not data_dir.exists()


def test_first_write_makes_the_dir_0700_and_the_store_0600(store: Store, data_dir: Path) -> None:
    store.users.add("dev", "h")
    assert mode(data_dir) == 0o700
    assert mode(store.path) == 0o600
    meta = json.loads(store.path.read_text())["_meta"]
    assert list(meta.values()) == [{"format": "space-dev", "version": FORMAT_VERSION}]


def test_a_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("hello")
    store = Store(path)
    for call in (store.users.list, store.version, store.secret, lambda: store.set_env("a", {})):
        with pytest.raises(DataDirError, match="is a file"):
            call()
    assert path.read_text() == "hello"


# --- users and sessions ----------------------------------------------------------------------


def test_users_round_trip_and_the_first_is_the_owner(store: Store) -> None:
    dev = store.users.add("dev", "hash1")
    ann = store.users.add("ann", "hash2", ["ops", "qa"])
    assert dev.owner and not ann.owner
    again = Store(store.data_dir)  # a second process's view
    assert [u.name for u in again.users.list()] == ["dev", "ann"]
    assert again.users.get("ann") == ann
    assert again.users.get("nobody") is None
    assert again.users.owner() == dev
    again.users.set_password_hash("ann", "hash3")
    again.users.set_groups("ann", ["ops"])
    changed = store.users.get("ann")
    assert changed is not None and changed.password_hash == "hash3"
    assert changed.groups == ("ops",)


def test_the_owner_cannot_be_removed_and_stays_the_owner(store: Store) -> None:
    store.users.add("dev", "h")
    store.users.add("ann", "h")
    with pytest.raises(SpaceDevError, match='"dev" is the owner'):
        store.users.remove("dev")
    store.users.remove("ann")
    store.users.add("bob", "h")  # not the first ever: not the owner either
    assert [(u.name, u.owner) for u in store.users.list()] == [("dev", True), ("bob", False)]


def test_user_errors_name_the_user_and_what_to_do(store: Store) -> None:
    store.users.add("dev", "h")
    with pytest.raises(SpaceDevError, match='"dev" already exists'):
        store.users.add("dev", "h")
    with pytest.raises(SpaceDevError, match='no user named "ann"') as err:
        store.users.set_password_hash("ann", "h")
    assert "dev" in err.value.hint


def test_sessions_round_trip(store: Store) -> None:
    store.users.add("dev", "h")
    sid = store.sessions.create("dev")
    assert len(sid) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", sid)
    found = store.sessions.get(sid)
    assert found is not None and found.user == "dev"
    assert store.snapshot().session(sid) == found
    assert store.sessions.delete(sid) is True
    assert store.sessions.get(sid) is None
    assert store.sessions.delete(sid) is False
    with pytest.raises(SpaceDevError, match="no user"):
        store.sessions.create("ghost")


def test_sessions_last_seven_days(data_dir: Path) -> None:
    clock = Clock()
    store = Store(data_dir, clock=clock)
    store.users.add("dev", "h")
    sid = store.sessions.create("dev")
    found = store.sessions.get(sid)
    assert found is not None and (found.created, found.expires) == (
        "2021-04-22T11:50:08Z",
        "2021-04-29T11:50:08Z",
    )
    clock.now = T0 + timedelta(days=7, seconds=-1)
    assert store.sessions.get(sid) is not None
    clock.now = T0 + timedelta(days=7)
    assert store.sessions.get(sid) is None
    assert store.snapshot().session(sid, clock.now) is None
    fresh = store.sessions.create("dev")  # sweeps the expired one on the way
    assert set(store.snapshot().sessions) == {fresh}
    clock.now += timedelta(days=8)
    assert store.sessions.purge() == 1
    assert store.snapshot().sessions == {}


def test_a_password_change_or_removal_ends_the_users_sessions(store: Store) -> None:
    store.users.add("dev", "h")
    store.users.add("ann", "h")
    dev_sid, ann_sids = store.sessions.create("dev"), [store.sessions.create("ann")] * 2
    store.users.set_password_hash("ann", "new")
    assert all(store.sessions.get(s) is None for s in ann_sids)
    assert store.sessions.get(dev_sid) is not None
    ann_sid = store.sessions.create("ann")
    store.users.remove("ann")
    assert store.sessions.get(ann_sid) is None
    assert store.sessions.delete_for_user("dev") == 1
    assert store.sessions.get(dev_sid) is None


# --- API keys --------------------------------------------------------------------------------


def test_keys_round_trip(store: Store) -> None:
    made = store.keys.create(key("ci", description="deploys", client_type="admin"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", made.created)
    store.keys.create(key("ci", app="other"))  # names are unique per app only
    store.keys.create(key("phone"))
    again = Store(store.data_dir)
    assert [k.name for k in again.keys.list("notes")] == ["ci", "phone"]
    assert again.keys.get("notes", "ci") == made
    assert again.keys.get_by_hash("hash-notes-ci") == made
    assert again.keys.get_by_hash("nope") is None
    off = again.keys.set_active("notes", "ci", False)
    assert off.active is False and store.keys.get("notes", "ci").active is False
    assert store.keys.set_active("notes", "ci", True).active is True
    store.keys.revoke("notes", "ci")
    assert [k.name for k in store.keys.list("notes")] == ["phone"]
    assert store.keys.get_by_hash("hash-notes-ci") is None
    assert store.snapshot().keys_by_hash.keys() == {"hash-other-ci", "hash-notes-phone"}


def test_key_errors(store: Store) -> None:
    store.keys.create(key("ci"))
    store.keys.create(key("phone"))
    with pytest.raises(SpaceDevError, match='already has a key named "ci"'):
        store.keys.create(key("ci", key_hash="other"))
    with pytest.raises(SpaceDevError, match="already in use"):
        store.keys.create(key("ci2", key_hash="hash-notes-ci"))
    for call in (
        lambda: store.keys.revoke("notes", "cli"),
        lambda: store.keys.set_active("notes", "cli", False),
        lambda: store.keys.get("notes", "cli"),
    ):
        with pytest.raises(SpaceDevError, match='no key named "cli" in app "notes"') as err:
            call()
        assert "ci, phone" in err.value.hint
    with pytest.raises(SpaceDevError) as err:
        store.keys.revoke("empty", "x")
    assert "keys create" in err.value.hint


def test_record_last_used_in_batches(store: Store) -> None:
    store.keys.create(key("a"))
    store.keys.create(key("b"))
    store.keys.record_last_used(
        {("notes", "a"): "2021-04-22T11:50:08Z", ("notes", "gone"): "2021-04-22T11:50:08Z"}
    )
    store.keys.record_last_used({("notes", "a"): "2021-04-22T11:00:00Z"})  # older: ignored
    assert [(k.name, k.last_used) for k in store.keys.list("notes")] == [
        ("a", "2021-04-22T11:50:08Z"),
        ("b", None),
    ]
    assert [k.name for k in store.keys.list("notes")] == ["a", "b"]  # "gone" was not made


def test_record_last_used_never_undoes_a_concurrent_revoke_or_switch_off(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("gone", "off", "used"):
        store.keys.create(key(name))
    real_flock = fcntl.flock
    waiting = threading.Event()

    def flock(fd: int, op: int) -> None:
        if threading.current_thread() is flusher:
            waiting.set()  # the flusher has done whatever it does before taking the lock
        real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    batch = {("notes", n): "2021-04-22T11:50:08Z" for n in ("gone", "off", "used")}
    flusher = threading.Thread(target=store.keys.record_last_used, args=(batch,))
    with store.file.write() as db:  # a CLI command revoking and switching off, meanwhile
        db.table("keys").remove(lambda d: d["name"] == "gone")
        db.table("keys").update({"active": False}, lambda d: d["name"] == "off")
        flusher.start()
        assert waiting.wait(5)
    flusher.join(5)
    keys = {k.name: k for k in store.keys.list("notes")}
    assert set(keys) == {"off", "used"}
    assert keys["off"].active is False and keys["off"].last_used == "2021-04-22T11:50:08Z"
    assert keys["used"].last_used == "2021-04-22T11:50:08Z"


# --- env, auth switch, apps, project keys, runs ----------------------------------------------


def test_env_values_per_app(store: Store) -> None:
    store.set_env("notes", {"GREETING": "hi", "N": "1"})
    store.set_env("other", {"X": "y"})
    store.set_env("notes", {"GREETING": "hello"})  # replaces the whole set
    assert Store(store.data_dir).get_env("notes") == {"GREETING": "hello"}
    assert store.snapshot().env == {"notes": {"GREETING": "hello"}, "other": {"X": "y"}}


def test_auth_switch_per_app_and_micro(store: Store) -> None:
    assert store.auth_switches("notes") == {} and store.auth_enabled("notes", "api")
    store.set_auth("notes", "api", False)
    assert store.auth_switches("notes") == {"api": False}
    snap = store.snapshot()
    assert not snap.auth_enabled("notes", "api") and snap.auth_enabled("notes", "web")
    assert snap.auth_enabled("other", "api")
    store.set_auth("notes", None, False)
    store.set_auth("notes", "web", True)
    snap = store.snapshot()
    assert not snap.auth_enabled("notes", "api") and snap.auth_enabled("notes", "web")
    store.set_auth("notes", None, True)  # the app-wide switch resets the micros' own
    assert store.auth_switches("notes") == {None: True}
    assert store.auth_enabled("notes", "api")


def test_apps_served_are_remembered(store: Store, tmp_path: Path) -> None:
    store.remember_app("notes", tmp_path / "a")
    store.remember_app("todo", tmp_path / "b")
    store.remember_app("notes", tmp_path / "c")
    assert Store(store.data_dir).known_apps() == {"notes": tmp_path / "c", "todo": tmp_path / "b"}


def test_project_key_is_made_once_per_app(store: Store) -> None:
    first = store.project_key("notes")
    assert re.fullmatch(r"[0-9a-f]{8}_[A-Za-z0-9]{32}", first)
    assert Store(store.data_dir).project_key("notes") == first
    assert store.project_key("other") != first
    assert store.snapshot().project_keys["notes"] == first


def test_action_runs_keep_the_last_20_newest_first(store: Store) -> None:
    for i in range(23):
        store.add_run("notes", "cleanup", {"status": 200, "duration": i / 10})
    store.add_run(
        "notes", "other", {"status": 500, "duration": 1.0, "time": "2021-04-22T11:50:08Z"}
    )
    runs = store.runs("notes", "cleanup")
    assert len(runs) == 20
    assert [r["duration"] for r in runs[:2]] == [2.2, 2.1] and runs[-1]["duration"] == 0.3
    assert all(re.fullmatch(r"\d{4}-.*Z", r["time"]) for r in runs)
    assert store.runs("notes", "other") == [
        {"status": 500, "duration": 1.0, "time": "2021-04-22T11:50:08Z"}
    ]
    assert store.runs("notes", "nope") == []


# --- versions, the secret, runtime.json ------------------------------------------------------


def test_version_changes_after_every_write_and_only_then(store: Store) -> None:
    seen = {store.version()}
    for i in range(5):  # fast writes of the same size: still a new version each time
        store.set_env("notes", {"N": str(i)})
        assert store.version() not in seen
        seen.add(store.version())
    before = store.version()
    store.keys.record_last_used({("notes", "none"): "2021-04-22T11:50:08Z"})  # changes nothing
    assert store.version() == before
    assert store.snapshot().version == before


def test_the_secret_is_made_once_with_mode_0600(store: Store) -> None:
    secret = store.secret()
    assert len(secret) >= 32
    path = store.data_dir / "secret"
    assert mode(path) == 0o600 and mode(store.data_dir) == 0o700
    assert Store(store.data_dir).secret() == secret
    assert temp_files(store.data_dir) == []


def test_a_truncated_secret_is_an_error_and_kept(store: Store) -> None:
    store.data_dir.mkdir()
    (store.data_dir / "secret").write_bytes(b"short")
    with pytest.raises(DataDirError, match="secret"):
        store.secret()
    assert (store.data_dir / "secret").read_bytes() == b"short"


def _secret_worker(data_dir: str, barrier: object, out: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    out.put(Store(Path(data_dir)).secret())  # type: ignore[attr-defined]


def test_processes_racing_for_the_secret_all_get_the_same_one(data_dir: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_secret_worker, args=(str(data_dir), barrier, out)) for _ in "1234"]
    for p in procs:
        p.start()
    secrets = {out.get(timeout=10) for _ in procs}
    for p in procs:
        p.join(10)
    assert len(secrets) == 1 and secrets == {Store(data_dir).secret()}


def test_runtime_info_round_trip(store: Store) -> None:
    store.write_runtime_info("http://127.0.0.1:4200/", "tok")
    path = store.data_dir / "runtime.json"
    assert mode(path) == 0o600
    info = Store(store.data_dir).read_runtime_info()
    assert info is not None
    assert (info["url"], info["token"], info["pid"]) == (
        "http://127.0.0.1:4200/",
        "tok",
        os.getpid(),
    )
    store.clear_runtime_info()
    assert not path.exists() and store.read_runtime_info() is None


def test_runtime_info_of_a_dead_process_is_none_and_not_ours_to_clear(store: Store) -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    store.write_runtime_info("http://127.0.0.1:4200/", "tok")
    path = store.data_dir / "runtime.json"
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "pid": pid}))
    assert store.read_runtime_info() is None
    store.clear_runtime_info()  # written by another process: left for it (or the next writer)
    assert path.exists()
    store.write_runtime_info("http://127.0.0.1:4300/", "tok2")  # a stale file of ours: replaced
    assert store.read_runtime_info()["url"] == "http://127.0.0.1:4300/"  # type: ignore[index]


def test_a_foreign_runtime_json_is_an_error_and_kept(store: Store) -> None:
    store.data_dir.mkdir()
    path = store.data_dir / "runtime.json"
    path.write_text('{"hello": 1}')
    for call in (store.read_runtime_info, lambda: store.write_runtime_info("u", "t")):
        with pytest.raises(DataDirError, match="runtime.json"):
            call()
    assert path.read_text() == '{"hello": 1}'


# --- crashes, concurrency, broken and foreign files ------------------------------------------


@pytest.mark.parametrize("fail", ["replace", "fsync"])
def test_a_crash_in_the_middle_of_a_write_leaves_the_old_state(
    store: Store, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    store.users.add("dev", "h")
    before = store.path.read_bytes()

    def boom(*args: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, fail, boom)
        with pytest.raises(OSError, match="No space"):
            store.users.add("ann", "h")
    assert store.path.read_bytes() == before
    assert [u.name for u in store.users.list()] == ["dev"]
    assert temp_files(store.data_dir) == []
    store.users.add("ann", "h")  # and the store still works
    assert [u.name for u in store.users.list()] == ["dev", "ann"]


def test_an_exception_inside_a_transaction_writes_nothing(store: Store) -> None:
    store.users.add("dev", "h")
    version = store.version()
    with pytest.raises(RuntimeError), store.file.write() as db:
        db.table("users").truncate()
        raise RuntimeError
    assert store.version() == version and store.users.owner() is not None


def test_temp_files_left_by_a_hard_crash_are_swept(store: Store) -> None:
    store.users.add("dev", "h")
    (store.data_dir / ".store.json.abc123.tmp").write_text("{half")
    store.users.add("ann", "h")
    assert temp_files(store.data_dir) == []


def _add_keys(data_dir: str, worker: int, barrier: object) -> None:
    store = Store(Path(data_dir))
    barrier.wait()  # type: ignore[attr-defined]
    for i in range(25):
        store.keys.create(key(f"k{worker}-{i}"))


def test_four_processes_writing_at_once_lose_nothing(data_dir: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_add_keys, args=(str(data_dir), w, barrier)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    names = {k.name for k in Store(data_dir).keys.list("notes")}
    assert names == {f"k{w}-{i}" for w in range(4) for i in range(25)}


FOREIGN = {
    "not json": b"{this is not json",
    "not utf-8": b"\xff\xfe{}",
    "empty": b"",
    "a list": b"[1, 2, 3]",
    "no marker": b'{"users": {"1": {"name": "dev"}}}',
    "another format": b'{"_meta": {"1": {"format": "tinydb-app", "version": 1}}}',
    "tables not tables": b'{"_meta": {"1": {"format": "space-dev", "version": 1}}, "users": 3}',
    "a newer version": b'{"_meta": {"1": {"format": "space-dev", "version": 99}}}',
}


@pytest.mark.parametrize("content", FOREIGN.values(), ids=FOREIGN.keys())
def test_broken_or_foreign_files_are_errors_and_left_untouched(
    store: Store, content: bytes
) -> None:
    store.data_dir.mkdir()
    store.path.write_bytes(content)
    calls = (
        store.users.list,
        store.snapshot,
        lambda: store.users.add("dev", "h"),
        lambda: store.keys.create(key("ci")),
        lambda: store.set_env("notes", {"A": "b"}),
        lambda: store.project_key("notes"),
    )
    for call in calls:
        with pytest.raises(DataDirError) as err:
            call()
        assert str(store.path) in err.value.message and err.value.hint
    assert store.path.read_bytes() == content
