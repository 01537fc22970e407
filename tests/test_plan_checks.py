"""build_plan folds the send-time checks in: warnings, error-level blockers, the timeline."""

from __future__ import annotations

from datetime import timedelta

from reconciler.plan.planner import build_plan
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredState
from reconciler.views.plan import to_markdown, to_text
from tests.support.plans import NOW, desired, dplan, record, sched, state

LATE = "2025-12-10 23:30:00"


def test_check_warnings_are_prefixed_with_their_id_and_only_for_touched_schedules() -> None:
    old = sched("old_late", backup=LATE)
    new = sched("new_late", backup="2025-12-11 23:30:00")
    plan = build_plan(desired([old, new]), state([record(old)]), NOW)
    quiet = [w for w in plan.warnings if w.startswith("quiet_hours: ")]
    assert [w.split(": ")[1] for w in quiet] == ["schedule.new_late"]
    assert plan.blockers == ()


def test_error_level_checks_block_the_plan() -> None:
    late = desired([sched("late", backup=LATE)])
    plan = build_plan(late, state(), NOW, Settings(check_levels=(("quiet_hours", "error"),)))
    assert [(b.address, b.reason.split(":")[0]) for b in plan.blockers] == [
        ("schedule.late", "quiet_hours")
    ]
    assert not any(w.startswith("quiet_hours") for w in plan.warnings)


def test_spec_levels_beat_the_environment() -> None:
    late = desired([sched("late", backup=LATE)])
    spec = DesiredState(
        plans=late.plans,
        schedules=late.schedules,
        inputs_digest=late.inputs_digest,
        check_levels={"promo": {"quiet_hours": "off"}},
    )
    plan = build_plan(spec, state(), NOW, Settings(check_levels=(("quiet_hours", "error"),)))
    assert plan.blockers == ()
    assert not any("quiet_hours" in w for w in plan.warnings)


def test_partly_passed_backup_time_is_one_blocker_naming_the_zones() -> None:
    plan = build_plan(desired([sched("late", backup="2025-12-01 20:00:00")]), state(), NOW)
    (blocker,) = plan.blockers
    assert "passed in UTC+11..UTC+14 (Kiritimati" in blocker.reason
    assert not any(w.startswith("backup_passed") for w in plan.warnings)


def test_the_plan_carries_a_timeline_of_the_campaigns_it_changes() -> None:
    a = sched("a", backup="2025-12-20 09:00:00")
    b = sched("b", plan="quiet", backup="2025-12-21 09:00:00")
    recorded = state([record(b)], plans=("promo", "quiet"))
    plan = build_plan(desired([a, b], plans=[dplan("promo"), dplan("quiet")]), recorded, NOW)
    assert [(e.campaign, e.name) for e in plan.timeline] == [("promo", "a")]
    md = to_markdown(plan)
    assert "<details><summary>Timeline (UTC): promo</summary>" in md
    assert "    section promo\n    a :t1, 2025-12-19 19:00, 2025-12-20 20:00" in md
    assert "```mermaid" not in to_markdown(build_plan(desired([b]), state([record(b)]), NOW))


def test_saved_plan_expires_three_minutes_before_the_earliest_firing_it_touches() -> None:
    a = sched("a", backup="2025-12-20 09:00:00")
    b = sched("b", backup="2025-12-10 09:00:00")
    plan = build_plan(desired([a, b]), state(), NOW)
    # The local day of 2025-12-10 starts at UTC+14 at 10:00 UTC the day before [ours]
    assert plan.expires_at == NOW.replace(day=9, hour=10) - timedelta(minutes=3)


def test_text_plan_shows_the_real_window_and_smart_push_wording() -> None:
    text = to_text(build_plan(desired([sched("a")]), state(), NOW))
    assert "fires 2025-12-27 19:00 UTC .. 2025-12-28 20:00 UTC (device time" in text
    assert "for users with no activity history; others at their own best moment" in text
