"""Views of the firing timeline (checks.timeline): text, a mermaid gantt, markdown, JSON. Pure."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from reconciler.checks.timeline import TimelineEntry
from reconciler.timing import format_utc

FORMATS = ("text", "markdown", "json")
FORMAT_VERSION = 1
MAX_TASKS = 300  # a Mermaid chart beyond this is unreadable and bloats a PR comment
_MERMAID_UNSAFE = re.compile(r"[:#;\n\r\"`<>{}\[\]]+")
_MERMAID_TIME = "%Y-%m-%d %H:%M"


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


def render(entries: Sequence[TimelineEntry], now: datetime, fmt: str) -> str:
    """One of FORMATS."""
    if fmt == "json":
        return to_json(entries, now)
    if fmt == "markdown":
        return to_markdown(entries, now)
    return to_text(entries, now)
