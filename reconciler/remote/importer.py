"""Import: adopt remote schedules and push plans into the state, with no write to EngageLab. Pure.

Each function decides from remote data already read (reconciler.api.reads) and returns the state
events to record. Names decide adoption (never the `managed_by` marker), and a name with more
than one live remote schedule is refused, never resolved by picking one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.addresses import schedule_address
from reconciler.errors import ConfigError
from reconciler.remote.drift import adopt_event, body_of, made_by, plan_id_of, unreadable
from reconciler.state.model import Event, PlanUpserted, State


@dataclass(frozen=True, slots=True)
class ImportResult:
    events: tuple[Event, ...] = ()
    notes: tuple[str, ...] = ()  # what was imported, and what the next plan will do about it
    refused: tuple[str, ...] = ()  # names left alone, and why


def parse_address(text: str) -> tuple[str, str]:
    """`schedule.<name>` or `plan.<id>` -> (kind, name)."""
    kind, _, name = text.partition(".")
    if kind not in ("schedule", "plan") or not name:
        raise ConfigError(f"{text!r} is not an address; use schedule.<name> or plan.<plan_id>")
    return kind, name


def import_schedule(
    state: State,
    name: str,
    schedule_id: str,
    remote: Mapping[str, Any] | None,
    desired_schedules: Mapping[str, str],
    now: datetime,
) -> ImportResult:
    """Record remote `schedule_id` as schedule.<name>. `desired_schedules`: name -> plan id."""
    address = schedule_address(name)
    if remote is None:
        raise ConfigError(
            f"EngageLab has no live schedule {schedule_id} (expired, deleted, or another AppKey "
            "or data center); nothing was recorded"
        )
    for other in state.schedules.values():
        if other.name != name and schedule_id in (other.schedule_id, *other.superseded):
            raise ConfigError(f"schedule {schedule_id} is already recorded as {other.address}")
    rec = state.schedules.get(name)
    if rec is not None and rec.schedule_id == schedule_id:
        return ImportResult(notes=(f"{address} is already recorded as {schedule_id}",))
    if rec is not None and rec.schedule_id is not None:
        raise ConfigError(
            f"{address} is already recorded as schedule {rec.schedule_id}; to record "
            f"{schedule_id} instead, first `reconcile state rm {address}` (nothing is deleted "
            "on EngageLab, so delete the other one in the console if it should not send)"
        )
    if (reason := unreadable(remote)) is not None:
        raise ConfigError(
            f"EngageLab's answer for schedule {schedule_id} cannot be read ({reason}); nothing "
            "was recorded"
        )
    body = body_of(remote)
    plan_id = plan_id_of(body, desired_schedules.get(name, ""))
    notes = [f"imported {address} as schedule {schedule_id} ({made_by(body)})"]
    if rec is not None and rec.intent is not None:
        notes.append(f"this resolves the interrupted {rec.intent.action} recorded for {address}")
    if body.get("name") != name:
        notes.append(
            f"warning: it is named {body.get('name')!r} on EngageLab: the next apply renames it"
        )
    if name not in desired_schedules:
        notes.append(f"warning: {address} is not in the specs: the next plan deletes it")
    event = adopt_event(name, schedule_id, body, plan_id, now)
    return ImportResult(events=(event,), notes=tuple(notes))


def import_plan(
    state: State, plan_id: str, remote_plans: Mapping[str, str], now: datetime
) -> ImportResult:
    """Record push plan `plan_id` with its remote description; it must exist remotely."""
    if plan_id not in remote_plans:
        raise ConfigError(
            f"EngageLab lists no push plan {plan_id} (another AppKey or data center?); "
            "nothing was recorded"
        )
    description = remote_plans[plan_id]
    rec = state.plans.get(plan_id)
    if rec is not None and rec.retired_at is None and rec.description == description:
        return ImportResult(notes=(f"plan.{plan_id} is already recorded",))
    event = PlanUpserted(plan_id=plan_id, description=description, at=now)
    return ImportResult(events=(event,), notes=(f"imported plan.{plan_id}",))


def match_names(
    state: State,
    remote_schedules: Sequence[Mapping[str, Any]],
    remote_plans: Mapping[str, str],
    desired_schedules: Mapping[str, str],
    desired_plans: Collection[str],
    now: datetime,
) -> ImportResult:
    """Adopt every live remote schedule whose name the specs own and the state lacks, and every
    spec push plan EngageLab has that the state lacks. A name held by several live schedules
    is refused."""
    events: list[Event] = []
    notes: list[str] = []
    refused: list[str] = []
    for plan_id in sorted(set(desired_plans) - set(state.plans)):
        if plan_id in remote_plans:
            events.append(PlanUpserted(plan_id=plan_id, description=remote_plans[plan_id], at=now))
            notes.append(f"imported plan.{plan_id}")
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for item in remote_schedules:
        name = str(item.get("name"))
        if name in desired_schedules and name not in state.schedules:
            by_name.setdefault(name, []).append(item)
    for name in sorted(by_name):
        found = by_name[name]
        ids = sorted(str(s.get("schedule_id")) for s in found)
        if len(found) > 1:
            refused.append(
                f"schedule.{name}: {len(found)} live schedules carry this name ({', '.join(ids)}); "
                "none was imported. Delete the extras in the console, or import one with "
                f"`reconcile import schedule.{name} <schedule_id>`"
            )
            continue
        if (reason := unreadable(found[0])) is not None:
            refused.append(
                f"schedule.{name}: EngageLab's answer for schedule {ids[0]} cannot be read "
                f"({reason}); not imported"
            )
            continue
        body = body_of(found[0])
        plan_id = plan_id_of(body, desired_schedules[name])
        events.append(adopt_event(name, ids[0], body, plan_id, now))
        notes.append(f"imported schedule.{name} as schedule {ids[0]} ({made_by(body)})")
    return ImportResult(events=tuple(events), notes=tuple(notes), refused=tuple(refused))
