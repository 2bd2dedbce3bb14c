"""Deta Base updates: the PATCH body (set, increment, append, prepend, delete) applied to an item.

Paths are dotted (`profile.age`) and reach into nested objects. Decisions, after Deta's
documentation and its SDKs' tests:
- Setting `a.b` needs `a` to exist and be an object (Deta refused "an upper level attribute does
  not exist"); a top-level set always works.
- `increment` on a missing field starts from 0; on anything but a number it is refused.
- `append`/`prepend` take a list (each member is added) or a single value; a missing field starts
  as an empty list; a field holding anything but a list is refused.
- `delete` of a missing field (or under a missing parent) does nothing, as deletes are idempotent.
- The same path in two places, or one path under another (`a` and `a.b`), is a conflict: the
  result would depend on the order the operations ran in, which Deta never specified.
- `key` can be neither changed nor deleted; an update with nothing in it is refused.
"""

from __future__ import annotations

import copy
from typing import Any

from runtime.cloud.base.errors import BaseError
from runtime.cloud.base.query import kind

Item = dict[str, Any]

OBJECT_OPS = ("set", "increment", "append", "prepend")
OPS = (*OBJECT_OPS, "delete")


def check_update(updates: Any) -> list[tuple[str, tuple[str, ...], Any]]:
    """Validate an update without an item; return its (op, path, value) steps in applying order."""
    if not isinstance(updates, dict):
        raise BaseError(400, "An update must be a JSON object")
    unknown = sorted(set(updates) - set(OPS))
    if unknown:
        raise BaseError(400, f"Unknown update operation {unknown[0]!r}: use {', '.join(OPS)}")
    steps: list[tuple[str, tuple[str, ...], Any]] = []
    for op in OBJECT_OPS:
        fields = updates.get(op)
        if fields is None:
            continue
        if not isinstance(fields, dict):
            raise BaseError(400, f'"{op}" must be an object of attribute paths to values')
        for name, value in fields.items():
            if op == "increment" and kind(value) != "number":
                raise BaseError(400, f'Cannot increment "{name}" by a non-number')
            steps.append((op, _path(op, name), value))
    deletes = updates.get("delete")
    if deletes is not None:
        if not isinstance(deletes, list) or not all(isinstance(d, str) for d in deletes):
            raise BaseError(400, '"delete" must be a list of attribute paths')
        for name in dict.fromkeys(deletes):  # a path named twice in delete is still one delete
            steps.append(("delete", _path("delete", name), None))
    if not steps:
        raise BaseError(
            400, "An update needs at least one of set, increment, append, prepend or delete"
        )
    _check_conflicts(steps)
    return steps


def _path(op: str, name: str) -> tuple[str, ...]:
    path = tuple(name.split("."))
    if not all(path):
        raise BaseError(400, f'Invalid attribute path "{name}" in {op}: empty path segment')
    if path[0] == "key":
        raise BaseError(400, "The key of an item cannot be updated or deleted")
    return path


def _check_conflicts(steps: list[tuple[str, tuple[str, ...], Any]]) -> None:
    # Sorted, the paths equal to or above a path sit on a stack of its ancestors. Two deletes never
    # conflict: deleting `a` and `a.b` gives the same item in either order.
    ancestors: list[tuple[tuple[str, ...], str]] = []
    for path, op in sorted((path, op) for op, path, _ in steps):
        while ancestors and ancestors[-1][0] != path[: len(ancestors[-1][0])]:
            ancestors.pop()
        for above, above_op in ancestors:
            if not (op == above_op == "delete"):
                raise BaseError(
                    400,
                    f'Conflicting updates: "{".".join(above)}" in {above_op} '
                    f'and "{".".join(path)}" in {op}',
                )
        ancestors.append((path, op))


def apply_update(item: Item, updates: dict[str, Any]) -> Item:
    """The item after the update, as a new dict; raise BaseError(400) for an invalid update."""
    steps = check_update(updates)
    return apply_steps(copy.deepcopy(item), copy.deepcopy(steps))


def apply_steps(item: Item, steps: list[tuple[str, tuple[str, ...], Any]]) -> Item:
    """`item` changed in place by the steps of `check_update`, and returned; raise
    BaseError(400) when a step does not fit the item (it may then be changed in part).

    Neither the item nor the steps' values are copied: the store owns both, freshly decoded, and
    only encodes the result. A value set is never changed by a later step, since no path lies
    under another (`check_update` refuses that)."""
    for op, path, value in steps:
        parent = _parent(item, path, op != "delete")
        if parent is None:
            continue
        last = path[-1]
        if op == "set":
            parent[last] = value
        elif op == "increment":
            current = parent.get(last, 0)
            if kind(current) != "number":
                raise BaseError(400, f'Cannot increment "{".".join(path)}": it is not a number')
            parent[last] = current + value
        elif op in ("append", "prepend"):
            current = parent.get(last, [])
            if not isinstance(current, list):
                raise BaseError(400, f'Cannot {op} to "{".".join(path)}": it is not a list')
            added = value if isinstance(value, list) else [value]
            parent[last] = current + added if op == "append" else added + current
        else:
            parent.pop(last, None)
    return item


def _parent(item: Item, path: tuple[str, ...], must_exist: bool) -> Item | None:
    node: Any = item
    for depth, part in enumerate(path[:-1]):
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            if not must_exist:
                return None
            upper = ".".join(path[: depth + 1])
            raise BaseError(
                400,
                f'Cannot update "{".".join(path)}": "{upper}" does not exist or is not an object',
            )
    return node
