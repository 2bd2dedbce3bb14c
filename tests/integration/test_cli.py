"""The data commands (keys, auth, users, trigger) run as the real `space-dev` command in a
subprocess, against a data dir in tmp_path, with a fake runtime where one must be running."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runtime.auth.keys import hash_key
from runtime.auth.passwords import verify_password
from runtime.cloud.data import AppData, DataServices
from runtime.datadir.store import Store

STATIC_SPACEFILE = "v: 0\nmicros:\n  - name: site\n    src: .\n    engine: static\n    serve: .\n"
ACTION_SPACEFILE = (
    "v: 0\nmicros:\n  - name: api\n    src: .\n    engine: python3.9\n    actions:\n"
    "      - id: cleanup\n        name: Clean up\n        trigger: schedule\n"
    "        default_interval: 1 hour\n"
)
CREATED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
PASSWORD = "correct horse battery"


class Cli:
    """`space-dev` in one folder with one data dir."""

    def __init__(self, cwd: Path, data_dir: Path) -> None:
        self.cwd = cwd
        self.data_dir = data_dir

    def __call__(
        self, *args: str, input: str | None = None, data_dir: bool = True, stdin: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        command, rest = args[0], list(args[1:])
        extra = ["--data-dir", str(self.data_dir)] if data_dir else []
        # --data-dir belongs to the leaf command: `keys create --data-dir X`.
        leaf = rest[:1] if command in ("keys", "auth", "users", "data") else []
        argv = [command, *leaf, *extra, *rest[len(leaf) :]]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        return subprocess.run(
            [sys.executable, "-m", "runtime", *argv],
            cwd=self.cwd,
            env=env,
            text=True,
            capture_output=True,
            input=input,
            stdin=stdin if input is None else None,
            timeout=30,
        )

    def ok(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = self(*args, input=input)
        assert done.returncode == 0, done.stderr
        return done

    def fails(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = self(*args, input=input)
        assert done.returncode == 1, (done.stdout, done.stderr)
        assert done.stderr.startswith("error: ")
        assert "Traceback" not in done.stderr
        return done

    def store(self) -> Store:
        return Store(self.data_dir)


def make_app(folder: Path, spacefile: str = STATIC_SPACEFILE) -> Path:
    folder.mkdir(parents=True)
    (folder / "Spacefile").write_text(spacefile)
    (folder / "index.html").write_text("<h1>hi</h1>")
    return folder


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """In the app folder `notes` (its Spacefile has no app_name: the app is `notes`)."""
    return Cli(make_app(tmp_path / "notes"), tmp_path / "data")


def data_dir_text(data_dir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in data_dir.rglob("*") if p.is_file())


# --- keys -----------------------------------------------------------------------------------


def test_keys_round_trip_shows_the_secret_only_at_creation(cli: Cli) -> None:
    empty = cli.ok("keys", "list")
    assert "no API keys" in empty.stdout and "space-dev keys create" in empty.stdout

    made = json.loads(
        cli.ok(
            "keys", "create", "--name", "ci", "--desc", "CI deploy", "--client-type", "admin"
        ).stdout
    )
    assert list(made) == [
        "name",
        "description",
        "prefix",
        "api_key",
        "created",
        "client_type",
        "active",
    ]
    key = made["api_key"]
    assert re.fullmatch(r"[A-Za-z0-9]{8}\.[A-Za-z0-9_-]{32}", key)
    assert made["prefix"] == key[:8] and made["active"] is True
    assert (made["name"], made["description"], made["client_type"]) == ("ci", "CI deploy", "admin")
    assert CREATED.fullmatch(made["created"])

    stored = data_dir_text(cli.data_dir)
    assert key not in stored and key.split(".")[1] not in stored
    assert hash_key(key) in stored

    table = cli.ok("keys", "list").stdout
    header, row = table.splitlines()
    assert header.split() == [
        "NAME",
        "DESCRIPTION",
        "CLIENT",
        "TYPE",
        "PREFIX",
        "ACTIVE",
        "CREATED",
        "LAST",
        "USED",
    ]
    assert header.index("PREFIX") == row.index(made["prefix"])  # aligned columns
    assert row.split()[:5] == ["ci", "CI", "deploy", "admin", made["prefix"]]
    assert row.rstrip().endswith("never")

    off = cli.ok("keys", "disable", "ci")
    assert "off" in off.stdout
    listed = json.loads(cli.ok("keys", "list", "--json").stdout)
    assert listed == [
        {
            "name": "ci",
            "description": "CI deploy",
            "client_type": "admin",
            "prefix": made["prefix"],
            "active": False,
            "created": made["created"],
            "last_used": None,
        }
    ]
    cli.ok("keys", "enable", "ci")
    assert json.loads(cli.ok("keys", "list", "--json").stdout)[0]["active"] is True
    assert [k.active for k in cli.store().keys.list("notes")] == [True]

    cli.ok("keys", "revoke", "ci")
    assert cli.store().keys.list("notes") == []
    assert json.loads(cli.ok("keys", "list", "--json").stdout) == []
    gone = cli.fails("keys", "revoke", "ci")
    assert 'no key named "ci"' in gone.stderr


def test_keys_own_value_must_be_long_enough(cli: Cli) -> None:
    short = cli.fails("keys", "create", "--name", "mine", "--value", "too-short")
    assert "too short" in short.stderr and "16" in short.stderr
    assert cli.store().keys.list("notes") == []

    value = "my-own-key-value-1234"
    made = json.loads(cli.ok("keys", "create", "--name", "mine", "--value", value).stdout)
    assert made["api_key"] == value and value not in made["prefix"]
    assert value not in data_dir_text(cli.data_dir)
    assert cli.store().keys.get_by_hash(hash_key(value)) is not None


def test_keys_duplicate_and_unknown_names_are_user_errors(cli: Cli) -> None:
    cli.ok("keys", "create", "--name", "ci")
    dup = cli.fails("keys", "create", "--name", "ci")
    assert 'already has a key named "ci"' in dup.stderr
    assert dup.stdout == ""  # no key printed for a key not kept
    unknown = cli.fails("keys", "disable", "nope")
    assert "ci" in unknown.stderr  # lists the names there are
    assert len(cli.store().keys.list("notes")) == 1


def test_auth_create_api_key_speaks_detas_format(cli: Cli) -> None:
    done = cli.ok("auth", "create-api-key", "--name", "deta", "--desc", "from micros")
    assert done.stderr.splitlines()[0] == "THE FOLLOWING API-KEY WILL ONLY BE SHOWN ONCE."
    made = json.loads(done.stdout)
    assert list(made) == ["name", "description", "prefix", "api_key", "created"]
    assert done.stdout.startswith('{\n  "name": "deta",\n  "description": "from micros",\n')
    assert made["api_key"].startswith(made["prefix"] + ".")
    assert made["api_key"] not in data_dir_text(cli.data_dir)
    (stored,) = cli.store().keys.list("notes")
    assert stored.key_hash == hash_key(made["api_key"]) and stored.active


# --- auth enable|disable --------------------------------------------------------------------


def test_auth_switch_is_kept_in_the_data_dir(cli: Cli) -> None:
    off = cli.ok("auth", "disable")
    assert off.stdout.startswith("app notes is now PUBLIC")
    assert "space-dev auth enable" in off.stdout
    assert cli.store().auth_switches("notes") == {None: False}

    micro = cli.ok("auth", "enable", "--micro", "site")
    assert micro.stdout.startswith("micro site of app notes is now PRIVATE")
    assert cli.store().auth_enabled("notes", "site") is True

    cli.ok("auth", "enable")
    assert cli.store().auth_switches("notes") == {None: True}

    wrong = cli.fails("auth", "disable", "--micro", "api")
    assert 'no micro named "api"' in wrong.stderr and "site" in wrong.stderr
    assert cli.store().auth_switches("notes") == {None: True}


# --- users ----------------------------------------------------------------------------------


def test_users_add_list_passwd_remove(cli: Cli) -> None:
    first = cli.ok("users", "add", "ann", "--password-stdin", input=PASSWORD + "\n")
    assert "owner" in first.stdout
    cli.ok(
        "users",
        "add",
        "bob",
        "--password-stdin",
        "--group",
        "ops",
        "--group",
        "dev",
        input=PASSWORD,
    )
    store = cli.store()
    ann, bob = store.users.get("ann"), store.users.get("bob")
    assert ann is not None and ann.owner and verify_password(PASSWORD, ann.password_hash)
    assert bob is not None and not bob.owner and bob.groups == ("ops", "dev")

    table = cli.ok("users", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "OWNER", "GROUPS"]
    assert table[1].split() == ["ann", "yes", "-"]
    assert table[2].split() == ["bob", "no", "ops,", "dev"]

    session = store.sessions.create("bob")
    cli.ok("users", "passwd", "bob", "--password-stdin", input="a new password\n")
    bob = store.users.get("bob")
    assert bob is not None and verify_password("a new password", bob.password_hash)
    assert store.sessions.get(session) is None  # a password change ends the sessions

    short = cli.fails("users", "passwd", "bob", "--password-stdin", input="short\n")
    assert "too short" in short.stderr and "8" in short.stderr
    dup = cli.fails("users", "add", "bob", "--password-stdin", input=PASSWORD)
    assert "already exists" in dup.stderr
    unknown = cli.fails("users", "passwd", "carol", "--password-stdin", input=PASSWORD)
    assert "ann, bob" in unknown.stderr

    owner = cli.fails("users", "remove", "ann")
    assert "owner" in owner.stderr
    cli.ok("users", "remove", "bob")
    assert [u.name for u in cli.store().users.list()] == ["ann"]


def test_users_without_a_terminal_need_password_stdin(cli: Cli) -> None:
    done = cli("users", "add", "ann", stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and "--password-stdin" in done.stderr
    assert cli.store().users.list() == []


# --- data ------------------------------------------------------------------------------------


async def _put_files(data: AppData, files: dict[str, bytes]) -> None:
    for name, body in files.items():

        async def chunks(body: bytes = body) -> AsyncIterator[bytes]:
            yield body

        await data.drive.put("site", name, chunks())


def test_data_export_reset_import_gives_every_name_back(cli: Cli, tmp_path: Path) -> None:
    files = {
        "private/config.js": b"the owner's",
        "visitor/../private/config.js": b"a visitor's",
        "../up.txt": b"climbs?",
    }
    services = DataServices(cli.data_dir)
    data = services.app("notes")
    data.base.put_many("users/42/notes", [{"key": "../k", "text": "one"}])
    asyncio.run(_put_files(data, files))
    services.close()
    backup = tmp_path / "backup.zip"
    assert "1 items and 3 files" in cli.ok("data", "export", str(backup)).stdout
    cli.ok("data", "reset", "--yes")
    done = cli.ok("data", "import", str(backup))
    assert "base users/42/notes: 1 item" in done.stdout and "drive site: 3 files" in done.stdout
    services = DataServices(cli.data_dir)
    data = services.app("notes")
    try:
        assert data.base.get("users/42/notes", "../k") == {"key": "../k", "text": "one"}
        for name, body in files.items():
            found = data.drive.open("site", name)
            assert found is not None and found[0].read_bytes() == body
    finally:
        services.close()


def test_data_import_refuses_a_zip_bomb_without_a_traceback(cli: Cli, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bases/notes.json", json.dumps([{"key": "1"}]))
        with zf.open("drives/site/zeros.bin", "w") as out:
            for _ in range(32):
                out.write(bytes(1 << 20))
    done = cli.fails("data", "import", str(bomb))
    assert "drives/site/zeros.bin in bomb.zip would unpack to 32.0 MiB" in done.stderr
    assert "more than 100 times its packed size" in done.stderr
    assert "Nothing was imported" in done.stderr
    assert "has no Base or Drive data yet" in cli.ok("data", "list").stdout


# --- which app, which data dir --------------------------------------------------------------


def test_one_app_in_the_config_needs_no_app_flag(tmp_path: Path) -> None:
    make_app(tmp_path / "apps" / "first")
    (tmp_path / "space-dev.toml").write_text(
        '[runtime]\ndata_dir = "state"\n\n[[apps]]\npath = "apps/first"\nname = "blog"\n'
    )
    cli = Cli(tmp_path, tmp_path / "state")
    # No --data-dir: the config's data_dir is the one every command uses.
    done = cli("keys", "create", "--name", "ci", data_dir=False)
    assert done.returncode == 0, done.stderr
    assert [k.name for k in Store(tmp_path / "state").keys.list("blog")] == ["ci"]


def test_two_apps_need_the_app_flag(tmp_path: Path) -> None:
    make_app(tmp_path / "one")
    make_app(tmp_path / "two", "app_name: second\n" + STATIC_SPACEFILE)
    (tmp_path / "space-dev.toml").write_text('[[apps]]\npath = "one"\n\n[[apps]]\npath = "two"\n')
    cli = Cli(tmp_path, tmp_path / "data")
    which = cli.fails("keys", "list")
    assert "one" in which.stderr and "second" in which.stderr and "--app" in which.stderr
    cli.ok("keys", "create", "--name", "ci", "--app", "second")
    assert [k.name for k in cli.store().keys.list("second")] == ["ci"]
    unknown = cli.fails("keys", "list", "--app", "three")
    assert 'unknown app "three"' in unknown.stderr and "one, second" in unknown.stderr


def test_without_config_the_data_dir_names_the_app(tmp_path: Path) -> None:
    cli = Cli(tmp_path, tmp_path / "data")  # no Spacefile here, no config
    none = cli.fails("keys", "list")
    assert "none is known" in none.stderr
    cli.store().remember_app("notes", make_app(tmp_path / "notes"))
    assert "notes has no API keys" in cli.ok("keys", "list").stdout
    cli.store().remember_app("blog", tmp_path / "gone")
    assert "notes, blog" in cli.fails("keys", "list").stderr


def test_bad_usage_exits_2(cli: Cli) -> None:
    assert cli("keys", "frobnicate", data_dir=False).returncode == 2
    assert cli("frobnicate", data_dir=False).returncode == 2
    assert cli("keys", "create").returncode == 2  # --name is required


# --- the running runtime --------------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    """A fake runtime control API: remembers every POST and answers 204."""

    posts: list[tuple[str, dict[str, str]]]

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.posts.append((self.path, dict(self.headers)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake_runtime() -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    posts: list[tuple[str, dict[str, str]]] = []
    handler = type("Handler", (Recorder,), {"posts": posts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", posts
    finally:
        server.shutdown()
        server.server_close()


def test_changes_are_announced_to_the_running_runtime(
    cli: Cli, fake_runtime: tuple[str, list[tuple[str, dict[str, str]]]]
) -> None:
    url, posts = fake_runtime
    cli.store().write_runtime_info(url, "sesame")  # this test's pid: counts as running
    cli.ok("keys", "create", "--name", "ci")
    assert [path for path, _ in posts] == ["/__space/internal/refresh"]
    assert posts[0][1]["X-Space-Dev-Token"] == "sesame"
    cli.ok("keys", "list")  # a read changes nothing: no call
    cli.ok("auth", "disable")
    assert len(posts) == 2


def test_an_unreachable_runtime_is_only_a_note(cli: Cli, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli.store().write_runtime_info(f"http://127.0.0.1:{port}", "sesame")
    done = cli.ok("keys", "create", "--name", "ci")
    assert json.loads(done.stdout)["name"] == "ci"
    notes = [line for line in done.stderr.splitlines() if "runtime" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ")


def test_trigger_needs_a_running_runtime(tmp_path: Path) -> None:
    cli = Cli(make_app(tmp_path / "jobs", ACTION_SPACEFILE), tmp_path / "data")
    done = cli.fails("trigger", "cleanup")
    assert "space-dev up" in done.stderr
    wrong = cli.fails("trigger", "nope")
    assert "cleanup" in wrong.stderr  # the actions there are


def test_client_and_server_agree_on_the_control_api() -> None:
    from runtime import config
    from runtime.cli import control_client
    from runtime.web import control_api

    ours = (control_client.TOKEN_HEADER, control_client.REFRESH_PATH, control_client.ACTIONS_PATH)
    assert ours == (control_api.TOKEN_HEADER, control_api.REFRESH_PATH, control_api.ACTIONS_PATH)
    # `trigger` waits for the whole run: the micro's readiness, then its answer.
    assert control_client.TRIGGER_TIMEOUT_S > config.ACTION_READY_WAIT_S + config.ACTION_TIMEOUT_S
