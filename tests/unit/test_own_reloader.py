"""Which micro commands reload by themselves (so space-dev leaves source saves to them)."""

from __future__ import annotations

import pytest

from runtime.spacefile.engines import lookup, own_reloader

SELF_RELOADING = [
    "uvicorn main:app --reload",
    "uvicorn main:app --port=$PORT --reload",
    "./../.venv/bin/uvicorn main:app --reload",
    '.env/bin/python -m uvicorn frontend.asgi:application --reload --reload-include "*.html"',
    "gunicorn app:app --reload",
    "hypercorn main:app --reload",
    "nodemon app.js",
    "nodemon --watch src --exec 'ts-node src/index.ts'",
    "node --watch index.js",
    "bun --hot server.ts",
    "deno run --watch --allow-net main.ts",
    "tsx watch src/index.ts",
    "ts-node-dev src/index.ts",
    "flask --app main --debug run",
    "FLASK_DEBUG=1 flask run",
    "air",
    "cd api && air",
    "python manage.py runserver 127.0.0.1:$PORT",
    "watchmedo auto-restart -p '*.py' -- python main.py",
    "npm run dev",
    "npm run dev -- --port $PORT",
    "pnpm dev",
    "pnpm run dev",
    "yarn dev",
    "vite --port $PORT",
    "npx next dev -p $PORT",
]

ONLY_SPACE_DEV = [
    "uvicorn main:app",
    "uvicorn main:app --host 0.0.0.0 --port $PORT",
    "gunicorn main:app",
    "node index.js",
    "node server.js",
    "python main.py",
    "python -m http.server $PORT",
    "flask --app main run --host=localhost --port=4201",
    "go run .",
    "cargo run",
    "npm start",
    "npm run start",
    "python manage.py runserver --noreload",
    "./airport",
    "node build",
    "vite build && node server.js",
]


@pytest.mark.parametrize("command", SELF_RELOADING)
def test_known_reloaders_are_found(command: str) -> None:
    assert own_reloader(lookup("custom"), command) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ONLY_SPACE_DEV)
def test_plain_commands_are_reloaded_by_space_dev(command: str) -> None:
    assert own_reloader(lookup("custom"), command) is None  # type: ignore[arg-type]


def test_frontend_engines_run_their_own_dev_server() -> None:
    for name in ("react", "vue", "svelte", "next", "nuxt", "svelte-kit"):
        engine = lookup(name)
        assert engine is not None and own_reloader(engine, engine.default_command or "")
    assert own_reloader(lookup("nodejs16"), "node index.js") is None  # type: ignore[arg-type]
