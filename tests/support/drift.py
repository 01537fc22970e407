"""Remote bodies and states for drift and import tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.canonical import digest
from reconciler.state.model import (
    Event,
    PlanUpserted,
    ScheduleCreated,
    State,
    apply_event,
)

NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)


APPLIED = NOW - timedelta(days=1)


def body(name: str, when: str = "2025-12-10 09:00:00", alert: str = "Hi") -> dict[str, Any]:
    return {
        "name": name,
        "enabled": True,
        "trigger": {"intelligent": {"backup_time": when}},
        "push": {
            "to": {"tag": ["a"]},
            "body": {"notification": {"alert": alert}, "options": {"plan_id": "camp"}},
        },
    }


def remote(sid: str, b: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schedule_id": sid, **b, **extra}


def state_with(*bodies: dict[str, Any], plans: dict[str, str] | None = None) -> State:
    events: list[Event] = [
        PlanUpserted(plan_id=p, description=d, at=APPLIED)
        for p, d in ({"camp": "Camp"} if plans is None else plans).items()
    ]
    events += [
        ScheduleCreated(
            name=b["name"],
            plan_id="camp",
            schedule_id=f"id-{b['name']}",
            body=b,
            digest=digest(b),
            trigger_kind="intelligent",
            at=APPLIED,
        )
        for b in bodies
    ]
    state = State.new()
    for event in events:
        state = apply_event(state, event)
    return state


def kinds(items: Any) -> list[tuple[str, str]]:
    return [(i.address, i.kind.name) for i in items]
