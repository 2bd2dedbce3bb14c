"""Which data dir and which app a `space-dev` data command means (`--app` may be left out
wherever only one app is meant)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from runtime import config as config_file
from runtime import spacefile
from runtime.datadir.store import Store
from runtime.errors import SpaceDevError
from runtime.models import AppConfig, RuntimeConfig, Spacefile


@dataclass(frozen=True)
class CommandApp:
    """The app a command works on: its name, and its folder and Spacefile when known."""

    name: str
    folder: Path | None = None
    spacefile: Spacefile | None = None

    def read_spacefile(self) -> Spacefile | None:
        """The app's Spacefile, or None when its folder is unknown or gone or the file is broken
        (checks that need it are then skipped: `up` reports a broken Spacefile itself)."""
        if self.spacefile is not None or self.folder is None:
            return self.spacefile
        if not (self.folder / config_file.SPACEFILE_NAME).is_file():
            return None
        try:
            return spacefile.load(self.folder, check_paths=False)
        except SpaceDevError:
            return None


def load_config(
    args: argparse.Namespace, *, require_app: bool, **overrides: object
) -> RuntimeConfig:
    """space-dev.toml (or --config) with the command line over it: every command reads the same."""
    cwd = Path.cwd()
    path = args.config if args.config is not None else config_file.find_config(cwd)
    cfg = config_file.load(path)
    return config_file.apply_overrides(
        cfg,
        cwd=cwd,
        data_dir=args.data_dir,
        require_app=require_app,
        **overrides,  # type: ignore[arg-type]
    )


def runtime_config(args: argparse.Namespace) -> RuntimeConfig:
    """space-dev.toml (or --config) with --data-dir over it, as every command reads it."""
    return load_config(args, require_app=False)


def data_store(args: argparse.Namespace) -> Store:
    """The data dir every command of this config agrees on."""
    return Store(runtime_config(args).data_dir)


def _named(app: AppConfig) -> CommandApp:
    if app.name:
        return CommandApp(app.name, app.path)
    sf = spacefile.load(app.path, check_paths=False)
    return CommandApp(config_file.app_name(app, sf), app.path, sf)


def resolve(args: argparse.Namespace) -> tuple[Store, CommandApp]:
    """The data dir and the app meant: --app, else the only app there is."""
    cfg = runtime_config(args)
    store = Store(cfg.data_dir)
    file_apps = config_file.load(cfg.config_file).apps if cfg.config_file else ()
    # With [[apps]] in the config those are the apps meant; otherwise the app in this folder
    # (load_config's fallback) and the ones the data dir remembers from `up`.
    meant = [_named(app) for app in cfg.apps]
    known = {t.name: t for t in meant}
    for name, folder in store.known_apps().items():
        if name not in known:
            known[name] = CommandApp(name, folder)
            if not file_apps:
                meant.append(known[name])
    names = ", ".join(known) or "none"
    if args.app is not None:
        if args.app in known:
            return store, known[args.app]
        raise SpaceDevError(f'unknown app "{args.app}" (known here: {names})', _WHERE_APPS)
    if len(meant) == 1:
        return store, meant[0]
    if not meant:
        raise SpaceDevError("no app given, and none is known here", _WHERE_APPS)
    raise SpaceDevError(
        f"more than one app could be meant: {', '.join(t.name for t in meant)}",
        "say which with --app NAME",
    )


_WHERE_APPS = (
    "an app is known from space-dev.toml's [[apps]], from a Spacefile in this folder, or from "
    "having been served by `space-dev up` with this data dir (--data-dir, or data_dir in "
    "space-dev.toml)"
)
