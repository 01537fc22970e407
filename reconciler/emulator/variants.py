"""Answer variants: rewrite what the emulator returns, never what it stores. Pure.

Each rule names its source. The variant names live in config.ANSWER_VARIANTS.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping
from typing import Any

from reconciler import engagelab as api


def schedule(task: Mapping[str, Any], answers: Collection[str]) -> dict[str, Any]:
    """One full schedule as GET by id (and PUT) answer it under `answers`."""
    out = copy.deepcopy(dict(task))
    if "added-defaults" in answers:
        _add_defaults(out)
    if "upper-enums" in answers:
        _upper_enums(out)
    if "platform-string" in answers:
        _platform_string(out)
    return out


def list_item(task: Mapping[str, Any], answers: Collection[str]) -> dict[str, Any]:
    """One item of GET /v4/schedules under `answers` (summary-list wins over json-strings)."""
    if "summary-list" in answers:
        # [v3] the JPush v3 list example shows items as {"schedule_id", "name", "enabled", ...};
        # [ours] a summary holds exactly these three.
        return {k: task[k] for k in ("schedule_id", "name", "enabled") if k in task}
    out = schedule(task, answers)
    if "json-strings" in answers:
        # [sdk] Java SDK SchedulePushListResult.Detail: trigger and push typed Object, "the returned
        # format is non-standard and cannot be parsed into objects". [ours] that they arrive as
        # JSON-encoded strings, push.custom_args encoded inside push as well.
        push = out.get("push")
        if isinstance(push, dict) and isinstance(push.get("custom_args"), dict):
            push["custom_args"] = _dumps(push["custom_args"])
        for key in ("trigger", "push"):
            if key in out:
                out[key] = _dumps(out[key])
    return out


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _upper_enums(task: dict[str, Any]) -> None:
    """[sdk] the SDKs send "WEEK"/"MONTH" (Python schedule.py, Java enums/TimeUnit.java); a server
    that stores them so answers them so. Points upper-case too ("01" stays "01")."""
    trigger = task.get("trigger")
    per = trigger.get("periodical") if isinstance(trigger, dict) else None
    if not isinstance(per, dict):
        return
    for field in api.CASE_FOLDED_FIELDS:
        value = per.get(field)
        if isinstance(value, str):
            per[field] = value.upper()
        elif isinstance(value, list):
            per[field] = [v.upper() if isinstance(v, str) else v for v in value]


def _add_defaults(task: dict[str, Any]) -> None:
    """[ours] engagelab.SERVER_DEFAULTS, each added where the stored body lacks it; "*" is the
    trigger kind present. Paths are taken literally from that shared table; a missing object on
    the way is created, except inside `trigger` (a default never adds a trigger kind)."""
    for path, value in api.SERVER_DEFAULTS.items():
        _set_default(task, path, value, create=path[0] != "trigger")


def _set_default(node: dict[str, Any], path: tuple[str, ...], value: object, create: bool) -> None:
    head, rest = path[0], path[1:]
    keys = [k for k, v in node.items() if isinstance(v, dict)] if head == "*" else [head]
    for key in keys:
        if not rest:
            node.setdefault(key, copy.deepcopy(value))
            continue
        child = node.get(key)
        if child is None and create:
            child = node[key] = {}
        if isinstance(child, dict):
            _set_default(child, rest, value, create)


def _platform_string(task: dict[str, Any]) -> None:
    """[doc/sdk] "platform": "android" is how EngageLab's own Smart Push example writes one
    platform (shared/reference/); a server may answer a one-item list that way."""
    push = task.get("push")
    body = push.get("body") if isinstance(push, dict) else None
    if isinstance(body, dict):
        platform = body.get("platform")
        if isinstance(platform, list) and len(platform) == 1 and isinstance(platform[0], str):
            body["platform"] = platform[0]
