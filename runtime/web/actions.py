"""Running an action on demand over HTTP: the answer the CLI's and the owner's endpoints share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from runtime.actions.scheduler import RunRecord

RunAction = Callable[[str, str], Awaitable[RunRecord]]  # (app, action id) -> the run, by hand


async def run_answer(run_action: RunAction, app: str, action_id: str) -> web.Response:
    """Run the action now: 200 with its run (whatever the micro answered). What stops it is
    raised with its own status for the error middleware: no such action 404, still running 409,
    a run that could not be kept (a broken data dir) 500."""
    record = await run_action(app, action_id)
    return web.json_response(record.as_dict())
