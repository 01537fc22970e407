"""Drift: differences between the recorded state and what EngageLab holds now. Pure.

`detect_drift` compares a fresh read of the remote (`RemoteSnapshot`, filled by
reconciler.api.reads) with the state; `accept_events` turns the drift into the state events
that make the state what EngageLab holds (`reconcile refresh`, `apply --refresh-only`), and
`refreshed_state` applies them in memory (`plan --refresh` plans against that, so the plan puts
the remote back).
The expected life of a task is not drift: a one-off task that fired and expired is reported as
sent, not as deleted. Remote `managed_by` markers only shape messages, never decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler import engagelab as api
from reconciler.addresses import plan_address, schedule_address, split_address
from reconciler.canonical import digest
from reconciler.diff import FieldDiff, diff_bodies
from reconciler.remote.shape import UNREADABLE, comparable
from reconciler.schedule_body import BODY_KEYS, trigger_kind_of
from reconciler.settings import Settings
from reconciler.state.model import (
    Event,
    PlanForgotten,
    PlanUpserted,
    ScheduleCreated,
    ScheduleForgotten,
    ScheduleRecord,
    ScheduleUpdated,
    State,
    apply_event,
)
from reconciler.timing import fire_window, format_utc


class DriftKind(StrEnum):
    EDITED = "edited remotely"
    DELETED = "deleted remotely"
    CREATED = "created remotely"  # a live remote schedule whose name the specs own, not in state
    SENT = "sent and expired"  # not drift: the expected end of a one-off task
    UNREADABLE = "unreadable remotely"  # EngageLab's answer is no schedule body we can read
    ADDED = "fields added remotely"  # not drift: fields reconcile never sent (remote_shape)


class DriftItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    kind: DriftKind
    detail: str
    schedule_id: str | None = None
    # The remote body, for refresh to adopt; None when there is nothing to adopt (a deletion,
    # or a second live schedule under a name that is already recorded).
    remote: dict[str, Any] | None = None
    diffs: tuple[FieldDiff, ...] = ()
    plan_id: str | None = None  # the push plan an adopted schedule is recorded under

    @property
    def is_drift(self) -> bool:
        return self.kind not in (DriftKind.SENT, DriftKind.ADDED)


@dataclass(frozen=True, slots=True)
class RemoteSnapshot:
    """One read of EngageLab: every listed schedule, recorded ids fetched one by one, plans."""

    schedules: Sequence[Mapping[str, Any]]  # every live schedule, all pages
    fetched: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)  # id -> GET
    plans: Mapping[str, str] = field(default_factory=dict)  # plan_id -> description

    def by_id(self) -> dict[str, Mapping[str, Any]]:
        found = {str(s.get("schedule_id")): s for s in self.schedules}
        for sid, body in self.fetched.items():
            if body is not None:
                found.setdefault(sid, body)
        return found


def body_of(remote: Mapping[str, Any], like: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The comparable schedule body (name, enabled, trigger, push) of a remote schedule, without
    the owner marker that apply adds to what it sends (see with_owner). With `like` (the body
    recorded or about to be sent), without the server defaults and the fields reconcile never
    sent that `like` lacks (remote_shape.comparable)."""
    body = without_owner({k: remote[k] for k in BODY_KEYS if k in remote})
    return comparable(body, like)[0]


def unreadable(remote: Mapping[str, Any]) -> str | None:
    """Why EngageLab's answer for a schedule is no body we can read (remote_shape), or None."""
    reason = remote.get(UNREADABLE)
    return str(reason) if reason else None


def owner_of(item: Mapping[str, Any]) -> str | None:
    """The lineage of the reconcile state that created a remote schedule, if it says."""
    push = item.get("push")
    args = push.get("custom_args") if isinstance(push, Mapping) else None
    value = args.get(api.OWNER_KEY) if isinstance(args, Mapping) else None
    return value if isinstance(value, str) else None


