"""Send-time and copy checks over the desired state. Pure: the clock is passed in.

`run_checks` returns one CheckResult per finding, at the level the campaign's spec (`checks:`) or
the environment (Settings.check_levels) sets, spec first; "off" drops it. The planner folds the
results for the schedules a plan touches into warnings and blockers.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from reconciler import engagelab as api
from reconciler import zones
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredSchedule, DesiredState
from reconciler.timing import Firing, device_window, firings, format_utc, parse_api_time

_SUSPECT = (*api.PLACEHOLDER_WORDS, "{{", "}}")
_PLACEHOLDER = re.compile(r"\b(" + "|".join(api.PLACEHOLDER_WORDS) + r")\b|\{\{|\}\}", re.I)


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str  # a stable id from settings.CHECK_IDS
    level: str  # "warning" | "error"
    address: str
    plan_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.address}: {self.message}"


def run_checks(
    desired: DesiredState,
    settings: Settings,
    now: datetime,
    only: Collection[str] | None = None,
) -> list[CheckResult]:
    """Every finding on the enabled, still-to-fire schedules (those in `only`, when given)."""
    spec_levels = desired.check_levels
    fires = _Firings(settings, now)
    live = [s for s in desired.schedules.values() if _will_fire(s, fires.safe(s), now)]
    chosen = [
        s for s in live if (only is None or s.address in only) and _will_fire(s, fires(s), now)
    ]
    found: list[tuple[str, DesiredSchedule, str]] = []
    for s in chosen:
        found += [(c, s, text) for c, text in _schedule_findings(s, fires(s), settings, now)]
    touched = {s.name for s in chosen}
    events = _near_in_time(
        [(s, f) for s in chosen for f in fires(s)],
        [s for s in live if s.name not in touched],
        fires,
        timedelta(minutes=settings.min_gap_minutes),
    )
    found += [("min_gap", s, text) for s, text in gap_findings(events, touched, settings)]
    results: list[CheckResult] = []
    for check, s, text in found:
        level = spec_levels.get(s.plan_id, {}).get(check) or settings.check_level(check)
        if level != "off":
            results.append(CheckResult(check, level, s.address, s.plan_id, text))
    return sorted(results, key=lambda r: (r.address, r.check, r.message))


class _Firings:
    """Firings per distinct trigger: 10,000 schedules reuse a few send times.

    `safe` spans device-local sends over UTC+14..UTC-12 without reading the tz database: a
    superset of the real span, cheap enough to sift every schedule; `real` is for the few
    schedules a check looks at.
    """

    def __init__(self, settings: Settings, now: datetime) -> None:
        self.zone, self.now = settings.site_zone, now
        self.cache: dict[tuple[str, ...], tuple[Firing, ...]] = {}
        self.by_name: dict[tuple[str, bool], tuple[Firing, ...]] = {}

    def __call__(self, s: DesiredSchedule) -> tuple[Firing, ...]:
        found = self.by_name.get((s.name, True))
        if found is None:
            found = self.by_name[(s.name, True)] = self._get(s, real=True)
        return found

    def safe(self, s: DesiredSchedule) -> tuple[Firing, ...]:
        found = self.by_name.get((s.name, False))
        if found is None:
            found = self.by_name[(s.name, False)] = self._get(s, real=False)
        return found

    def _get(self, s: DesiredSchedule, *, real: bool) -> tuple[Firing, ...]:
        trigger = s.trigger
        wall: str | None = None
        if "intelligent" in trigger:
            wall = trigger["intelligent"]["backup_time"]
            key: tuple[str, ...] = ("i", wall)
        elif "single" in trigger:
            wall = trigger["single"]["time"]
            key = ("s", wall, str(trigger["single"].get("zone_type", api.ZONE_SITE)))
        else:
            key = ("p", json.dumps(trigger, sort_keys=True))
        if not real and wall is not None and wall != "now" and key[-1] != str(api.ZONE_SITE):
            key = ("safe", *key)
        found = self.cache.get(key)
        if found is None:
            if wall == "now":
                # backup_time "now" reaches every zone at the instant of the apply: checked at
                # that instant (the applier asks again just before the call).
                at = self.now.astimezone(UTC).replace(tzinfo=None)
                found = (Firing(at, self.now, self.now, device_local=False),)
            elif key[0] == "safe":
                assert wall is not None
                at = _wall(wall)
                found = (Firing(at, *device_window(at), device_local=True),)
            else:
                found = firings(trigger, self.zone, self.now)
            self.cache[key] = found
        return found


def _will_fire(s: DesiredSchedule, fires: tuple[Firing, ...], now: datetime) -> bool:
    if s.body.get("enabled", True) is False:
        return False
    return not fires or fires[-1].last >= now  # backup_time "now" fires at `now`


Fired = list[tuple[DesiredSchedule, Firing]]


def _near_in_time(
    touched: Fired, others: list[DesiredSchedule], fires: _Firings, gap: timedelta
) -> Fired:
    """The touched firings plus the others' that may fall within the gap of one of them."""
    if not touched:
        return []
    lo = min(f.first for _, f in touched) - gap
    hi = max(f.last for _, f in touched) + gap
    near = [s for s in others if any(f.last >= lo and f.first <= hi for f in fires.safe(s))]
    return touched + [(s, f) for s in near for f in fires(s)]


