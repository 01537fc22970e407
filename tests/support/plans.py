"""Small factories for planner tests: inline DesiredState / State values, the clock pinned."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.canonical import digest
from reconciler.engagelab import multi_language, request_id_for
from reconciler.spec.desired import DesiredPlan, DesiredSchedule, DesiredState, SourceRef
from reconciler.state.model import PlanRecord, ScheduleRecord, State

NOW = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
LINEAGE = "00000000-0000-4000-8000-000000000001"
SRC = SourceRef("specs/promo.yaml", 1, 1)
COPY: Mapping[str, Mapping[str, str]] = {
    "en": {"title": "Flash sale", "alert": "The flash sale is on! -30% now!"},
    "fr": {"title": "Offres exceptionnelles", "alert": "La vente flash est en cours ! -30% !"},
}


def body(
    name: str,
    *,
    plan: str = "promo",
    trigger: Mapping[str, Any] | None = None,
    backup: str = "2025-12-28 09:00:00",
    copy: Mapping[str, Mapping[str, str]] = COPY,
    tags: Iterable[str] = ("shoppers",),
    enabled: bool = True,
) -> dict[str, Any]:
    """An API body shaped like the ones reconciler.spec.loader builds."""
    default = copy["en"]
    return {
        "name": name,
        "enabled": enabled,
        "trigger": dict(trigger) if trigger else {"intelligent": {"backup_time": backup}},
        "push": {
            "from": "push",
            "request_id": request_id_for(name),
            "to": {"tag": list(tags)},
            "body": {
                "platform": ["android", "ios"],
                "notification": {
                    "alert": default["alert"],
                    "android": {"alert": default["alert"], "title": default["title"]},
                    "ios": {"alert": default["alert"]},
                },
                "options": {
                    "plan_id": plan,
                    "time_to_live": 86400,
                    "multi_language": multi_language(copy),
                },
            },
        },
    }


def sched(name: str, **kw: Any) -> DesiredSchedule:
    copy = kw.get("copy", COPY)
    b = body(name, **kw)
    kind = next(iter(b["trigger"]))
    return DesiredSchedule(
        name=name,
        plan_id=kw.get("plan", "promo"),
        body=b,
        digest=digest(b),
        trigger_kind=kind,
        copy=copy,
        default_language="en",
        template="flash_sale",
        source=SRC,
    )


def dplan(plan_id: str = "promo", description: str = "Year-end sale") -> DesiredPlan:
    return DesiredPlan(plan_id=plan_id, description=description, source=SRC)


def desired(
    schedules: Iterable[DesiredSchedule] = (), plans: Iterable[DesiredPlan] | None = None
) -> DesiredState:
    scheds = {s.name: s for s in schedules}
    plan_list = list(plans) if plans is not None else [dplan()]
    return DesiredState(
        plans={p.plan_id: p for p in plan_list},
        schedules=scheds,
        inputs_digest=digest(
            sorted([s.digest for s in scheds.values()] + [p.plan_id for p in plan_list])
        ),
    )


def record(
    s: DesiredSchedule, sid: str | None = None, *, applied: datetime | None = None, **upd: Any
) -> ScheduleRecord:
    rec = ScheduleRecord(
        name=s.name,
        plan_id=s.plan_id,
        schedule_id=sid or f"sid-{s.name}",
        body=dict(s.body),
        digest=s.digest,
        trigger_kind=s.trigger_kind,
        applied_at=applied or NOW - timedelta(days=1),
    )
    return rec.model_copy(update=upd) if upd else rec


def state(
    records: Iterable[ScheduleRecord] = (),
    plans: Iterable[str] = ("promo",),
    *,
    serial: int = 7,
    retired: Iterable[str] = (),
) -> State:
    at = NOW - timedelta(days=2)
    recs = {p: PlanRecord(plan_id=p, description="Year-end sale", applied_at=at) for p in plans}
    for p in retired:
        recs[p] = PlanRecord(plan_id=p, description="old", applied_at=at, retired_at=at)
    return State(
        lineage=LINEAGE,
        serial=serial,
        plans=recs,
        schedules={r.name: r for r in records},
    )
