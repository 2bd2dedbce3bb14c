"""A micro's `commands`: run once in its folder before the first start, again when they change."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from runtime.supervisor import reaper
from runtime.supervisor.output import Printer


def fingerprint(commands: Sequence[str], spacefile_text: str) -> str:
    """What the commands' last good run depended on."""
    digest = hashlib.sha256()
    for part in (*commands, "\0", spacefile_text):
        digest.update(part.encode())
    return digest.hexdigest()


async def run_setup(
    name: str,
    commands: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    printer: Printer,
    marker: Path,
    print_: str,
) -> str | None:
    """Run `commands` unless `marker` already holds `print_`; None when all succeeded, else
    what failed (for the settings page).

    The marker is written (atomically) only after every command succeeded, so a failed or
    interrupted setup runs again next time.
    """
    if not commands:
        return None
    try:
        if await asyncio.to_thread(marker.read_text) == print_:
            return None
    except OSError:
        pass
    for command in commands:
        printer.info(f"{name}: running `{command}`")
        proc = await asyncio.create_subprocess_shell(
            command,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        reaper.track(proc.pid)  # an install is ended too if this runtime is killed
        assert proc.stdout
        try:
            async for raw in proc.stdout:
                printer.line(name, raw.decode("utf-8", errors="replace"))
            code = await proc.wait()
        except asyncio.CancelledError:
            # Stopped half-way (Ctrl-C): leave no installer running behind us.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            reaper.untrack(proc.pid)
            raise
        # Anything it left running in its group is ended with the runtime.
        reaper.leader_exited(proc.pid)
        if code != 0:
            printer.info(
                f"{name}: `{command}` failed with exit code {code}; the micro is not started. "
                "Fix it, then save the Spacefile or press Restart on the settings page."
            )
            tail = "\n".join(printer.last_lines(name, 12))
            return f"`{command}` failed with exit code {code}:\n{tail}"
    write_marker(marker, print_)
    return None


def write_marker(marker: Path, print_: str) -> None:
    """Keep `print_` as the last good run's fingerprint (atomically)."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(print_)
    os.replace(tmp, marker)
