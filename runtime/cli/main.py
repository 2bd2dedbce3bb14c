"""The `space-dev` command: parse the command line, run it, turn user errors into messages."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from runtime import __version__, spacefile
from runtime import config as config_file
from runtime.cli.suggest import suggestion
from runtime.cli.targets import load_config
from runtime.errors import Problem, SpaceDevError
from runtime.models import AppConfig
from runtime.supervisor.output import Printer

if TYPE_CHECKING:
    from runtime.cli.hotkeys import Hotkeys

EXIT_OK, EXIT_USER_ERROR, EXIT_USAGE = 0, 1, 2

UP_EPILOG = f"""\
environment:
  SPACE_DEV_PASSWORD       the owner's password (8+ characters) when `up` makes the owner
                           account `dev` at the first start, instead of a random one
  SPACE_DEV_READY_TIMEOUT  seconds a micro may take to answer on its port before space-dev
                           says it is not answering (default: 30); raise it for slow builds
  SPACE_DEV_CLIENT_TIMEOUT seconds a client may keep the runtime waiting for a request head or
                           between two pieces of a body before it is disconnected (default: 30)
  SPACE_DEV_INSTALLER      `uv` or `pip`: what installs a python micro's requirements
                           (default: uv when it is installed, else pip)
  SPACE_DEV_PACKAGES_AS_OF the day (YYYY-MM-DD) requirements resolve as of, or `latest`
                           (default: {config_file.defaults.PACKAGES_AS_OF}, when Space stopped)
