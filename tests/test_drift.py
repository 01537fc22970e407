"""Pure drift detection and acceptance, on inline states and remote snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.canonical import digest
from reconciler.remote.drift import (
    DriftKind,
    RemoteSnapshot,
    accept_events,
    detect_drift,
    must_fetch,
    refreshed_state,
)
from reconciler.settings import Settings
from reconciler.state.model import (
    Intent,
    IntentRecorded,
    PlanRetired,
    ScheduleForgotten,
    ScheduleUpdated,
    apply_event,
)
from tests.support.drift import NOW, body, kinds, remote, state_with


def test_no_drift_when_the_remote_matches() -> None:
    state = state_with(body("a"))
    snap = RemoteSnapshot([remote("id-a", body("a"), extra_field=1)], plans={"camp": "Camp"})
    assert detect_drift(state, snap, {"a": "camp"}, NOW) == ()


def test_an_edited_body_is_drift_with_field_diffs_recorded_to_remote() -> None:
    state = state_with(body("a"))
    snap = RemoteSnapshot([remote("id-a", body("a", alert="Hey"))], plans={"camp": "Camp"})
    (item,) = detect_drift(state, snap, {"a": "camp"}, NOW)
    assert (item.kind, item.schedule_id) == (DriftKind.EDITED, "id-a")
    assert [(d.path, d.before, d.after) for d in item.diffs] == [
        ("notification.alert", "Hi", "Hey")
    ]
    (event,) = accept_events(state, [item], NOW)
    assert isinstance(event, ScheduleUpdated)
    assert event.body == body("a", alert="Hey") and event.digest == digest(event.body)


def test_a_missing_task_is_deleted_before_it_fires_and_sent_after() -> None:
    state = state_with(body("early", "2025-11-22 09:00:00"), body("late"))
    fetched: dict[str, Any] = {"id-early": None, "id-late": None}
    snap = RemoteSnapshot([], fetched=fetched, plans={"camp": "Camp"})
    assert kinds(detect_drift(state, snap, {}, NOW)) == [
        ("schedule.early", "DELETED"),
        ("schedule.late", "DELETED"),
    ]
    later = datetime(2025, 11, 21, 12, 0, tzinfo=UTC)  # early's local day began at UTC+14
    drift = detect_drift(state, snap, {}, later)
    assert kinds(drift) == [("schedule.early", "SENT"), ("schedule.late", "DELETED")]
    assert not drift[0].is_drift
    assert accept_events(state, drift, later) == [ScheduleForgotten(name="late")]


def test_a_fetched_schedule_counts_as_present() -> None:
    state = state_with(body("a"))
    snap = RemoteSnapshot([], fetched={"id-a": remote("id-a", body("a"))}, plans={"camp": "Camp"})
    assert detect_drift(state, snap, {"a": "camp"}, NOW) == ()


def test_an_immediate_send_that_is_gone_is_sent() -> None:
    state = state_with(body("now", "now"))
    snap = RemoteSnapshot([], plans={"camp": "Camp"})
    assert kinds(detect_drift(state, snap, {}, NOW)) == [("schedule.now", "SENT")]
    rec = state.schedules["now"]
    assert not must_fetch(rec, NOW, Settings())  # over already: not worth a GET


def test_created_remotely_only_for_spec_names_and_adopted_only_when_unique() -> None:
    state = state_with(body("a"))
    listed = [
        remote("id-a", body("a")),
        remote("x1", body("b")),  # spec-owned, unrecorded, alone: adoptable
        remote("x2", body("c")),
        remote("x3", body("c")),  # two with one name: reported, never adopted
        remote("x4", body("a")),  # a second "a" beside the recorded one
        remote("x5", body("other")),  # not a spec name: not ours, not drift
    ]
    snap = RemoteSnapshot(listed, plans={"camp": "Camp"})
    drift = detect_drift(state, snap, {"a": "camp", "b": "camp", "c": "camp"}, NOW)
    assert [(i.address, i.kind.name, i.schedule_id, i.remote is not None) for i in drift] == [
        ("schedule.a", "CREATED", "x4", False),
        ("schedule.b", "CREATED", "x1", True),
        ("schedule.c", "CREATED", "x2", False),
        ("schedule.c", "CREATED", "x3", False),
    ]
    assert "made by another client" in drift[1].detail
    events = accept_events(state, drift, NOW)
    assert [type(e).__name__ for e in events] == ["ScheduleCreated"]
    new = refreshed_state(state, events)
    assert new.schedules["b"].schedule_id == "x1" and new.schedules["b"].plan_id == "camp"


def test_a_pending_intent_is_left_to_the_applier() -> None:
    state = state_with(body("a"))
    intent = Intent(action="create", started_at=NOW)
    state = apply_event(state, IntentRecorded(name="b", plan_id="camp", intent=intent))
    snap = RemoteSnapshot([remote("id-a", body("a")), remote("y", body("b"))], plans={"camp": "C"})
    assert kinds(detect_drift(state, snap, {"a": "camp", "b": "camp"}, NOW)) == [
        ("plan.camp", "EDITED")
    ]


@pytest.mark.parametrize("retired", [False, True])
def test_plan_description_and_missing_plans(retired: bool) -> None:
    state = state_with(plans={"camp": "Camp", "gone": "Gone"})
    if retired:  # left the specs: what EngageLab says about it no longer matters
        state = apply_event(state, PlanRetired(plan_id="gone", at=NOW))
    snap = RemoteSnapshot([], plans={"camp": "Edited"})
    drift = detect_drift(state, snap, {}, NOW)
    expected = [("plan.camp", "EDITED")] + ([] if retired else [("plan.gone", "DELETED")])
    assert kinds(drift) == expected
    new = refreshed_state(state, accept_events(state, drift, NOW))
    assert new.plans["camp"].description == "Edited"
    assert ("gone" in new.plans) is retired
