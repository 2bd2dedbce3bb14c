"""The data commands: keys, users, auth and trigger, working with or without a running `up`."""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from runtime.auth.keys import CUSTOM_VALUE_RULE, new_key
from runtime.auth.passwords import MIN_PASSWORD_LENGTH, hash_password
from runtime.cli import action_commands, control_client, data_commands, targets
from runtime.datadir.store import Store
from runtime.errors import SpaceDevError
from runtime.models import ApiKey

MAX_NAME_LENGTH = 64
ONCE_BANNER = "THE FOLLOWING API-KEY WILL ONLY BE SHOWN ONCE."
# Users appear in `allow` rules (`user == "ann"`) and group names as `groups.NAME`, so both keep
# to what the expression parser reads as one name.
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")
_GROUP_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")

Command = Callable[[argparse.Namespace], int]


def _app_flag(args: argparse.Namespace, target: targets.CommandApp) -> str:
    """` --app NAME` for hints, when the command needed it."""
    return f" --app {target.name}" if args.app else ""


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


# --- keys -----------------------------------------------------------------------------------


def _create_key(
    args: argparse.Namespace, value: str | None, client_type: str
) -> tuple[ApiKey, str, str | None]:
    """Keep a new key's hash; returns the record, the key itself (only the caller prints it),
    and a note to show after it, if any."""
    store, target = targets.resolve(args)
    record, key = new_key(target.name, args.name, args.desc, client_type, value)
    store.keys.create(record)
    control_client.refresh(
        store, f'key "{record.name}" of app {target.name} made from the command line'
    )
    sf = target.read_spacefile()
    note = None
    if sf is not None and not any(m.api_keys for m in sf.micros):
        note = (
            f"note: no micro of {target.name} has `presets: api_keys: true` in its "
            "Spacefile, so the gate refuses every key until one does"
        )
    return record, key, note


def _keys_create(args: argparse.Namespace) -> int:
    record, key, note = _create_key(args, args.value, args.client_type)
    _print_json(
        {
            "name": record.name,
            "description": record.description,
            "prefix": record.prefix,
            "api_key": key,
            "created": record.created,
            "client_type": record.client_type,
            "active": record.active,
        }
    )
    if note:
        print(note, file=sys.stderr)
    return 0


def _auth_create_api_key(args: argparse.Namespace) -> int:
    record, key, note = _create_key(args, None, "")
    print(ONCE_BANNER, file=sys.stderr)
    # Deta's CLI printed exactly these keys, in this order, indented by 2.
    _print_json(
        {
            "name": record.name,
            "description": record.description,
            "prefix": record.prefix,
            "api_key": key,
            "created": record.created,
        }
    )
    if note:
        print(note, file=sys.stderr)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    store, target = targets.resolve(args)
    keys = store.keys.list(target.name)
    if args.json:
        _print_json(
            [
                {
                    "name": k.name,
                    "description": k.description,
                    "client_type": k.client_type,
                    "prefix": k.prefix,
                    "active": k.active,
                    "created": k.created,
                    "last_used": k.last_used,
                }
                for k in keys
            ]
        )
        return 0
    if not keys:
        print(
            f"app {target.name} has no API keys; make one with "
            f"`space-dev keys create --name NAME{_app_flag(args, target)}`"
        )
        return 0
    rows = [
        [
            k.name,
            k.description or "-",
            k.client_type or "-",
            k.prefix,
            "yes" if k.active else "no",
            k.created,
            k.last_used or "never",
        ]
        for k in keys
    ]
    print(
        _table(
            ["NAME", "DESCRIPTION", "CLIENT TYPE", "PREFIX", "ACTIVE", "CREATED", "LAST USED"], rows
        )
    )
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    store, target = targets.resolve(args)
    store.keys.revoke(target.name, args.key)
    control_client.refresh(
        store, f'key "{args.key}" of app {target.name} revoked from the command line'
    )
    print(f'revoked key "{args.key}" of app {target.name}: it no longer opens anything')
    return 0


def _keys_switch(active: bool) -> Command:
    def run(args: argparse.Namespace) -> int:
        store, target = targets.resolve(args)
        store.keys.set_active(target.name, args.key, active)
        undo = "disable" if active else "enable"
        state = "on" if active else "off"
        control_client.refresh(
            store, f'key "{args.key}" of app {target.name} switched {state} from the command line'
        )
        print(
            f'key "{args.key}" of app {target.name} is now {state} '
            f"(space-dev keys {undo} {args.key}{_app_flag(args, target)} to undo)"
        )
        return 0

    return run


# --- auth enable|disable ----------------------------------------------------------------------


