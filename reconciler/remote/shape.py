"""One normalisation step for every schedule EngageLab answers, before anything compares it. Pure.

The client has only the emulator and the documents to go by, and the official SDKs suggest the
real answers differ from what was sent. So every list item and every GET goes through `normalise`
(in the client, the one read path), and drift compares through `comparable`. Each rule names its
source; [ours] marks a guess, and the guesses' values live in reconciler.engagelab.

- JSON strings: `trigger`, `push` and `push.custom_args` given as JSON-encoded strings are decoded.
  Source: the Java SDK types a list item's trigger/push as `Object` ("non-standard format, cannot
  be parsed"); the Go SDK leaves them untyped [sdk].
- Platform (`push.body.platform`): a single platform string is a one-item list ("android" is
  ["android"]); "all" stays.
  Source: EngageLab's Smart Push example (shared/reference), the batch-push doc, the Python SDK
  tests [doc/sdk].
- Case: `time_unit` is lower-cased, week `point`s upper-cased, month `point`s two digits.
  Source: JPush v3 ("day", "Day", "DAY" all accepted); the SDKs send "WEEK"/"MONTH" [v3/sdk].
- `enabled` given as "true"/"false" or 0/1 is a boolean [ours].
- Summary items: a list item without `trigger` or `push` is only a summary; the client then
  reads the task by id (Java SDK: GET by id decodes into the typed request) [sdk].
- Unreadable: whatever still is not a schedule body (no single known trigger kind, a push that is
  not an object) is marked with UNREADABLE and its reason: reported as drift with its id, never a
  crash, never taken for an edit or a deletion.
- Server defaults: `comparable` drops a field the recorded body lacks when its value is the
  default in engagelab.SERVER_DEFAULTS [ours]. Another field the recorded body lacks is compared
  (drift) when it changes who gets the message, what it says or when
  (engagelab.ADDED_FIELDS_ARE_EDITS); elsewhere it is listed (`added`), not compared, so a
  server's own additions cannot cause an update loop. A field the answer leaves out that a
  server need not echo (engagelab.WRITE_ONLY_FIELDS: request_id, managed_by) is not drift.
- Numbers: whole numbers given as strings at the numeric trigger and option fields are numbers
  [ours]. Times the planner cannot parse make the answer unreadable, so they are never recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from reconciler import engagelab as api
from reconciler.timing import parse_api_time, parse_clock

UNREADABLE = "unreadable"  # key set on an item whose body cannot be read, with the reason


def normalise(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item with the shapes above made canonical; UNREADABLE set when it is no body."""
    out = dict(item)
    out.pop(UNREADABLE, None)
    problems: list[str] = []
    for key in ("trigger", "push"):
        if isinstance(out.get(key), str):
            out[key] = _decoded(out[key], key, problems)
    if "enabled" in out:
        out["enabled"] = _boolean(out["enabled"])
    trigger = out.get("trigger")
    if "trigger" in out:
        out["trigger"] = _trigger(trigger, problems)
    push = out.get("push")
    if "push" in out:
        if isinstance(push, Mapping):
            out["push"] = _push(push, problems)
        else:
            problems.append(f"push is {type(push).__name__}, not an object")
    if "name" in out and (not isinstance(out["name"], str) or not out["name"]):
        problems.append(f"name is {out['name']!r}, not a name")
    if problems:
        out[UNREADABLE] = "; ".join(problems)
    return out


def is_summary(item: Mapping[str, Any]) -> bool:
    """A list item that holds no body to compare, or no name: read it again by id."""
    name = item.get("name")
    return "trigger" not in item or "push" not in item or not isinstance(name, str) or not name


