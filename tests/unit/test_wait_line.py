"""A micro's wait is one line: rewritten in place on a terminal, a start and an end elsewhere;
and where a process group listens, read from the kernel's tables."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.supervisor.listening import group_loopback_ports, loopback_listeners
from runtime.supervisor.output import Printer


def test_not_on_a_terminal_a_wait_is_a_line_at_its_start_and_one_at_its_end() -> None:
    out = io.StringIO()
    printer = Printer(out, colour=False, live=False)
    for second in range(1, 30):
        printer.wait_note("ui", f"waiting for ui on port 4000 ({second} s)")
    printer.line("ui", "compiling...")
    printer.wait_end("ui", "ui: answered after 29.5 s")
    lines = out.getvalue().splitlines()
    assert [line for line in lines if "waiting for ui" in line] == [
        "space-dev | waiting for ui on port 4000 (1 s)"
    ]
    assert lines[-1] == "space-dev | ui: answered after 29.5 s"


def test_a_wait_too_short_to_be_noted_ends_silently() -> None:
    out = io.StringIO()
    printer = Printer(out, colour=False, live=False)
    assert printer.wait_end("api", "api: answered after 0.2 s") is False
    assert out.getvalue() == ""


def test_on_a_terminal_the_wait_line_is_rewritten_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the line is cut to the terminal's width
    out = io.StringIO()
    printer = Printer(out, colour=False, live=True)
    printer.wait_note("ui", "waiting for ui on port 4000 (1 s)")
    printer.wait_note("ui", "waiting for ui on port 4000 (2 s)")
    printer.wait_note("api", "waiting for api on port 4001 (1 s)")
    printer.line("ui", "compiling...")  # the status line goes, the line is written, it comes back
    printer.wait_end("ui", "ui: answered after 2.5 s")
    printer.wait_end("api", "api: answered after 2.6 s")
    text = out.getvalue()
    assert text.count("\n") == 3  # only the output line and the two ends are lines of their own
    shown = text.split("\r\x1b[K")
    assert shown[-1] == "space-dev | api: answered after 2.6 s\n"
    assert "ui        | compiling...\n" in text or "ui | compiling...\n" in text
    assert any(
        s.endswith("waiting for ui on port 4000 (2 s); waiting for api on port 4001 (1 s)")
        for s in shown
    )


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc")
def test_the_ports_a_process_group_listens_on() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, sys, time\n"
            f"s = socket.socket(); s.bind(('127.0.0.1', {free})); s.listen()\n"
            "print('listening', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "listening"
        assert group_loopback_ports(child.pid) == {free: ("127.0.0.1", free)}
        assert loopback_listeners()[free] == ("127.0.0.1", free)
        # Another group (this test's own) holds nothing there.
        assert free not in group_loopback_ports(os.getpgid(0))
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 5
    while free in loopback_listeners() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert free not in loopback_listeners()
