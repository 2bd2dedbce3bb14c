"""The notes API: a small aiohttp app, served as `main.py`'s `app` like Space's python3.9 engine.

Notes are kept in the app's Base `notes` and a note's file in its Drive `attachments`, as on
Space: they stay across reloads and restarts, and the settings page's Data section shows them.
"""

import asyncio
import os
import re
import time

from aiohttp import web
from deta import Deta

deta = Deta()  # DETA_PROJECT_KEY comes from the runtime, as on Space
notes = deta.Base("notes")
attachments = deta.Drive("attachments")


def _all_notes() -> list[dict]:
    res = notes.fetch()
    items = res.items
    while res.last:
        res = notes.fetch(last=res.last)
        items += res.items
    return sorted(items, key=lambda n: n.get("at", 0))


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(name))[:100] or "file"


async def hello(request: web.Request) -> web.Response:
    who = request.headers.get("X-Space-User") or request.headers.get("X-Space-Key-Name") or "you"
    greeting = os.environ.get("GREETING", "Hello")
    auth = request.headers.get("X-Space-Auth")
    return web.json_response({"message": f"{greeting}, {who}!", "auth": auth})


async def list_notes(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(_all_notes))


async def add_note(request: web.Request) -> web.Response:
    """A note from JSON (`{"text": ...}`) or a form, which may carry a file (`file`)."""
    upload = None
    if request.content_type == "application/json":
        text = str((await request.json()).get("text", ""))
    else:
        form = await request.post()
        text = str(form.get("text", ""))
        field = form.get("file")
        if isinstance(field, web.FileField) and field.filename:
            upload = field
    note = {"text": text, "at": int(time.time())}
    note = await asyncio.to_thread(notes.put, note)
    if upload is not None:
        name = f"{note['key']}/{_file_name(upload.filename)}"
        data = upload.file.read()
        await asyncio.to_thread(attachments.put, name, data, content_type=upload.content_type)
        note = await asyncio.to_thread(notes.put, {**note, "file": name, "size": len(data)})
    return web.json_response(note, status=201)


async def note_file(request: web.Request) -> web.StreamResponse:
    note = await asyncio.to_thread(notes.get, request.match_info["key"])
    if not note or not note.get("file"):
        raise web.HTTPNotFound()
    body = await asyncio.to_thread(attachments.get, note["file"])
    if body is None:
        raise web.HTTPNotFound()
    data = await asyncio.to_thread(body.read)
    return web.Response(body=data, headers={
        "Content-Disposition": f'attachment; filename="{note["file"].split("/", 1)[-1]}"'})


async def delete_note(request: web.Request) -> web.Response:
    note = await asyncio.to_thread(notes.get, request.match_info["key"])
    if note and note.get("file"):
        await asyncio.to_thread(attachments.delete, note["file"])
    await asyncio.to_thread(notes.delete, request.match_info["key"])
    return web.json_response({"deleted": request.match_info["key"]})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "notes": len(await asyncio.to_thread(_all_notes))})


async def public_info(request: web.Request) -> web.Response:
    return web.json_response({"app": "notes", "public": True})


def _tidy() -> int:
    cutoff = time.time() - 86400
    old = [n for n in _all_notes() if n.get("at", 0) < cutoff]
    for note in old:
        if note.get("file"):
            attachments.delete(note["file"])
        notes.delete(note["key"])
    return len(old)


async def action(request: web.Request) -> web.Response:
    # Space's scheduled actions arrive here as {"event": {"id": ..., "trigger": "schedule"}}.
    event = (await request.json()).get("event", {})
    dropped = await asyncio.to_thread(_tidy) if event.get("id") == "tidy" else 0
    return web.json_response({"ok": True, "dropped": dropped})


# Its App Actions, as Space asked a `provide_actions` micro for them.
ACTIONS = {"actions": [{
    "name": "add_note", "title": "Add a note", "path": "/actions/add",
    "input": [{"name": "title", "type": "string"},
              {"name": "stars", "type": "number", "optional": True}],
    "output": "@deta/detail",
}]}


async def declared_actions(request: web.Request) -> web.Response:
    return web.json_response(ACTIONS)


async def add_note_action(request: web.Request) -> web.Response:
    """App Action `add_note`: its inputs arrive as one JSON object."""
    given = await request.json()
    note = {"text": str(given.get("title", "")), "at": int(time.time())}
    if given.get("stars") is not None:
        note["stars"] = given["stars"]
    return web.json_response(await asyncio.to_thread(notes.put, note))


app = web.Application()
app.add_routes(
    [
        web.get("/", hello),
        web.get("/notes", list_notes),
        web.post("/notes", add_note),
        web.get("/notes/{key}/file", note_file),
        web.delete("/notes/{key}", delete_note),
        web.get("/health", health),
        web.get("/public/info", public_info),
        web.post("/__space/v0/actions", action),
        web.get("/__space/actions", declared_actions),
        web.post("/actions/add", add_note_action),
    ]
)
