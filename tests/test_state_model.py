"""Unit tests for the pure state model: events move state, and the serial counts them."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import TypeAdapter

from reconciler.state.model import (
    Event,
    Intent,
    IntentCleared,
    IntentRecorded,
    ScheduleCreated,
    ScheduleDeleted,
    State,
    apply_event,
)

AT = datetime(2025, 12, 1, 9, tzinfo=UTC)


def _created(sid: str) -> ScheduleCreated:
    return ScheduleCreated(
        name="a",
        plan_id="p",
        schedule_id=sid,
        body={"name": "a"},
        digest="sha256:x",
        trigger_kind="intelligent",
        at=AT,
    )


def test_create_intent_then_success_records_the_remote_id() -> None:
    state = State.new()
    state = apply_event(
        state,
        IntentRecorded(name="a", plan_id="p", intent=Intent(action="create", started_at=AT)),
    )
    assert state.serial == 1
    assert state.schedules["a"].schedule_id is None
    assert state.pending_intents()
    state = apply_event(state, _created("s1"))
    assert state.serial == 2
    assert state.schedules["a"].schedule_id == "s1"
    assert state.schedules["a"].intent is None


def test_cleared_create_intent_leaves_nothing() -> None:
    state = apply_event(
        State.new(),
        IntentRecorded(name="a", plan_id="p", intent=Intent(action="create", started_at=AT)),
    )
    state = apply_event(state, IntentCleared(name="a"))
    assert "a" not in state.schedules


def test_replace_tracks_the_old_id_until_it_is_deleted() -> None:
    state = apply_event(State.new(), _created("old"))
    state = apply_event(state, _created("new"))
    assert state.schedules["a"].schedule_id == "new"
    assert state.schedules["a"].superseded == ("old",)
    state = apply_event(state, ScheduleDeleted(name="a", schedule_id="old"))
    assert state.schedules["a"].superseded == ()
    assert state.schedules["a"].schedule_id == "new"


def test_events_round_trip_through_json() -> None:
    adapter: TypeAdapter[Event] = TypeAdapter(Event)
    event = _created("s1")
    assert adapter.validate_json(adapter.dump_json(event)) == event
