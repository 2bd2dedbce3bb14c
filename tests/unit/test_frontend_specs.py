"""Frontend micros as Space ran them: the engine table's builds, which way each micro runs
(its `dev` line, its build, `--as-space`), and a build's output published beside the last."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime import spacefile
from runtime.app.micro_specs import SpecInputs, build_notes, micro_specs, static_root
from runtime.spacefile import engines
from runtime.supervisor.builder import frontend

FRONTENDS = ("react", "vue", "svelte", "next", "nuxt", "svelte-kit")


def _app(
    tmp_path: Path, micro: str, files: dict[str, str] | None = None, as_space: bool = False
) -> SpecInputs:
    """One app whose Spacefile holds the micro's lines (under `src: web`)."""
    (tmp_path / "web").mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        (tmp_path / "web" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "web" / name).write_text(text)
    body = "\n".join("    " + line for line in micro.strip().splitlines())
    (tmp_path / "Spacefile").write_text(
        f"v: 0\nmicros:\n  - name: web\n    src: web\n    primary: true\n{body}\n"
    )
    return SpecInputs(
        "app",
        spacefile.load(tmp_path),
        "localhost",
        "key",
        {},
        {},
        {},
        tmp_path / "data",
        "proof",
        as_space,
    )


def test_every_frontend_engine_says_what_space_built_and_ran() -> None:
    for name in FRONTENDS:
        engine = engines.lookup(name)
        assert engine is not None and engine.space_build is not None, name
        build = engine.space_build
        assert (build.serving == "static") == (name in ("react", "vue", "svelte")), name
        assert bool(build.start) == (build.serving == "node"), name
    assert engines.ENGINES["svelte-kit"].space_build.output == "build"  # type: ignore[union-attr]
    assert engines.ENGINES["nuxt"].space_build.start == "server/index.mjs"  # type: ignore[union-attr]
    for other in ("static", "python3.9", "nodejs16", "custom"):
        assert engines.ENGINES[other].space_build is None


KIT = {
    "svelte.config.js": "import adapter from '@sveltejs/adapter-node';\n"
    "export default { kit: { adapter: adapter() } };\n"
}


def test_svelte_kit_without_dev_line_is_built_and_its_node_server_run(tmp_path: Path) -> None:
    app = _app(tmp_path, "engine: svelte-kit", KIT)
    specs, builds = micro_specs(app)
    spec = specs["web"]
    assert spec is not None and not builds
    current = tmp_path / "data" / "builds" / "app" / "web" / "current"
    assert spec.command.endswith(f" node {current / 'index.js'}")
    assert "HOST_HEADER=${HOST_HEADER:-x-forwarded-host}" in spec.command
    assert spec.setup is not None and spec.setup.commands == ("npm run build",)
    assert spec.setup.publish is not None and spec.setup.publish.link_packages
    assert spec.setup.builds == (tmp_path / "web" / "build",)
    assert spec.own_reloader is None  # space-dev builds it again on a save
    assert build_notes(app) == {}


def test_a_dev_line_runs_the_dev_server_unless_as_space(tmp_path: Path) -> None:
    lines = "engine: svelte-kit\ndev: npm run dev -- --port $PORT"
    spec = micro_specs(_app(tmp_path, lines, KIT))[0]["web"]
    assert spec is not None and spec.command == "npm run dev -- --port $PORT"
    assert spec.own_reloader == "a dev server" and spec.setup is not None
    assert spec.setup.publish is None and spec.setup.commands == ()
    spaced = micro_specs(_app(tmp_path, lines, KIT, as_space=True))[0]["web"]
    assert spaced is not None and spaced.command.endswith("current/index.js")
    assert spaced.setup is not None and spaced.setup.commands == ("npm run build",)


