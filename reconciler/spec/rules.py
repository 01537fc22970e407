"""Value rules for spec triggers and audiences, and their API forms. Pure: the clock is passed in.

Each check returns the API value (or None) plus problems as (sub-path, what, hint[, warning]); the
caller anchors the sub-path at the spec key it came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reconciler import engagelab as api
from reconciler.settings import Settings
from reconciler.timing import (
    FireWindow,
    device_window,
    fire_window,
    format_utc,
    parse_api_time,
    parse_clock,
    periodical_walls,
    wall_to_utc,
)

SubPath = tuple[str | int, ...]
TriggerIssue = tuple[SubPath, str, str, bool]
_ZONES = {"site": api.ZONE_SITE, "device": api.ZONE_DEVICE}
_TIME_HINT = "use YYYY-MM-DD HH:MM:SS, e.g. 2026-12-28 09:00:00"


def check_trigger(
    raw: Mapping[str, Any], settings: Settings, now: datetime
) -> tuple[dict[str, Any] | None, list[TriggerIssue], bool]:
    """(API trigger or None, issues, is_live); live = may still fire, so it holds quota."""
    issues: list[TriggerIssue] = []
    api_trigger: dict[str, Any] | None = None
    if "smart" in raw:
        backup = raw["smart"]["backup_time"]
        if backup == "now" or _wall(backup, ("smart", "backup_time"), issues, now_ok=True):
            api_trigger = {"intelligent": {"backup_time": backup}}
    elif "single" in raw:
        single = raw["single"]
        if _wall(single["time"], ("single", "time"), issues):
            api_trigger = {"single": {"time": single["time"], "zone_type": _ZONES[single["zone"]]}}
    else:
        api_trigger = _periodical(raw["periodical"], issues)
    if api_trigger is None:
        return None, issues, False
    return api_trigger, issues, _window_checks(api_trigger, raw, settings, now, issues)


_TIME_RE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})\Z")


def parse_wall(text: str) -> datetime:
    """Same result as timing.parse_api_time, without strptime's cost (10,000 schedules)."""
    match = _TIME_RE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not in the form YYYY-MM-DD HH:MM:SS")
    year, month, day, hour, minute, second = map(int, match.groups())
    return datetime(year, month, day, hour, minute, second)


def _wall(text: str, path: SubPath, issues: list[TriggerIssue], *, now_ok: bool = False) -> bool:
    try:
        parse_wall(text)
    except ValueError:
        hint = _TIME_HINT + (", or now" if now_ok else "")
        issues.append((path, f"{text!r} is not a time", hint, False))
        return False
    return True


def _periodical(per: Mapping[str, Any], issues: list[TriggerIssue]) -> dict[str, Any] | None:
    base = ("periodical",)
    ok = _wall(per["start"], (*base, "start"), issues) & _wall(per["end"], (*base, "end"), issues)
    try:
        parse_clock(per["time"])
    except ValueError:
        issues.append(
            ((*base, "time"), f"{per['time']!r} is not a time of day", "use HH:MM:SS", False)
        )
        ok = False
    unit, frequency = per["unit"], per.get("frequency", 1)
    if not 1 <= frequency <= api.PERIODICAL_FREQUENCY_MAX:
        issues.append(
            (
                (*base, "frequency"),
                f"frequency {frequency} is out of range",
                f"1 to {api.PERIODICAL_FREQUENCY_MAX}",
                False,
            )
        )
        ok = False
    points = _points(unit, per.get("points"), issues)
    if points is None:
        ok = False
    if ok:
        start, end = parse_api_time(per["start"]), parse_api_time(per["end"])
        if end <= start:
            issues.append(((*base, "end"), "end is not after start", "put end after start", False))
            ok = False
        elif end - start > api.PERIODICAL_MAX_SPAN:
            issues.append(
                (
                    (*base, "end"),
                    f"start to end spans {(end - start).days} days",
                    "at most one year (365 days)",
                    False,
                )
            )
            ok = False
    if not ok:
        return None
    out: dict[str, Any] = {
        "start": per["start"],
        "end": per["end"],
        "time": per["time"],
        "time_unit": unit,
        "frequency": frequency,
        "zone_type": _ZONES[per["zone"]],
    }
    if points:
        out["point"] = points
    if next(periodical_walls(out), None) is None:
        issues.append(
            (
                base,
                "no occurrence between start and end",
                "widen start..end or change time, unit or points",
                False,
            )
        )
        return None
    return {"periodical": out}


