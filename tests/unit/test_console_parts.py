"""The parts of the developer's console that need no server: the bounded buffer of lines and its
followers, the level a line gets, the filters, and where the owner's notice goes in a page."""

from __future__ import annotations

import asyncio
import io
import threading
import time

from runtime.serve.proxy import rewritable
from runtime.supervisor.log_buffer import RUNTIME_SOURCE, LogBuffer, level_of
from runtime.supervisor.output import Printer
from runtime.web.console import Filters
from runtime.web.owner_notice import inject, notice_html


def test_every_printed_line_is_kept_with_its_time_source_and_level() -> None:
    printer = Printer(io.StringIO(), colour=False)
    before = time.time()
    printer.line("api", "GET /notes 200")
    printer.line("api", "Traceback (most recent call last):")
    printer.info("api: restarting (main.py changed)")
    entries = printer.buffer.entries()
    assert [(e.source, e.level, e.text) for e in entries] == [
        ("api", "info", "GET /notes 200"),
        ("api", "error", "Traceback (most recent call last):"),
        (RUNTIME_SOURCE, "info", "api: restarting (main.py changed)"),
    ]
    assert all(before <= e.time <= time.time() for e in entries)
    assert [e.seq for e in printer.buffer.entries(after=2)] == [3]


def test_a_sign_in_link_is_kept_without_its_token_and_printed_whole() -> None:
    out = io.StringIO()
    printer = Printer(out, colour=False)
    link = "http://localhost:4200/__space/login?token=eyJ1IjoiZGV2In0.abc.def&next=/x"
    printer.info(f"sign in as dev: {link} (one use)")
    printer.close()
    assert link in out.getvalue()  # the terminal is where the owner takes it from
    (entry,) = printer.buffer.entries()
    assert "eyJ1" not in entry.text
    assert entry.text == (
        "sign in as dev: http://localhost:4200/__space/login?token=…&next=/x (one use)"
    )


def test_the_buffer_is_bounded() -> None:
    buffer = LogBuffer(3)
    for n in range(10):
        buffer.append("api", f"line {n}")
    assert [e.text for e in buffer.entries()] == ["line 7", "line 8", "line 9"]
    assert buffer.last_seq == 10


def test_levels_from_the_words_of_a_line() -> None:
    assert level_of("api: exited with code 1; starting again in 1 s") == "error"
    assert level_of('  File "main.py", line 3, in <module>') == "error"
    assert level_of("ValueError: bad") == "error"
    assert level_of("DeprecationWarning: use x") == "warn"
    assert level_of("warning: slow") == "warn"
    assert level_of("api: exited with code 0") == "info"
    assert level_of("GET /errors-page 200") == "info"  # a word inside a path is no error


def test_a_follower_wakes_for_a_line_written_from_another_thread() -> None:
    buffer = LogBuffer(10)

    async def follow() -> tuple[bool, float]:
        started = time.monotonic()
        threading.Timer(0.1, buffer.append, ("api", "from a thread")).start()
        woke = await buffer.wait_after(0, 5.0)
        return woke, time.monotonic() - started

    woke, took = asyncio.run(follow())
    assert woke and took < 2.0
    assert asyncio.run(buffer.wait_after(1, 0.05)) is False  # nothing new: times out


def test_filters_by_micro_level_and_text() -> None:
    buffer = LogBuffer(20)
    buffer.append("api", "GET /a 200")
    buffer.append("api", "ValueError: boom")
    buffer.append("www", "GET / 200")
    buffer.append("other-apps-micro", "GET / 200")
    buffer.append(RUNTIME_SOURCE, "api: restarting (main.py changed)")
    buffer.append(RUNTIME_SOURCE, "watching for changes")
    micros = {"api", "www"}

    def kept(**query: str) -> list[str]:
        f = Filters.of(query)
        return [e.text for e in buffer.entries() if f.keeps_line(e, micros)]

    assert "GET / 200" in kept() and len(kept()) == 5  # not another app's micro
    assert kept(micro="api") == [
        "GET /a 200",
        "ValueError: boom",
        "api: restarting (main.py changed)",
    ]
    assert kept(micro=RUNTIME_SOURCE) == [
        "api: restarting (main.py changed)",
        "watching for changes",
    ]
    assert kept(level="error") == ["ValueError: boom"]
    assert kept(text="BOOM") == ["ValueError: boom"]
    assert kept(level="nonsense") == kept()  # an unknown level is no filter, not an error
    assert (
        Filters.of({"micro": "api", "text": "a b"}).query("requests")
        == "view=requests&micro=api&text=a+b"
    )


def test_the_notice_goes_before_the_last_body_end_tag() -> None:
    notice = b"<aside>n</aside>"
    page = b"<html><body><p>x</p><script>'</body>'</script></BODY></html>"
    assert (
        inject(page, notice)
        == b"<html><body><p>x</p><script>'</body>'</script><aside>n</aside></BODY></html>"
    )
    assert inject(b"<p>a fragment</p>", notice) == b"<p>a fragment</p>"  # no page: unchanged


def test_the_notice_has_no_script_and_no_inline_style_and_escapes_names() -> None:
    html = notice_html([("api<x>", "has crashed")])
    assert "<script" not in html and "style=" not in html and "on" + "click" not in html
    assert "api&lt;x&gt;" in html and "<x>" not in html
    assert 'action="/__space/logs/dismiss"' in html  # closes with no script


def test_only_plain_html_answers_may_be_rewritten() -> None:
    assert rewritable([("Content-Type", "text/html; charset=utf-8")])
    assert rewritable([("content-type", "TEXT/HTML"), ("Content-Encoding", "identity")])
    assert not rewritable([("Content-Type", "text/html"), ("Content-Encoding", "gzip")])
    assert not rewritable([("Content-Type", "text/html"), ("Content-Range", "bytes 0-9/99")])
    assert not rewritable([("Content-Type", "application/json")])
    assert not rewritable([])
