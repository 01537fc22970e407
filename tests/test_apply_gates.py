"""The applier's call-time send gate: both the new version and the one it changes count."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from reconciler.apply import ApplyOptions, preflight, too_late
from reconciler.errors import BlockedError
from reconciler.plan import Action, Change, Plan, build_plan
from tests.test_plan_factories import NOW, desired, dplan, record, sched, state

UTC = ZoneInfo("UTC")
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
