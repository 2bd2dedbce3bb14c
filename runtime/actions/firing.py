"""Firing one action: the event Space sent, posted straight to the micro, timed and kept."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import aiohttp

from runtime.actions.scheduler import RunRecord, Trigger
from runtime.datadir.datafile import utc_text
from runtime.datadir.store import Store
from runtime.models import Action
from runtime.serve.micro_call import NoAddress, call_micro, micro_url
from runtime.serve.proxy import Proxy
from runtime.supervisor.location import MicroLocation
from runtime.supervisor.manager import State
from runtime.supervisor.output import Printer

EVENT_PATH = "/__space/v0/actions"

Locate = Callable[[str, str], MicroLocation | None]  # (app, micro) -> its runner; None: static


def event_body(action: Action) -> bytes:
    """The event as Space sent it, for scheduled and manual runs alike (docs/decisions.md)."""
    return json.dumps({"event": {"id": action.id, "trigger": "schedule"}}).encode()


class ActionFirer:
    """Posts an action's event to its micro where it lives now, then records and logs the run.

    The request goes to the micro's own address, not through the gate: the gate refuses
    micro-relative `/__space/` paths to everyone, so that no outsider can fake an event.
    """

    def __init__(
        self,
        locate: Locate,
        proxy: Proxy,
        store: Store,
        printer: Printer,
        *,
        ready_wait: float,
        timeout: float,
    ) -> None:
        self._locate = locate
        self._proxy = proxy
        self._store = store
        self._printer = printer
        self._ready_wait = ready_wait
        self._timeout = timeout

    async def fire(self, app: str, action: Action, trigger: Trigger) -> RunRecord:
        """Run the action once; never raises for what the micro does (that is the record)."""
        started = utc_text()
        began = time.monotonic()
        status, elapsed = await self._deliver(app, action)
        duration = round((elapsed if elapsed is not None else time.monotonic() - began) * 1000)
        record = RunRecord(started, status, duration, trigger)
        self._store.add_run(app, action.id, record.as_dict())
        if isinstance(status, int):
            self._printer.info(
                f"{action.micro}: action {action.id} ran in {duration} ms ({status})"
            )
        else:
            self._printer.info(
                f"{action.micro}: action {action.id} failed after {duration} ms ({status})"
            )
        return record

    async def _deliver(self, app: str, action: Action) -> tuple[int | str, float | None]:
        """(the micro's status or "error: ...", seconds the exchange took once it was sent)."""
        runner = self._locate(app, action.micro)
        if runner is None:
            return (
                f"error: {action.micro} has no process to send the event to (a static "
                "micro cannot run actions)"
            ), None
        try:
            return await call_micro(
                runner,
                lambda address: self._post(address, action, runner.gate_proof),
                wait=self._ready_wait,
                refused=(aiohttp.ClientConnectorError,),
            )
        except NoAddress:
            if runner.state is State.CRASHED:
                return f"error: {action.micro} has crashed", None
            if runner.state in (State.STOPPED, State.NOT_LISTENING):
                return f"error: {action.micro} is {runner.state.value}", None
            return f"error: {action.micro} was not ready within {self._ready_wait:g} s", None
        except aiohttp.ClientConnectorError:
            # Never reached it, the whole wait long (each refusal is tried again: a reload
            # swaps the process).
            return f"error: could not connect to {action.micro}", None

    async def _post(
        self, address: tuple[str, int], action: Action, proof: dict[str, str]
    ) -> tuple[int | str, float]:
        began = time.monotonic()
        # Counted as a request in flight, so a reload lets the old process finish the action.
        with self._proxy.busy(address):
            try:
                async with self._proxy.session.post(
                    micro_url(address, EVENT_PATH),
                    data=event_body(action),
                    headers={"Content-Type": "application/json", **proof},
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                ) as response:
                    async for _ in response.content.iter_any():
                        pass  # the answer is not kept; reading it frees the connection for reuse
                    return response.status, time.monotonic() - began
            except aiohttp.ClientConnectorError:
                raise
            except TimeoutError:
                return f"error: no answer within {self._timeout:g} s", time.monotonic() - began
            except aiohttp.ClientError as err:
                # Sent, but the answer never came: not sent again, the micro may have acted.
                reason = str(err) or type(err).__name__
                return f"error: {reason}", time.monotonic() - began
