"""space-dev.toml -> RuntimeConfig: every problem at once, each with its key, line and a fix."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from runtime.auth.policy import ExpressionError, parse_allow
from runtime.config.defaults import (
    CONFIG_FILE_NAME,
    DEFAULT_AS_SPACE,
    DEFAULT_DATA_DIR,
    DEFAULT_HOST,
    DEFAULT_KEY_COOKIES,
    DEFAULT_KEY_HEADERS,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_PORT,
    DEFAULT_RELOAD,
    DEFAULT_SCHEDULE,
    HTTP_METHODS,
    SPACEFILE_NAME,
)
from runtime.config.sizes import SIZE_HINT, parse_size
from runtime.config.toml_lines import Key, LineMap
from runtime.errors import InvalidFile, Problem, SpaceDevError
from runtime.models import AppConfig, AuthConfig, RouteRule, RuntimeConfig, Spacefile

_TOP_KEYS = ("runtime", "apps")
_RUNTIME_KEYS = (
    "host",
    "port",
    "data_dir",
    "reload",
    "schedule",
    "allowed_hosts",
    "max_body_size",
    "as_space",
)
_APP_KEYS = ("path", "name", "port", "env", "auth", "routes")
_AUTH_KEYS = ("key_headers", "key_cookies")
_ROUTE_KEYS = ("micro", "path", "methods", "api_key_required", "allow")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: header and cookie names
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# A host name (labels of letters, digits and `-`, `*.` allowed first) or an IP address literal.
_HOST_NAME = re.compile(
    r"(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*\.?|\[?[0-9A-Fa-f:.]+\]?"
)
PORT_HINT = "use 1-65535, or 0 for any free port"


def _where(path: Key) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else f'"{part}"'
            out += f".{name}" if out else name
    return out


def _shown(path: Path) -> str:
    """A path as the user gave it, relative to the working folder when possible."""
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        return str(path.relative_to(Path.cwd()))
    return str(path)


# --- reading the document -------------------------------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, list | dict):
        return "an array" if isinstance(value, list) else "a table"
    if isinstance(value, str):
        return f'a string ("{value}")'
    kind = (
        "a boolean"
        if isinstance(value, bool)
        else "an integer"
        if isinstance(value, int)
        else "a float"
    )
    shown = str(value).lower() if isinstance(value, bool) else value
    return f"{kind} ({shown})" if isinstance(value, int | float) else f"a date/time ({value})"


def _has_type(value: Any, kind: type) -> bool:
    # TOML booleans are Python ints: `port = true` must not pass as a number.
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


class _Reader:
    """Turns a parsed document into a RuntimeConfig, collecting every problem on the way."""

    def __init__(self, shown: str, lines: LineMap, base: Path) -> None:
        self.shown = shown
        self.lines = lines
        self.base = base
        self.problems: list[Problem] = []

    def problem(self, path: Key, message: str, hint: str = "") -> None:
        line = self.lines.line_of(path)
        self.problems.append(Problem(_where(path), message, hint, line, self.shown))

    def known(self, table: dict[str, Any], path: Key, keys: tuple[str, ...]) -> None:
        for key in table:
            if key not in keys:
                close = difflib.get_close_matches(key, keys, n=1)
                hint = f'did you mean "{close[0]}"?' if close else "known keys: " + ", ".join(keys)
                self.problem(path + (key,), f'unknown key "{key}"', hint)

    def get(self, table: dict[str, Any], path: Key, key: str, kind: type, what: str) -> Any:
        """table[key] if present and of the right type; None (with a problem if wrong) otherwise."""
        value = table.get(key)
        if value is None or _has_type(value, kind):
            return value
        self.problem(path + (key,), f"expected {what}, got {_describe(value)}")
        return None

    def text(self, table: dict[str, Any], path: Key, key: str, required: bool = False) -> Any:
        value = self.get(table, path, key, str, "a string")
        if key not in table and required:
            self.problem(path, f'missing "{key}"')
        elif value is not None and not value.strip():
            self.problem(path + (key,), "must not be empty")
            return None
        return value

    def port(self, table: dict[str, Any], path: Key) -> int | None:
        value = self.get(table, path, "port", int, "a port number")
        if value is not None and not 0 <= value <= 65535:
            self.problem(path + ("port",), f"port {value} is out of range", PORT_HINT)
            return None
        return value

    def names(self, table: dict[str, Any], path: Key, key: str, what: str) -> list[str] | None:
        values = self.get(table, path, key, list, f"an array of {what}s")
        if values is None:
            return None
        for n, value in enumerate(values):
            if not isinstance(value, str) or not _TOKEN.fullmatch(value):
                got = _describe(value) if not isinstance(value, str) else f'"{value}"'
                self.problem(path + (key, n), f"expected a {what}, got {got}")
        return values

    def size(self, table: dict[str, Any], path: Key, key: str) -> int | None:
        if _has_type(table.get(key), int):
            self.problem(
                path + (key,),
                f"expected a size, got {_describe(table[key])}",
                f'write the unit: "{table[key]} B" is that many bytes',
            )
            return None
        text = self.get(table, path, key, str, 'a size such as "100 MiB"')
        if text is None:
            return None
        try:
            return parse_size(text)
        except ValueError as err:
            self.problem(path + (key,), f'"{text}" is not a size: {err}', SIZE_HINT)
            return None

    def hosts(self, table: dict[str, Any], path: Key, key: str) -> tuple[str, ...]:
        values = self.get(table, path, key, list, "an array of host names") or []
        good = []
        for n, value in enumerate(values):
            if isinstance(value, str) and _HOST_NAME.fullmatch(value):
                good.append(value)
                continue
            got = _describe(value) if not isinstance(value, str) else f'"{value}"'
            self.problem(
                path + (key, n),
                f"expected a host name, got {got}",
                'a name alone, such as "myapp.test" or "*.myapp.test": no scheme, no port',
            )
        return tuple(good)

    def document(self, doc: dict[str, Any]) -> RuntimeConfig:
        self.known(doc, (), _TOP_KEYS)
        rt = self.get(doc, (), "runtime", dict, "a [runtime] table") or {}
        path: Key = ("runtime",)
        self.known(rt, path, _RUNTIME_KEYS)
        data_dir = self.text(rt, path, "data_dir")
        raw_apps = self.get(doc, (), "apps", list, "[[apps]] tables") or []
        apps = []
        for i, raw in enumerate(raw_apps):
            if _has_type(raw, dict):
                apps.append(self.app(raw, ("apps", i)))
            else:
                self.problem(("apps", i), f"expected an [[apps]] table, got {_describe(raw)}")
        cfg = RuntimeConfig(
            host=self.text(rt, path, "host") or DEFAULT_HOST,
            port=_or(self.port(rt, path), DEFAULT_PORT),
            data_dir=(self.base / (data_dir or DEFAULT_DATA_DIR)).resolve(),
            reload=_or(self.get(rt, path, "reload", bool, "true or false"), DEFAULT_RELOAD),
            schedule=_or(self.get(rt, path, "schedule", bool, "true or false"), DEFAULT_SCHEDULE),
            allowed_hosts=self.hosts(rt, path, "allowed_hosts"),
            max_body_size=self.size(rt, path, "max_body_size"),
            as_space=_or(self.get(rt, path, "as_space", bool, "true or false"), DEFAULT_AS_SPACE),
            apps=tuple(a for a in apps if a is not None),
        )
        if len(cfg.apps) == len(raw_apps):  # duplicates only make sense among whole apps
            self.duplicates(cfg)
        return cfg

    def app(self, raw: dict[str, Any], path: Key) -> AppConfig | None:
        self.known(raw, path, _APP_KEYS)
        written = self.text(raw, path, "path", required=True)
        folder = None
        if written is not None:
            folder = (self.base / written).resolve()
            where = path + ("path",)
            relative = f"paths are relative to the config file's folder, {self.base}"
            if not folder.exists():
                self.problem(where, f'folder "{written}" does not exist', relative)
            elif not folder.is_dir():
                self.problem(where, f'"{written}" is not a folder', "give the app's folder")
            elif not (folder / SPACEFILE_NAME).is_file():
                self.problem(where, f'folder "{written}" has no Spacefile', relative)
        name = self.text(raw, path, "name")
        if name is not None and ("/" in name or "\\" in name):
            self.problem(path + ("name",), f'app name "{name}" must not contain / or \\')
        env = self.get(raw, path, "env", dict, "an [apps.env] table") or {}
        for key, value in env.items():
            where = path + ("env", key)
            if not _ENV_NAME.fullmatch(key):
                self.problem(where, f'"{key}" is not an environment variable name')
            if not isinstance(value, str):
                quoted = str(value).lower() if isinstance(value, bool) else str(value)
                hint = f'quote it: {key} = "{quoted}"'
                self.problem(where, f"expected a string, got {_describe(value)}", hint)
        auth = self.get(raw, path, "auth", dict, "an [apps.auth] table") or {}
        self.known(auth, path + ("auth",), _AUTH_KEYS)
        headers = self.names(auth, path + ("auth",), "key_headers", "header name")
        cookies = self.names(auth, path + ("auth",), "key_cookies", "cookie name")
        port = self.port(raw, path)
        rules = []
        for n, rule in enumerate(self.get(raw, path, "routes", list, "[[apps.routes]]") or []):
            if _has_type(rule, dict):
                rules.append(self.route(rule, path + ("routes", n)))
            else:
                self.problem(path + ("routes", n), f"expected a table, got {_describe(rule)}")
        if folder is None:
            return None
        return AppConfig(
            path=folder,
            auth=AuthConfig(
                tuple(_or(headers, DEFAULT_KEY_HEADERS)), tuple(_or(cookies, DEFAULT_KEY_COOKIES))
            ),
            name=name,
            port=port,
            env={k: v for k, v in env.items() if isinstance(v, str)},
            routes=tuple(r for r in rules if r is not None),
        )

    def route(self, raw: dict[str, Any], path: Key) -> RouteRule | None:
        self.known(raw, path, _ROUTE_KEYS)
        micro = self.text(raw, path, "micro", required=True)
        pattern = self.text(raw, path, "path", required=True)
        methods = self.get(raw, path, "methods", list, "an array of method names")
        if methods == []:
            self.problem(
                path + ("methods",),
                "an empty list matches no request",
                "leave methods out to match every method",
            )
        for n, method in enumerate(methods or []):
            if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
                close = difflib.get_close_matches(str(method).upper(), HTTP_METHODS, n=1)
                hint = f'did you mean "{close[0]}"?' if close else ", ".join(HTTP_METHODS)
                shown = f'"{method}"' if isinstance(method, str) else _describe(method)
                self.problem(path + ("methods", n), f"unknown HTTP method {shown}", hint)
        allow = self.text(raw, path, "allow")
        if allow is not None:
            self.check_allow(allow, path + ("allow",))
        key_required = self.get(raw, path, "api_key_required", bool, "true or false")
        if micro is None or pattern is None:
            return None
        return RouteRule(
            micro=micro,
            path=pattern,
            methods=tuple(dict.fromkeys(str(m).upper() for m in methods)) if methods else None,
            api_key_required=bool(key_required),
            allow=allow,
            line=self.lines.line_of(path),
        )

    def check_allow(self, text: str, path: Key) -> None:
        try:
            parse_allow(text)
        except ExpressionError as err:
            column = self.lines.column_in_file(path, text, err.column - 1)
            spot = f"column {column}" if column else f"column {err.column} of the expression"
            self.problem(
                path,
                f"invalid expression at {spot}: {err.reason}",
                "e.g. allow = 'clientType == \"admin\" || groups.ops'",
            )

    def duplicates(self, cfg: RuntimeConfig) -> None:
        seen: dict[tuple[str, object], str] = {}
        for i, app in enumerate(cfg.apps):
            # The first app without a port of its own takes [runtime].port.
            first = "apps[0] (runtime.port)" if i == 0 and app.port is None else f"apps[{i}]"
            port = cfg.port if i == 0 and app.port is None else app.port
            for field, value, hint in (
                ("name", app.name, "give each app its own name"),
                ("port", port or None, "give each app its own port, or leave port out"),
                ("path", app.path, "list each app folder once"),
            ):
                if value is not None and (field, value) in seen:
                    message = f"same {field} as {seen[(field, value)]}"
                    self.problem(("apps", i, field), message, hint)
                elif value is not None:
                    seen[(field, value)] = first


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _syntax_problem(err: tomllib.TOMLDecodeError, text: str, shown: str) -> Problem:
    message = str(err)
    found = re.search(r" \(at line (\d+), column (\d+)\)$", message)
    if found:
        line = int(found.group(1))
        message = message[: found.start()] + f" (column {found.group(2)})"
    else:  # "(at end of document)": the last line is where the reader gave up
        line = max(1, len(text.splitlines()))
        message = message.replace(" (at end of document)", " (at the end of the file)")
    return Problem(
        "", f"TOML syntax error: {message}", "see https://toml.io for the syntax", line, shown
    )


# --- the public API -------------------------------------------------------------------------


def app_name(app: AppConfig, spacefile: Spacefile) -> str:
    """An app's name: from the config, else the Spacefile's app_name, else its folder's name."""
    return app.name or spacefile.app_name or app.path.name