def immediate_findings(
    desired: DesiredState, settings: Settings, at: datetime, address: str
) -> str | None:
    """The error-level quiet-hours and min_gap findings of a `backup_time: "now"` message if it
    were sent at `at`; None when it may go. The applier asks this just before the call."""
    found = [
        r
        for r in run_checks(desired, settings, at, only={address})
        if r.level == "error" and r.check in ("quiet_hours", "min_gap")
    ]
    return "; ".join(f"{r.check}: {r.message}" for r in found) or None


def _schedule_findings(
    s: DesiredSchedule, fires: tuple[Firing, ...], settings: Settings, now: datetime
) -> Iterator[tuple[str, str]]:
    if (passed := backup_passed(s.trigger, now)) is not None:
        yield "backup_passed", passed
    if fires and (quiet := quiet_hours(s.trigger, fires[0], settings)) is not None:
        yield "quiet_hours", quiet
    yield from copy_findings(s.copy, s.body["push"]["body"]["platform"])


# --- send time ------------------------------------------------------------------------------


def device_wall(trigger: Mapping[str, Any]) -> tuple[str, datetime] | None:
    """("backup_time" | "time", wall) of a one-shot device-local trigger, else None."""
    if "intelligent" in trigger and trigger["intelligent"]["backup_time"] != "now":
        return "backup_time", _wall(trigger["intelligent"]["backup_time"])
    if "single" in trigger and trigger["single"].get("zone_type") == api.ZONE_DEVICE:
        return "time", _wall(trigger["single"]["time"])
    return None


@lru_cache(maxsize=4096)
def _wall(text: str) -> datetime:
    return parse_api_time(text)


def passed_offsets(wall: datetime, now: datetime) -> tuple[list[zones.ZoneOffset], int]:
    """(real offsets where a device-local wall time has passed at `now`, offsets that day)."""
    table = zones.offsets_on(wall.date())
    naive_utc = wall.replace(tzinfo=UTC)
    return [o for o in table if naive_utc - o.offset <= now], len(table)


def backup_passed(trigger: Mapping[str, Any], now: datetime) -> str | None:
    """Partly passed only: passed everywhere is the planner's `expired` (or a gate blocker)."""
    found = device_wall(trigger)
    if found is None:
        return None
    field, wall = found
    passed, total = passed_offsets(wall, now)
    if not passed or len(passed) == total:
        return None
    return (
        f"{field} {wall:%Y-%m-%d %H:%M} device time has already passed in "
        f"{zones.summarize(passed)}, {len(passed)} of {total} UTC offsets: devices there get it "
        "late or never; pick a later time"
    )


@lru_cache(maxsize=64)
def parse_hhmm(text: str) -> time:
    return datetime.strptime(text, "%H:%M").time()


def in_quiet(at: time, start: time, end: time) -> bool:
    """Inside [start, end), which may wrap midnight (21:00-08:00)."""
    if start <= end:
        return start <= at < end
    return at >= start or at < end


