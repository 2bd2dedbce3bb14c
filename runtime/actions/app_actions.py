"""App Actions: what a `provide_actions` micro offers at `GET /__space/actions`, and running one.

As on Space (and Deta's `space dev`): the micro declares
`{"actions": [{"name", "title", "path", "input": [{"name", "type", "optional"}], "output"}]}`;
running an action posts its inputs as a JSON object to `path` on the micro, and the answer is
shown with the declared `output` view (`@deta/raw` when none is given). Both calls go to the
micro's own port, never through the gate, which refuses micro-relative `/__space/` paths.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from runtime.errors import SpaceDevError
from runtime.serve.micro_call import NoAddress, call_micro, micro_url
from runtime.serve.proxy import Proxy
from runtime.supervisor.location import MicroLocation
from runtime.supervisor.manager import State

DECLARATION_PATH = "/__space/actions"
DEFAULT_OUTPUT = "@deta/raw"
INPUT_TYPES = ("string", "number", "boolean")
# A declaration is a small JSON answer: a micro that takes longer must not hold a page up.
LIST_TIMEOUT_S = 5.0
# How long a refused connection is tried again: a reload swaps in the new process in less.
_SWAP_GRACE_S = 2.0

Locate = Callable[[str, str], MicroLocation | None]  # (app, micro) -> its runner; None: static
ProvidingMicros = Callable[[str], Sequence[str]]  # app -> its micros with provide_actions


@dataclass(frozen=True)
class ActionInput:
    """One input of an App Action, as the form and the CLI ask for it."""

    name: str
    type: str = "string"
    optional: bool = False
    title: str = ""


@dataclass(frozen=True)
class AppAction:
    """One App Action of one micro."""

    micro: str
    name: str
    title: str
    path: str
    inputs: tuple[ActionInput, ...] = ()
    output: str = DEFAULT_OUTPUT

    def as_dict(self) -> dict[str, Any]:
        return {
            "micro": self.micro,
            "name": self.name,
            "title": self.title,
            "path": self.path,
            "input": [
                {"name": i.name, "type": i.type, "optional": i.optional} for i in self.inputs
            ],
            "output": self.output,
        }


@dataclass
class Listing:
    """An app's App Actions, and what went wrong asking each micro that did not answer."""

    actions: list[AppAction] = field(default_factory=list)
    # micro -> why it gave no list, or which of its entries were left out
    problems: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionAnswer:
    """What a run gave back: the micro's status, the output view and the data to show."""

    status: int
    output: str
    data: Any

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "type": self.output, "data": self.data}


class ActionError(SpaceDevError):
    """An action that cannot be run as asked (unknown, bad inputs, its micro down)."""


class _NotReached(Exception):
    """The micro of an App Action has no process to ask, or did not take the connection."""


def parse_declaration(micro: str, document: Any) -> tuple[list[AppAction], list[str]]:
    """The actions a micro declared, and a line for each entry that had to be left out."""
    entries = document.get("actions") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return [], ['the answer is not {"actions": [...]}']
    actions, skipped = [], []
    for n, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
            skipped.append(f"entry {n + 1} has no name or no path, so it is left out")
            continue
        inputs, bad = _inputs(entry.get("input", entry.get("inputs")))
        if bad:
            skipped.append(f'action "{name}" is left out: {bad}')
            continue
        title = entry.get("title")
        output = entry.get("output")
        actions.append(
            AppAction(
                micro=micro,
                name=name,
                title=title if isinstance(title, str) and title else name,
                path=path if path.startswith("/") else "/" + path,  # as `space dev` joined it
                inputs=inputs,
                output=output if isinstance(output, str) and output else DEFAULT_OUTPUT,
            )
        )
    return actions, skipped


def _inputs(raw: Any) -> tuple[tuple[ActionInput, ...], str | None]:
    if raw is None:
        return (), None
    if not isinstance(raw, list):
        return (), "its input is not a list"
    out = []
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            return (), "an input has no name"
        kind = item.get("type", "string")
        title = item.get("title")
        out.append(
            ActionInput(
                name=name,
                type=kind if kind in INPUT_TYPES else "string",
                optional=item.get("optional") is True,
                title=title if isinstance(title, str) else "",
            )
        )
    return tuple(out), None


def coerce_inputs(action: AppAction, given: Mapping[str, str]) -> dict[str, Any]:
    """The JSON object to post, from text values (a form's or `--input K=V`'s), by input type.

    A blank optional input is left out; a blank required one, an unknown name, or a value that
    is not of its type raise ActionError naming the input.
    """
    known = {i.name: i for i in action.inputs}
    unknown = sorted(set(given) - set(known))
    if unknown:
        names = ", ".join(known) or "none"
        raise ActionError(
            f'action "{action.name}" has no input {unknown[0]!r}', f"its inputs are: {names}"
        )
    out: dict[str, Any] = {}
    for spec in action.inputs:
        text = given.get(spec.name, "").strip()
        if not text:
            if not spec.optional and spec.type != "boolean":
                raise ActionError(
                    f'action "{action.name}" needs the input "{spec.name}"',
                    f"give it with --input {spec.name}=VALUE, or in the form",
                )
            if spec.type == "boolean":
                out[spec.name] = False
            continue
        out[spec.name] = _typed(action, spec, text)
    return out


