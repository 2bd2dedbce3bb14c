"""A crash loop's output is shown once, then counted; anything new is shown in full."""

from __future__ import annotations

import io

from runtime.supervisor.output import Printer


def _start(printer: Printer, lines: list[str], after_failure: bool = True) -> None:
    printer.begin_run("api", after_failure=after_failure)
    for line in lines:
        printer.line("api", line)
    printer.end_run("api")


def test_the_same_output_again_is_counted_not_printed() -> None:
    out = io.StringIO()
    printer = Printer(out, colour=False)
    trace = ["Traceback (most recent call last):", '  File "main.py", line 1', "ValueError: x"]
    _start(printer, trace, after_failure=False)
    _start(printer, trace)
    _start(printer, trace)
    text = out.getvalue()
    assert text.count("ValueError: x") == 1
    assert "(the same 3 lines as at the last start, not shown again: 2 starts in a row)" in text
    assert "3 starts in a row" in text
    assert printer.last_lines("api").count("ValueError: x") == 1


def test_output_that_differs_is_shown_whole() -> None:
    out = io.StringIO()
    printer = Printer(out, colour=False)
    _start(printer, ["starting", "ValueError: x"], after_failure=False)
    _start(printer, ["starting", "KeyError: y"])
    text = out.getvalue()
    assert text.count("starting") == 2 and "KeyError: y" in text and "the same" not in text


def test_a_start_that_gets_ready_shows_what_was_held() -> None:
    out = io.StringIO()
    printer = Printer(out, colour=False)
    _start(printer, ["listening on 8000"], after_failure=False)
    printer.begin_run("api", after_failure=True)
    printer.line("api", "listening on 8000")
    assert out.getvalue().count("listening on 8000") == 1  # held while it may repeat
    printer.end_run("api", ready=True)  # it serves: shown after all
    assert out.getvalue().count("listening on 8000") == 2