def quiet_hours(trigger: Mapping[str, Any], fire: Firing, settings: Settings) -> str | None:
    start, end = parse_hhmm(settings.quiet_hours_start), parse_hhmm(settings.quiet_hours_end)
    span = f"quiet hours ({settings.quiet_hours_start}-{settings.quiet_hours_end} local)"
    if fire.device_local:
        if not in_quiet(fire.wall.time(), start, end):
            return None
        at = f"{fire.wall:%H:%M} device time"
        if "intelligent" in trigger:
            return (
                f"backup_time {at} is inside {span}: users with no activity history get it "
                "then; users with history get it at their own best moment"
            )
        return f"{at} is inside {span} in every time zone"
    table = zones.offsets_on(fire.first.date())
    quiet = [in_quiet((fire.first + o.offset).time(), start, end) for o in table]
    if not any(quiet):
        return None
    runs: list[list[zones.ZoneOffset]] = []
    for offset, hit, previous in zip(table, quiet, [False, *quiet], strict=False):
        if hit:
            if not previous:
                runs.append([])
            runs[-1].append(offset)
    where = "; ".join(
        f"{_local(fire.first, run[-1])}-{_local(fire.first, run[0])} local in "
        f"{zones.summarize(run)}"
        for run in runs
    )
    if "intelligent" in trigger:  # backup_time "now": every zone at the apply's instant
        return (
            f"backup_time now sends when applied ({format_utc(fire.first)}), inside {span} "
            f"for users in: {where}"
        )
    return (
        f"fires at {format_utc(fire.first)} ({fire.wall:%H:%M} site time), inside {span} "
        f"for users in: {where}"
    )


def _local(instant: datetime, offset: zones.ZoneOffset) -> str:
    return f"{instant + offset.offset:%H:%M}"


# --- copy -----------------------------------------------------------------------------------


def copy_findings(
    copy: Mapping[str, Mapping[str, str]], platform: str | list[str]
) -> Iterator[tuple[str, str]]:
    words: list[str] = []
    untitled: list[str] = []
    long: list[str] = []
    ios = platform == "all" or "ios" in platform
    # One search over all the copy first: almost every message is clean (10,000 of them).
    joined = "\n".join(t for f in copy.values() for t in f.values()).lower()
    suspect = any(word in joined for word in _SUSPECT) and _PLACEHOLDER.search(joined)
    for lang in sorted(copy):
        fields = copy[lang]
        if not fields.get("title", "").strip():
            untitled.append(lang)
        for key in sorted(fields):
            text = fields[key]
            if suspect and (match := _PLACEHOLDER.search(text)) is not None:
                words.append(f"{lang} {key} {match.group(0)!r}")
            limit = _limit(key, ios) if len(text) > api.COPY_TITLE_MAX else None
            if limit and len(text) > limit:
                long.append(f"{lang} {key} {len(text)} > {limit}")
    if words:
        yield (
            "placeholder_copy",
            f"placeholder or test copy ({', '.join(words)}): vendors may block messages that "
            "look like tests; finish the copy",
        )
    if untitled:
        yield (
            "empty_title",
            f"no title in {', '.join(untitled)}: devices show the app name instead",
        )
    if long:
        yield (
            "copy_length",
            f"longer than common devices display ({', '.join(long)} characters): the end is "
            "cut off",
        )


def _limit(key: str, ios: bool) -> int | None:
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "title":
        return api.COPY_TITLE_MAX
    if leaf != "alert":
        return None
    if key.startswith("ios.") or (key == "alert" and ios):
        return api.COPY_ALERT_MAX_IOS
    return api.COPY_ALERT_MAX_ANDROID


# --- minimum gap ----------------------------------------------------------------------------

MAX_PARTNERS = 20  # per schedule and audience key: enough to name the nearest, and bounded


def audience_keys(to: Any) -> frozenset[str]:
    """Who a `to` reaches, as keys; "all" overlaps everything. tag_not only narrows: ignored."""
    if to == "all":
        return frozenset({"all"})
    keys = {f"tag {t}" for kind in ("tag", "tag_and") for t in to.get(kind, ())}
    keys |= {f"alias {a}" for a in to.get("alias", ())}
    keys |= {f"registration id {r}" for r in to.get("registration_id", ())}
    if "seg" in to:
        keys.add(f"segment {to['seg']['id']}")
    return frozenset(keys)


