"""`space-dev actions list|run`: an app's App Actions from a terminal, through the running runtime
(the actions live in the micros, so `up` must run)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from runtime.cli import control_client, targets
from runtime.errors import SpaceDevError

APP_ACTIONS_PATH = "/__space/internal/app-actions"  # as runtime/web/control_api.py (not imported:
# that module loads aiohttp, which would double every CLI command's start-up time)


def _ask(args: argparse.Namespace, path: str, body: dict[str, Any]) -> tuple[str, Any]:
    store, target = targets.resolve(args)
    info = control_client.require_running(store)
    status, answer, errors = control_client.ask(
        info, path, {"app": target.name, **body}, timeout=control_client.TRIGGER_TIMEOUT_S
    )
    if not 200 <= status < 300:
        raise SpaceDevError(
            errors[0] if errors else f"HTTP {status}",
            errors[1] if len(errors) > 1 else "see the output of `space-dev up` for details",
        )
    return target.name, answer


def _list(args: argparse.Namespace) -> int:
    app, answer = _ask(args, APP_ACTIONS_PATH, {})
    actions = answer.get("actions", [])
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    for micro, why in (answer.get("problems") or {}).items():
        print(f"note: {micro}: {why}", file=sys.stderr)
    if not actions:
        print(
            f"app {app} has no App Actions (a micro with `provide_actions: true` declares them "
            "at GET /__space/actions)"
        )
        return 0
    rows = [("NAME", "TITLE", "MICRO", "INPUTS")]
    for action in actions:
        inputs = " ".join(
            f"{i['name']}:{i['type']}" + ("?" if i.get("optional") else "")
            for i in action.get("input", [])
        )
        rows.append((action["name"], action["title"], action["micro"], inputs or "-"))
    widths = [max(len(row[n]) for row in rows) for n in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)), row[3])
    return 0


def _run(args: argparse.Namespace) -> int:
    inputs: dict[str, str] = {}
    for pair in args.inputs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SpaceDevError(
                f"--input {pair!r} is not NAME=VALUE", "for example: --input title=hello"
            )
        inputs[name] = value
    _, answer = _ask(args, f"{APP_ACTIONS_PATH}/{args.action}", {"inputs": inputs})
    status = answer.get("status")
    data = answer.get("data")
    print(data if isinstance(data, str) else json.dumps(data, indent=2, ensure_ascii=False))
    # A micro's error answer is not a success, for scripts that check.
    return 0 if isinstance(status, int) and 200 <= status < 300 else 1


def add_parsers(sub: Any, app: argparse.ArgumentParser) -> None:
    """`actions list|run` under the `space-dev` parser."""
    group = sub.add_parser(
        "actions", help="an app's App Actions (provide_actions): list, run"
    ).add_subparsers(dest="actions_command", metavar="ACTION", required=True)
    listing = group.add_parser("list", parents=[app], help="the App Actions the micros offer")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=_list)
    run = group.add_parser("run", parents=[app], help="run one with its inputs; prints its answer")
    run.add_argument("action", metavar="NAME", help="the action's name, as `actions list` shows")
    run.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="K=V",
        help="an input value (repeat for more)",
    )
    run.set_defaults(run=_run)
