"""Every message of every campaign on a UTC time axis: the model and its text, markdown (a Mermaid
gantt chart, drawn natively by GitHub and GitLab) and JSON views. Pure.

A device-local send is a bar from the first real zone that reaches it to the last; a site-time
send is a milestone; `backup_time: now` is a milestone at `now` ("when applied"); a periodical
send shows its next occurrences.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler.settings import Settings
from reconciler.spec.desired import DesiredSchedule, DesiredState
from reconciler.timing import firings

OCCURRENCES = 3  # periodical: how many upcoming occurrences are drawn


class TimelineEntry(BaseModel):
    """One firing of one message; `start`/`end` in UTC (equal for a site-time milestone)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign: str
    address: str
    name: str
    kind: str  # intelligent | single | periodical
    occurrence: int = 1  # 1-based, for periodical sends
    start: datetime
    end: datetime
    device_local: bool = False
    at_apply: bool = False  # backup_time "now": start == end == the plan's `now`
    when: str  # the send time as the spec says it
    flags: tuple[str, ...] = ()  # check ids that fired on this message

    @property
    def milestone(self) -> bool:
        return self.start == self.end


def build_timeline(
    desired: DesiredState,
    settings: Settings,
    now: datetime,
    *,
    campaigns: Collection[str] | None = None,
    flags: Mapping[str, Collection[str]] | None = None,
) -> tuple[TimelineEntry, ...]:
    """Entries for the enabled schedules (of `campaigns`, when given), sorted by campaign, time."""
    entries: list[TimelineEntry] = []
    for s in desired.schedules.values():
        if (campaigns is not None and s.plan_id not in campaigns) or not s.body.get("enabled"):
            continue
        marks = tuple(sorted((flags or {}).get(s.address, ())))
        entries += _entries(s, settings, now, marks)
    return tuple(sorted(entries, key=lambda e: (e.campaign, e.start, e.name, e.occurrence)))


def _entries(
    s: DesiredSchedule, settings: Settings, now: datetime, flags: tuple[str, ...]
) -> list[TimelineEntry]:
    common: dict[str, Any] = {
        "campaign": s.plan_id,
        "address": s.address,
        "name": s.name,
        "kind": s.trigger_kind,
    }
    fires = firings(s.trigger, settings.site_zone, now, limit=OCCURRENCES)
    if not fires:
        return [
            TimelineEntry(
                **common, start=now, end=now, at_apply=True, when="backup_time now", flags=flags
            )
        ]
    zone = "device time" if fires[0].device_local else f"site time ({settings.site_time_zone})"
    field = {"intelligent": "backup_time", "single": "time"}.get(s.trigger_kind, "occurrence")
    return [
        TimelineEntry(
            **common,
            occurrence=n,
            start=f.first,
            end=f.last,
            device_local=f.device_local,
            when=f"{field} {f.wall:%Y-%m-%d %H:%M} {zone}",
            flags=flags,
        )
        for n, f in enumerate(fires, start=1)
    ]


# --- views ----------------------------------------------------------------------------------
