"""The applier's call-time send gate: both the new version and the one it changes count."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reconciler.apply.applier import ApplyOptions, preflight, too_late
from reconciler.errors import BlockedError
from reconciler.plan.planner import Action, Change, Plan, build_plan
from reconciler.settings import Settings
from tests.support.plans import NOW, desired, dplan, record, sched, state

# The exact backup_time window (teams who know Smart Push never sends before backup_time).
UTC = Settings(smart_window="backup_time")
# 2025-12-10 09:00 device-local first fires at UTC+14: 2025-12-09 19:00 UTC.
OLD_FIRST = NOW.replace(day=9, hour=19)


def _update_plan() -> tuple[Plan, Change]:
    old = sched("s", backup="2025-12-10 09:00:00")
    new = sched("s", backup="2025-12-20 09:00:00")
    plan = build_plan(desired([new]), state([record(old)]), NOW)
    (change,) = [c for c in plan.changes if c.address == "schedule.s"]
    assert change.action is Action.UPDATE
    return plan, change


def test_an_update_is_refused_once_the_version_it_changes_nears_its_send() -> None:
    plan, change = _update_plan()
    assert too_late(change, NOW, UTC) is None
    assert too_late(change, OLD_FIRST - timedelta(minutes=4), UTC) is None
    assert "race the send" in (too_late(change, OLD_FIRST - timedelta(minutes=2), UTC) or "")
    assert "race the send" in (too_late(change, OLD_FIRST + timedelta(hours=1), UTC) or "")
    with pytest.raises(BlockedError, match="race the send"):
        preflight(plan, OLD_FIRST + timedelta(minutes=5), ApplyOptions())


def test_a_create_is_refused_within_three_minutes_of_its_own_send() -> None:
    new = sched("s", backup="2025-12-10 09:00:00")
    plan = build_plan(desired([new]), state(), NOW)
    (change,) = [c for c in plan.changes if c.address == "schedule.s"]
    assert too_late(change, OLD_FIRST - timedelta(minutes=3, seconds=1), UTC) is None
    assert "starts firing" in (too_late(change, OLD_FIRST - timedelta(minutes=2), UTC) or "")


def test_push_plan_changes_have_no_send_time() -> None:
    plan = build_plan(desired([], plans=[dplan(description="New")]), state(), NOW)
    (change,) = plan.changes
    assert change.kind == "plan" and change.action is Action.UPDATE
    assert too_late(change, NOW, UTC) is None


# --- the conservative Smart Push day, and a periodical moved later on a running day ---------


def test_a_smart_push_counts_as_sending_from_the_start_of_its_local_day() -> None:
    new = sched("s", backup="2025-12-10 18:00:00")
    # 2025-12-09 11:00 UTC is 01:00 on the 10th at UTC+14: users with history may get it now.
    morning = NOW.replace(day=9, hour=11)
    plan = build_plan(desired([new]), state(), morning)
    assert [b.address for b in plan.blockers] == ["schedule.s"]
    assert "began firing on 2025-12-09 10:00 UTC" in plan.blockers[0].reason
    narrow = build_plan(desired([new]), state(), morning, Settings(smart_window="backup_time"))
    assert not narrow.blockers  # for teams who know Smart Push never sends before backup_time


def _daily(at: str) -> dict[str, object]:
    per = {"start": "2025-12-01 00:00:00", "end": "2026-02-28 23:59:59", "time": at}
    return {"periodical": {**per, "time_unit": "day", "frequency": 1, "zone_type": 2}}


def test_a_periodical_moved_later_on_a_day_it_has_reached_is_blocked() -> None:
    old, new = sched("s", trigger=_daily("09:00:00")), sched("s", trigger=_daily("15:00:00"))
    midnight = NOW.replace(day=20, hour=0)  # the 20th's 09:00 has reached UTC+14..UTC+11
    plan = build_plan(desired([new]), state([record(old)]), midnight)
    assert [b.address for b in plan.blockers] == ["schedule.s"]
    assert "would get it twice" in plan.blockers[0].reason
    earlier = build_plan(
        desired([sched("s", trigger=_daily("08:00:00"))]), state([record(old)]), midnight
    )
    assert not earlier.blockers  # moving it earlier reaches no zone twice


def test_sent_forget_and_expired_are_decided_again_on_the_appliers_clock() -> None:
    from reconciler.errors import StalePlanError
    from reconciler.plan.saved import check_verdicts_now
    from reconciler.settings import Settings as S

    old = sched("s", backup="2025-12-01 12:00:00")  # its local day ends 2025-12-02 12:00 UTC
    ahead = NOW.replace(day=3)  # a planning machine whose clock runs far ahead
    plan = build_plan(desired([]), state([record(old)]), ahead)
    assert [c.action for c in plan.changes] == [Action.FORGET]
    with pytest.raises(StalePlanError, match="clock was ahead"):
        check_verdicts_now(plan, desired([]), state([record(old)]), S(), NOW, None)
    check_verdicts_now(plan, desired([]), state([record(old)]), S(), ahead, None)
