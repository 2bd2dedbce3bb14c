"""`space-dev actions list|run`: a running app's App Actions (`provide_actions`) from a terminal."""

from __future__ import annotations

import argparse
import json
from typing import Any

from runtime.cli import notify, targets
from runtime.errors import SpaceDevError

LIST_PATH = "/__space/internal/app-actions"
RUN_PATH = "/__space/internal/app-actions/run"


def _ask(args: argparse.Namespace, path: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    store, target = targets.resolve(args)
    info = notify.running(store)
    try:
        status, raw = notify.post(info, path, {"app": target.name, **body},
                                  timeout=notify.TRIGGER_TIMEOUT_S)
    except notify.Unreachable as err:
        raise SpaceDevError(f"could not reach the running runtime: {err}",
                            "is `space-dev up` still running?") from None
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        answer = {}
    answer = answer if isinstance(answer, dict) else {}
    if not 200 <= status < 300:
        errors = answer.get("errors")
        reason = "; ".join(map(str, errors)) if isinstance(errors, list) else f"HTTP {status}"
        raise SpaceDevError(f"app {target.name}: {reason}",
                            "see `space-dev actions list` and the output of `space-dev up`")
    return target.name, answer


def _list(args: argparse.Namespace) -> int:
    app, answer = _ask(args, LIST_PATH, {})
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    actions = answer.get("actions") or []
    if not answer.get("providers"):
        print(f"no micro of app {app} has `provide_actions: true` in its Spacefile")
    for action in actions:
        inputs = ", ".join(
            f"{i['name']}: {i['type']}{' (optional)' if i.get('optional') else ''}"
            for i in action.get("inputs", []))
        print(f"{action['micro']}/{action['name']}  {action['title']}  POST {action['path']}"
              + (f"  inputs: {inputs}" if inputs else ""))
    for micro, error in (answer.get("errors") or {}).items():
        print(f"{micro}: could not list its actions: {error}")
    return 0 if not answer.get("errors") else 1


def _run(args: argparse.Namespace) -> int:
    inputs: dict[str, str] = {}
    for item in args.inputs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpaceDevError(f"--input {item!r} is not KEY=VALUE", "e.g. --input name=Ann")
        inputs[key] = value
    micro, _, name = args.name.rpartition("/")
    _, answer = _ask(args, RUN_PATH, {"name": name, "micro": args.micro or micro or None,
                                      "inputs": inputs})
    print(answer.get("answer", ""))
    status = answer.get("status")
    return 0 if isinstance(status, int) and 200 <= status < 300 else 1


def add_parsers(sub: argparse._SubParsersAction, app: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """`actions list` and `actions run` (`app` carries --app and the common options)."""
    group = sub.add_parser("actions", help="a running app's App Actions (provide_actions)") \
        .add_subparsers(dest="actions_command", metavar="ACTION", required=True)
    listing = group.add_parser("list", parents=[app], help="each action, its path and inputs")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=_list)
    run = group.add_parser("run", parents=[app], help="run one with its inputs; print its answer")
    run.add_argument("name", metavar="NAME", help="the action's name (or MICRO/NAME)")
    run.add_argument("--input", dest="inputs", action="append", default=[], metavar="KEY=VALUE",
                     help="one input (repeat for more)")
    run.add_argument("--micro", metavar="NAME", help="when two micros have an action so named")
    run.set_defaults(run=_run)