def _auth_switch(enabled: bool) -> Command:
    def run(args: argparse.Namespace) -> int:
        store, target = targets.resolve(args)
        sf = target.read_spacefile() if args.micro is not None else None
        if sf is not None and args.micro not in {m.name for m in sf.micros}:
            raise SpaceDevError(
                f'app {target.name} has no micro named "{args.micro}"',
                f"its micros are: {', '.join(m.name for m in sf.micros)}",
            )
        store.set_auth(target.name, args.micro, enabled)
        undo = ("disable" if enabled else "enable") + _app_flag(args, target)
        if args.micro is None:
            what = f"app {target.name}"
            detail = (
                "every micro is behind the gate again, except what its Spacefile makes public"
                if enabled
                else "anyone can reach every micro"
            )
        else:
            what = f"micro {args.micro} of app {target.name}"
            detail = "it is behind the gate again" if enabled else "anyone can reach it"
            undo += f" --micro {args.micro}"
        state = "PRIVATE" if enabled else "PUBLIC"
        again = "public" if enabled else "private again"
        control_client.refresh(
            store,
            f"{what} made {state} from the command line (space-dev auth {undo} to make it {again})",
        )
        print(f"{what} is now {state}: {detail} (space-dev auth {undo} to make it {again})")
        return 0

    return run


# --- users ----------------------------------------------------------------------------------


