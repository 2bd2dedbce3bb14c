"""`space-dev data`: an app's Base and Drive data from a terminal (list, export, import, reset),
whether or not `space-dev up` runs (SQLite lets both use the files at once)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from runtime.cli.targets import resolve, runtime_config
from runtime.cloud.data import AppData, DataServices
from runtime.cloud.export_zip import export_zip
from runtime.cloud.transfer import import_zip
from runtime.errors import SpaceDevError


def _open(args: argparse.Namespace) -> tuple[DataServices, AppData, str]:
    _, target = resolve(args)
    services = DataServices(runtime_config(args).data_dir)
    return services, services.app(target.name), target.name


def size_text(size: int) -> str:
    """Bytes as a person reads them: `812 B`, `3.4 KiB`, `1.2 MiB`."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"


def _list(args: argparse.Namespace) -> int:
    services, data, app = _open(args)
    try:
        bases: list[dict[str, Any]] = [
            {"name": name, "items": data.base.count(name), "bytes": data.base.size(name)}
            for name in data.base.names()
        ]
        drives: list[dict[str, Any]] = []
        for name in data.drive.names():
            count, size = data.drive.totals(name)
            drives.append({"name": name, "files": count, "bytes": size})
    finally:
        services.close()
    if args.json:
        print(json.dumps({"app": app, "bases": bases, "drives": drives}, indent=2))
        return 0
    if not bases and not drives:
        print(f"app {app} has no Base or Drive data yet")
        return 0
    for base in bases:
        count = base["items"]
        print(
            f"base  {base['name']:24} {count:>8} item{'s' if count != 1 else ' '}  "
            f"{size_text(base['bytes']):>10}"
        )
    for drive in drives:
        count = drive["files"]
        print(
            f"drive {drive['name']:24} {count:>8} file{'s' if count != 1 else ' '}  "
            f"{size_text(drive['bytes']):>10}"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    services, data, app = _open(args)
    try:
        items, files = export_zip(data, args.file)
    finally:
        services.close()
    print(f"exported app {app}: {items} items and {files} files to {args.file}")
    return 0


def _import(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise SpaceDevError(f"no file {args.file}", "give the zip `data export` or Space wrote")
    services, data, app = _open(args)
    try:
        report = asyncio.run(import_zip(data, args.file))
    finally:
        services.close()
    if report.empty:
        raise SpaceDevError(*report.nothing_said(str(args.file)))
    print(f"imported into app {app} from {args.file}:")
    for line in report.lines():
        print(f"  {line}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    what = (
        f"the Base {args.base}"
        if args.base
        else f"the Drive {args.drive}"
        if args.drive
        else "all Base and Drive data"
    )
    services, data, app = _open(args)
    try:
        if not args.yes:
            raise SpaceDevError(
                f"this deletes {what} of app {app} for good",
                "add --yes to confirm (`space-dev data export` keeps a copy first)",
            )
        if args.base:
            data.base.drop(args.base)
        elif args.drive:
            data.drive.drop(args.drive)
            data.drive.remove_dropped()
        else:
            data.base.drop_all()
            data.drive.drop_all()
            data.drive.remove_dropped()
    finally:
        services.close()
    print(f"deleted {what} of app {app}")
    return 0


def add_parsers(sub: Any, app: argparse.ArgumentParser) -> None:
    """`data list|export|import|reset` under the `space-dev` parser."""
    group = sub.add_parser(
        "data", help="an app's Base and Drive data: list, export, import, reset"
    ).add_subparsers(dest="data_command", metavar="ACTION", required=True)
    listing = group.add_parser(
        "list", parents=[app], help="each Base and Drive, with its count and size"
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of lines")
    listing.set_defaults(run=_list)
    for name, run, text in (
        ("export", _export, "write every Base and Drive to a zip file"),
        ("import", _import, "read a zip from `data export` or Space's export"),
    ):
        parser = group.add_parser(name, parents=[app], help=text)
        parser.add_argument(
            "file",
            type=Path,
            metavar="FILE.zip",
            help="the zip file to write"
            if name == "export"
            else "the zip file to read (space-dev's or Space's own export)",
        )
        parser.set_defaults(run=run)
    reset = group.add_parser("reset", parents=[app], help="delete data for good")
    which = reset.add_mutually_exclusive_group()
    which.add_argument("--base", metavar="NAME", help="only this Base")
    which.add_argument("--drive", metavar="NAME", help="only this Drive")
    reset.add_argument("--yes", action="store_true", help="confirm: the data is gone for good")
    reset.set_defaults(run=_reset)
