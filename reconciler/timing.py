"""When a schedule fires, as UTC instants, from its API trigger. Pure: the clock is passed in.

Smart Push and device-time sends are read in each device's own zone, so one wall time is a window
across the world: it starts when the earliest zone (UTC+14) reaches it and ends when the latest
(UTC-12) does. Site-time sends are one instant in the environment's site time zone.
`fire_window` keeps those conservative bounds for the planner's gates; `firings` gives what people
should see: the span over the real, inhabited zones of that day (reconciler.zones).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from reconciler import zones
from reconciler.engagelab import CLOCK_FORMAT, SMART_NOW_SPREAD, TIME_FORMAT, WEEK_POINTS, ZONE_SITE

EARLIEST_UTC_OFFSET = timedelta(hours=14)  # Line Islands, Kiribati
LATEST_UTC_OFFSET = timedelta(hours=-12)  # Baker Island; the last place a wall time is reached


@lru_cache(maxsize=8192)  # 10,000 schedules reuse a few send times; datetimes are immutable
def parse_api_time(text: str) -> datetime:
    """Parse `yyyy-MM-dd HH:mm:ss` exactly (naive wall time); ValueError otherwise."""
    parsed = datetime.strptime(text, TIME_FORMAT)
    if parsed.strftime(TIME_FORMAT) != text:  # strptime accepts "2025-1-2 3:4:5"
        raise ValueError(f"{text!r} is not in the form YYYY-MM-DD HH:MM:SS")
    return parsed


@lru_cache(maxsize=1024)
def parse_clock(text: str) -> time:
    parsed = datetime.strptime(text, CLOCK_FORMAT)
    if parsed.strftime(CLOCK_FORMAT) != text:
        raise ValueError(f"{text!r} is not in the form HH:MM:SS")
    return parsed.time()


def format_utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=zone).astimezone(UTC)


def device_window(wall: datetime) -> tuple[datetime, datetime]:
    """The UTC span over which a device-local wall time is reached somewhere on Earth."""
    naive_utc = wall.replace(tzinfo=UTC)
    return naive_utc - EARLIEST_UTC_OFFSET, naive_utc - LATEST_UTC_OFFSET


@dataclass(frozen=True, slots=True)
class FireWindow:
    """When a trigger fires. `immediate` means "as soon as it is created" (backup_time: now)."""

    kind: str
    first: datetime | None  # UTC; None only when immediate
    last: datetime | None  # UTC; None only when immediate
    immediate: bool = False
    device_local: bool = False

    def has_fired(self, now: datetime, applied_at: datetime | None) -> bool:
        """True once anything may have gone out to anyone."""
        if self.immediate:
            return applied_at is not None
        return self.first is not None and now >= self.first

    def is_over(self, now: datetime, applied_at: datetime | None) -> bool:
        """True once every occurrence, in every zone, is in the past."""
        if self.immediate:
            # Users with activity history get a "now" Smart Push at their own best moment, so it
            # keeps sending after the apply; until then a removal must delete, not forget.
            return applied_at is not None and now >= applied_at + SMART_NOW_SPREAD
        return self.last is not None and now >= self.last


def fire_window(
    trigger: Mapping[str, Any],
    site_zone: ZoneInfo,
    *,
    now: datetime | None = None,
    smart_day: bool = False,
) -> FireWindow:
    """The firing window of an API-form trigger (`{"intelligent": {...}}` etc.).

    For periodical triggers `first` is the next occurrence at or after `now` (or the first one when
    `now` is None) and `last` the final one. With `smart_day`, a Smart Push spans the whole local
    day of its backup_time (engagelab.SMART_WINDOW [ours]): users with activity history get it
    "at their own best moment", and nothing says that moment is never before backup_time.
    """
    if "intelligent" in trigger:
        backup = trigger["intelligent"]["backup_time"]
        if backup == "now":
            return FireWindow("intelligent", None, None, immediate=True, device_local=True)
        wall = parse_api_time(backup)
        if smart_day:
            day = datetime.combine(wall.date(), time())
            first, last = device_window(day)[0], device_window(day + timedelta(days=1))[1]
        else:
            first, last = device_window(wall)
        return FireWindow("intelligent", first, last, device_local=True)
    if "single" in trigger:
        single = trigger["single"]
        wall = parse_api_time(single["time"])
        if single.get("zone_type", ZONE_SITE) == ZONE_SITE:
            instant = wall_to_utc(wall, site_zone)
            return FireWindow("single", instant, instant)
        first, last = device_window(wall)
        return FireWindow("single", first, last, device_local=True)
    if "periodical" in trigger:
        per = trigger["periodical"]
        device = per.get("zone_type", ZONE_SITE) != ZONE_SITE
        walls = list(periodical_walls(per))
        if not walls:
            return FireWindow("periodical", None, None, device_local=device)
        spans = [device_window(w) if device else (wall_to_utc(w, site_zone),) * 2 for w in walls]
        upcoming = [s for s in spans if now is None or s[1] > now]
        first = (upcoming[0] if upcoming else spans[-1])[0]
        return FireWindow("periodical", first, spans[-1][1], device_local=device)
    raise ValueError(f"unknown trigger kind: {sorted(trigger)}")


def periodical_walls(per: Mapping[str, Any], limit: int = 5000) -> Iterator[datetime]:
    """Every wall-clock occurrence of a periodical trigger between `start` and `end`."""
    start = parse_api_time(per["start"])
    end = parse_api_time(per["end"])
    at = parse_clock(per["time"])
    # [v3] time_unit and point are case-insensitive ("WEEK", "Mon"): a state may hold what an
    # older reconcile adopted from EngageLab as it was (remote_shape normalises new reads).
    unit = str(per["time_unit"]).strip().lower()
    freq = max(1, int(per.get("frequency", 1)))
    raw = per.get("point") or []
    points = [str(p).strip().upper() if unit == "week" else str(p).strip().zfill(2) for p in raw]
    count = 0
    for day in _periodical_days(start.date(), end.date(), unit, freq, points):
        wall = datetime.combine(day, at)
        if start <= wall <= end:
            yield wall
            count += 1
            if count >= limit:
                return


def _periodical_days(
    first: date, last: date, unit: str, freq: int, points: list[str]
) -> Iterator[date]:
    if unit == "day":
        day = first
        while day <= last:
            yield day
            day += timedelta(days=freq)
    elif unit == "week":
        wanted = {WEEK_POINTS.index(p) for p in points} if points else {first.weekday()}
        week_start = first - timedelta(days=first.weekday())
        while week_start <= last:
            for offset in range(7):
                day = week_start + timedelta(days=offset)
                if offset in wanted and first <= day <= last:
                    yield day
            week_start += timedelta(weeks=freq)
    elif unit == "month":
        wanted_days = sorted(int(p) for p in points) if points else [first.day]
        year, month = first.year, first.month
        while date(year, month, 1) <= last:
            days_in_month = calendar.monthrange(year, month)[1]
            for dom in wanted_days:
                if dom <= days_in_month:
                    day = date(year, month, dom)
                    if first <= day <= last:
                        yield day
            month += freq
            year += (month - 1) // 12
            month = (month - 1) % 12 + 1
    else:
        raise ValueError(f"unknown time_unit {unit!r}")


# --- real zones: what people should see (the gates above keep the conservative bounds) -----------


@dataclass(frozen=True, slots=True)
class Firing:
    """One occurrence as it really reaches people: UTC span over the real zones (or one instant)."""

    wall: datetime  # the wall time as written (device-local or site)
    first: datetime  # UTC
    last: datetime  # UTC; == first for a site-time send
    device_local: bool


@lru_cache(maxsize=4096)
def real_device_window(wall: datetime) -> tuple[datetime, datetime]:
    """The UTC span over which the inhabited zones reach a device-local wall time (DST aware)."""
    earliest, latest = zones.extremes(wall.date())
    naive_utc = wall.replace(tzinfo=UTC)
    return naive_utc - earliest, naive_utc - latest


def firing(wall: datetime, device_local: bool, site_zone: ZoneInfo) -> Firing:
    if device_local:
        return Firing(wall, *real_device_window(wall), device_local=True)
    instant = wall_to_utc(wall, site_zone)
    return Firing(wall, instant, instant, device_local=False)


def firings(
    trigger: Mapping[str, Any], site_zone: ZoneInfo, now: datetime, limit: int = 3
) -> tuple[Firing, ...]:
    """The next `limit` occurrences not yet over at `now` (the last one when all are over);
    empty for `backup_time: now`, which fires when applied."""
    if "intelligent" in trigger:
        backup = trigger["intelligent"]["backup_time"]
        return () if backup == "now" else (firing(parse_api_time(backup), True, site_zone),)
    if "single" in trigger:
        single = trigger["single"]
        device = single.get("zone_type", ZONE_SITE) != ZONE_SITE
        return (firing(parse_api_time(single["time"]), device, site_zone),)
    per = trigger["periodical"]
    device = per.get("zone_type", ZONE_SITE) != ZONE_SITE
    out: list[Firing] = []
    last: Firing | None = None
    for wall in periodical_walls(per):
        last = firing(wall, device, site_zone)
        if last.last > now:
            out.append(last)
            if len(out) >= limit:
                break
    return tuple(out) if out or last is None else (last,)


def offset_of(fire: Firing, at: datetime) -> str:
    """The zone label for one end of a device-local span: `UTC+14`."""
    return zones.format_offset(fire.wall.replace(tzinfo=UTC) - at)


def describe_firing(fire: Firing) -> str:
    """`2025-12-27 19:00 UTC (UTC+14) .. 2025-12-28 20:00 UTC (UTC-11), device time`."""
    if not fire.device_local:
        return format_utc(fire.first)
    return (
        f"{format_utc(fire.first)} ({offset_of(fire, fire.first)}) .. "
        f"{format_utc(fire.last)} ({offset_of(fire, fire.last)}), device time"
    )


def gate_start(
    trigger: Mapping[str, Any], site_zone: ZoneInfo, now: datetime, *, smart_day: bool = False
) -> datetime | None:
    """The instant the send-time gates measure from; None for an immediate send.

    The window's start, except for a periodical trigger: there it is the next occurrence that
    has not begun anywhere. One in progress is left to run (a device-time occurrence spans about
    26 hours, so daily ones overlap and one is always in progress somewhere); an edit changes
    the coming occurrences.
    """
    win = fire_window(trigger, site_zone, now=now, smart_day=smart_day)
    if win.immediate:
        return None
    if win.kind != "periodical":
        return win.first
    per = trigger["periodical"]
    device = per.get("zone_type", ZONE_SITE) != ZONE_SITE
    for wall in periodical_walls(per):
        start = device_window(wall)[0] if device else wall_to_utc(wall, site_zone)
        if start > now:
            return start
    return None
