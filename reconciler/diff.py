"""Field-level differences between two API bodies, as the project's own `FieldDiff`. Pure.

The only module that imports deepdiff (a ruff banned-api rule holds that line). Paths read the way
a reviewer thinks of a schedule: `options.multi_language.fr.alert`, not `root['push']['body']...`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

# Longest first: `push.body.` must win over `push.` so body fields lose both prefixes.
_STRIPPED_PREFIXES: tuple[tuple[str, ...], ...] = (("push", "body"), ("push",))

_REPORTS: Mapping[str, str] = {
    "values_changed": "changed",
    "type_changes": "changed",
    "dictionary_item_added": "added",
    "iterable_item_added": "added",
    "dictionary_item_removed": "removed",
    "iterable_item_removed": "removed",
}


class DiffOp(StrEnum):
    CHANGED = "changed"
    ADDED = "added"
    REMOVED = "removed"


class FieldDiff(BaseModel):
    """One leaf (or whole added/removed subtree) that differs; `before`/`after` are JSON values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    op: DiffOp
    before: Any = None
    after: Any = None


def natural_path(parts: Sequence[str | int]) -> str:
    """`['push', 'body', 'options', 'multi_language', 'fr']` -> `options.multi_language.fr`."""
    keys = list(parts)
    for prefix in _STRIPPED_PREFIXES:
        if tuple(keys[: len(prefix)]) == prefix and len(keys) > len(prefix):
            keys = keys[len(prefix) :]
            break
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        elif key and all(ch.isalnum() or ch in "_-" for ch in key):
            out += f".{key}" if out else key
        else:  # a key a dot would make ambiguous
            out += f"[{key!r}]"
    return out


def _sort_key(parts: Sequence[str | int]) -> tuple[tuple[int, int, str], ...]:
    # Mixed str/int path parts must still order totally, and list indexes numerically.
    return tuple((1, p, "") if isinstance(p, int) else (0, 0, p) for p in parts)


def _prune(before: Any, after: Any) -> tuple[Any, Any]:
    """Both mappings without the keys whose values are equal on both sides (recursively).

    deepdiff reports dict keys independently, so this changes no result; it only spares deepdiff
    the unchanged bulk of a body, where it spends ~0.1 ms per node.
    """
    if not (isinstance(before, Mapping) and isinstance(after, Mapping)):
        return before, after
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        if key in before and key in after:
            if before[key] == after[key]:
                continue
            old[key], new[key] = _prune(before[key], after[key])
        elif key in before:
            old[key] = before[key]
        else:
            new[key] = after[key]
    return old, new


def _levels(before: Any, after: Any) -> Iterator[tuple[list[str | int], DiffOp, Any, Any]]:
    from deepdiff import DeepDiff  # imported late: ~80 ms the no-change path never pays

    # threshold_to_diff_deeper=0: always descend, so one edited language shows as one path
    # rather than the whole multi_language object being reported as replaced.
    tree = DeepDiff(*_prune(before, after), view="tree", threshold_to_diff_deeper=0)
    for report, levels in tree.items():
        op = _REPORTS.get(report)
        if op is None:
            continue  # reports that cannot arise between JSON values (set_item_added, ...)
        for level in levels:
            parts: list[str | int] = list(level.path(output_format="list"))
            old = None if op == DiffOp.ADDED else level.t1
            new = None if op == DiffOp.REMOVED else level.t2
            yield parts, DiffOp(op), old, new


def diff_bodies(before: Any, after: Any) -> tuple[FieldDiff, ...]:
    """Every field that differs from `before` to `after`, in path order. Empty when equal."""
    found = sorted(_levels(before, after), key=lambda item: _sort_key(item[0]))
    return tuple(
        FieldDiff(path=natural_path(parts), op=op, before=old, after=new)
        for parts, op, old, new in found
    )
