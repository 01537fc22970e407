"""The preview of what each language receives, and the exact API bodies (`reconcile render`).
Pure: text for people, byte-stable JSON for machines."""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from reconciler.errors import ConfigError
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredSchedule, DesiredState
from reconciler.timing import describe_firing, firings, format_utc

FORMATS = ("text", "json")
FORMAT_VERSION = 1


def select(desired: DesiredState, pattern: str | None) -> list[DesiredSchedule]:
    every = list(desired.schedules.values())
    if pattern is None:
        return every
    chosen = [
        s
        for s in every
        if fnmatch.fnmatchcase(s.name, pattern) or fnmatch.fnmatchcase(s.plan_id, pattern)
    ]
    if chosen:
        return chosen
    names = [*desired.schedules, *desired.plans]
    close = difflib.get_close_matches(pattern, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `reconcile render` lists all"
    raise ConfigError(f"no schedule or plan matches {pattern!r}{hint}")


def _copy(schedule: DesiredSchedule, lang: str | None) -> dict[str, dict[str, str]]:
    return {
        code: dict(fields) for code, fields in schedule.copy.items() if lang is None or code == lang
    }


def to_json(
    desired: DesiredState,
    schedules: Sequence[DesiredSchedule],
    plan_ids: list[str],
    lang: str | None,
) -> Iterator[str]:
    """The JSON document, line by line: one plan or schedule per line, keys sorted.

    Byte-stable, and streamed: 10,000 pretty-printed bodies would take seconds and hundreds of MB.
    """
    plans = [
        {
            "address": desired.plans[p].address,
            "body": desired.plans[p].body(),
            "source": str(desired.plans[p].source),
        }
        for p in plan_ids
    ]
    yield "{"
    yield f'  "format_version": {FORMAT_VERSION},'
    yield f'  "inputs_digest": {_compact(desired.inputs_digest)},'
    yield from _array("plans", plans, last=False)
    yield from _array("schedules", (_schedule_json(s, lang) for s in schedules), last=False)
    yield from _array("warnings", [str(w) for w in desired.warnings], last=True)
    yield "}"


def _array(key: str, items: Iterable[Any], *, last: bool) -> Iterator[str]:
    end = "" if last else ","
    pending: str | None = None
    for item in items:
        if pending is None:
            yield f'  "{key}": ['
        else:
            yield f"    {pending},"
        pending = _compact(item)
    if pending is None:
        yield f'  "{key}": []{end}'
    else:
        yield f"    {pending}"
        yield f"  ]{end}"


def _schedule_json(s: DesiredSchedule, lang: str | None) -> dict[str, Any]:
    return {
        "address": s.address,
        "body": s.body,
        "copy": _copy(s, lang),
        "default_language": s.default_language,
        "digest": s.digest,
        "plan_id": s.plan_id,
        "source": str(s.source),
        "template": s.template,
        "trigger_kind": s.trigger_kind,
    }


def to_text(
    desired: DesiredState,
    schedules: Sequence[DesiredSchedule],
    plan_ids: list[str],
    lang: str | None,
    settings: Settings,
    now: datetime,
) -> str:
    lines: list[str] = []
    for plan_id in plan_ids:
        plan = desired.plans[plan_id]
        lines.append(f"{plan.address}  {plan.description!r}  ({plan.source})")
        lines.append("  POST /v4/push_plan " + _compact(plan.body()))
        lines.append("")
    for s in schedules:
        lines.append(f"{s.address}  plan {s.plan_id}  template {s.template}  ({s.source})")
        enabled = "" if s.body["enabled"] else "  [disabled]"
        lines.append(f"  fires     {describe_trigger(s.trigger)}{enabled}")
        lines.append(f"            {_window(s.trigger, settings, now)}")
        lines.append(f"  audience  {describe_audience(s.body['push']['to'])}")
        platform = s.body["push"]["body"]["platform"]
        lines.append(
            f"  platform  {platform if isinstance(platform, str) else ', '.join(platform)}"
        )
        for code, fields in _copy(s, lang).items():
            mark = " (default)" if code == s.default_language else ""
            lines.append(f"  [{code}]{mark}")
            for key in sorted(fields, key=_field_order):
                lines.append(f"    {key + ':':<16}{fields[key]}")
        lines.append("  POST /v4/schedules")
        body = json.dumps(s.body, indent=2, sort_keys=True, ensure_ascii=False)
        lines.extend("    " + line for line in body.splitlines())
        lines.append("")
    lines.append(f"{len(plan_ids)} plan(s), {len(schedules)} schedule(s)")
    return "\n".join(lines)


def _field_order(key: str) -> tuple[int, str]:
    rank = {"title": 0, "alert": 1}
    return (rank.get(key, 2), key)


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def describe_trigger(trigger: Mapping[str, Any]) -> str:
    if "intelligent" in trigger:
        backup = trigger["intelligent"]["backup_time"]
        if backup == "now":
            return "Smart Push: each user at their best moment; users with no history at once"
        return (
            "Smart Push: each user at their best moment; users with no history at "
            f"{backup} device time"
        )
    zone = {1: "site time", 2: "device time"}
    if "single" in trigger:
        single = trigger["single"]
        return f"once at {single['time']} {zone[single['zone_type']]}"
    per = trigger["periodical"]
    every = (
        f"every {per['frequency']} {per['time_unit']}s"
        if per["frequency"] > 1
        else (f"every {per['time_unit']}")
    )
    points = f" on {', '.join(per['point'])}" if per.get("point") else ""
    return (
        f"{every}{points} at {per['time']} {zone[per['zone_type']]}, "
        f"from {per['start']} to {per['end']}"
    )


def _window(trigger: Mapping[str, Any], settings: Settings, now: datetime) -> str:
    """When it really reaches people, in UTC, over the inhabited time zones of that day."""
    fires = firings(trigger, settings.site_zone, now)
    if not fires:
        return "(when applied, for users with no activity history)"
    state = "passed" if fires[-1].last <= now else "upcoming"
    label = "next " if "periodical" in trigger and state == "upcoming" else ""
    shown = describe_firing(fires[0])
    if len(fires) > 1:
        shown += "; then from " + ", ".join(format_utc(f.first) for f in fires[1:])
    return f"({label}{shown}; {state})"


def describe_audience(to: Any) -> str:
    if to == "all":
        return "everyone (all)"
    words = {
        "tag": "any of tags",
        "tag_and": "all of tags",
        "tag_not": "none of tags",
        "alias": "aliases",
        "registration_id": "registration ids",
    }
    parts = []
    for key, value in to.items():
        if key == "seg":
            parts.append(f"segment {value['id']}")
        else:
            shown = ", ".join(value[:10]) + (f" … (+{len(value) - 10})" if len(value) > 10 else "")
            parts.append(f"{words.get(key, key)} [{shown}]")
    return " and ".join(parts)
