"""Property tests for the planner: any mix of specs and records plans without error, orders
deterministically, round-trips through JSON, and converges (apply, re-plan: nothing left)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.plan.planner import CHANGING, Action, Plan, build_plan
from reconciler.plan.saved import parse_plan
from reconciler.spec.desired import DesiredSchedule, DesiredState
from reconciler.state.model import (
    Event,
    PlanRetired,
    PlanUpserted,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleForgotten,
    ScheduleUpdated,
    State,
    apply_event,
)
from reconciler.views.plan import to_json
from tests.support.plans import COPY, NOW, desired, dplan, record, sched, state

NAMES = ("a", "b", "c", "d")
TIMES = ("now", "2025-11-29 09:00:00", "2025-12-01 12:00:00", "2025-12-20 09:00:00")
COPIES = (COPY, {**COPY, "fr": {"title": "T", "alert": "Autre"}})
TRIGGERS = (None, {"single": {"time": "2025-12-24 10:00:00", "zone_type": 2}})

one_schedule = st.builds(
    lambda name, when, copy, trig, enabled: sched(
        name, backup=when, copy=copy, trigger=trig, enabled=enabled
    ),
    st.sampled_from(NAMES),
    st.sampled_from(TIMES),
    st.sampled_from(COPIES),
    st.sampled_from(TRIGGERS),
    st.booleans(),
)
schedules = st.lists(one_schedule, max_size=4, unique_by=lambda s: s.name)


def world(want: list[DesiredSchedule], had: list[DesiredSchedule]) -> tuple[DesiredState, State]:
    plans = [dplan()] if want else []
    return desired(want, plans=plans), state([record(s) for s in had], plans=["promo"])


def apply_all(plan: Plan, before: State) -> State:
    """What a perfect applier would record for every state- or API-changing action."""
    after = before
    at = NOW + timedelta(minutes=1)
    for c in plan.changes:
        events: list[Event] = []
        body = c.after
        if c.kind == "plan":
            if c.action in (Action.CREATE, Action.UPDATE) and body:
                events.append(
                    PlanUpserted(plan_id=c.plan_id, description=body["plan_description"], at=at)
                )
            elif c.action is Action.RETIRE:
                events.append(PlanRetired(plan_id=c.plan_id, at=at))
        elif c.action in (Action.CREATE, Action.REPLACE) and body:
            kind = next(iter(body["trigger"]))
            name = body["name"]
            events.append(
                ScheduleCreated(
                    name=name,
                    plan_id=c.plan_id,
                    schedule_id=f"new-{name}",
                    body=body,
                    digest=c.digest_after or "",
                    trigger_kind=kind,
                    at=at,
                )
            )
            events += [
                ScheduleDeleted(name=name, schedule_id=s)
                for s in (c.schedule_id, *c.superseded)
                if s
            ]
        elif c.action is Action.UPDATE and body:
            kind = next(iter(body["trigger"]))
            events.append(
                ScheduleUpdated(
                    name=body["name"],
                    plan_id=c.plan_id,
                    body=body,
                    digest=c.digest_after or "",
                    trigger_kind=kind,
                    at=at,
                )
            )
        elif c.action is Action.DELETE:
            name = c.address.removeprefix("schedule.")
            events += [
                ScheduleDeleted(name=name, schedule_id=s)
                for s in (c.schedule_id, *c.superseded)
                if s
            ]
        elif c.action is Action.FORGET:
            events.append(ScheduleForgotten(name=c.address.removeprefix("schedule.")))
        for event in events:
            after = apply_event(after, event)
    return after


@settings(max_examples=80, deadline=None)
@given(want=schedules, had=schedules)
def test_any_mix_plans_in_order_and_round_trips(
    want: list[DesiredSchedule], had: list[DesiredSchedule]
) -> None:
    d, s = world(want, had)
    plan = build_plan(d, s, NOW)
    addresses = [c.address for c in plan.changes]
    assert addresses == sorted(set(addresses))
    assert parse_plan(to_json(plan)) == plan
    assert build_plan(d, s, NOW) == plan


@settings(max_examples=80, deadline=None)
@given(want=schedules, had=schedules)
def test_applying_a_plan_then_planning_again_leaves_nothing_to_do(
    want: list[DesiredSchedule], had: list[DesiredSchedule]
) -> None:
    d, s = world(want, had)
    plan = build_plan(d, s, NOW)
    again = build_plan(d, apply_all(plan, s), NOW)
    assert [c.address for c in again.changes if c.action in CHANGING] == []