def _read_password(args: argparse.Namespace) -> str:
    """The new password: from stdin with --password-stdin, else typed twice at the terminal."""
    if args.password_stdin:
        password = sys.stdin.read()
        # One trailing line end is the `echo` or the file's, not part of the password.
        password = password.removesuffix("\n").removesuffix("\r")
    elif sys.stdin.isatty():
        try:
            password = getpass.getpass(f"Password for {args.user}: ")
            if getpass.getpass("Once more: ") != password:
                raise SpaceDevError("the two passwords differ", "run the command again")
        except (EOFError, KeyboardInterrupt):
            raise SpaceDevError("cancelled: no password given") from None
    else:
        raise SpaceDevError(
            "no password given, and stdin is not a terminal to ask for one",
            "pipe it in with --password-stdin, e.g. "
            '`printf %s "$PASSWORD" | space-dev users add ann --password-stdin`',
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SpaceDevError(
            f"the password is too short ({len(password)} characters, at least "
            f"{MIN_PASSWORD_LENGTH} are needed)",
            "choose a longer one",
        )
    return password


def _need_user(store: Store, name: str) -> None:
    """Fail before asking for a password when the user does not exist."""
    if store.users.get(name) is None:
        names = ", ".join(u.name for u in store.users.list())
        hint = f"the users are: {names}" if names else "add one with `space-dev users add NAME`"
        raise SpaceDevError(f'no user named "{name}"', hint)


def _users_add(args: argparse.Namespace) -> int:
    if not _USER_NAME.fullmatch(args.user) or len(args.user) > MAX_NAME_LENGTH:
        raise SpaceDevError(
            f"user name {args.user!r} is not allowed",
            "start with a letter or digit, then letters, digits or - _ . @",
        )
    for group in args.groups:
        if not _GROUP_NAME.fullmatch(group):
            raise SpaceDevError(
                f"group name {group!r} is not allowed",
                "use letters, digits, - and _: allow rules name it groups.NAME",
            )
    store = targets.data_store(args)
    if store.users.get(args.user) is not None:
        raise SpaceDevError(
            f'user "{args.user}" already exists',
            f"change the password with `space-dev users passwd {args.user}`",
        )
    groups = list(dict.fromkeys(args.groups))  # a repeated --group counts once
    user = store.users.add(args.user, hash_password(_read_password(args)), groups)
    control_client.refresh(store, f"user {user.name} added from the command line")
    role = " (the owner of every app)" if user.owner else ""
    member = f" in groups {', '.join(user.groups)}" if user.groups else ""
    print(f"added user {user.name}{role}{member}")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    users = targets.data_store(args).users.list()
    if args.json:
        _print_json([{"name": u.name, "owner": u.owner, "groups": list(u.groups)} for u in users])
    elif not users:
        print(
            "no users yet; add one with `space-dev users add NAME` (the first is the owner), "
            "or run `space-dev up`, which makes the owner `dev`"
        )
    else:
        rows = [[u.name, "yes" if u.owner else "no", ", ".join(u.groups) or "-"] for u in users]
        print(_table(["NAME", "OWNER", "GROUPS"], rows))
    return 0


def _users_passwd(args: argparse.Namespace) -> int:
    store = targets.data_store(args)
    _need_user(store, args.user)
    store.users.set_password_hash(args.user, hash_password(_read_password(args)))
    control_client.refresh(
        store, f"password of {args.user} changed from the command line; their sessions have ended"
    )
    print(f"changed the password of {args.user}; their sessions have ended")
    return 0


def _users_remove(args: argparse.Namespace) -> int:
    store = targets.data_store(args)
    store.users.remove(args.user)
    control_client.refresh(
        store, f"user {args.user} removed from the command line, with their sessions"
    )
    print(f"removed user {args.user} and ended their sessions")
    return 0


# --- trigger --------------------------------------------------------------------------------


def _trigger(args: argparse.Namespace) -> int:
    store, target = targets.resolve(args)
    sf = target.read_spacefile()
    if sf is not None and args.action not in {a.id for a in sf.actions}:
        ids = ", ".join(a.id for a in sf.actions)
        raise SpaceDevError(
            f'app {target.name} has no action "{args.action}"',
            f"its actions are: {ids}"
            if ids
            else "add one under a micro's `actions` in the Spacefile",
        )
    info = control_client.require_running(store)
    status, answer, errors = control_client.ask(
        info,
        control_client.ACTIONS_PATH + args.action,
        {"app": target.name},
        timeout=control_client.TRIGGER_TIMEOUT_S,
    )
    if not 200 <= status < 300:
        reason = "; ".join(errors) if errors else f"HTTP {status}"
        raise SpaceDevError(
            f'action "{args.action}" of app {target.name} did not run: {reason}',
            "see the output of `space-dev up` for details",
        )
    result = answer.get("status", "done")
    took = answer.get("duration_ms")
    print(
        f'action "{args.action}" of app {target.name}: {result}'
        + (f" in {took} ms" if isinstance(took, int) else "")
    )
    # A run whose micro failed (or never answered) is not a success, for scripts that check.
    return 0 if isinstance(result, int) and 200 <= result < 300 else 1


# --- the parsers ----------------------------------------------------------------------------


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """Add the data commands to the `space-dev` parser."""
    app = argparse.ArgumentParser(add_help=False, parents=[common])
    app.add_argument(
        "--app", metavar="NAME", help="which app (may be left out when only one is known)"
    )

    def leaf(group: Any, name: str, run: Command, text: str, *, with_app: bool = True) -> Any:
        parser = group.add_parser(name, parents=[app if with_app else common], help=text)
        parser.set_defaults(run=run)
        return parser

    def group(name: str, text: str) -> Any:
        return sub.add_parser(name, help=text).add_subparsers(
            dest=f"{name}_command", metavar="ACTION", required=True
        )

    keys = group("keys", "make, list, switch off and revoke an app's API keys")
    create = leaf(keys, "create", _keys_create, "make an API key and print it once, as JSON")
    create.add_argument("--name", required=True, help="unique in the app")
    create.add_argument("--desc", default="", metavar="TEXT", help="what the key is for")
    create.add_argument(
        "--client-type",
        default="",
        metavar="T",
        help="e.g. admin; `allow` rules can test clientType",
    )
    create.add_argument(
        "--value",
        metavar="KEY",
        help=f"your own key value ({CUSTOM_VALUE_RULE}) instead of a new one",
    )
    listing = leaf(keys, "list", _keys_list, "the keys of an app, never their secret")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for name, run, text in (
        ("revoke", _keys_revoke, "delete a key for good"),
        ("disable", _keys_switch(False), "switch a key off"),
        ("enable", _keys_switch(True), "switch a key on again"),
    ):
        leaf(keys, name, run, text).add_argument(
            "key", metavar="NAME", help="the key's name, as `keys list` shows it"
        )

    auth = group("auth", "Deta Micros' spellings: create-api-key, enable, disable")
    deta = leaf(auth, "create-api-key", _auth_create_api_key, "make an API key, Deta's way")
    deta.add_argument("--name", required=True, help="unique in the app")
    deta.add_argument("--desc", default="", metavar="TEXT", help="what the key is for")
    for name, run, text in (
        ("enable", _auth_switch(True), "make the app (or a micro) private"),
        ("disable", _auth_switch(False), "make the app (or a micro) public until `auth enable`"),
    ):
        leaf(auth, name, run, text).add_argument("--micro", metavar="NAME", help="only this micro")

    users = group("users", "the local accounts (the first is the owner of every app)")
    add = leaf(users, "add", _users_add, "add an account", with_app=False)
    add.add_argument(
        "user",
        metavar="NAME",
        help="the new account's name: a letter or digit, then letters, digits, - _ . @",
    )
    add.add_argument(
        "--group",
        dest="groups",
        action="append",
        default=[],
        metavar="G",
        help="a group the user is in (repeat for more)",
    )
    users_list = leaf(users, "list", _users_list, "the accounts", with_app=False)
    users_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    passwd = leaf(
        users,
        "passwd",
        _users_passwd,
        "change a password (ends the user's sessions)",
        with_app=False,
    )
    for parser in (add, passwd):
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from stdin instead of asking",
        )
    passwd.add_argument("user", metavar="NAME", help="whose password, as `users list` shows")
    leaf(
        users, "remove", _users_remove, "delete an account and its sessions", with_app=False
    ).add_argument("user", metavar="NAME", help="the account to delete, as `users list` shows")

    data_commands.add_parsers(sub, app)
    action_commands.add_parsers(sub, app)

    trigger = sub.add_parser("trigger", parents=[app], help="run a scheduled action now")
    trigger.add_argument(
        "action", metavar="ACTION_ID", help="the `id` of one of the Spacefile's actions"
    )
    trigger.set_defaults(run=_trigger)
