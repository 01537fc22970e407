"""The world's real UTC offsets on a given day, from the tz database (DST aware, cached by day).

Pure in effect: it only reads the installed tz database (tzdata or the system's), once per day
asked. "Real zones" are the canonical inhabited zones of zone1970.tab (Pacific/Kiritimati at
UTC+14 is the earliest, Pacific/Niue at UTC-11 the latest). The tz database's Etc/GMT+12
(Baker Island, uninhabited) is not one: the *display* uses real zones,
while the planner's gates keep the conservative UTC+14..UTC-12 bounds of reconciler.timing.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

SAFE_EARLIEST = timedelta(hours=14)  # used when no tz database can be read
SAFE_LATEST = timedelta(hours=-12)
_REGIONS = (
    "Africa/",
    "America/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
)
_SYSTEM_TAB = Path("/usr/share/zoneinfo/zone1970.tab")


@dataclass(frozen=True, slots=True)
class ZoneOffset:
    """One UTC offset in effect on a day, and the canonical zones that use it."""

    offset: timedelta
    zones: tuple[str, ...]

    @property
    def label(self) -> str:
        return format_offset(self.offset)


def format_offset(offset: timedelta) -> str:
    """`UTC+14`, `UTC-11`, `UTC+5:30`, `UTC+5:45`, `UTC+0`."""
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def city(zone: str) -> str:
    """`America/Argentina/Buenos_Aires` -> `Buenos Aires`."""
    return zone.rsplit("/", 1)[-1].replace("_", " ")


@lru_cache(maxsize=1)
def canonical_zones() -> tuple[str, ...]:
    """Inhabited canonical zones: zone1970.tab when readable, else Region/City names."""
    text = _zone_tab()
    if text is not None:
        names = {
            line.split("\t")[2]
            for line in text.splitlines()
            if line and not line.startswith("#") and line.count("\t") >= 2
        }
    else:
        names = {z for z in available_timezones() if z.startswith(_REGIONS)}
    return tuple(sorted(z for z in names if _loadable(z)))


@lru_cache(maxsize=1)
def _zone_infos() -> tuple[tuple[str, ZoneInfo], ...]:
    # ZoneInfo keeps only a few strong references: without these, every day asked re-reads
    # some 300 zone files (measured: 1.7 s for 200 days).
    return tuple((zone, ZoneInfo(zone)) for zone in canonical_zones())


def _zone_tab() -> str | None:
    try:
        resource = importlib.resources.files("tzdata").joinpath("zoneinfo/zone1970.tab")
        return resource.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        pass
    try:
        return _SYSTEM_TAB.read_text(encoding="utf-8")
    except OSError:
        return None


def _loadable(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@lru_cache(maxsize=1024)
def offsets_on(day: date) -> tuple[ZoneOffset, ...]:
    """Distinct offsets in effect at local noon of `day`, earliest zone (largest offset) first."""
    noon = datetime.combine(day, time(12))
    by_offset: dict[timedelta, list[str]] = {}
    for zone, info in _zone_infos():
        offset = noon.replace(tzinfo=info).utcoffset()
        if offset is not None:
            by_offset.setdefault(offset, []).append(zone)
    return tuple(
        ZoneOffset(offset, tuple(sorted(by_offset[offset])))
        for offset in sorted(by_offset, reverse=True)
    )


def extremes(day: date) -> tuple[timedelta, timedelta]:
    """(earliest offset, latest offset) of the real zones on `day`; the safe bounds otherwise."""
    table = offsets_on(day)
    if not table:
        return SAFE_EARLIEST, SAFE_LATEST
    return table[0].offset, table[-1].offset


def summarize(offsets: Sequence[ZoneOffset], names: int = 3) -> str:
    """`UTC+13..UTC+14 (Apia, Kiritimati, Tongatapu, …)`, or one offset: `UTC+14 (Kiritimati)`."""
    if not offsets:
        return "no time zone"
    ordered = sorted(offsets, key=lambda o: o.offset)
    span = ordered[0].label
    if len(ordered) > 1:
        span += f"..{ordered[-1].label}"
    cities = _representatives(reversed(ordered), names)
    more = sum(len(o.zones) for o in ordered) > len(cities)
    return f"{span} ({', '.join(cities)}{', …' if more else ''})"


def _representatives(offsets: Iterable[ZoneOffset], names: int) -> list[str]:
    """One city per offset (earliest first), then more, until `names` are chosen."""
    pools = [list(o.zones) for o in offsets]
    chosen: list[str] = []
    depth = 0
    while len(chosen) < names and any(depth < len(p) for p in pools):
        for pool in pools:
            if depth < len(pool) and len(chosen) < names:
                chosen.append(city(pool[depth]))
        depth += 1
    return chosen