def test_svelte_kit_without_adapter_node_previews_its_build_and_says_so(tmp_path: Path) -> None:
    app = _app(
        tmp_path,
        "engine: svelte-kit",
        {"svelte.config.js": "import adapter from '@sveltejs/adapter-auto';\n"},
    )
    spec = micro_specs(app)[0]["web"]
    assert spec is not None and "vite preview" in spec.command and "$PORT" in spec.command
    assert spec.setup is not None and spec.setup.publish is None
    assert "@sveltejs/adapter-node" in build_notes(app)["web"]


def test_next_standalone_runs_its_server_with_its_assets(tmp_path: Path) -> None:
    app = _app(
        tmp_path, "engine: next", {"next.config.js": "module.exports = { output: 'standalone' };\n"}
    )
    spec = micro_specs(app)[0]["web"]
    assert spec is not None
    assert spec.command.startswith("HOSTNAME=127.0.0.1 node ")
    assert spec.command.endswith("current/server.js")
    assert spec.setup is not None and spec.setup.publish is not None
    assert (".next/static", ".next/static") in spec.setup.publish.extras
    plain = _app(tmp_path, "engine: next", {"next.config.js": "module.exports = {};\n"})
    spec = micro_specs(plain)[0]["web"]
    assert spec is not None and spec.command.startswith("npx next start --port $PORT")
    assert "output: 'standalone'" in build_notes(plain)["web"]


def test_nuxt_runs_the_output_server_and_a_run_field_replaces_the_start(tmp_path: Path) -> None:
    spec = micro_specs(_app(tmp_path, "engine: nuxt"))[0]["web"]
    assert spec is not None and spec.command.endswith("current/server/index.mjs")
    spec = micro_specs(_app(tmp_path, "engine: nuxt\nrun: node .output/server/index.mjs"))[0]["web"]
    assert spec is not None and spec.command == "node .output/server/index.mjs"
    assert spec.setup is not None and spec.setup.commands == ("npm run build",)


@pytest.mark.parametrize(
    ("engine", "output"), [("vue", "dist"), ("svelte", "dist"), ("react", "build")]
)
def test_static_frontends_are_built_and_served_from_their_published_build(
    tmp_path: Path, engine: str, output: str
) -> None:
    app = _app(tmp_path, f"engine: {engine}")
    specs, builds = micro_specs(app)
    assert specs["web"] is None
    plan = builds["web"].setup
    assert plan.commands == ("npm run build",)
    assert plan.publish is not None and plan.publish.outputs[0] == tmp_path / "web" / output
    micro = app.spacefile.micros[0]
    assert static_root(micro, app.data_dir, "app", False) == plan.publish.current


def test_serve_and_commands_are_honoured_and_run_is_not_used(tmp_path: Path) -> None:
    app = _app(tmp_path, "engine: react\nserve: out\nrun: npm start\ncommands:\n  - npx vite build")
    plan = micro_specs(app)[1]["web"].setup
    assert plan.commands == ("npx vite build",)
    assert plan.publish is not None and plan.publish.outputs == (tmp_path / "web" / "out",)
    assert "`run` command is not used" in build_notes(app)["web"]


def test_as_space_runs_the_engine_default_instead_of_a_windows_dev_line(tmp_path: Path) -> None:
    lines = "engine: python3.9\ndev: uvicorn main:app --reload --port %PORT%"
    spec = micro_specs(_app(tmp_path, lines, {"main.py": "app = None\n"}, as_space=True))[0]
    assert spec["web"] is not None and spec["web"].command == engines.PYTHON_DEFAULT
    assert spec["web"].own_reloader is None
    static = "engine: static\nserve: dist\ndev: npx serve\ncommands:\n  - node build.js"
    specs, builds = micro_specs(_app(tmp_path, static, as_space=True))
    assert specs["web"] is None and builds["web"].setup.commands == ("node build.js",)


def _publish(tmp_path: Path, **kwargs: object) -> frontend.Publish:
    src = tmp_path / "src"
    return frontend.Publish(src, (src / "build", src / "dist"), tmp_path / "pub", **kwargs)  # type: ignore[arg-type]