def _points(unit: str, raw: list[str | int] | None, issues: list[TriggerIssue]) -> list[str] | None:
    path: SubPath = ("periodical", "points")
    if unit == "day":
        if raw:
            issues.append((path, "points are not used with unit day", "remove points", False))
            return None
        return []
    allowed = api.WEEK_POINTS if unit == "week" else api.MONTH_POINTS
    example = "[MON, THU]" if unit == "week" else "[1, 15]"
    if not raw:
        issues.append(
            (path, f"unit {unit} needs points", f"list them, e.g. points: {example}", False)
        )
        return None
    chosen: set[str] = set()
    for index, point in enumerate(raw):
        text = (
            f"{point:02d}" if isinstance(point, int) and not isinstance(point, bool) else str(point)
        )
        text = text.upper() if unit == "week" else text.zfill(2)
        if text not in allowed:
            issues.append(
                (
                    (*path, index),
                    f"{point!r} is not a {unit} point",
                    f"use {example[1:-1]} style values: {allowed[0]}..{allowed[-1]}",
                    False,
                )
            )
            return None
        chosen.add(text)
    return [p for p in allowed if p in chosen]


def _window_checks(
    trigger: Mapping[str, Any],
    raw: Mapping[str, Any],
    settings: Settings,
    now: datetime,
    issues: list[TriggerIssue],
) -> bool:
    """Horizon (error) and passed send times (warnings); returns whether it can still fire."""
    window = _fire_window(trigger, settings, now)
    if window.immediate:
        return True
    assert window.first is not None and window.last is not None
    kind = next(iter(raw))
    path: SubPath = (kind, {"smart": "backup_time", "single": "time", "periodical": "end"}[kind])
    # [ours] The API's one-year limit is read conservatively: the first occurrence must be within
    # a year of now in every time zone it may be read in.
    first_done = window.last
    if kind == "periodical":
        per = trigger["periodical"]
        wall = next(periodical_walls(per))
        device = per["zone_type"] == api.ZONE_DEVICE
        first_done = device_window(wall)[1] if device else wall_to_utc(wall, settings.site_zone)
    horizon = now + api.HORIZON
    if first_done > horizon:
        where = (kind, "start") if kind == "periodical" else path
        what = f"more than one year ahead (after {format_utc(horizon)})"
        issues.append((where, what, "EngageLab refuses send times over a year ahead", False))
        return True
    if window.last <= now:
        what = f"send time has passed everywhere (last at {format_utc(window.last)})"
        issues.append((path, what, "it will not be sent; update or remove it", True))
        return False
    if window.device_local and kind != "periodical" and window.first <= now:
        what = f"send time has already passed in some time zones (since {format_utc(window.first)})"
        issues.append((path, what, "devices there get it late or never; pick a later time", True))
    return True


def _fire_window(trigger: Mapping[str, Any], settings: Settings, now: datetime) -> FireWindow:
    """timing.fire_window, with the common one-shot kinds computed on the fast parser."""
    if "intelligent" in trigger and trigger["intelligent"]["backup_time"] != "now":
        first, last = device_window(parse_wall(trigger["intelligent"]["backup_time"]))
        return FireWindow("intelligent", first, last, device_local=True)
    if "single" in trigger and trigger["single"]["zone_type"] == api.ZONE_DEVICE:
        first, last = device_window(parse_wall(trigger["single"]["time"]))
        return FireWindow("single", first, last, device_local=True)
    return fire_window(trigger, settings.site_zone, now=now)


def check_audience(raw: Any) -> tuple[str | dict[str, Any] | None, list[tuple[SubPath, str, str]]]:
    """(API `to` value or None, problems). Structure was checked by the spec model."""
    if raw == "all" or raw == {"all": True}:
        return "all", []
    problems: list[tuple[SubPath, str, str]] = []
    to: dict[str, Any] = {}
    limits = {
        "tag": (api.TAGS_MAX, api.TAG_MAX_BYTES),
        "tag_and": (api.TAGS_MAX, api.TAG_MAX_BYTES),
        "tag_not": (api.TAGS_MAX, api.TAG_MAX_BYTES),
        "alias": (api.ALIAS_MAX, 0),
        "registration_id": (api.REGISTRATION_ID_MAX, 0),
    }
    for kind, values in raw.items():
        if kind == "segment":
            if not values.strip():
                problems.append(
                    ((kind,), "empty segment id", "give the segment id from the console")
                )
            to["seg"] = {"id": values}
            continue
        if kind == "all":
            problems.append(((kind,), "all cannot be combined", "write audience: all on its own"))
            continue
        most, max_bytes = limits[kind]
        if not values:
            problems.append(((kind,), f"empty {kind} list", "list at least one, or remove the key"))
        if len(values) > most:
            problems.append(
                ((kind,), f"{len(values)} {kind} values", f"at most {most}; split the message")
            )
        seen: set[str] = set()
        for index, value in enumerate(values):
            size = len(value.encode("utf-8"))
            if not value.strip():
                problems.append(((kind, index), f"empty {kind}", "remove it"))
            elif max_bytes and size > max_bytes:
                problems.append(
                    (
                        (kind, index),
                        f"tag {value[:20]!r}… is {size} bytes",
                        f"at most {max_bytes} bytes",
                    )
                )
            elif value in seen:
                problems.append(((kind, index), f"{value!r} is listed twice", "list it once"))
            seen.add(value)
        to[kind] = list(values)
    return (None if problems else to), problems
