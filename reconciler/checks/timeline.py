"""Every message of every campaign on a UTC time axis: the model and its text, markdown (a Mermaid
gantt chart, drawn natively by GitHub and GitLab) and JSON views. Pure.

A device-local send is a bar from the first real zone that reaches it to the last; a site-time
send is a milestone; `backup_time: now` is a milestone at `now` ("when applied"); a periodical
send shows its next occurrences.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler.settings import Settings
from reconciler.spec.desired import DesiredSchedule, DesiredState
from reconciler.timing import firings, format_utc

FORMAT_VERSION = 1
OCCURRENCES = 3  # periodical: how many upcoming occurrences are drawn
MAX_TASKS = 300  # a Mermaid chart beyond this is unreadable and bloats a PR comment
_MERMAID_UNSAFE = re.compile(r"[:#;\n\r\"`<>{}\[\]]+")
_MERMAID_TIME = "%Y-%m-%d %H:%M"


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


def _label(entry: TimelineEntry) -> str:
    return entry.name + (f" ({entry.occurrence})" if entry.kind == "periodical" else "")


def to_text(entries: Sequence[TimelineEntry], now: datetime) -> str:
    lines = [f"Timeline in UTC, as of {format_utc(now)}"]
    width = max((len(_label(e)) for e in entries), default=0)
    campaign = None
    for e in entries:
        if e.campaign != campaign:
            campaign = e.campaign
            lines += ["", campaign]
        if e.at_apply:
            span = "when applied (users with no activity history)"
        elif e.milestone:
            span = format_utc(e.start)
        else:
            span = f"{format_utc(e.start)} .. {format_utc(e.end)}"
        flags = f"  ! {', '.join(e.flags)}" if e.flags else ""
        lines.append(f"  {_label(e):<{width}}  {span}  [{e.when}]{flags}")
    if not entries:
        lines.append("(no messages)")
    return "\n".join(lines) + "\n"


def mermaid_safe(text: str) -> str:
    """Mermaid gantt reads `:` `#` `;` (and brackets, quotes) as syntax: replace them."""
    return _MERMAID_UNSAFE.sub(" ", text).strip() or "-"


def to_mermaid(entries: Sequence[TimelineEntry], now: datetime) -> str:
    """A `gantt` chart: one section per campaign, one task per firing (milestones for instants)."""
    lines = [
        "gantt",
        f"    title Send times in UTC (as of {now:%Y-%m-%d %H.%M})",
        "    dateFormat YYYY-MM-DD HH:mm",
        "    axisFormat %m-%d %H:%M",
        "    todayMarker off",
    ]
    campaign = None
    for n, e in enumerate(entries[:MAX_TASKS], start=1):
        if e.campaign != campaign:
            campaign = e.campaign
            lines.append(f"    section {mermaid_safe(campaign)}")
        tags = ["crit"] if e.flags else []
        if e.milestone:
            tags.append("milestone")
        start = f"{e.start:{_MERMAID_TIME}}"
        end = "0m" if e.milestone else f"{e.end:{_MERMAID_TIME}}"
        lines.append(f"    {mermaid_safe(_label(e))} :{', '.join([*tags, f't{n}', start, end])}")
    return "\n".join(lines) + "\n"


def to_markdown(entries: Sequence[TimelineEntry], now: datetime) -> str:
    out = ["### reconcile timeline", "", "```mermaid", to_mermaid(entries, now).rstrip(), "```"]
    if len(entries) > MAX_TASKS:
        out += ["", f"Only the first {MAX_TASKS} of {len(entries)} firings are drawn."]
    return "\n".join(out) + "\n"


def to_json(entries: Iterable[TimelineEntry], now: datetime) -> str:
    doc = {
        "format_version": FORMAT_VERSION,
        "now": now.isoformat(),
        "entries": [e.model_dump(mode="json") for e in entries],
    }
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
