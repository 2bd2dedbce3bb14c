"""The notes API: a small aiohttp app, served as `main.py`'s `app` like Space's python3.9 engine."""

import os
import time

from aiohttp import web

notes: list[dict] = []


async def hello(request: web.Request) -> web.Response:
    who = request.headers.get("X-Space-User") or request.headers.get("X-Space-Key-Name") or "you"
    greeting = os.environ.get("GREETING", "Hello")
    return web.json_response({"message": f"{greeting}, {who}!", "auth": request.headers.get("X-Space-Auth")})


async def list_notes(request: web.Request) -> web.Response:
    return web.json_response(notes)


async def add_note(request: web.Request) -> web.Response:
    data = await request.json()
    note = {"text": str(data.get("text", "")), "at": int(time.time())}
    notes.append(note)
    return web.json_response(note, status=201)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "notes": len(notes)})


async def public_info(request: web.Request) -> web.Response:
    return web.json_response({"app": "notes", "public": True})


async def action(request: web.Request) -> web.Response:
    # Space's scheduled actions arrive here as {"event": {"id": ..., "trigger": "schedule"}}.
    event = (await request.json()).get("event", {})
    if event.get("id") == "tidy":
        cutoff = time.time() - 86400
        notes[:] = [n for n in notes if n["at"] >= cutoff]
    return web.json_response({"ok": True})


app = web.Application()
app.add_routes(
    [
        web.get("/", hello),
        web.get("/notes", list_notes),
        web.post("/notes", add_note),
        web.get("/health", health),
        web.get("/public/info", public_info),
        web.post("/__space/v0/actions", action),
    ]
)
