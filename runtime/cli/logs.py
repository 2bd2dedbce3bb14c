"""`space-dev logs`: the running runtime's log lines or requests (with the gate's reasons), as
the logs page shows them, read from its control API; `-f` follows them."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from runtime.cli import control_client, targets
from runtime.errors import SpaceDevError

LOGS_PATH = "/__space/internal/logs"  # runtime/web/console.py (not imported: it loads aiohttp)
FOLLOW_EVERY_S = 0.3
LEVELS = ("info", "warn", "error")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    logs = sub.add_parser(
        "logs",
        parents=[common],
        help="the running apps' log lines, or their requests",
        description="Print what the logs page of a running `space-dev up` shows: every micro's "
        "lines and space-dev's own, each with its time, micro and level; with --requests, the "
        "last requests with who made them and why the gate let them through or refused them.",
    )
    logs.add_argument(
        "app_name",
        nargs="?",
        metavar="APP",
        help="which app (may be left out when only one is known)",
    )
    logs.add_argument("--app", metavar="NAME", help="the same as APP")
    logs.add_argument("--micro", metavar="M", help="only this micro's lines (or requests)")
    logs.add_argument(
        "--level",
        choices=LEVELS,
        default="info",
        help="the least level shown; with --requests, warn is 4xx and 5xx, "
        "error 5xx (default: info, everything)",
    )
    logs.add_argument("--grep", metavar="TEXT", default="", help="only lines holding TEXT")
    logs.add_argument("--requests", action="store_true", help="the requests instead of the lines")
    logs.add_argument(
        "-n",
        "--lines",
        type=int,
        default=100,
        metavar="N",
        help="how many of the last ones to print first (default: 100; 0: all kept)",
    )
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new ones as they come, until Ctrl-C",
    )
    logs.add_argument("--json", action="store_true", help="one JSON object a line")
    logs.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.app_name is not None:
        if args.app is not None and args.app != args.app_name:
            raise SpaceDevError("give the app as APP or as --app, not both")
        args.app = args.app_name
    store, target = targets.resolve(args)
    info = control_client.require_running(store)
    query: dict[str, Any] = {
        "app": target.name,
        "level": args.level,
        "text": args.grep,
        "requests": args.requests,
    }
    if args.micro:
        query["micro"] = args.micro
    kind = "requests" if args.requests else "lines"
    found, last = _ask(info, query, 0)
    if args.lines > 0:
        found = found[-args.lines :]
    for item in found:
        _show(item, args)
    while args.follow:
        time.sleep(FOLLOW_EVERY_S)
        found, last = _ask(info, query, last)
        for item in found:
            _show(item, args)
    if not found and not args.follow:
        print(
            f"(no {kind} yet)"
            if not (args.micro or args.grep or args.level != "info")
            else f"(no {kind} match)"
        )
    return 0


def _ask(
    info: dict[str, Any], query: dict[str, Any], after: int
) -> tuple[list[dict[str, Any]], int]:
    status, answer, errors = control_client.ask(info, LOGS_PATH, {**query, "after": after})
    if status != 200:
        said = errors or [f"HTTP {status}"]
        raise SpaceDevError(said[0], "; ".join(said[1:]))
    kind = "requests" if query["requests"] else "lines"
    found = answer.get(kind)
    last = answer.get("last")
    return (found if isinstance(found, list) else [], last if isinstance(last, int) else after)


def _show(item: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(item), flush=True)
        return
    when = _clock(item.get("time"))
    if args.requests:
        status = item.get("status") or "none"
        line = (
            f"{when}  {item.get('method')} {item.get('path')}  {item.get('micro') or '-'}  "
            f"{status}  {item.get('took_ms')} ms  {item.get('who')}"
        )
        if item.get("reason"):
            line += f"  ({item.get('reason')})"
    else:
        line = f"{when}  {item.get('micro')}  {item.get('level'):<5}  {item.get('text')}"
    print(line, flush=True)


def _clock(when: object) -> str:
    if not isinstance(when, int | float):
        return "?"
    return time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when % 1 * 1000):03d}"
