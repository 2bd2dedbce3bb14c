"""The rules of Spacefile v0, field by field: every problem piles up with its line and a fix."""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.models import Action, EnvPreset, Micro, Spacefile
from runtime.spacefile import dev_lines, engines, intervals
from runtime.spacefile.yaml12 import Reads, YNode, join

MAX_MICROS = 5
MAX_APP_NAME = 12

TOP_KEYS = ("v", "icon", "app_name", "auto_pwa", "micros")
MICRO_KEYS = (
    "name",
    "src",
    "engine",
    "primary",
    "path",
    "serve",
    "run",
    "dev",
    "commands",
    "include",
    "public",
    "public_routes",
    "presets",
    "actions",
    "provide_actions",
)
PRESET_KEYS = ("env", "api_keys")
ENV_KEYS = ("name", "description", "default")
ACTION_KEYS = ("id", "name", "description", "trigger", "default_interval", "path")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%-]+")
_NAME_RULE = 'use letters, digits, "-" and "_", starting with a letter or digit'
# Keys people write in the wrong place or under another name, and where they belong.
_ENV_HINT = "environment variables go under a micro's presets.env: a list of {name, default}"
_TOP_HINTS = {"env": _ENV_HINT, "name": 'did you mean "app_name"?'}
_MICRO_HINTS = {"env": _ENV_HINT, "api_keys": "write it under presets: `presets: {api_keys: true}`"}
_ENV_HINTS = {"value": 'did you mean "default"?', "key": 'did you mean "name"?'}
_INTERVAL = 'did you mean "default_interval"?'
_ACTION_HINTS = {"interval": _INTERVAL, "schedule": _INTERVAL, "cron": _INTERVAL}


def display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


def _inside(text: str) -> str | None:
    """`text` as a clean relative path, or None if it is absolute or climbs out with `..`."""
    if os.path.isabs(text):
        return None
    norm = os.path.normpath(text)
    return None if norm == ".." or norm.startswith("../") else norm


@dataclass
class _Draft:
    """A micro read on its own, before the rules that look at every micro together."""

    where: str
    node: YNode
    keys: dict[str, YNode]
    fields: dict[str, Any]  # Micro's arguments, less primary and path
    primary: bool | None


