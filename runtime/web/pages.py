"""The runtime's pages: Jinja2 templates with autoescape, so any user value is shown escaped."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("runtime.web", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def relative(moment: datetime, now: datetime | None = None) -> str:
    """How far a time is from now, as a person says it: `in 59 min`, `3 h ago`, `just now`."""
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    span = abs(seconds)
    if span < 60:
        return "just now" if seconds <= 0 else "in under a minute"
    minutes = int(span // 60)
    if minutes < 60:
        amount = f"{minutes} min"
    elif minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        amount = f"{hours} h {rest} min" if rest and hours < 10 else f"{hours} h"
    else:
        days = minutes // (24 * 60)
        amount = f"{days} days"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def _when(text: str | None) -> Markup:
    """A data dir time, `2021-04-22T11:50:08Z`, as a date and a time that may wrap apart, and
    how far it is from now (`in 59 min`)."""
    if not text:
        return Markup("")
    date, sep, time = str(text).partition("T")
    if not sep:
        return Markup(escape(text))
    try:
        moment = datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        near = ""
    else:
        near = relative(moment)
    markup = Markup(
        '<time datetime="{0}"><span class="nowrap">{1}</span> '
        '<span class="nowrap">{2}</span></time>'
    ).format(text, date, time.removesuffix("Z") + " UTC")
    if near:
        markup += Markup(' <span class="relative muted nowrap">({0})</span>').format(near)
    return markup


_CODE = re.compile(r"`([^`\n]+)`")


def _codes(text: str | None) -> Markup:
    """A notice's text with its `backticks` shown as code, each command kept on one line."""
    escaped = str(escape(text or ""))
    return Markup(_CODE.sub(r'<code class="command">\1</code>', escaped))


_env.filters["when"] = _when
_env.filters["codes"] = _codes


@functools.cache
def inline_style() -> Markup:
    """The pages' stylesheet, for a page that must not load it (its request would be refused)."""
    text = (Path(__file__).parent / "static" / "style.css").read_text(encoding="utf-8")
    # Our own file; `<\/` keeps any `</` in it from closing the <style> early.
    return Markup(text.replace("</", "<\\/"))


def render(template: str, **context: Any) -> str:
    """The HTML of one page."""
    return _env.get_template(template).render(**context)


def page(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> web.Response:
    """An HTML response that is never cached and never framed by another site."""
    response = web.Response(
        text=render(template, **context),
        status=status,
        content_type="text/html",
        headers=headers,
    )
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def wants_html(request: web.Request) -> bool:
    """A browser navigation rather than an API call."""
    return "text/html" in request.headers.get("Accept", "")


def problem(
    request: web.Request,
    status: int,
    title: str,
    detail: str = "",
    lines: list[str] | None = None,
    user: str = "",
) -> web.Response:
    """An error as a page for browsers and as `{"errors": [...]}` for everything else; `user`,
    the one signed in, is offered to sign out and in as someone else."""
    if wants_html(request):
        return page(
            "error.html",
            status=status,
            title=title,
            detail=detail,
            lines=lines or [],
            user=user,
            here=request.rel_url.raw_path_qs,
        )
    errors = [title] + ([detail] if detail else [])
    return web.json_response({"errors": errors}, status=status)