def max_body_size(cfg: RuntimeConfig) -> int:
    """The cap on request bodies, in bytes: `[runtime] max_body_size`, else the default."""
    return DEFAULT_MAX_BODY_SIZE if cfg.max_body_size is None else cfg.max_body_size


def find_config(start: Path) -> Path | None:
    """`space-dev.toml` in `start` itself, or None.

    No walking up to parent folders: a config found far away would silently pick another data dir.
    """
    candidate = start / CONFIG_FILE_NAME
    return candidate if candidate.is_file() else None


def load(config_file: Path | None) -> RuntimeConfig:
    """Read `space-dev.toml`, reporting every problem at once; None: the defaults, no apps."""
    if config_file is None:
        # Relative on purpose: apply_overrides() puts it under the working folder.
        return RuntimeConfig(
            DEFAULT_HOST,
            DEFAULT_PORT,
            Path(DEFAULT_DATA_DIR),
            DEFAULT_RELOAD,
            DEFAULT_SCHEDULE,
            apps=(),
        )
    shown = _shown(config_file)
    try:
        data = config_file.read_bytes()
    except FileNotFoundError:
        hint = "check the --config path, or leave it out to run without a config"
        raise SpaceDevError(f"config file {shown} not found", hint) from None
    except OSError as err:
        raise SpaceDevError(f"cannot read config file {shown}: {err.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        problem = Problem("", "not UTF-8 text", "save it as UTF-8", line, shown)
        raise InvalidFile(shown, [problem]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InvalidFile(shown, [_syntax_problem(err, text, shown)]) from None
    path = config_file.resolve()
    reader = _Reader(shown, LineMap(text), path.parent)
    cfg = reader.document(doc)
    if reader.problems:
        # In file order, whatever order the checks ran in.
        raise InvalidFile(shown, sorted(reader.problems, key=lambda p: p.line or 0))
    return replace(cfg, config_file=path)
