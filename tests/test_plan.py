"""Unit tests for the pure planner: one rule per test, inline values, `now` pinned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from reconciler.diff import DiffOp
from reconciler.errors import ConfigError
from reconciler.plan.planner import Action, Change, Plan, build_plan
from reconciler.settings import Settings
from reconciler.state.model import Intent
from tests.support.plans import (
    COPY,
    NOW,
    desired,
    dplan,
    record,
    sched,
    state,
)

SINGLE_SOON = {"single": {"time": "2025-12-01 09:02:00", "zone_type": 1}}


def only(plan: Plan, address: str) -> Change:
    found = [c for c in plan.changes if c.address == address]
    assert len(found) == 1, [c.address for c in plan.changes]
    return found[0]


def test_fresh_create_plans_the_plan_then_every_schedule_and_counts_quota() -> None:
    a, b = sched("promo_01"), sched("promo_02", backup="2025-12-29 09:00:00")
    plan = build_plan(desired([b, a]), state(plans=()), NOW)
    assert [(c.address, c.action) for c in plan.changes] == [
        ("plan.promo", Action.CREATE),
        ("schedule.promo_01", Action.CREATE),
        ("schedule.promo_02", Action.CREATE),
    ]
    assert only(plan, "schedule.promo_01").after == dict(a.body)
    assert (plan.summary.create, plan.quota.plans_used, plan.quota.schedules_live) == (3, 1, 2)
    # Smart Push on 2025-12-28 may send all that local day [ours]: from 00:00 at UTC+14,
    # 2025-12-27 10:00 UTC, minus MIN_LEAD.
    assert plan.expires_at == datetime(2025, 12, 27, 9, 57, tzinfo=UTC)
    assert plan.has_changes and not plan.blockers and not plan.unsafe


def test_nothing_changed_lists_nothing_and_counts_unchanged() -> None:
    a = sched("promo_01")
    plan = build_plan(desired([a]), state([record(a)]), NOW)
    assert plan.changes == ()
    assert plan.summary.unchanged == 2
    assert not plan.has_changes and plan.expires_at is None
    assert plan.quota.schedules_live == 1


def test_one_language_edit_is_an_update_with_one_natural_path() -> None:
    old = sched("promo_01")
    new = sched("promo_01", copy={**COPY, "fr": {**COPY["fr"], "alert": "Soldes !"}})
    change = only(build_plan(desired([new]), state([record(old)]), NOW), "schedule.promo_01")
    assert change.action is Action.UPDATE
    assert change.schedule_id == "sid-promo_01"
    assert [(d.path, d.op, d.after) for d in change.diffs] == [
        ("options.multi_language.fr.alert", DiffOp.CHANGED, "Soldes !")
    ]
    assert change.reason == "changed: fr copy"


def test_moved_backup_time_is_an_update_of_the_trigger() -> None:
    old, new = sched("s"), sched("s", backup="2025-12-30 10:00:00")
    change = only(build_plan(desired([new]), state([record(old)]), NOW), "schedule.s")
    assert change.action is Action.UPDATE
    assert [d.path for d in change.diffs] == ["trigger.intelligent.backup_time"]
    assert change.reason == "changed: send time"


def test_changed_trigger_kind_is_a_replace_of_the_recorded_id() -> None:
    old = sched("s")
    new = sched("s", trigger={"single": {"time": "2025-12-20 10:00:00", "zone_type": 2}})
    change = only(build_plan(desired([new]), state([record(old, "x1")]), NOW), "schedule.s")
    assert change.action is Action.REPLACE and change.schedule_id == "x1"
    assert "intelligent to single" in change.reason


def test_removed_schedule_is_deleted_and_removed_plan_retired() -> None:
    a = sched("s")
    plan = build_plan(desired([], plans=[]), state([record(a)]), NOW)
    assert [(c.address, c.action) for c in plan.changes] == [
        ("plan.promo", Action.RETIRE),
        ("schedule.s", Action.DELETE),
    ]
    assert plan.quota.schedules_live == 0 and plan.quota.plans_used == 1  # retired still counts


def test_retired_plan_back_in_the_specs_is_created_without_new_quota() -> None:
    plan = build_plan(desired([], plans=[dplan("old")]), state(plans=(), retired=["old"]), NOW)
    assert only(plan, "plan.old").action is Action.CREATE
    assert plan.quota.plans_used == 1


def test_description_change_is_a_plan_update() -> None:
    plan = build_plan(desired([], plans=[dplan(description="New")]), state(), NOW)
    change = only(plan, "plan.promo")
    assert change.action is Action.UPDATE
    assert [(d.path, d.before, d.after) for d in change.diffs] == [
        ("plan_description", "Year-end sale", "New")
    ]


def test_edit_after_send_time_is_sent_with_no_call() -> None:
    old = sched("s", backup="2025-12-01 12:00:00")  # began 2025-11-30 22:00 UTC
    new = sched("s", backup="2025-12-01 12:00:00", tags=["vip"])
    plan = build_plan(desired([new]), state([record(old)]), NOW)
    change = only(plan, "schedule.s")
    assert change.action is Action.SENT
    assert change.diffs and "already sent" in change.reason
    assert not plan.has_changes and plan.expires_at is None


def test_removed_and_fully_over_is_forgotten_not_deleted() -> None:
    old = sched("s", backup="2025-11-29 09:00:00")  # over at 2025-11-29 21:00 UTC
    plan = build_plan(desired([]), state([record(old)]), NOW)
    assert only(plan, "schedule.s").action is Action.FORGET
    assert plan.summary.delete == 0 and plan.quota.schedules_live == 0


def test_removed_but_still_firing_is_deleted_and_says_so() -> None:
    old = sched("s", backup="2025-12-01 12:00:00")
    change = only(build_plan(desired([]), state([record(old)]), NOW), "schedule.s")
    assert change.action is Action.DELETE and "begun sending" in change.reason


def test_never_applied_and_passed_everywhere_is_expired_not_blocked() -> None:
    plan = build_plan(desired([sched("s", backup="2025-11-29 09:00:00")]), state(), NOW)
    change = only(plan, "schedule.s")
    assert change.action is Action.EXPIRED
    assert change.reason == (
        "backup_time 2025-11-29 09:00:00 passed everywhere on 2025-11-30 12:00 UTC; "
        "remove it from the specs or move its time"
    )
    assert not plan.blockers and not plan.has_changes and plan.quota.schedules_live == 0


def test_disabled_and_never_created_is_a_noop_with_reason() -> None:
    change = only(build_plan(desired([sched("s", enabled=False)]), state(), NOW), "schedule.s")
    assert (change.action, change.reason) == (Action.NOOP, "disabled in the spec; not created")


def test_interrupted_create_is_planned_again_with_lookup_reason() -> None:
    s = sched("s")
    rec = record(s).model_copy(
        update={
            "schedule_id": None,
            "body": None,
            "digest": None,
            "intent": Intent(action="create", digest=s.digest, started_at=NOW),
        }
    )
    change = only(build_plan(desired([s]), state([rec]), NOW), "schedule.s")
    assert change.action is Action.CREATE
    assert change.reason.startswith("a previous create was interrupted")


def test_interrupted_update_is_planned_again_even_if_digests_match() -> None:
    s = sched("s")
    rec = record(s, intent=Intent(action="update", digest=s.digest, started_at=NOW))
    change = only(build_plan(desired([s]), state([rec]), NOW), "schedule.s")
    assert change.action is Action.UPDATE and "interrupted" in change.reason


def test_superseded_copies_are_deleted_to_finish_a_replace() -> None:
    s = sched("s")
    change = only(
        build_plan(desired([s]), state([record(s, superseded=("old1",))]), NOW), "schedule.s"
    )
    assert change.action is Action.DELETE and change.superseded == ("old1",)
    assert change.schedule_id is None  # the live copy is kept
    assert change.after == dict(s.body)  # the current one stays


def test_rename_is_detected_in_both_reasons() -> None:
    old, new = sched("promo_old"), sched("promo_new")
    plan = build_plan(desired([new]), state([record(old)]), NOW)
    created, deleted = only(plan, "schedule.promo_new"), only(plan, "schedule.promo_old")
    assert (created.action, created.renamed_from) == (Action.CREATE, "schedule.promo_old")
    assert "renamed from schedule.promo_old" in created.reason
    assert deleted.action is Action.DELETE and "renamed to schedule.promo_new" in deleted.reason
    assert not plan.warnings


def test_rename_of_an_already_sent_schedule_warns_of_a_second_send() -> None:
    old, new = sched("a", backup="now"), sched("b", backup="now")
    plan = build_plan(desired([new]), state([record(old)]), NOW)
    assert only(plan, "schedule.b").renamed_from == "schedule.a"
    assert any("receive it again" in w for w in plan.warnings)


def test_content_change_plus_new_name_is_not_a_rename() -> None:
    old, new = sched("a"), sched("b", tags=["vip"])
    plan = build_plan(desired([new]), state([record(old)]), NOW)
    assert only(plan, "schedule.b").renamed_from is None


def test_send_within_min_lead_is_blocked() -> None:
    plan = build_plan(desired([sched("s", trigger=SINGLE_SOON)]), state(), NOW)
    assert [b.address for b in plan.blockers] == ["schedule.s"]
    assert "less than 3 minutes" in plan.blockers[0].reason


def test_changing_a_recorded_send_about_to_fire_is_blocked() -> None:
    old = sched("s", trigger={"single": {"time": "2025-12-01 09:02:00", "zone_type": 1}})
    new = sched("s", trigger={"single": {"time": "2025-12-05 09:00:00", "zone_type": 1}})
    plan = build_plan(desired([new]), state([record(old)]), NOW)
    assert only(plan, "schedule.s").action is Action.UPDATE
    assert "race the send" in plan.blockers[0].reason


def test_partially_passed_window_is_blocked() -> None:
    plan = build_plan(desired([sched("s", backup="2025-12-01 12:00:00")]), state(), NOW)
    assert only(plan, "schedule.s").action is Action.CREATE
    assert "began firing" in plan.blockers[0].reason


def test_beyond_the_horizon_is_blocked() -> None:
    plan = build_plan(desired([sched("s", backup="2027-01-01 09:00:00")]), state(), NOW)
    assert "more than 365 days" in plan.blockers[0].reason


def test_backup_time_now_is_allowed_and_flagged() -> None:
    plan = build_plan(desired([sched("s", backup="now")]), state(), NOW)
    assert not plan.blockers
    (warning,) = [w for w in plan.warnings if 'backup_time "now"' in w]
    # It reaches every zone at the instant of the apply: night somewhere, always.
    assert any(w.startswith("quiet_hours: schedule.s:") for w in plan.warnings)
    assert warning.startswith(
        'schedule.s: backup_time "now": sends immediately to users with no activity history '
        "when applied"
    )
    assert "a lost or rolled-back state file would send it again" in warning
    assert only(plan, "schedule.s").window is not None
    assert plan.expires_at == NOW + timedelta(hours=1)  # it sends whenever it is applied


def test_schedule_quota_crossing_blocks() -> None:
    plan = build_plan(
        desired([sched(f"s{i}") for i in range(3)]), state(), NOW, Settings(schedule_quota=2)
    )
    assert [b.address for b in plan.blockers] == ["quota.schedules"]
    assert plan.quota.schedules_live == 3


def test_replace_at_full_quota_blocks_on_the_peak() -> None:
    a, b = sched("a"), sched("b")
    b2 = sched("b", trigger={"single": {"time": "2025-12-20 10:00:00", "zone_type": 2}})
    plan = build_plan(
        desired([a, b2]), state([record(a), record(b)]), NOW, Settings(schedule_quota=2)
    )
    assert (plan.quota.schedules_live, plan.quota.schedules_peak) == (2, 3)
    assert "at once" in plan.blockers[0].reason


def test_plan_quota_counts_retired_plans() -> None:
    plan = build_plan(
        desired([sched("s", plan="new")], plans=[dplan("new")]),
        state(plans=(), retired=["old"]),
        NOW,
        Settings(plan_quota=1),
    )
    assert plan.quota.plans_used == 2
    assert [b.address for b in plan.blockers] == ["quota.plans"]


@pytest.mark.parametrize(
    ("recorded", "removed", "unsafe"),
    [(3, 1, False), (11, 11, True), (10, 3, False), (10, 4, True), (40, 10, False)],
)
def test_mass_deletion_marks_the_plan_unsafe(recorded: int, removed: int, unsafe: bool) -> None:
    scheds = [sched(f"s{i:02d}") for i in range(recorded)]
    plan = build_plan(desired(scheds[removed:]), state([record(s) for s in scheds]), NOW)
    assert plan.summary.delete == removed
    assert plan.unsafe is unsafe
    assert (plan.unsafe_reason is not None) is unsafe


def test_target_restricts_and_keeps_the_plan_a_schedule_needs() -> None:
    a, b = sched("a"), sched("b")
    plan = build_plan(desired([a, b]), state(plans=()), NOW, targets=["schedule.b"])
    assert [c.address for c in plan.changes] == ["plan.promo", "schedule.b"]
    assert plan.targets == ("schedule.b",)
    assert plan.quota.schedules_live == 1


def test_unknown_target_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"schedule\.nope"):
        build_plan(desired([sched("a")]), state(), NOW, targets=["schedule.nope"])


def test_desired_warnings_are_carried_into_the_plan() -> None:
    from reconciler.errors import Problem

    d = desired([sched("a")])
    d = type(d)(
        d.plans,
        d.schedules,
        d.inputs_digest,
        (Problem("specs/x.yaml", 3, 4, "p", "m", warning=True),),
    )
    plan = build_plan(d, state(), NOW)
    assert plan.warnings[0] == "specs/x.yaml:3:4: warning: p: m"


def test_the_plan_is_frozen_and_records_where_it_was_made() -> None:
    d = desired([sched("a")])
    plan = build_plan(d, state(serial=41), NOW)
    assert (plan.state_serial, plan.inputs_digest, plan.created_at) == (41, d.inputs_digest, NOW)
    with pytest.raises(ValidationError):
        plan.unsafe = True  # type: ignore[misc]


def test_input_order_does_not_change_the_plan() -> None:
    scheds = [sched(f"s{i}", backup=f"2025-12-{10 + i} 09:00:00") for i in range(5)]
    recs = [record(s) for s in scheds[:3]]
    one = build_plan(desired(scheds), state(recs), NOW)
    two = build_plan(desired(reversed(scheds)), state(reversed(recs)), NOW)
    assert one == two
    # s3 (2025-12-13 device-local) is the first unapplied: UTC+14 enters that day on the 12th.
    assert one.expires_at == datetime(2025, 12, 12, 10, tzinfo=UTC) - timedelta(minutes=3)


def test_a_new_plan_with_nothing_to_send_is_not_created() -> None:
    gone = sched("s", backup="2025-10-01 12:00:00")  # passed everywhere before NOW
    plan = build_plan(desired([gone]), state(plans=()), NOW)
    assert only(plan, "schedule.s").action is Action.EXPIRED
    change = only(plan, "plan.promo")
    assert change.action is Action.NOOP and "never be deleted" in change.reason
    assert not plan.has_changes


def test_an_interrupted_update_is_not_resumed_once_the_recorded_version_began_sending() -> None:
    from reconciler.state.model import Intent

    old = sched("s", backup="2025-12-01 12:00:00")  # began 2025-11-30 22:00 UTC
    new = sched("s", backup="2025-12-01 12:00:00", tags=["vip"])
    pending = Intent(action="update", digest=new.digest, started_at=NOW)
    plan = build_plan(desired([new]), state([record(old, intent=pending)]), NOW)
    assert only(plan, "schedule.s").action is Action.SENT
    assert not plan.has_changes