@dataclass(frozen=True, slots=True)
class _Event:
    key: datetime  # naive: the device wall time, or the UTC instant of a site-time send
    device: bool
    schedule: DesiredSchedule
    keys: frozenset[str]


class _Index:
    """Events by audience key ("*": every event), each list sorted by time, for range lookups."""

    def __init__(self, events: list[_Event]) -> None:
        self.lists: dict[tuple[bool, str], list[_Event]] = {}
        for event in sorted(events, key=lambda e: (e.key, e.schedule.name)):
            for key in (*event.keys, "*"):
                self.lists.setdefault((event.device, key), []).append(event)
        self.times = {k: [e.key for e in v] for k, v in self.lists.items()}

    def near(self, device: bool, key: str, lo: datetime, hi: datetime) -> list[_Event]:
        times = self.times.get((device, key))
        if not times:
            return []
        start = bisect_left(times, lo)
        return self.lists[(device, key)][start : bisect_right(times, hi, lo=start)][:MAX_PARTNERS]


def gap_findings(
    fired: list[tuple[DesiredSchedule, Firing]], touched: Collection[str], settings: Settings
) -> list[tuple[DesiredSchedule, str]]:
    """Pairs of sends to overlapping audiences closer than the minimum gap; a pair is reported
    once, on a touched schedule (the later name when both are)."""
    gap = timedelta(minutes=settings.min_gap_minutes)
    if gap <= timedelta(0):
        return []
    events = [
        _Event(
            f.wall if f.device_local else f.first.astimezone(UTC).replace(tzinfo=None),
            f.device_local,
            s,
            audience_keys(s.body["push"]["to"]),
        )
        for s, f in fired
    ]
    index = _Index(events)
    out: list[tuple[DesiredSchedule, str]] = []
    seen: set[tuple[str, str]] = set()
    for event in events:
        if event.schedule.name not in touched:
            continue
        best: tuple[timedelta, str] | None = None
        count = 0
        for partner, distance, how in _partners(event, index, gap):
            other = partner.schedule.name
            pair = (event.schedule.name, other)
            if other == event.schedule.name or pair in seen:
                continue
            if other in touched and other > event.schedule.name:
                continue
            seen.add(pair)
            count += 1
            shared = sorted(event.keys & partner.keys)
            whom = f"both to {shared[0]}" if shared else "one of them to all"
            text = f"{_minutes(distance)} of {partner.schedule.address}{how} ({whom})"
            if best is None or distance < best[0]:
                best = (distance, text)
        if best is not None:
            more = f"; {count - 1} more within the gap" if count > 1 else ""
            out.append(
                (
                    event.schedule,
                    f"sends within {best[1]}, closer than the minimum gap of "
                    f"{settings.min_gap_minutes} min: users get two pushes{more}",
                )
            )
    return out


def _partners(
    event: _Event, index: _Index, gap: timedelta
) -> Iterator[tuple[_Event, timedelta, str]]:
    keys = ("*",) if "all" in event.keys else (*event.keys, "all")
    for key in keys:
        # Same kind: device-local walls compare directly (one zone per user); instants too.
        for p in index.near(event.device, key, event.key - gap + _TICK, event.key + gap - _TICK):
            yield p, abs(p.key - event.key), ""
        table = zones.offsets_on(event.key.date())
        earliest, latest = table[0].offset, table[-1].offset
        if event.device:  # site-time partners reached while the wall time sweeps the world
            lo, hi = event.key - earliest - gap, event.key - latest + gap
        else:
            lo, hi = event.key + latest - gap, event.key + earliest + gap
        for p in index.near(not event.device, key, lo, hi):
            wall, instant = (event.key, p.key) if event.device else (p.key, event.key)
            offset = min(table, key=lambda o: abs(wall - o.offset - instant))
            distance = abs(wall - offset.offset - instant)
            if distance < gap:
                yield p, distance, f" for users in {zones.summarize([offset], names=1)}"


_TICK = timedelta(microseconds=1)


def _minutes(distance: timedelta) -> str:
    return f"{int(distance.total_seconds() // 60)} min"
