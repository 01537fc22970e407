"""The firing timeline (checks.timeline) and its views (views.timeline), the gantt checked
structurally."""

from __future__ import annotations

import json
from datetime import datetime

from reconciler.checks.timeline import build_timeline
from reconciler.settings import Settings
from reconciler.views.timeline import (
    MAX_TASKS,
    mermaid_safe,
    to_json,
    to_markdown,
    to_mermaid,
    to_text,
)
from tests.support.plans import NOW, desired, dplan, sched

WEEKLY = {
    "periodical": {
        "start": "2025-12-01 00:00:00",
        "end": "2026-01-31 00:00:00",
        "time": "18:00:00",
        "time_unit": "week",
        "point": ["FRI"],
        "frequency": 1,
        "zone_type": 2,
    }
}


def corpus() -> list[tuple[str, str]]:
    state = desired(
        [
            sched("reminder", backup="2025-12-28 09:00:00"),
            sched("now_send", backup="now"),
            sched("site", plan="spring", trigger={"single": {"time": "2026-03-20 10:00:00"}}),
            sched("digest", plan="spring", trigger=WEEKLY),
            sched("off", plan="spring", enabled=False),
        ],
        plans=[dplan("promo"), dplan("spring")],
    )
    entries = build_timeline(state, Settings(site_time_zone="Europe/Paris"), NOW)
    return parse(to_mermaid(entries, NOW))


def parse(chart: str) -> list[tuple[str, str]]:
    """(section, task line) pairs; checks the header and that every task line is well formed."""
    lines = chart.splitlines()
    assert lines[0] == "gantt"
    assert "    dateFormat YYYY-MM-DD HH:mm" in lines
    section = ""
    tasks: list[tuple[str, str]] = []
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("section "):
            section = stripped.removeprefix("section ")
        elif " :" in stripped:
            name, _, meta = stripped.partition(" :")
            assert ":" not in name and "#" not in name and ";" not in name
            tasks.append((section, f"{name} :{meta}"))
    return tasks


def task(tasks: list[tuple[str, str]], name: str) -> tuple[str, list[str]]:
    (found,) = [(sec, line) for sec, line in tasks if line.split(" :")[0] == name]
    return found[0], [part.strip() for part in found[1].split(" :", 1)[1].split(",")]


def test_every_enabled_message_appears_in_its_campaign_section_with_its_dates() -> None:
    tasks = corpus()
    section, meta = task(tasks, "reminder")
    assert section == "promo"
    assert meta[-2:] == ["2025-12-27 19:00", "2025-12-28 20:00"]  # UTC+14 .. UTC-11
    section, meta = task(tasks, "site")
    assert section == "spring"
    assert "milestone" in meta and meta[-2:] == ["2026-03-20 09:00", "0m"]  # Paris is UTC+1
    section, meta = task(tasks, "now_send")
    assert section == "promo"
    assert "milestone" in meta and meta[-2:] == ["2025-12-01 09:00", "0m"]  # at apply: now
    digest = [task(tasks, f"digest ({n})") for n in (1, 2, 3)]
    assert [sec for sec, _ in digest] == ["spring"] * 3
    assert [m[-2] for _, m in digest] == [
        "2025-12-05 04:00",
        "2025-12-12 04:00",
        "2025-12-19 04:00",
    ]
    assert not any(line.startswith("off ") for _, line in tasks)
    assert len({line.split(",")[-3] for _, line in tasks}) == len(tasks)  # unique task ids


def test_flagged_messages_are_critical() -> None:
    state = desired([sched("late", backup="2025-12-10 23:30:00")])
    entries = build_timeline(state, Settings(), NOW, flags={"schedule.late": {"quiet_hours"}})
    _, meta = task(parse(to_mermaid(entries, NOW)), "late")
    assert meta[0] == "crit"
    assert entries[0].flags == ("quiet_hours",)
    assert "! quiet_hours" in to_text(entries, NOW)


def test_campaign_filter_and_escaping() -> None:
    state = desired([sched("a"), sched("b", plan="other")], plans=[dplan("promo"), dplan("other")])
    entries = build_timeline(state, Settings(), NOW, campaigns={"other"})
    assert [e.name for e in entries] == ["b"]
    assert mermaid_safe("a: b#c;d") == "a  b c d"
    assert mermaid_safe(":::") == "-"


def test_markdown_json_and_text_views() -> None:
    state = desired([sched("reminder")])
    entries = build_timeline(state, Settings(), NOW)
    md = to_markdown(entries, NOW)
    assert md.count("```mermaid") == 1 and md.rstrip().endswith("```")
    doc = json.loads(to_json(entries, NOW))
    assert doc["format_version"] == 1
    assert doc["entries"][0]["start"] == "2025-12-27T19:00:00Z"
    assert datetime.fromisoformat(doc["now"]) == NOW
    text = to_text(entries, NOW)
    assert "2025-12-27 19:00 UTC .. 2025-12-28 20:00 UTC" in text
    assert "[backup_time 2025-12-28 09:00 device time]" in text


def test_huge_charts_are_capped() -> None:
    state = desired([sched(f"s{i:04d}") for i in range(MAX_TASKS + 5)])
    entries = build_timeline(state, Settings(), NOW)
    assert len(parse(to_mermaid(entries, NOW))) == MAX_TASKS
    assert f"Only the first {MAX_TASKS} of {MAX_TASKS + 5}" in to_markdown(entries, NOW)