def comparable(
    remote: Mapping[str, Any], recorded: Mapping[str, Any] | None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`remote` as it compares with `recorded`: without the server defaults the recorded body
    lacks, and without fields reconcile never sent (returned as `added`, dotted paths)."""
    if recorded is None:
        return dict(remote), ()
    added: list[str] = []
    body = _project(remote, recorded, (), added)
    for path in api.WRITE_ONLY_FIELDS:  # sent, but a server need not echo it
        _fill(body, recorded, path)
    return body, tuple(added)


def _fill(body: dict[str, Any], recorded: Mapping[str, Any], path: tuple[str, ...]) -> None:
    """Give `body` the recorded value at `path` when the answer left the field out."""
    have: Any = body
    mine: Any = recorded
    for key in path[:-1]:
        if not isinstance(have, dict) or not isinstance(mine, Mapping) or key not in mine:
            return
        have, mine = have.get(key), mine[key]
    last = path[-1]
    if isinstance(have, dict) and isinstance(mine, Mapping) and last in mine and last not in have:
        have[last] = mine[last]


# --- the rules -----------------------------------------------------------------------------------


def _decoded(text: str, key: str, problems: list[str]) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        problems.append(f"{key} is a string that is not JSON")
        return text


def _boolean(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return value


def _trigger(trigger: Any, problems: list[str]) -> Any:
    if not isinstance(trigger, Mapping):
        problems.append(f"trigger is {type(trigger).__name__}, not an object")
        return trigger
    kinds = [k for k in trigger if k in api.SCHEDULE_TRIGGER_KINDS]
    if len(kinds) != 1:
        found = sorted(map(str, trigger))
        problems.append(f"trigger has {found}, not one of single/periodical/intelligent")
        return dict(trigger)
    kind = kinds[0]
    inner = trigger[kind]
    if isinstance(inner, str):
        inner = _decoded(inner, f"trigger.{kind}", problems)
    if not isinstance(inner, Mapping):
        problems.append(f"trigger.{kind} is not an object")
        return {kind: inner}
    out = dict(inner)
    for key in _NUMERIC.get(kind, ()):
        if key in out:
            out[key] = _integer(out[key])
    for key, check in _TIMES.get(kind, {}).items():
        if key in out and not check(out[key]):
            problems.append(f"trigger.{kind}.{key} is {out[key]!r}, not a time EngageLab takes")
    if kind == "periodical":
        unit = out.get("time_unit")
        if isinstance(unit, str):
            out["time_unit"] = unit.strip().lower()
        if out.get("time_unit") not in api.PERIODICAL_UNITS:
            problems.append(f"trigger.periodical.time_unit is {unit!r}")
        if "point" in out:
            out["point"] = _points(out["point"], out.get("time_unit"), problems)
    return {kind: out}


def _integer(value: Any) -> Any:
    """A whole number given as a string ("2") is that number [ours]; anything else as it is."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def _parses(parse: Callable[[Any], object]) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        try:
            parse(value)
        except (TypeError, ValueError):
            return False
        return True

    return check


_is_time = _parses(parse_api_time)
_is_clock = _parses(parse_clock)


def _is_backup(value: Any) -> bool:
    return value == "now" or _is_time(value)


_NUMERIC: Mapping[str, tuple[str, ...]] = {
    "single": ("zone_type",),
    "periodical": ("zone_type", "frequency"),
    "intelligent": ("zone_type",),
}
# What the planner parses: a value it cannot read must never be recorded (it would crash every
# later plan), so the whole answer is unreadable instead.
_TIMES: Mapping[str, Mapping[str, Callable[[Any], bool]]] = {
    "single": {"time": _is_time},
    "periodical": {"start": _is_time, "end": _is_time, "time": _is_clock},
    "intelligent": {"backup_time": _is_backup},
}
_OPTION_NUMBERS = ("time_to_live", "big_push_duration")


def _points(points: Any, unit: Any, problems: list[str]) -> Any:
    if isinstance(points, str | int):
        points = [points]  # one point given alone [ours], as the platform string
    if not isinstance(points, list):
        problems.append("trigger.periodical.point is not a list")
        return points
    out: list[Any] = []
    for point in points:
        text = str(point).strip()
        if unit == "week":
            text = text.upper()
            if text not in api.WEEK_POINTS:
                problems.append(f"trigger.periodical.point {point!r} is not a weekday")
        elif unit == "month":
            text = text.zfill(2)
            if text not in api.MONTH_POINTS:
                problems.append(f"trigger.periodical.point {point!r} is not a day of the month")
        out.append(text)
    return out


def _platform(platform: Any) -> Any:
    if isinstance(platform, str) and platform.strip().lower() != "all":
        return [platform.strip().lower()]
    if isinstance(platform, str):
        return "all"
    if isinstance(platform, list):
        return [p.strip().lower() if isinstance(p, str) else p for p in platform]
    return platform


def _push(push: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """`push` is {from, to, body: {platform, notification, options}, request_id, custom_args}."""
    out = dict(push)
    body = out.get("body")
    if isinstance(body, str):
        body = _decoded(body, "push.body", problems)
    if isinstance(body, Mapping):
        body = dict(body)
        if "platform" in body:
            body["platform"] = _platform(body["platform"])
        options = body.get("options")
        if isinstance(options, Mapping):
            body["options"] = {
                k: _integer(v) if k in _OPTION_NUMBERS else v for k, v in options.items()
            }
        elif "options" in body:
            problems.append(f"push.body.options is {type(options).__name__}, not an object")
        out["body"] = body
    elif "body" in out:
        problems.append(f"push.body is {type(body).__name__}, not an object")
    if "platform" in out:  # some examples put it beside `body` [doc/sdk]
        out["platform"] = _platform(out["platform"])
    args = out.get("custom_args")
    if isinstance(args, str):
        args = out["custom_args"] = _decoded(args, "push.custom_args", problems)
    if "custom_args" in out and not isinstance(args, Mapping):
        problems.append(f"push.custom_args is {type(args).__name__}, not an object")
    return out


def _default(path: tuple[str, ...]) -> tuple[bool, object]:
    for pattern, value in api.SERVER_DEFAULTS.items():
        if len(pattern) != len(path):
            continue
        if all(p in ("*", k) for p, k in zip(pattern, path, strict=True)):
            return True, value
    return False, None


def _edit_area(path: tuple[str, ...]) -> bool:
    """Within who gets it, what it says, or when: an added field there is an edit."""
    return any(path[: len(area)] == area for area in api.ADDED_FIELDS_ARE_EDITS)


def _project(
    remote: Mapping[str, Any], recorded: Mapping[str, Any], path: tuple[str, ...], added: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in remote.items():
        here = (*path, str(key))
        if key not in recorded:
            known, default = _default(here)
            if known and value == default:
                continue  # a server default, not an edit
            if not known and not _edit_area(here):
                added.append(".".join(here))
                continue  # a field reconcile never sent: listed, not compared
            out[key] = value  # a known field with another value than its default: an edit
            continue
        mine = recorded[key]
        both = isinstance(value, Mapping) and isinstance(mine, Mapping)
        if both and here == ("trigger",) and set(value) != set(mine):
            out[key] = dict(value)  # another trigger kind: a real difference, kept whole
        elif both:
            out[key] = _project(value, mine, here, added)
        else:
            out[key] = value
    return out
