"""`space-dev status` and `space-dev open`: what the running `up` serves, asked of it through
its control API, and an app opened in the browser."""

from __future__ import annotations

import argparse
import json
import sys
import webbrowser
from typing import Any

from runtime.cli import control_client, targets
from runtime.datadir.store import Store
from runtime.errors import SpaceDevError

EXIT_NOTHING_RUNS = 3  # as `systemctl status` says of a unit that is not running


def _ask(store: Store) -> tuple[dict[str, Any] | None, str]:
    """The running runtime's status, or None and why nothing answers."""
    info = store.read_runtime_info()
    if info is None:
        return None, (f"nothing is running: no `space-dev up` uses the data dir {store.data_dir}")
    try:
        code, body = control_client.post(info, control_client.STATUS_PATH)
    except control_client.Unreachable as err:
        return None, (
            f"nothing is running: the `space-dev up` recorded in {store.data_dir} "
            f"does not answer ({err}); it was stopped or killed"
        )
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if code != 200 or not isinstance(answer, dict) or not isinstance(answer.get("apps"), list):
        return None, (
            f"the running `space-dev up` answered {code} to the status call: is it "
            "an older version? Restart it"
        )
    return answer, ""


def _status(args: argparse.Namespace) -> int:
    store = targets.data_store(args)
    answer, why = _ask(store)
    if args.json:
        print(
            json.dumps(
                {
                    "running": answer is not None,
                    "apps": (answer or {}).get("apps", []),
                    **({"reason": why} if why else {}),
                },
                indent=2,
            )
        )
        return 0 if answer is not None else EXIT_NOTHING_RUNS
    if answer is None:
        print(why)
        print("start the apps with `space-dev up`")
        return EXIT_NOTHING_RUNS
    for app in answer["apps"]:
        print(f"{app.get('name')}  {app.get('url')}")
        micros = app.get("micros") or []
        width = max((len(str(m.get("name"))) for m in micros), default=0)
        states = max((len(str(m.get("state"))) for m in micros), default=0)
        for micro in micros:
            print(
                f"  {str(micro.get('name')).ljust(width)}  "
                f"{str(micro.get('state')).ljust(states)}  {micro.get('url')}"
            )
    return 0


def _open(args: argparse.Namespace) -> int:
    store = targets.data_store(args)
    answer, why = _ask(store)
    if answer is None:
        raise SpaceDevError(why, "start it with `space-dev up`, then run `space-dev open` again")
    apps = answer["apps"]
    names = [str(a.get("name")) for a in apps]
    if args.app is not None:
        chosen = [a for a in apps if a.get("name") == args.app]
        if not chosen:
            raise SpaceDevError(
                f'the running `space-dev up` serves no app "{args.app}"',
                f"it serves: {', '.join(names) or 'no app'}",
            )
    else:
        chosen = apps[:1]
        if not chosen:
            raise SpaceDevError("the running `space-dev up` serves no app")
    url = str(chosen[0].get("url"))
    print(f"opening {url}" + (f" (the apps: {', '.join(names)})" if len(names) > 1 else ""))
    if not webbrowser.open(url):
        print(f"no browser could be started here: open {url} yourself", file=sys.stderr)
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """`status` and `open` under the `space-dev` parser."""
    status = sub.add_parser(
        "status",
        parents=[common],
        help="what the running `space-dev up` serves: apps, micros, states",
        description="Each app's URL and its micros with their states and "
        "URLs, from the running `space-dev up` (exit status 3 when "
        "nothing runs).",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of lines")
    status.set_defaults(run=_status)
    opened = sub.add_parser(
        "open",
        parents=[common],
        help="open an app in the browser",
        description="Open an app of the running `space-dev up` in the "
        "browser (the first app when none is named).",
    )
    opened.add_argument("app", nargs="?", metavar="APP", help="the app's name")
    opened.set_defaults(run=_open)
