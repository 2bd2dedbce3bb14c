"""Space's App Actions: what a `provide_actions` micro lists at `GET /__space/actions`, and
running one by posting its inputs to the action's path, on the micro's own port."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from runtime.errors import SpaceDevError
from runtime.models import Spacefile
from runtime.serve.proxy import Proxy
from runtime.supervisor.manager import MicroRunner

LIST_PATH = "/__space/actions"
INPUT_TYPES = ("string", "number", "boolean")  # what Space's forms offered
ANSWER_LIMIT = 64 * 1024  # the answer shown is cut here

Locate = Callable[[str], MicroRunner | None]  # micro name -> its runner, now


@dataclass(frozen=True)
class ActionInput:
    name: str
    type: str = "string"
    optional: bool = False


@dataclass(frozen=True)
class AppAction:
    micro: str
    name: str
    title: str
    path: str
    inputs: tuple[ActionInput, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"micro": self.micro, "name": self.name, "title": self.title, "path": self.path,
                "inputs": [vars(i) for i in self.inputs]}


def parse_listing(micro: str, body: Any) -> list[AppAction]:
    """The actions of a `GET /__space/actions` answer; SpaceDevError when it is not one."""
    raw = body.get("actions") if isinstance(body, dict) else None
    if not isinstance(raw, list):
        raise SpaceDevError(f'{micro}: GET {LIST_PATH} did not answer {{"actions": [...]}}',
                            "see Space's App Actions: each action has a name, a path and inputs")
    found = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name: str = item["name"]
        path = item["path"] if isinstance(item.get("path"), str) else name
        inputs = item.get("input", item.get("inputs")) or []
        found.append(AppAction(
            micro, name, str(item.get("title") or name),
            path if path.startswith("/") else "/" + path,
            tuple(ActionInput(str(i["name"]), _input_type(i.get("type")),
                              bool(i.get("optional", False)))
                  for i in inputs if isinstance(i, dict) and "name" in i)))
    return found


def _input_type(given: Any) -> str:
    return given if isinstance(given, str) and given in INPUT_TYPES else "string"


def convert_inputs(action: AppAction, given: Mapping[str, str]) -> dict[str, Any]:
    """Form or command-line text to the JSON the action expects; SpaceDevError if wrong."""
    known = {i.name: i for i in action.inputs}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise SpaceDevError(f'action "{action.name}" has no input {", ".join(unknown)}',
                            f"its inputs are: {', '.join(known) or '(none)'}")
    out: dict[str, Any] = {}
    for spec in action.inputs:
        text = given.get(spec.name, "")
        if text == "" and spec.type == "boolean":
            out[spec.name] = False  # an unticked box is sent as nothing
            continue
        if text == "":
            if not spec.optional:
                raise SpaceDevError(f'action "{action.name}" needs its input {spec.name}',
                                    f"give it, e.g. --input {spec.name}=...")
            continue
        if spec.type == "number":
            try:
                out[spec.name] = int(text) if text.lstrip("-").isdigit() else float(text)
            except ValueError:
                raise SpaceDevError(f"input {spec.name} must be a number, not {text!r}") from None
        elif spec.type == "boolean":
            out[spec.name] = text.lower() in ("1", "true", "yes", "on")
        else:
            out[spec.name] = text
    return out


class AppActions:
    """Lists and runs one app's App Actions, never through the gate (which refuses them)."""

    def __init__(self, spacefile: Callable[[], Spacefile], locate: Locate, proxy: Proxy,
                 timeout: float) -> None:
        self._spacefile = spacefile
        self._locate = locate
        self._proxy = proxy
        self._timeout = timeout

    def providers(self) -> list[str]:
        return [m.name for m in self._spacefile().micros if m.provide_actions]

    async def list(self) -> tuple[list[AppAction], dict[str, str]]:
        """Every providing micro's actions, and what went wrong with the micros that failed."""
        actions: list[AppAction] = []
        errors: dict[str, str] = {}
        for micro in self.providers():
            try:
                status, body = await self._call(micro, "GET", LIST_PATH, None)
                if status != 200:
                    raise SpaceDevError(f"{micro}: GET {LIST_PATH} answered {status}")
                actions.extend(parse_listing(micro, json.loads(body)))
            except (SpaceDevError, ValueError) as err:
                errors[micro] = str(err)
        return actions, errors

    async def run(self, name: str, given: Mapping[str, str],
                  micro: str | None = None) -> tuple[AppAction, int, str]:
        """Run one action with its inputs: (the action, the micro's status, its answer)."""
        actions, errors = await self.list()
        matches = [a for a in actions if a.name == name and micro in (None, a.micro)]
        if not matches:
            names = ", ".join(f"{a.micro}/{a.name}" for a in actions) or "(none)"
            problems = "; ".join(errors.values())
            raise SpaceDevError(f'no app action "{name}"' + (f" ({problems})" if problems else ""),
                                f"the app actions are: {names}")
        if len(matches) > 1:
            raise SpaceDevError(f'two micros provide "{name}"', "name one with --micro")
        action = matches[0]
        body = json.dumps(convert_inputs(action, given)).encode()
        status, answer = await self._call(action.micro, "POST", action.path, body)
        return action, status, answer[:ANSWER_LIMIT].decode("utf-8", errors="replace")

    async def _call(self, micro: str, method: str, path: str,
                    body: bytes | None) -> tuple[int, bytes]:
        runner = self._locate(micro)
        address = await runner.wait_address(self._timeout) if runner is not None else None
        if address is None:
            raise SpaceDevError(f"{micro} is not running", "see its state on the settings page")
        host, port = address
        literal = f"[{host}]" if ":" in host else host
        try:
            with self._proxy.busy(address):  # a reload lets it finish
                async with self._proxy.session.request(
                        method, f"http://{literal}:{port}{path}", data=body,
                        headers={"Content-Type": "application/json"}, allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(total=self._timeout)) as response:
                    return response.status, await response.content.read(ANSWER_LIMIT + 1)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise SpaceDevError(f"{micro}: {method} {path} failed: "
                                f"{str(err) or type(err).__name__}") from None
