"""The one 404 page, for the runtime's own paths and a static micro's missing files alike: it
names the path asked for (escaped) and carries its own style, so it needs nothing else."""

from __future__ import annotations

import html
import re

# The pages' look (web/static/style.css), the few rules this page needs, inline: a static
# micro's 404 cannot count on any other file being there.
_STYLE = (
    ":root{--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--accent:#4f46e5}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--ink);"
    "background:var(--bg)}"
    ".bar{display:flex;align-items:center;gap:1rem;padding:.6rem 1.5rem;background:#fff;"
    "border-bottom:1px solid var(--line)}"
    ".brand{font-weight:700;color:var(--ink);text-decoration:none}"
    "main{max-width:40rem;margin:2rem auto;padding:0 1.5rem}"
    ".card{background:#fff;border:1px solid var(--line);border-radius:.75rem;"
    "padding:1.25rem 1.5rem}"
    "h1{font-size:1.5rem;margin:0 0 .75rem}p{margin:.25rem 0 .75rem}"
    "code{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,monospace;background:#f1f5f9;"
    "padding:.05rem .3rem;border-radius:.25rem;overflow-wrap:anywhere}"
    ".muted{color:var(--muted)}a{color:var(--accent)}"
)


_CODE = re.compile(r"`([^`\n]+)`")


def not_found_html(path: str, detail: str = "", home: str = "/") -> str:
    """The page for `path` (as asked, shown escaped); `detail` is text said below it, its
    `backticks` shown as code."""
    shown = _CODE.sub(r"<code>\1</code>", html.escape(detail))
    said = f'<p class="muted">{shown}</p>\n' if detail else ""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>404 Not Found · space-dev</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<header class="bar"><a class="brand" href="{html.escape(home)}">space-dev</a>'
        '</header>\n<main>\n<section class="card">\n<h1>404 Not Found</h1>\n'
        f"<p>There is nothing at <code>{html.escape(path)}</code>.</p>\n{said}"
        f'<p><a href="{html.escape(home)}">Go to the app\'s home page</a></p>\n'
        "</section>\n</main>\n</body>\n</html>\n"
    )
