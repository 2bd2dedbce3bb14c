"""Which Python installer makes a micro's environment: uv when there is one, else pip."""

from __future__ import annotations

import datetime
import importlib.util
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runtime.config import environment

# Read and checked with the other SPACE_DEV_* variables (config/environment.py).
INSTALLER_VARIABLE = environment.INSTALLER_VARIABLE
AS_OF_VARIABLE = environment.PACKAGES_AS_OF_VARIABLE
LATEST = environment.LATEST


@dataclass(frozen=True)
class Installer:
    """How to make a virtual environment and install requirements into it."""

    name: str  # "uv" or "pip", as the progress line shows it
    program: tuple[str, ...]  # the command that runs the installer
    dates: bool = True  # whether it can leave out releases made after a day

    def make_env(self, env_dir: Path, interpreter: str) -> list[str]:
        if self.name == "uv":
            return [*self.program, "venv", "--quiet", "--python", interpreter, str(env_dir)]
        # pip comes from the runtime's own python (`--python`), so the environment needs none
        # of its own: making one with pip in it costs seconds.
        return [interpreter, "-m", "venv", "--without-pip", str(env_dir)]

    def install(self, env_dir: Path, requirements: Path, as_of: str | None = None) -> list[str]:
        """The install command; `as_of` (a day, YYYY-MM-DD) leaves out later releases."""
        python = str(env_dir / "bin" / "python")
        if self.name == "uv":
            # Compiled at install, as pip does: uv leaves it out by default, and a micro that
            # may not write bytecode (PYTHONDONTWRITEBYTECODE) would compile on every start.
            before = ["--exclude-newer", end_of(as_of)] if as_of and self.dates else []
            return [
                *self.program,
                "pip",
                "install",
                "--compile-bytecode",
                *before,
                "--python",
                python,
                "-r",
                str(requirements),
            ]
        before = [f"--uploaded-prior-to={end_of(as_of)}"] if as_of and self.dates else []
        return [
            *self.program,
            "--python",
            python,
            "install",
            "--no-input",
            "--disable-pip-version-check",
            *before,
            "-r",
            str(requirements),
        ]


def end_of(day: str) -> str:
    """The first moment after `day`, in UTC: releases of that very day are kept."""
    after = datetime.date.fromisoformat(day) + datetime.timedelta(days=1)
    return f"{after.isoformat()}T00:00:00Z"


def as_of(environ: Mapping[str, str] | None = None) -> str | None:
    """The day a micro's requirements resolve as of; None for the newest releases."""
    return environment.packages_as_of(environ if environ is not None else os.environ)


def find_uv() -> str | None:
    """The uv program: the one the `uv` package installed beside us, else one on PATH."""
    if importlib.util.find_spec("uv") is not None:
        try:
            from uv import find_uv_bin

            return str(find_uv_bin())
        except (ImportError, FileNotFoundError):
            pass
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def pip_knows_dates() -> bool:
    """Whether this pip has `--uploaded-prior-to` (newer pips do; older ones refuse it)."""
    try:
        from pip._internal.cli import cmdoptions
    except ImportError:
        return False
    return hasattr(cmdoptions, "uploaded_prior_to")


def pip_works() -> bool:
    """Whether the runtime's python has pip (`--python`, which needs pip 22.3 or newer)."""
    if importlib.util.find_spec("pip") is None:
        return False
    try:
        import pip

        major, minor = (int(p) for p in pip.__version__.split(".")[:2])
    except (ImportError, ValueError):
        return False
    return (major, minor) >= (22, 3)


def choose(environ: dict[str, str] | None = None) -> Installer | None:
    """uv if present (far faster: docs/decisions.md), else pip; None when neither is."""
    wanted = environment.installer(environ if environ is not None else os.environ)
    uv = find_uv() if wanted != "pip" else None
    if uv is not None:
        return Installer("uv", (uv,))
    if wanted != "uv" and pip_works():
        return Installer("pip", (sys.executable, "-m", "pip"), pip_knows_dates())
    return None