class Checker(Reads):
    """Every rule of Spacefile v0, applied top down; problems pile up, none stops the rest."""

    def __init__(self, path: Path, strict: bool, check_paths: bool) -> None:
        super().__init__(display(path))
        self.path = path
        self.app_dir = path.parent
        self.strict = strict
        self.check_paths = check_paths
        self.action_ids: dict[str, str] = {}  # unique in the whole app, not just one micro

    # --- the file, top down -------------------------------------------------------------------

    def spacefile(self, tree: YNode) -> Spacefile | None:
        top = self.mapping(tree, "", TOP_KEYS, "with v and micros", _TOP_HINTS)
        if top is None:
            return None
        v = top.get("v")
        if v is None:
            self.error(
                "v",
                tree.line,
                "v is missing",
                "add `v: 0` at the top: Spacefile v0 is the only version Space had",
            )
        elif type(v.value) is not int or v.value != 0:
            self.error(
                "v",
                v.at,
                f"v must be 0, not {v.kind}",
                "Spacefile v0 is the only version Space had; write `v: 0`",
            )
        app_name = self.text(top, "app_name", "")
        if app_name is not None and len(app_name) > MAX_APP_NAME:
            short = app_name[:MAX_APP_NAME].strip()
            self.error(
                "app_name",
                top["app_name"].at,
                f'app_name "{app_name}" is {len(app_name)} characters long; Space allowed '
                f"at most {MAX_APP_NAME}",
                f'shorten it, e.g. to "{short}"',
            )
        icon = self.text(top, "icon", "")
        if icon and self.check_paths and not (self.app_dir / icon).is_file():
            self.warn(
                "icon",
                top["icon"].at,
                f'icon "{icon}" does not exist',
                "give the path of an image, relative to the Spacefile",
            )
        auto_pwa = self.flag(top, "auto_pwa", "")
        micros = self.micros(top.get("micros"), tree.line)
        if self.errors or micros is None:
            return None
        return Spacefile(self.path, micros, app_name, icon, auto_pwa, tuple(self.warnings))

    def micros(self, node: YNode | None, line: int) -> tuple[Micro, ...] | None:
        hint = "add a list of 1 to 5 micros, each with name, src and engine"
        if node is None or node.value is None or node.value == []:
            state = "is missing" if node is None else "is empty"
            self.error("micros", node.at if node else line, f"micros {state}", hint)
            return None
        if not isinstance(node.value, list):
            self.error(
                "micros",
                node.at,
                f"micros must be a list, not {node.kind}",
                "start each micro with `- name:`",
            )
            return None
        if len(node.value) > MAX_MICROS:
            self.error(
                "micros",
                node.at,
                f"there are {len(node.value)} micros; Space allowed at most {MAX_MICROS}",
                "merge some micros, or split the app in two",
            )
        drafts = [self.micro(item, f"micros[{i}]") for i, item in enumerate(node.value)]
        ready = [d for d in drafts if d is not None]
        primary = self.choose_primary(ready, node, complete=len(ready) == len(drafts))
        return self.assemble(ready, primary)

    def micro(self, node: YNode, where: str) -> _Draft | None:
        keys = self.mapping(node, where, MICRO_KEYS, "with name, src and engine", _MICRO_HINTS)
        if keys is None:
            return None
        basics = "every micro needs a name, src and engine"
        name = self.required(keys, "name", where, node.line, basics)
        if name is not None and not _NAME.fullmatch(name):
            self.error(
                join(where, "name"),
                keys["name"].at,
                f'name "{name}" is not a valid micro name',
                _NAME_RULE,
            )
        src = self.src(keys, where, node.line, basics)
        engine = self.engine(keys, where, node.line)
        serve = self.text(keys, "serve", where)
        commands = self.texts(keys, "commands", where, one_ok=True)
        if engine == "static" and serve is None:
            self.error(
                join(where, "serve"),
                keys["engine"].at,
                "a static micro needs serve",
                "add `serve:` with the folder, inside src, that holds the files, e.g. dist",
            )
        elif serve is not None and src is not None:
            made = bool(commands) or "dev" in keys  # `up` builds it, or serves `dev` instead
            self.serve(serve, keys["serve"], where, src, engine == "static", made)
        run = self.text(keys, "run", where)
        if engine == "custom" and run is None:
            self.error(
                join(where, "run"),
                keys["engine"].at,
                "a custom micro needs run",
                "add `run:` with the command that starts it, e.g. `run: ./server`",
            )
        public = self.flag(keys, "public", where)
        public_routes = self.texts(keys, "public_routes", where, one_ok=False)
        if public and public_routes:
            self.error(
                join(where, "public_routes"),
                keys["public_routes"].at,
                "public_routes cannot be used with public: true",
                "public: true already opens every route; keep one of the two",
            )
        env, api_keys = self.presets(keys.get("presets"), join(where, "presets"))
        dev = self.text(keys, "dev", where)
        if dev is not None and src is not None and engine is not None:
            self.dev_line(dev, keys["dev"], where, src, engine)
        fields = dict(
            name=name,
            src=src,
            engine=engine,
            serve=serve,
            run=run,
            dev=dev,
            commands=commands,
            include=self.texts(keys, "include", where, one_ok=True),
            public=bool(public),
            public_routes=public_routes,
            env=env,
            api_keys=api_keys,
            actions=self.actions(keys.get("actions"), join(where, "actions"), name or ""),
            provide_actions=bool(self.flag(keys, "provide_actions", where)),
        )
        return _Draft(where, node, keys, fields, self.flag(keys, "primary", where))

    def src(self, keys: dict[str, YNode], where: str, line: int, hint: str) -> Path | None:
        text = self.required(keys, "src", where, line, hint)
        if text is None:
            return None
        at = keys["src"].at
        norm = _inside(text)
        if norm is None:
            self.error(
                join(where, "src"),
                at,
                f'src "{text}" is outside the app folder',
                "give a folder inside the folder that holds the Spacefile, e.g. ./api",
            )
            return None
        folder = Path(os.path.normpath(self.app_dir / norm))
        if self.check_paths and not folder.is_dir():
            state = "is not a folder" if folder.exists() else "does not exist"
            self.error(
                join(where, "src"),
                at,
                f'src "{text}" {state} (looked for {folder})',
                "give the micro's folder, relative to the Spacefile",
            )
        return folder

    def engine(self, keys: dict[str, YNode], where: str, line: int) -> str | None:
        hint = "every micro needs an engine, e.g. python3.9, nodejs16 or static"
        name = self.required(keys, "engine", where, line, hint)
        if name is None:
            return None
        found, at, place = engines.lookup(name), keys["engine"].at, join(where, "engine")
        if found is None:
            message = f'engine "{name}" is not one of {", ".join(engines.SPACE_ENGINES)}'
            close = difflib.get_close_matches(name.lower(), engines.SPACE_ENGINES, n=1, cutoff=0.6)
            hint = f'did you mean "{close[0]}"?' if close else "pick one of these"
            self.error(place, at, message, hint)
            return None
        if not found.in_space:
            usual = "python3.9" if found.family == "python" else "nodejs16"
            if self.strict:
                self.error(
                    place,
                    at,
                    f'engine "{name}" did not exist on Space',
                    f"Space had {usual}; use it, or drop --strict to run {name} here",
                )
            else:
                self.warn(
                    place,
                    at,
                    f'engine "{name}" did not exist on Space; it runs here, '
                    "but Space would refuse it",
                    f"use {usual} to stay deployable",
                )
        return name

    def dev_line(self, dev: str, node: YNode, where: str, src: Path, engine: str) -> None:
        """A `dev` line that cannot work on this system: written for Windows, or running a tool
        that is not there and that nothing the micro installs provides. A warning: `up` would
        fail on it, but Space ignored `dev`, so the app itself may be fine."""
        family = engines.lookup(engine)
        reasons = dev_lines.windows_marks(dev)
        if self.check_paths and family is not None and src.is_dir():
            reasons += [
                f"`{tool}` is not installed (not on PATH, nor in its node_modules/.bin, nor in "
                "what its requirements.txt or package.json install)"
                for tool in dev_lines.missing_tools(dev, src, family.family)
            ]
        for reason in reasons:
            message = f"dev `{dev}` cannot work on this system: {reason}"
            if self.strict:
                self.error(
                    join(where, "dev"),
                    node.at,
                    message,
                    "fix the dev line, or remove it (Space ignored `dev`)",
                )
            else:
                self.warn(
                    join(where, "dev"),
                    node.at,
                    message,
                    f"fix it, or run `{dev_lines.AS_SPACE}` to run the micro as Space did, "
                    "without `dev`",
                )

    def serve(
        self, serve: str, node: YNode, where: str, src: Path, static: bool, built: bool
    ) -> None:
        norm = _inside(serve)
        if norm is None:
            self.error(
                join(where, "serve"),
                node.at,
                f'serve "{serve}" is outside src',
                "give a folder inside the micro's src, e.g. dist",
            )
        elif static and self.check_paths and not built and not (src / norm).is_dir():
            # With `commands` its absence is a fresh clone's normal state (the build output is
            # ignored by git), which `up` builds as Space's builder did: nothing to say then.
            self.warn(
                join(where, "serve"),
                node.at,
                f'serve folder "{serve}" does not exist yet (looked for {src / norm})',
                "create it, or add commands that build it",
            )

    def presets(self, node: YNode | None, where: str) -> tuple[tuple[EnvPreset, ...], bool]:
        if node is None or node.value is None:
            return (), False
        keys = self.mapping(node, where, PRESET_KEYS, "with env and api_keys")
        if keys is None:
            return (), False
        api_keys = bool(self.flag(keys, "api_keys", where))
        env_node, env_where = keys.get("env"), join(where, "env")
        if env_node is None or env_node.value is None:
            return (), api_keys
        if not isinstance(env_node.value, list):
            self.error(
                env_where,
                env_node.at,
                f"env must be a list, not {env_node.kind}",
                "start each variable with `- name:`",
            )
            return (), api_keys
        env: list[EnvPreset] = []
        for i, item in enumerate(env_node.value):
            item_where = f"{env_where}[{i}]"
            var = self.mapping(
                item, item_where, ENV_KEYS, "with name, description and default", _ENV_HINTS
            )
            if var is None:
                continue
            name = self.required(var, "name", item_where, item.line, "each variable needs a name")
            if name is None:
                continue
            at = var["name"].at
            if not _ENV_NAME.fullmatch(name):
                self.warn(
                    join(item_where, "name"),
                    at,
                    f'"{name}" is an unusual variable name',
                    "shells and most programs expect letters, digits and _ only",
                )
            if any(e.name == name for e in env):
                self.warn(
                    join(item_where, "name"),
                    at,
                    f'variable "{name}" is listed twice',
                    "the first entry is used; remove the other",
                )
                continue
            env.append(
                EnvPreset(
                    name,
                    self.text(var, "description", item_where) or "",
                    self.text(var, "default", item_where),
                )
            )
        return tuple(env), api_keys

    def actions(self, node: YNode | None, where: str, micro: str) -> tuple[Action, ...]:
        if node is None or node.value is None:
            return ()
        if not isinstance(node.value, list):
            self.error(
                where,
                node.at,
                f"actions must be a list, not {node.kind}",
                "start each action with `- id:`",
            )
            return ()
        out = []
        for i, item in enumerate(node.value):
            item_where = f"{where}[{i}]"
            keys = self.mapping(
                item,
                item_where,
                ACTION_KEYS,
                "with id, name, trigger and default_interval",
                _ACTION_HINTS,
            )
            if keys is None:
                continue
            need = "an action needs id, trigger: schedule and default_interval"
            action_id = self.required(keys, "id", item_where, item.line, need)
            if action_id is not None and not _NAME.fullmatch(action_id):
                self.error(
                    join(item_where, "id"),
                    keys["id"].at,
                    f'action id "{action_id}" is not valid',
                    _NAME_RULE,
                )
            elif action_id in self.action_ids:
                self.error(
                    join(item_where, "id"),
                    keys["id"].at,
                    f'action id "{action_id}" is already used by {self.action_ids[action_id]}',
                    "action ids must be unique in the app",
                )
            elif action_id is not None:
                self.action_ids[action_id] = item_where
            trigger = self.required(keys, "trigger", item_where, item.line, need)
            if trigger is not None and trigger != "schedule":
                self.error(
                    join(item_where, "trigger"),
                    keys["trigger"].at,
                    f'trigger must be "schedule", not "{trigger}"',
                    "scheduled actions were the only kind Space had",
                )
            interval = self.required(keys, "default_interval", item_where, item.line, need)
            wrong = intervals.problem(interval) if interval is not None else None
            if wrong:
                self.error(
                    join(item_where, "default_interval"),
                    keys["default_interval"].at,
                    f'default_interval "{interval}": {wrong[0]}',
                    wrong[1],
                )
            path = self.text(keys, "path", item_where)
            if action_id is not None:
                out.append(
                    Action(
                        action_id,
                        micro,
                        self.text(keys, "name", item_where) or action_id,
                        self.text(keys, "description", item_where) or "",
                        trigger or "schedule",
                        interval,
                        None if path is None else "/" + path.lstrip("/"),
                    )
                )
        return tuple(out)

    # --- rules over every micro together ------------------------------------------------------

    def choose_primary(self, drafts: list[_Draft], node: YNode, complete: bool) -> _Draft | None:
        if len(node.value) == 1:
            return drafts[0] if drafts else None  # a lone micro is the primary, whatever it says
        marked = [d for d in drafts if d.primary]
        for extra in marked[1:]:
            self.error(
                join(extra.where, "primary"),
                extra.keys["primary"].at,
                f'micro "{marked[0].fields["name"]}" is primary already',
                "only one micro may have primary: true",
            )
        unreadable = any("primary" in d.keys and d.primary is None for d in drafts)
        if not marked and complete and not unreadable:
            self.error(
                "micros",
                node.at,
                f"none of the {len(node.value)} micros is primary",
                "add `primary: true` to the micro to serve at /",
            )
        return marked[0] if marked else None

    def assemble(self, drafts: list[_Draft], primary: _Draft | None) -> tuple[Micro, ...] | None:
        names: dict[str, str] = {}
        paths: dict[str, str] = {"/": primary.fields["name"]} if primary else {}
        micros = []
        for d in drafts:
            name, written, line = d.fields["name"], self.text(d.keys, "path", d.where), d.node.line
            repeated = name in names
            if repeated:
                self.error(
                    join(d.where, "name"),
                    d.keys["name"].at,
                    f'name "{name}" is already used by {names[name]}',
                    "give each micro its own name",
                )
            elif name is not None:
                names[name] = d.where
            path = self.mount(d, written, primary)
            # A repeated name makes its default path repeat too: one problem, told once.
            if (
                path is not None
                and d is not primary
                and name is not None
                and not (repeated and written is None)
            ):
                if path in paths:
                    at = d.keys["path"].at if "path" in d.keys else line
                    self.error(
                        join(d.where, "path"),
                        at,
                        f'path "{path}" is already the path of micro "{paths[path]}"',
                        "give each micro its own path; the primary is always at /",
                    )
                else:
                    paths[path] = name
            if path is not None and None not in (name, d.fields["src"], d.fields["engine"]):
                micros.append(Micro(primary=d is primary, path=path, **d.fields))
        return tuple(micros) if len(micros) == len(drafts) else None

    def mount(self, d: _Draft, written: str | None, primary: _Draft | None) -> str | None:
        """Where a micro is mounted: / for the primary, else its path, else /<name>."""
        if d is primary:
            if written is not None and written.strip("/") != "":
                self.warn(
                    join(d.where, "path"),
                    d.keys["path"].at,
                    f'path "{written}" is ignored: the primary micro is always at /',
                    "remove path from the primary micro",
                )
            return "/"
        if written is None:
            return f"/{d.fields['name']}" if d.fields["name"] else None
        path = "/" + written.strip().strip("/")
        segments = path.split("/")[1:] if path != "/" else []
        bad = [s for s in segments if not _SEGMENT.fullmatch(s) or s in (".", "..")]
        if bad or (segments and segments[0] == "__space"):
            why = "is kept for the runtime itself" if not bad else "holds characters a path cannot"
            self.error(
                join(d.where, "path"),
                d.keys["path"].at,
                f'path "{written}" {why}',
                'use a plain path such as "api" or "/api/v1"',
            )
            return None
        return path
