"""One setup step (an install, a build command) run quietly, with a progress line while it lasts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.supervisor import reaper
from runtime.supervisor.output import Printer

# While a step runs, its progress line is said again this often, with the time so far.
PROGRESS_EVERY_S = 10.0
# On a failure, this many of the step's last output lines are shown.
FAILURE_LINES = 40


@dataclass(frozen=True)
class StepResult:
    ok: bool
    code: int
    output: list[str]
    seconds: float


async def run_step(
    name: str,
    command: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    printer: Printer,
    doing: str,
) -> StepResult:
    """Run `command` (argv) in its own process group; `doing` is the progress text (`installing
    14 packages (uv)`). Its output is kept and shown only when the step fails."""
    began = time.monotonic()
    printer.line(name, f"{doing}...")
    common = dict(
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        limit=1 << 20,
    )
    try:
        proc = await asyncio.create_subprocess_exec(*command, **common)  # type: ignore[arg-type]
    except OSError as err:
        text = f"cannot run {command[0]}: {err.strerror or err}"
        return StepResult(False, -1, [text], time.monotonic() - began)
    reaper.track(proc.pid)  # ended too if this runtime is killed
    output: list[str] = []

    async def read() -> None:
        assert proc.stdout
        async for raw in proc.stdout:
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            output.append(text)

    async def progress() -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            printer.line(name, f"{doing}... ({time.monotonic() - began:.0f} s)")

    reader = asyncio.create_task(read())
    ticker = asyncio.create_task(progress())
    try:
        code = await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), 1.0)
    except asyncio.CancelledError:
        # Stopped half-way (Ctrl-C): leave no installer running behind us.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        reaper.untrack(proc.pid)
        raise
    finally:
        ticker.cancel()
        reader.cancel()
    reaper.leader_exited(proc.pid)  # anything it left running is ended with the runtime
    return StepResult(code == 0, code, output, time.monotonic() - began)


def show_failure(name: str, printer: Printer, result: StepResult) -> None:
    """The failed step's last output lines, in the micro's log."""
    for line in result.output[-FAILURE_LINES:]:
        printer.line(name, f"  {line}")