def _typed(action: AppAction, spec: ActionInput, text: str) -> Any:
    if spec.type == "number":
        try:
            number = float(text)
        except ValueError:
            raise ActionError(
                f'input "{spec.name}" of action "{action.name}" must be a number', f"got {text!r}"
            ) from None
        return int(number) if number.is_integer() and "." not in text else number
    if spec.type == "boolean":
        lowered = text.lower()
        if lowered in ("true", "on", "yes", "1"):
            return True
        if lowered in ("false", "off", "no", "0"):
            return False
        raise ActionError(
            f'input "{spec.name}" of action "{action.name}" must be true or false', f"got {text!r}"
        )
    return text


class AppActions:
    """Lists and runs the App Actions of an app's micros, where each micro lives now."""

    def __init__(
        self,
        locate: Locate,
        providing: ProvidingMicros,
        proxy: Proxy,
        *,
        ready_wait: float,
        timeout: float,
    ) -> None:
        self._locate = locate
        self._providing = providing
        self._proxy = proxy
        self._ready_wait = ready_wait
        self._timeout = timeout

    async def listing(self, app: str, *, wait: float | None = None) -> Listing:
        """Every providing micro's actions, asked side by side."""
        micros = list(self._providing(app))
        answers = await asyncio.gather(*(self._declared(app, m, wait) for m in micros))
        listing = Listing()
        for micro, (actions, problem) in zip(micros, answers, strict=True):
            listing.actions.extend(actions)
            if problem:
                listing.problems[micro] = problem
        return listing

    async def run(self, app: str, name: str, given: Mapping[str, str]) -> ActionAnswer:
        """Run one action with text inputs; ActionError when it cannot be sent."""
        listing = await self.listing(app, wait=self._ready_wait)
        action = next((a for a in listing.actions if a.name == name), None)
        if action is None:
            names = ", ".join(a.name for a in listing.actions)
            why = "; ".join(f"{m}: {p}" for m, p in listing.problems.items())
            raise ActionError(
                f'app {app} has no App Action "{name}"',
                f"its actions are: {names}"
                if names
                else why
                or f"a micro with `provide_actions: true` declares them at GET {DECLARATION_PATH}",
            )
        payload = coerce_inputs(action, given)
        try:
            status, body = await self._call(
                app,
                action.micro,
                self._ready_wait,
                "POST",
                action.path,
                self._timeout,
                json.dumps(payload).encode(),
            )
        except _NotReached as err:
            raise ActionError(
                f'action "{name}" cannot run: {err}', "see the output of `space-dev up`"
            ) from None
        try:
            data: Any = json.loads(body)
        except ValueError:
            data = body.decode("utf-8", "replace")
        return ActionAnswer(status, action.output, data)

    async def _declared(
        self, app: str, micro: str, wait: float | None
    ) -> tuple[list[AppAction], str | None]:
        try:
            status, body = await self._call(
                app, micro, wait or 0.0, "GET", DECLARATION_PATH, LIST_TIMEOUT_S, None
            )
        except _NotReached as err:
            return [], str(err)
        except ActionError as err:
            return [], err.message
        if status != 200:
            return [], f"GET {DECLARATION_PATH} answered {status}"
        try:
            document = json.loads(body)
        except ValueError:
            return [], f"GET {DECLARATION_PATH} did not answer JSON"
        actions, skipped = parse_declaration(micro, document)
        return actions, "; ".join(skipped) or None

    async def _call(
        self,
        app: str,
        micro: str,
        wait: float,
        method: str,
        path: str,
        timeout: float,
        body: bytes | None,
    ) -> tuple[int, bytes]:
        """One request to the micro where it lives now, waiting up to `wait` for it to be ready.

        A refused connection reached nothing (the old process of a reload is gone): the address
        is asked again, for `_SWAP_GRACE_S` at least. _NotReached says why it never was reached.
        """
        runner = self._locate(app, micro)
        if runner is None:
            raise _NotReached(f"{micro} has no process (a static micro cannot provide actions)")
        try:
            return await call_micro(
                runner,
                lambda address: self._exchange(
                    address, method, path, timeout, body, runner.gate_proof
                ),
                wait=wait,
                refused=(aiohttp.ClientConnectorError,),
                refused_grace=_SWAP_GRACE_S,
            )
        except NoAddress:
            if runner.state is State.CRASHED:
                raise _NotReached(f"{micro} has crashed") from None
            raise _NotReached(f"{micro} is {runner.state.value}") from None
        except aiohttp.ClientConnectorError as err:
            raise _NotReached(f"cannot connect to {micro} ({err})") from None

    async def _exchange(
        self,
        address: tuple[str, int],
        method: str,
        path: str,
        timeout: float,
        body: bytes | None,
        proof: dict[str, str],
    ) -> tuple[int, bytes]:
        began = time.monotonic()
        with self._proxy.busy(address):  # a reload lets the old process finish the run
            try:
                async with self._proxy.session.request(
                    method,
                    micro_url(address, path),
                    data=body,
                    headers=({"Content-Type": "application/json"} if body is not None else {})
                    | proof,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as response:
                    return response.status, await response.read()
            except aiohttp.ClientConnectorError:
                raise  # nothing was sent: `_call` may try again
            except TimeoutError:
                raise ActionError(f"no answer within {timeout:g} s") from None
            except aiohttp.ClientError as err:
                took = time.monotonic() - began
                raise ActionError(
                    f"{method} {path} failed after {took:.1f} s: {str(err) or type(err).__name__}"
                ) from None