"""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors suggest the command or flag meant (`did you
    mean`); its sub-commands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        super().error(message + suggestion(message, self))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="space-dev",
        description="Run Deta Space apps on your own machine: every micro on one origin, "
        "private by default, with hot reload.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"space-dev {__version__}")
    # Every command reads the config; those that keep state also take --data-dir.
    base = _Parser(add_help=False)
    base.add_argument(
        "--config", type=Path, help="space-dev.toml to read (default: ./space-dev.toml)"
    )
    base.add_argument("--debug", action="store_true", help="show tracebacks")
    common = _Parser(add_help=False, parents=[base])
    common.add_argument("--data-dir", type=Path, help="where state is kept (default: ./.space-dev)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add_up(sub, common)
    _add_validate(sub, base)
    from runtime.cli import commands  # the data commands (keys, users, auth, trigger)

    commands.add_parsers(sub, common)
    from runtime.cli import status_commands  # status, open

    status_commands.add_parsers(sub, common)

    from runtime.cli import logs  # `space-dev logs`: the developer's console in a terminal

    logs.add_parser(sub, common)
    return parser


def _add_up(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    up = sub.add_parser(
        "up",
        parents=[common],
        help="start the apps and serve them until Ctrl-C",
        description="Start the apps and serve them until Ctrl-C.",
        epilog=UP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument(
        "app_dirs",
        nargs="*",
        type=Path,
        metavar="APP_DIR",
        help="a folder holding a Spacefile (default: the apps of ./space-dev.toml, else .)",
    )
    up.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    up.add_argument("--port", type=int, help="the first app's port (default: 4200)")
    up.add_argument(
        "--no-reload",
        dest="reload",
        action="store_false",
        default=None,
        help="do not restart micros when their files change",
    )
    up.add_argument(
        "--no-schedule",
        dest="schedule",
        action="store_false",
        default=None,
        help="do not run scheduled actions",
    )
    up.add_argument(
        "--as-space",
        dest="as_space",
        action="store_true",
        default=None,
        help="run every micro as Space ran it: `dev` lines not used, frontends built",
    )
    up.add_argument(
        "--ephemeral",
        action="store_true",
        help="keep Base and Drive data in a temporary place, dropped at exit",
    )
    up.set_defaults(run=_cmd_up)


def _add_validate(sub: argparse._SubParsersAction, base: argparse.ArgumentParser) -> None:
    validate = sub.add_parser(
        "validate",
        parents=[base],
        help="check a Spacefile",
        description="Check the Spacefile of APP_DIR, else of every app in ./space-dev.toml "
        "(or --config), else of this folder; and the config itself.",
    )
    validate.add_argument(
        "app_dir",
        nargs="?",
        type=Path,
        metavar="APP_DIR",
        help="the folder holding the Spacefile (default: the config's apps, else .)",
    )
    validate.add_argument(
        "--app", metavar="NAME", help="only this app of space-dev.toml (default: all of them)"
    )
    validate.add_argument("--strict", action="store_true", help="apply Space's own rules exactly")
    validate.add_argument(
        "--json", action="store_true", help="print each app's errors and warnings as JSON"
    )
    validate.set_defaults(run=_cmd_validate)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the return value is the exit status."""
    parser = _parser()
    given = sys.argv[1:] if argv is None else list(argv)
    if not given:  # `space-dev` alone: what it can do, rather than a usage error
        parser.print_help()
        return EXIT_OK
    args = parser.parse_args(given)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except SpaceDevError as err:
        if args.debug:
            traceback.print_exc()
        print(f"error: {err.message}", file=sys.stderr)
        if err.hint:
            print(err.hint, file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return EXIT_OK
    except OSError as err:
        # A folder that cannot be made or written (the data dir, say): say which, not a trace.
        if args.debug:
            traceback.print_exc()
        where = f" ({err.filename})" if err.filename else ""
        print(f"error: {err.strerror or err}{where}", file=sys.stderr)
        print(
            "check that the path exists and that you may write there; --debug shows more",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR


def _cmd_validate(args: argparse.Namespace) -> int:
    """The same config every command reads: APP_DIR, else its apps (or --app), else `.`."""
    path = args.config if args.config is not None else config_file.find_config(Path.cwd())
    cfg = config_file.load(path)  # a broken config is reported, as by every command
    if args.app_dir is not None:
        if args.app is not None:
            raise SpaceDevError(
                "give APP_DIR or --app, not both", "--app picks an app of space-dev.toml by name"
            )
        folders: list[tuple[str | None, Path]] = [(None, args.app_dir)]
    elif cfg.apps:
        folders = [(_app_label(app), app.path) for app in cfg.apps]
        if args.app is not None:
            folders = [f for f in folders if f[0] == args.app]
            if not folders:
                names = ", ".join(_app_label(app) for app in cfg.apps)
                raise SpaceDevError(
                    f'unknown app "{args.app}" (the config\'s apps: {names})',
                    "leave out --app to check every app of the config",
                )
    elif args.app is not None:
        where = "space-dev.toml has no [[apps]]" if path is not None else "no space-dev.toml here"
        raise SpaceDevError(
            f'unknown app "{args.app}": {where}',
            "give the app's folder instead: space-dev validate PATH/TO/APP",
        )
    else:
        folders = [(None, Path("."))]
    failed = False
    checked = []
    for label, folder in folders:
        _, errors, warnings = spacefile.check(folder, strict=args.strict)
        failed = failed or bool(errors)
        if args.json:
            checked.append(
                {
                    "app": label,
                    "path": str(folder),
                    "ok": not errors,
                    "errors": [_problem_json(p) for p in errors],
                    "warnings": [_problem_json(p) for p in warnings],
                }
            )
            continue
        text = spacefile.report(errors, warnings)
        print(f"{label}: {text}" if label is not None and len(folders) > 1 else text)
    if args.json:
        print(json.dumps({"ok": not failed, "apps": checked}, indent=2))
    return EXIT_USER_ERROR if failed else EXIT_OK


def _problem_json(problem: Problem) -> dict[str, object]:
    return {
        "file": problem.file,
        "line": problem.line,
        "where": problem.where,
        "message": problem.message,
        "hint": problem.hint,
    }


def _app_label(app: AppConfig) -> str:
    """An app's name for `validate --app`: the config's, else the Spacefile's, else its folder's."""
    if app.name:
        return app.name
    try:
        return config_file.app_name(app, spacefile.load(app.path, check_paths=False))
    except SpaceDevError:
        return app.path.name


def _cmd_up(args: argparse.Namespace) -> int:
    cfg = load_config(
        args,
        require_app=True,
        host=args.host,
        port=args.port,
        reload=args.reload,
        schedule=args.schedule,
        as_space=args.as_space,
        app_dirs=args.app_dirs or None,
    )
    from runtime.app.runtime import Runtime  # the server side is only needed here
    from runtime.serve.client_limits import raise_open_files_limit

    printer = Printer(background=True)
    raise_open_files_limit()  # before the runtime sizes its connections by it
    try:
        runtime = Runtime(cfg, printer, ephemeral=args.ephemeral)
        runtime.load()
        runtime.claim()  # before any port is bound: a killed runtime's micros may hold some
        try:
            _use_fast_loop()
            _tune_memory()
            if args.debug:
                _show_debug_lines()
            else:
                _quiet_client_mistakes()
            asyncio.run(_serve(runtime))
        finally:
            runtime.release()
    finally:
        printer.close()
    return EXIT_OK


async def _serve(runtime: object) -> None:
    from runtime.app.reload import Reloader
    from runtime.app.runtime import Runtime
    from runtime.supervisor.shutdown import StopSignals

    assert isinstance(runtime, Runtime)
    stop = asyncio.Event()
    keys: Hotkeys | None = None
    # Handlers that run even while the loop is busy, and a deadline for the stop they start.
    signals = StopSignals(
        asyncio.get_running_loop(), stop.set, config_file.STOP_GRACE_S + config_file.STOP_MARGIN_S
    )
    signals.install()
    try:
        try:
            # Built here, a floor above the runtime it watches: the runtime never imports it.
            await runtime.start(reloader=lambda rt: Reloader(rt).run())
            keys = _hotkeys(runtime, stop)
            await stop.wait()
            runtime.printer.info(
                "stopping: every micro and what it started (Ctrl-C again to kill them at once)"
            )
        finally:
            if keys is not None:
                keys.restore()
            await runtime.stop()
    finally:
        signals.restore()
    runtime.printer.info("stopped")


def _hotkeys(runtime: object, stop: asyncio.Event) -> Hotkeys:
    """o, s, l, r, q in the terminal (when stdin is one); see cli/hotkeys.py."""
    from runtime.app.runtime import Runtime
    from runtime.cli.hotkeys import Hotkeys, Key, open_in_browser
    from runtime.web.console import LOGS_PATH
    from runtime.web.settings import SETTINGS_PATH

    assert isinstance(runtime, Runtime)
    origin = runtime.apps[0].public_origin

    def restart_all() -> None:
        runtime.printer.info("restarting every micro (r)")
        for host in runtime.apps:
            for name in host.runners:
                runtime.spawn(
                    runtime.restart(host, name, "restarted from the terminal", by_owner=True)
                )

    keys = Hotkeys(
        [
            Key("o", "open the app", open_in_browser(origin + "/")),
            Key("s", "settings", open_in_browser(origin + SETTINGS_PATH)),
            Key("l", "logs", open_in_browser(origin + LOGS_PATH)),
            Key("r", "restart every micro", restart_all),
            Key("q", "quit", stop.set),
        ],
        runtime.printer.info,
    )
    keys.install()
    return keys


def _tune_memory() -> None:
    """Settings for a long-running proxy, measured with bench/proxy.py.

    Fewer garbage collections (objects made at start-up are frozen out of them) cut the tail
    latency of small answers. glibc's malloc otherwise hands 1 MiB buffers back to the system
    and faults them in again on every large response; keeping them costs at most ~32 MiB.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD
            libc.mallopt(-1, 32 << 20)  # M_TRIM_THRESHOLD
        except (OSError, AttributeError):
            pass  # not glibc (musl, say): its defaults stand


class _ClientMistake(logging.Filter):
    """Drops aiohttp's report of a request it could not read (no Host, a bad header line): the
    client got its 400 with the reason, and the traceback says nothing the owner can act on.
    A client that went away mid-answer (a closed tab, a download stopped; aiohttp's `Cannot
    write to closing transport`) is an everyday event: a debug line, never a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ConnectionError):
            logging.getLogger("space-dev").debug("a client went away mid-answer: %s", error)
            return False
        return not isinstance(error, HttpProcessingError)


def _quiet_client_mistakes() -> None:
    logging.getLogger("aiohttp.server").addFilter(_ClientMistake())


def _show_debug_lines() -> None:
    """Under --debug the runtime's debug lines reach stderr, tracebacks included (without it,
    only its warnings and errors do, each in one line)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    runtime_log = logging.getLogger("space-dev")
    runtime_log.addHandler(handler)
    runtime_log.setLevel(logging.DEBUG)


def _use_fast_loop() -> None:
    """uvloop (a dependency) when it imports: with it the proxy spends less CPU per request on
    small and on 1 MiB answers alike (bench/proxy.py); else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
