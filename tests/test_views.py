"""Unit tests for the three plan views: symbols, summary, colour, markdown splitting, JSON."""

from __future__ import annotations

import json

from reconciler.plan.planner import Plan, build_plan
from reconciler.settings import Settings
from reconciler.views.plan import (
    to_json,
    to_markdown,
    to_markdown_comments,
    to_text,
)
from tests.support.plans import COPY, NOW, desired, dplan, record, sched, state


def mixed_plan() -> Plan:
    keep, old = sched("keep"), sched("edit")
    edited = sched("edit", copy={**COPY, "fr": {**COPY["fr"], "alert": "Soldes | <b>*x*</b>"}})
    kind = sched("kind", trigger={"single": {"time": "2025-12-20 10:00:00", "zone_type": 2}})
    return build_plan(
        desired([keep, edited, kind, sched("new"), sched("now", backup="now")]),
        state(
            [record(keep), record(old), record(sched("kind")), record(sched("gone", tags=["x"]))],
            plans=["promo", "old"],
        ),
        NOW,
    )


def test_text_uses_terraform_symbols_and_the_summary_line() -> None:
    text = to_text(mixed_plan())
    lines = text.splitlines()
    assert "  x plan.old (retire: no call)" in lines
    assert "  - schedule.gone (delete)" in lines
    assert "  ~ schedule.edit (update)" in lines
    assert "  -/+ schedule.kind (replace)" in lines
    assert "  + schedule.new (create)" in lines
    assert '      ~ options.multi_language.fr.alert: "La vente flash est en cours ! -30% !"' in text
    assert (
        "Plan: 2 to create, 1 to update, 1 to replace, 1 to delete, 1 to retire. "
        "Push plans 2/100, schedules 5/1000."
    ) in lines
    assert "\x1b[" not in text


def test_text_colour_only_when_asked() -> None:
    plan = mixed_plan()
    coloured = to_text(plan, color=True)
    assert "\x1b[32m  + schedule.new (create)\x1b[0m" in coloured
    assert "\x1b[" not in to_text(plan, color=False)


def test_no_changes_is_one_clear_line() -> None:
    a = sched("a")
    plan = build_plan(desired([a]), state([record(a)]), NOW)
    expected = (
        "No changes: EngageLab already matches the specs. Push plans 1/100, schedules 1/1000.\n"
    )
    assert to_text(plan) == expected
    assert to_markdown(plan).count("\n") == 1
    assert to_markdown_comments(plan) == [to_markdown(plan)]


def test_immediate_send_and_blockers_are_shown_prominently() -> None:
    plan = build_plan(
        desired(
            [
                sched("now", backup="now"),
                sched("soon", trigger={"single": {"time": "2025-12-01 09:01:00"}}),
            ]
        ),
        state(),
        NOW,
    )
    text = to_text(plan)
    assert "fires immediately when applied" in text
    assert "sends immediately to users with no activity history" in text
    assert "Blocked: apply refuses this plan before its first call:" in text
    assert "  ! schedule.soon: time 2025-12-01 09:01:00" in text
    md = to_markdown(plan)
    assert "> [!CAUTION]" in md and "`schedule.soon`" in md


def test_markdown_summary_first_then_a_section_per_campaign_with_escaped_copy() -> None:
    md = to_markdown(mixed_plan())
    first_lines = md.splitlines()[:3]
    assert first_lines[2].startswith("**Plan: 2 to create")
    assert md.count("<details><summary><b>") == 2  # campaigns "old" and "promo"
    assert (
        "| fr **changed** | Offres exceptionnelles | Soldes \\| &lt;b&gt;\\*x\\*&lt;/b&gt; |" in md
    )
    assert "| en (default) | Flash sale |" in md


def test_large_plans_split_into_comments_under_the_limit() -> None:
    scheds = [sched(f"s{i:04d}", plan=f"p{i % 3}") for i in range(300)]
    plan = build_plan(
        desired(scheds, plans=[dplan(f"p{i}") for i in range(3)]), state(plans=()), NOW, Settings()
    )
    whole = to_markdown(plan)
    comments = to_markdown_comments(plan, limit=20_000)
    assert len(whole) > 60_000 and len(comments) >= 4
    assert all(len(c) < 20_000 for c in comments)
    assert comments[0].startswith("<sub>reconcile plan, comment 1 of ")
    assert "**Plan: 303 to create" in comments[0]
    for i in range(300):  # nothing lost, nothing repeated
        assert sum(f"schedule.s{i:04d} (create)" in c for c in comments) == 1


def test_json_is_versioned_sorted_and_round_trips() -> None:
    plan = mixed_plan()
    text = to_json(plan)
    raw = json.loads(text)
    assert raw["format_version"] == 1
    assert list(raw) == sorted(raw)
    assert Plan.model_validate(raw) == plan
    assert to_json(Plan.model_validate(raw)) == text


def test_pull_request_comments_carry_the_timeline_once_before_the_campaigns() -> None:
    plan = build_plan(desired([sched("a"), sched("b", backup="now")]), state(), NOW)
    (comment,) = to_markdown_comments(plan)
    assert comment.count("```mermaid") == 1
    assert comment.index("Timeline (UTC): promo") < comment.index("<b>promo</b>")
    assert (
        "    b :crit, milestone, t1, 2025-12-01 09:00, 0m" in comment
    )  # now: at apply, quiet hours
    assert "fires immediately when applied, for users with no activity history" in comment
