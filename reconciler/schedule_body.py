"""Facts about a schedule body that every stage needs: its keys and its trigger kind. Pure.

A schedule body is what EngageLab stores for a task, and what the state records: `name`,
`enabled`, `trigger` (exactly one of single, periodical, intelligent) and `push`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from reconciler.engagelab import SCHEDULE_TRIGGER_KINDS

TriggerKind = Literal["intelligent", "single", "periodical"]
BODY_KEYS = ("name", "enabled", "trigger", "push")  # what a schedule body is, remote or recorded


def kind_of_trigger(trigger: Mapping[str, Any]) -> TriggerKind:
    """The one known trigger kind a trigger holds; ValueError when it holds none or several."""
    kinds = [k for k in SCHEDULE_TRIGGER_KINDS if k in trigger]
    if len(kinds) != 1:
        raise ValueError(f"no single known trigger kind in {sorted(map(str, trigger))}")
    return cast(TriggerKind, kinds[0])


def trigger_kind_of(body: Mapping[str, Any]) -> TriggerKind:
    """The trigger kind of a schedule body."""
    try:
        return kind_of_trigger(body.get("trigger") or {})
    except ValueError:
        raise ValueError(
            f"schedule {body.get('name')!r} has no single known trigger kind"
        ) from None
