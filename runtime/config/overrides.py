"""The command line over space-dev.toml: options win, APP_DIRs replace the file's apps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from runtime.config.defaults import DEFAULT_AUTH, DEFAULT_HOST, SPACEFILE_NAME
from runtime.config.toml import PORT_HINT
from runtime.errors import SpaceDevError
from runtime.models import AppConfig, RuntimeConfig


def apply_overrides(
    cfg: RuntimeConfig,
    *,
    host: str | None = None,
    port: int | None = None,
    data_dir: Path | None = None,
    reload: bool | None = None,
    schedule: bool | None = None,
    as_space: bool | None = None,
    app_dirs: list[Path] | None = None,
    cwd: Path,
    require_app: bool = True,
) -> RuntimeConfig:
    """The command line over the file: options win, APP_DIRs replace the file's apps.

    Afterwards every path is absolute and the first app (if any) has its port set. With no app
    anywhere, `cwd` is the app if it holds a Spacefile; otherwise, with `require_app`, that is an
    error (`up`), and without it the result simply has no apps (`keys`, `users`...).
    """
    cwd = cwd.resolve()
    if port is not None and not 0 <= port <= 65535:
        raise SpaceDevError(f"--port {port} is out of range", PORT_HINT)
    if host is not None and not host.strip():
        raise SpaceDevError("--host is empty", f"leave it out for {DEFAULT_HOST}")
    apps = cfg.apps
    if app_dirs:
        apps = _apps_from_dirs(app_dirs, cwd, cfg.apps)
    elif not apps:
        if (cwd / SPACEFILE_NAME).is_file():
            apps = (AppConfig(path=cwd, auth=DEFAULT_AUTH),)
        elif require_app:
            if cfg.config_file:
                where = f"{cfg.config_file.name} has no [[apps]]"
                hint = (
                    f"add the app to {cfg.config_file.name} ([[apps]] with path = "
                    '"PATH/TO/APP"), or run space-dev up PATH/TO/APP'
                )
            else:
                where = "no space-dev.toml"
                hint = (
                    "run space-dev up PATH/TO/APP, or create space-dev.toml with [[apps]] "
                    'and path = "PATH/TO/APP"'
                )
            raise SpaceDevError(
                f"nothing to run: no APP_DIR given, {where}, and no Spacefile in {cwd}", hint
            )
    first_port = cfg.port if port is None else port
    if apps and (port is not None or apps[0].port is None):
        apps = (replace(apps[0], port=first_port), *apps[1:])
    owners: dict[int, AppConfig] = {}
    for app in apps:
        if app.port and app.port in owners:
            raise SpaceDevError(
                f"port {app.port} is given to both {owners[app.port].path} and {app.path}",
                "give each app its own port, or leave port out to take the next free one",
            )
        if app.port:
            owners[app.port] = app
    return replace(
        cfg,
        host=cfg.host if host is None else host,
        port=first_port if not apps or apps[0].port is None else apps[0].port,
        data_dir=(cwd / (cfg.data_dir if data_dir is None else data_dir)).resolve(),
        reload=cfg.reload if reload is None else reload,
        schedule=cfg.schedule if schedule is None else schedule,
        as_space=cfg.as_space if as_space is None else as_space,
        apps=tuple(apps),
    )


def _apps_from_dirs(
    app_dirs: list[Path], cwd: Path, file_apps: tuple[AppConfig, ...]
) -> tuple[AppConfig, ...]:
    """APP_DIRs as apps, each keeping its settings from the file when the file names that folder."""
    by_folder = {app.path: app for app in file_apps}
    apps: dict[Path, AppConfig] = {}  # one app per folder, however often it was given
    errors = []
    for given in app_dirs:
        folder = (cwd / given).resolve()
        if not folder.is_dir():
            errors.append(f"{given}: no such folder")
        elif not (folder / SPACEFILE_NAME).is_file():
            errors.append(f"{given}: no Spacefile in this folder")
        else:
            default = AppConfig(path=folder, auth=DEFAULT_AUTH)
            apps.setdefault(folder, by_folder.get(folder, default))
    if errors:
        raise SpaceDevError(
            "cannot run " + "; ".join(errors), "give the folder that holds the app's Spacefile"
        )
    return tuple(apps.values())