def test_publish_swaps_current_in_one_step_and_keeps_the_previous(tmp_path: Path) -> None:
    plan = _publish(tmp_path, link_packages=True)
    build = tmp_path / "src" / "build"
    (tmp_path / "src" / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "src" / "package.json").write_text('{"type": "module"}')
    seen = []
    for n in range(3):
        build.mkdir(parents=True, exist_ok=True)
        (build / "index.js").write_text(f"build {n}")
        assert frontend.publish(plan) == (None, None)
        seen.append(os.path.realpath(plan.current))
        assert (plan.current / "index.js").read_text() == f"build {n}"
    assert (plan.current / "node_modules" / "x").is_dir()
    assert (plan.current / "package.json").read_text() == '{"type": "module"}'
    # The newest and the one before it (a process being replaced may still run from it).
    kept = sorted(p.name for p in plan.folder.iterdir() if p.is_dir() and not p.is_symlink())
    assert kept == ["2", "3"] and os.path.isdir(seen[1]) and not os.path.exists(seen[0])
    # The build's own folder may be emptied by the next build: what is served is a copy.
    (build / "index.js").unlink()
    assert (plan.current / "index.js").read_text() == "build 2"


def test_publish_takes_the_other_output_with_a_note_or_says_what_is_missing(tmp_path: Path) -> None:
    plan = _publish(tmp_path, extras=(("public", "public"),))
    error, note = frontend.publish(plan)
    assert error is not None and "no build/ folder" in error and note is None
    (tmp_path / "src" / "dist").mkdir(parents=True)
    (tmp_path / "src" / "dist" / "index.html").write_text("hi")
    (tmp_path / "src" / "public").mkdir()
    (tmp_path / "src" / "public" / "logo.svg").write_text("<svg/>")
    error, note = frontend.publish(plan)
    assert error is None and note is not None and "serve: dist" in note
    assert (plan.current / "index.html").read_text() == "hi"
    assert (plan.current / "public" / "logo.svg").is_file()


def test_files_served_as_they_are_keep_the_last_builds_assets_one_build_longer(
    tmp_path: Path,
) -> None:
    plan = frontend.Publish(
        tmp_path / "src", (tmp_path / "src" / "dist",), tmp_path / "pub", carry_over=True
    )
    dist = tmp_path / "src" / "dist"
    for n in range(3):
        if dist.exists():
            for old in dist.rglob("*.js"):
                old.unlink()  # as Vite empties its folder
        (dist / "assets").mkdir(parents=True, exist_ok=True)
        (dist / "index.html").write_text(f"page {n}")
        (dist / "assets" / f"app-{n}.js").write_text(f"js {n}")
        assert frontend.publish(plan) == (None, None)
    names = sorted(p.name for p in (plan.current / "assets").iterdir())
    # A page of build 1 loaded just before the swap still finds its script; build 0's is gone.
    assert names == ["app-1.js", "app-2.js"]
    assert (plan.current / "index.html").read_text() == "page 2"


def test_as_space_is_a_runtime_setting_the_command_line_turns_on(tmp_path: Path) -> None:
    from runtime.config import apply_overrides, load
    from runtime.errors import SpaceDevError

    (tmp_path / "Spacefile").write_text(
        "v: 0\nmicros:\n  - name: a\n    src: .\n    engine: static\n    serve: .\n"
    )
    file = tmp_path / "space-dev.toml"
    assert load(None).as_space is False
    file.write_text("[runtime]\nas_space = true\n")
    assert load(file).as_space is True
    file.write_text('[runtime]\nas_space = "yes"\n')
    with pytest.raises(SpaceDevError, match="as_space"):
        load(file)
    plain = load(None)
    assert apply_overrides(plain, cwd=tmp_path).as_space is False
    assert apply_overrides(plain, cwd=tmp_path, as_space=True).as_space is True
