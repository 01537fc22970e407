"""Pure import decisions: what is recorded, what is refused, and what the user is told."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.errors import ConfigError
from reconciler.remote.importer import import_plan, import_schedule, match_names, parse_address
from reconciler.state.model import (
    Intent,
    IntentRecorded,
    PlanUpserted,
    ScheduleCreated,
    apply_event,
)
from tests.support.drift import body, remote, state_with

NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)


def test_parse_address() -> None:
    assert parse_address("schedule.msg_01") == ("schedule", "msg_01")
    assert parse_address("plan.camp") == ("plan", "camp")
    for bad in ("msg_01", "schedule.", "queue.x"):
        with pytest.raises(ConfigError):
            parse_address(bad)


def test_import_schedule_records_the_remote_body_as_applied_now() -> None:
    state = state_with()
    result = import_schedule(state, "a", "x1", remote("x1", body("a"), extra=1), {"a": "p"}, NOW)
    (event,) = result.events
    assert isinstance(event, ScheduleCreated)
    assert (event.schedule_id, event.plan_id, event.at) == ("x1", "camp", NOW)  # options.plan_id
    assert event.body == body("a")  # normalized to name/enabled/trigger/push
    assert not [n for n in result.notes if n.startswith("warning")]


def test_import_schedule_warns_about_what_the_next_plan_will_do() -> None:
    result = import_schedule(state_with(), "a", "x1", remote("x1", body("b")), {}, NOW)
    warnings = [n for n in result.notes if n.startswith("warning")]
    assert len(warnings) == 2
    assert "renames it" in warnings[0] and "deletes it" in warnings[1]


def test_import_schedule_refusals() -> None:
    state = state_with(body("a"))
    with pytest.raises(ConfigError, match="no live schedule"):
        import_schedule(state, "b", "x1", None, {}, NOW)
    with pytest.raises(ConfigError, match=r"already recorded as schedule\.a"):
        import_schedule(state, "b", "id-a", remote("id-a", body("a")), {}, NOW)
    with pytest.raises(ConfigError, match=r"state rm schedule\.a"):
        import_schedule(state, "a", "x2", remote("x2", body("a")), {}, NOW)
    same = import_schedule(state, "a", "id-a", remote("id-a", body("a")), {}, NOW)
    assert same.events == () and "already recorded" in same.notes[0]


def test_import_schedule_resolves_a_pending_create() -> None:
    intent = Intent(action="create", started_at=NOW)
    state = apply_event(state_with(), IntentRecorded(name="a", plan_id="camp", intent=intent))
    result = import_schedule(state, "a", "x1", remote("x1", body("a")), {"a": "camp"}, NOW)
    assert len(result.events) == 1 and "interrupted create" in result.notes[1]


def test_import_plan() -> None:
    state = state_with(plans={"camp": "Camp"})
    with pytest.raises(ConfigError, match="no push plan other"):
        import_plan(state, "other", {"camp": "Camp"}, NOW)
    assert import_plan(state, "camp", {"camp": "Camp"}, NOW).events == ()
    (event,) = import_plan(state, "camp", {"camp": "New"}, NOW).events
    assert event == PlanUpserted(plan_id="camp", description="New", at=NOW)


def test_match_names_adopts_unique_spec_names_and_refuses_twins() -> None:
    state = state_with(body("a"), plans={})
    listed = [
        remote("id-a", body("a")),  # already recorded
        remote("x1", body("b")),
        remote("x2", body("c")),
        remote("x3", body("c")),
        remote("x4", body("d")),  # not in the specs
    ]
    desired = {"a": "camp", "b": "camp", "c": "camp"}
    result = match_names(state, listed, {"camp": "Camp", "zzz": "?"}, desired, ["camp"], NOW)
    assert [(type(e).__name__, getattr(e, "schedule_id", None)) for e in result.events] == [
        ("PlanUpserted", None),
        ("ScheduleCreated", "x1"),
    ]
    (refusal,) = result.refused
    assert refusal.startswith("schedule.c: 2 live schedules") and "x2, x3" in refusal
