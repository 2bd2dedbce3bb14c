"""What the log and the settings page tell the owner about a micro's start command: a tool the
shell did not find, a line written for Windows, a server that listens elsewhere or nowhere."""

from __future__ import annotations

from pathlib import Path

from runtime.spacefile import dev_lines


def exit_hint(code: int, command: str, cwd: Path, source: str, last_lines: list[str]) -> str | None:
    """What a failed start's exit says about its command, when something can be said."""
    where = source or "the micro's `run` command in the Spacefile"
    marks = dev_lines.windows_marks(command)
    if code == 127:
        tool = dev_lines.not_found_tool(last_lines)
        script = dev_lines.script_of(command, cwd)
        if tool and script and tool not in command.split():
            what = (
                f"exit code 127: the shell did not find `{tool}`, which the `{script[0]}` "
                f"npm script of `{command}` runs. Is it in package.json's dependencies? "
                f"Check {where} too"
            )
        elif tool:
            what = (
                f"exit code 127: the shell did not find `{tool}` (the command is "
                f"`{command}`): install it, or check {where}"
            )
        else:
            what = (
                f"exit code 127 means the shell did not find the command `{command}`: "
                f"check {where}, and that what it runs is installed"
            )
    elif marks:
        what = f"exited with code {code}: `{command}` ({where}) looks written for Windows"
    else:
        return None
    if marks:
        what += " (" + "; ".join(marks) + ")"
    return what + "." + as_space(source)


def not_listening(
    command: str, cwd: Path, source: str, port: int, waited: float, *, other_ports_seen: bool = True
) -> str:
    """What is wrong with a micro that listens nowhere, and what to do. Where the system shows
    no process's sockets (`other_ports_seen` False), only $PORT was tried, and that is said."""
    if other_ports_seen:
        where = f"not listening on $PORT ({port}) nor on any other loopback port"
    else:
        where = (
            f"not answering on $PORT ({port}) (a server on another port is not looked "
            "for on this system)"
        )
    return (
        f"{where} after {waited:g} s. "
        f"{_sentence(dev_lines.port_way(command, cwd))}{as_space(source)}"
    )


def other_port(command: str, cwd: Path, port: int, given_port: int, reloads_itself: bool) -> str:
    """A micro that serves on a port of its own: where requests go, and how to give it $PORT."""
    # A command that reloads by itself is restarted only for Spacefile or dependency changes.
    restarts = "a restart" if reloads_itself else "a save"
    return (
        f"listens on port {port}, not on the $PORT it was given ({given_port}): requests go "
        f"there. To use $PORT, {dev_lines.port_way(command, cwd)}; until then {restarts} "
        "stops it before starting the new version, not beside it."
    )


def as_space(source: str) -> str:
    """For a `dev` line: that running the micro as Space did avoids it."""
    if "`dev`" not in source:
        return ""
    return (
        f" This is the micro's `dev` line: if it was written for another machine, "
        f"`{dev_lines.AS_SPACE}` runs the micro as Space did, without it."
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
