"""Imported by Python at the start of every python process of a micro (this folder is first on
its PYTHONPATH): guards the micro's server, then runs the `sitecustomize` it hides, if any."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def _guard() -> None:
    try:
        import _space_dev_guard

        _space_dev_guard.install()
    except Exception as exc:  # never stop the micro; the runtime sees it unguarded and says so
        print(f"space-dev: the micro's guard did not load ({exc})", file=sys.stderr)


def _run_hidden_sitecustomize() -> None:
    """The interpreter's or environment's own sitecustomize, which this one shadows."""
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


_guard()
_run_hidden_sitecustomize()
