"""Running an action on demand over HTTP: the answer the CLI's and the owner's endpoints share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from runtime.cloud.scheduler import AlreadyRunning, RunRecord, UnknownAction
from runtime.errors import SpaceDevError

RunAction = Callable[[str, str], Awaitable[RunRecord]]  # (app, action id) -> the run, by hand


async def run_answer(run_action: RunAction, app: str, action_id: str) -> web.Response:
    """Run the action now: 200 with its run (whatever the micro answered), 404 or 409 if not."""
    try:
        record = await run_action(app, action_id)
    except UnknownAction as err:
        return _errors(404, err.message, err.hint)
    except AlreadyRunning as err:
        return _errors(409, err.message, err.hint)
    except SpaceDevError as err:  # the run happened but could not be kept (a broken data dir)
        return _errors(500, err.message, err.hint)
    return web.json_response(record.as_dict())


def _errors(status: int, *errors: str | None) -> web.Response:
    return web.json_response({"errors": [e for e in errors if e]}, status=status)
