"""The data commands: keys, users, auth and trigger, working with or without a running `up`."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """Add the data commands to the `space-dev` parser."""
