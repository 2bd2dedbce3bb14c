"""Which Python installer makes a micro's environment: uv when there is one, else pip."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

# `SPACE_DEV_INSTALLER=pip` (or `uv`) forces one; bench/setup.py compares them this way.
INSTALLER_VARIABLE = "SPACE_DEV_INSTALLER"


@dataclass(frozen=True)
class Installer:
    """How to make a virtual environment and install requirements into it."""

    name: str  # "uv" or "pip", as the progress line shows it
    program: tuple[str, ...]  # the command that runs the installer

    def make_env(self, env_dir: Path, interpreter: str) -> list[str]:
        if self.name == "uv":
            return [*self.program, "venv", "--quiet", "--python", interpreter, str(env_dir)]
        # pip comes from the runtime's own python (`--python`), so the environment needs none
        # of its own: making one with pip in it costs seconds.
        return [interpreter, "-m", "venv", "--without-pip", str(env_dir)]

    def install(self, env_dir: Path, requirements: Path) -> list[str]:
        python = str(env_dir / "bin" / "python")
        if self.name == "uv":
            # Compiled at install, as pip does: uv leaves it out by default, and a micro that
            # may not write bytecode (PYTHONDONTWRITEBYTECODE) would compile on every start.
            return [*self.program, "pip", "install", "--compile-bytecode", "--python", python,
                    "-r", str(requirements)]
        return [*self.program, "--python", python, "install", "--no-input",
                "--disable-pip-version-check", "-r", str(requirements)]


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
    wanted = (environ if environ is not None else os.environ).get(INSTALLER_VARIABLE, "")
    uv = find_uv() if wanted != "pip" else None
    if uv is not None:
        return Installer("uv", (uv,))
    if wanted != "uv" and pip_works():
        return Installer("pip", (sys.executable, "-m", "pip"))
    return None