def with_owner(body: Mapping[str, Any], lineage: str) -> dict[str, Any]:
    """`body` as sent: its push carries the owning state's lineage in custom_args, so copies made
    by two state files on one AppKey can be told apart. The recorded body stays without it."""
    out = dict(body)
    push = dict(out["push"])
    push["custom_args"] = {**(push.get("custom_args") or {}), api.OWNER_KEY: lineage}
    out["push"] = push
    return out


def without_owner(body: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of with_owner, for bodies read back from EngageLab."""
    push = body.get("push")
    args = push.get("custom_args") if isinstance(push, Mapping) else None
    if not isinstance(args, Mapping) or api.OWNER_KEY not in args:
        return dict(body)
    rest = {k: v for k, v in args.items() if k != api.OWNER_KEY}
    assert isinstance(push, Mapping)
    return {**body, "push": {**push, "custom_args": rest}}


def describe_owner(item: Mapping[str, Any], lineage: str) -> str:
    owner = owner_of(item)
    if owner == lineage:
        return "made by this state, which no longer records it (was the state rolled back?)"
    if owner is not None:
        return (
            f"owned by another reconcile state (lineage {owner}): does another environment or "
            "clone apply to this AppKey?"
        )
    args = (item.get("push") or {}).get("custom_args") or {}
    if isinstance(args, Mapping) and args.get(api.MANAGED_BY_KEY) == api.MANAGED_BY_VALUE:
        return "made by reconcile (a lost state, or another state file?)"
    return "made by another client"


def plan_id_of(body: Mapping[str, Any], fallback: str) -> str:
    """The push plan a schedule body is attributed to (`options.plan_id`), else `fallback`."""
    options = (body.get("push") or {}).get("body", {}).get("options", {})
    found = options.get("plan_id") if isinstance(options, Mapping) else None
    return found if isinstance(found, str) and found else fallback


def made_by(body: Mapping[str, Any]) -> str:
    """For messages only: whether reconcile (some copy of it) or another client made it."""
    args = (body.get("push") or {}).get("custom_args") or {}
    ours = isinstance(args, Mapping) and args.get(api.MANAGED_BY_KEY) == api.MANAGED_BY_VALUE
    return "made by reconcile (a lost or other state?)" if ours else "made by another client"


def must_fetch(rec: ScheduleRecord, now: datetime, settings: Settings) -> bool:
    """Whether a recorded, unlisted schedule is worth a GET: not when it is over anyway."""
    if rec.schedule_id is None or rec.body is None or rec.intent is not None:
        return False
    win = fire_window(
        rec.body["trigger"], settings.site_zone, now=now, smart_day=settings.smart_day
    )
    return not win.is_over(now, rec.applied_at)


def _areas(diffs: Iterable[FieldDiff]) -> str:
    paths = list(dict.fromkeys(d.path.split("[")[0] for d in diffs))
    shown = ", ".join(paths[:4]) + (f" and {len(paths) - 4} more" if len(paths) > 4 else "")
    return shown or "its body"


def _schedule_drift(
    rec: ScheduleRecord, remote: Mapping[str, Any] | None, now: datetime, settings: Settings
) -> DriftItem | None:
    if rec.schedule_id is None or rec.body is None or rec.intent is not None:
        return None  # a pending write: the next apply resolves it by name
    sid = rec.schedule_id
    if remote is not None and (reason := unreadable(remote)) is not None:
        return DriftItem(
            address=rec.address,
            kind=DriftKind.UNREADABLE,
            detail=f"schedule_id {sid}: EngageLab's answer cannot be read ({reason}); "
            "nothing is changed for it",
            schedule_id=sid,
        )
    if remote is not None:
        raw = without_owner({k: remote[k] for k in BODY_KEYS if k in remote})
        body, added = comparable(raw, rec.body)
        if body == rec.body:
            if not added:
                return None
            return DriftItem(
                address=rec.address,
                kind=DriftKind.ADDED,
                detail=f"schedule_id {sid} shows fields reconcile never sent: "
                f"{', '.join(added[:4])}{' ...' if len(added) > 4 else ''} (not compared)",
                schedule_id=sid,
            )
        diffs = diff_bodies(rec.body, body)
        return DriftItem(
            address=rec.address,
            kind=DriftKind.EDITED,
            detail=f"schedule_id {sid} differs from what was applied: {_areas(diffs)}",
            schedule_id=sid,
            remote=body,
            diffs=diffs,
            plan_id=plan_id_of(body, rec.plan_id),
        )
    win = fire_window(
        rec.body["trigger"], settings.site_zone, now=now, smart_day=settings.smart_day
    )
    began = win.has_fired(now, rec.applied_at)
    # As the planner: a periodical task that has begun but not ended is still live, so its
    # absence is a deletion; any other task that began sending and is gone is simply sent.
    if win.is_over(now, rec.applied_at) or (began and win.kind != "periodical"):
        when = f"from {format_utc(win.first)}" if win.first is not None else "when applied"
        return DriftItem(
            address=rec.address,
            kind=DriftKind.SENT,
            detail=f"schedule_id {sid} fired {when} and is no longer listed, as expected",
            schedule_id=sid,
        )
    first = "" if win.first is None else f" (first send {format_utc(win.first)})"
    return DriftItem(
        address=rec.address,
        kind=DriftKind.DELETED,
        detail=f"schedule_id {sid} is gone from EngageLab before it finished sending{first}",
        schedule_id=sid,
        plan_id=rec.plan_id,
    )


def _created(
    state: State, remote: Sequence[Mapping[str, Any]], owners: Mapping[str, str]
) -> list[DriftItem]:
    """Live remote schedules under a spec-owned name that the state does not know."""
    known: set[str] = set()
    for record in state.schedules.values():
        known.update(i for i in (record.schedule_id, *record.superseded) if i)
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for item in remote:
        name = str(item.get("name"))
        if name in owners and str(item.get("schedule_id")) not in known:
            by_name.setdefault(name, []).append(item)
    out: list[DriftItem] = []
    for name, items in by_name.items():
        rec = state.schedules.get(name)
        if rec is not None and rec.intent is not None:
            continue  # an interrupted create: the applier adopts it by name
        adoptable = rec is None and len(items) == 1
        for item in items:
            sid = str(item.get("schedule_id"))
            if (reason := unreadable(item)) is not None:
                out.append(
                    DriftItem(
                        address=schedule_address(name),
                        kind=DriftKind.UNREADABLE,
                        detail=f"schedule_id {sid}, live under a spec-owned name, cannot be "
                        f"read ({reason}); it is not adopted",
                        schedule_id=sid,
                    )
                )
                continue
            body = body_of(item)
            if rec is not None:
                why = f"a second live schedule named {name} besides the recorded {rec.schedule_id}"
                hint = "it sends too: delete the extra one in the EngageLab console"
            elif not adoptable:
                why = f"one of {len(items)} live schedules named {name}, none recorded"
                hint = "delete the extras in the console, then `reconcile import` the one to keep"
            else:
                why = f"a live schedule named like a spec message, not recorded ({made_by(body)})"
                hint = (
                    "`reconcile refresh` or `reconcile import --match-names` adopts it; a plain "
                    "apply would create a second one (a duplicate send)"
                )
            out.append(
                DriftItem(
                    address=schedule_address(name),
                    kind=DriftKind.CREATED,
                    detail=f"schedule_id {sid}: {why}; {hint}",
                    schedule_id=sid,
                    remote=body if adoptable else None,
                    plan_id=plan_id_of(body, owners[name]),
                )
            )
    return out


def _plan_drift(state: State, remote_plans: Mapping[str, str]) -> list[DriftItem]:
    out: list[DriftItem] = []
    for pid, rec in state.plans.items():
        if rec.retired_at is not None:
            continue  # left the specs: what EngageLab says about it no longer matters
        address = plan_address(pid)
        if pid not in remote_plans:
            out.append(
                DriftItem(
                    address=address,
                    kind=DriftKind.DELETED,
                    detail="not in EngageLab's push plan list (plans cannot be deleted: is this "
                    "the right AppKey and data center?)",
                    plan_id=pid,
                )
            )
            continue
        description = remote_plans[pid]
        if description != rec.description:
            before = {"plan_id": pid, "plan_description": rec.description}
            after = {"plan_id": pid, "plan_description": description}
            out.append(
                DriftItem(
                    address=address,
                    kind=DriftKind.EDITED,
                    detail="description changed on EngageLab",
                    remote=after,
                    diffs=diff_bodies(before, after),
                    plan_id=pid,
                )
            )
    return out


def detect_drift(
    state: State,
    remote: RemoteSnapshot,
    desired_schedules: Mapping[str, str],
    now: datetime,
    settings: Settings | None = None,
) -> tuple[DriftItem, ...]:
    """Everything EngageLab holds differently from the state, plus the tasks that were sent.

    `desired_schedules` maps each schedule name the specs own to its plan id. Pure.
    """
    settings = settings or Settings()
    by_id = remote.by_id()
    items: list[DriftItem] = []
    for rec in state.schedules.values():
        found = by_id.get(rec.schedule_id) if rec.schedule_id else None
        item = _schedule_drift(rec, found, now, settings)
        if item is not None:
            items.append(item)
    items += _created(state, remote.schedules, desired_schedules)
    items += _plan_drift(state, remote.plans)
    return tuple(sorted(items, key=lambda i: (i.address, i.kind.value, i.schedule_id or "")))


def accept_events(state: State, drift: Iterable[DriftItem], now: datetime) -> list[Event]:
    """The events that make `state` what EngageLab holds. Pure; makes no call.

    Edited: the remote body is recorded. Deleted: forgotten (a plan then re-creates it).
    Created: adopted, when it is the only candidate for its name. Sent: nothing to record.
    """
    events: list[Event] = []
    for item in drift:
        kind, name = split_address(item.address)
        if kind == "plan":
            if item.kind is DriftKind.EDITED and item.remote is not None:
                description = str(item.remote["plan_description"])
                events.append(PlanUpserted(plan_id=name, description=description, at=now))
            elif item.kind is DriftKind.DELETED:
                events.append(PlanForgotten(plan_id=name))
            continue
        rec = state.schedules.get(name)
        if item.kind is DriftKind.DELETED:
            events.append(ScheduleForgotten(name=name))
        elif item.kind is DriftKind.EDITED and item.remote is not None and rec is not None:
            events.append(
                ScheduleUpdated(
                    name=name,
                    plan_id=item.plan_id or rec.plan_id,
                    body=item.remote,
                    digest=digest(item.remote),
                    trigger_kind=trigger_kind_of(item.remote),
                    at=now,
                )
            )
        elif item.kind is DriftKind.CREATED and item.remote is not None and item.schedule_id:
            events.append(adopt_event(name, item.schedule_id, item.remote, item.plan_id or "", now))
    return events


def adopt_event(
    name: str, schedule_id: str, body: Mapping[str, Any], plan_id: str, now: datetime
) -> ScheduleCreated:
    """Record a remote schedule as applied (refresh or import): its own body, applied now."""
    exact = dict(body)
    return ScheduleCreated(
        name=name,
        plan_id=plan_id,
        schedule_id=schedule_id,
        body=exact,
        digest=digest(exact),
        trigger_kind=trigger_kind_of(exact),
        at=now,
    )


def refreshed_state(state: State, events: Iterable[Event]) -> State:
    """`state` with `events` applied in memory (nothing written)."""
    for event in events:
        state = apply_event(state, event)
    return state
