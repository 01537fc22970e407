"""The recorded state: what was last applied to EngageLab, with remote ids. Pure values + events.

A `State` changes only by applying `Event`s (one per API outcome or intent); each event raises the
serial by one. The store (reconciler.state.store) persists the snapshot and a journal of events;
replaying the journal over the snapshot gives the same State, which is what makes crash recovery
exact.
Secrets never enter this model: bodies are API request bodies, which carry no credentials.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reconciler.addresses import schedule_address
from reconciler.schedule_body import TriggerKind

STATE_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlanRecord(_Frozen):
    plan_id: str
    description: str
    applied_at: datetime
    # Set when the plan left the specs. EngageLab cannot delete plans, so a retired plan still
    # counts against the 100-plan quota and stays recorded.
    retired_at: datetime | None = None


class Intent(_Frozen):
    """A write that was about to be sent: recorded (durably) before the call is made."""

    action: Literal["create", "update", "delete"]
    digest: str | None = None  # digest of the body being sent (create/update)
    started_at: datetime
    # When the body being sent starts firing (UTC), or `immediate` for backup_time "now". After a
    # crash, a create that is not in the remote list may simply have fired and expired already;
    # these fields tell the applier whether that is possible, in which case it must not re-create.
    fires_from: datetime | None = None
    immediate: bool = False


class ScheduleRecord(_Frozen):
    name: str
    plan_id: str
    schedule_id: str | None = None  # None while only a create intent exists
    body: dict[str, Any] | None = None  # exact body last applied (None before the first success)
    digest: str | None = None
    trigger_kind: TriggerKind | None = None
    applied_at: datetime | None = None
    intent: Intent | None = None
    # Remote ids of older copies still live after a replace (create-new-then-delete-old).
    superseded: tuple[str, ...] = ()
    # Uniqueness pending: set by every create. A listing taken at or after `verify_after` that
    # shows this one copy alone confirms it; until then every apply lists the name again. After
    # an unknown outcome (`uncertain`) a late write may still land, so `verify_after` is the end
    # of the settle time and the confirming listing must be two passes that agree.
    verify_after: datetime | None = None
    uncertain: bool = False

    @property
    def address(self) -> str:
        return schedule_address(self.name)


class Target(_Frozen):
    """Where a state was applied: the API and a fingerprint of the AppKey (never the key)."""

    base_url: str
    app_key_fingerprint: str

    def same_as(self, other: Target) -> bool:
        # Any local emulator is one target: its port changes from run to run.
        return self.app_key_fingerprint == other.app_key_fingerprint and (
            self.base_url == other.base_url
            or (_loopback(self.base_url) and _loopback(other.base_url))
        )

    def describe(self) -> str:
        return f"{self.base_url} with AppKey {self.app_key_fingerprint}"


def _loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


class State(_Frozen):
    version: int = STATE_VERSION
    lineage: str
    serial: int = 0
    target: Target | None = None  # bound by the first apply that writes to EngageLab
    plans: dict[str, PlanRecord] = Field(default_factory=dict)
    schedules: dict[str, ScheduleRecord] = Field(default_factory=dict)

    @classmethod
    def new(cls) -> State:
        return cls(lineage=str(uuid.uuid4()))

    def pending_intents(self) -> list[ScheduleRecord]:
        return [r for r in self.schedules.values() if r.intent is not None]

    def unverified(self) -> list[ScheduleRecord]:
        """Records whose uniqueness on EngageLab is not confirmed yet (see verify_after)."""
        return [r for r in self.schedules.values() if r.verify_after is not None]


def target_mismatch(state: State, target: Target) -> str | None:
    """Why `state` must not be applied to `target`, or None. Pure."""
    if state.target is None or state.target.same_as(target):
        return None
    return (
        f"this state was applied to {state.target.describe()}, but this run targets "
        f"{target.describe()}: wrong --env, data center or credentials? Nothing was sent. If "
        "the account really moved, start a new state for it (`--state`) and `reconcile import "
        "--match-names`"
    )


# --- events ---------------------------------------------------------------------------------


class PlanUpserted(_Frozen):
    type: Literal["plan_upserted"] = "plan_upserted"
    plan_id: str
    description: str
    at: datetime


class PlanRetired(_Frozen):
    """The plan left the specs. No API call: EngageLab plans cannot be deleted."""

    type: Literal["plan_retired"] = "plan_retired"
    plan_id: str
    at: datetime


class PlanForgotten(_Frozen):
    """A hand `state rm`: the plan is no longer recorded at all."""

    type: Literal["plan_forgotten"] = "plan_forgotten"
    plan_id: str


class IntentRecorded(_Frozen):
    type: Literal["intent_recorded"] = "intent_recorded"
    name: str
    plan_id: str
    intent: Intent


class IntentCleared(_Frozen):
    """The write did not happen (a definite failure): drop the intent, keep the rest."""

    type: Literal["intent_cleared"] = "intent_cleared"
    name: str


class ScheduleCreated(_Frozen):
    """A create succeeded, or a pending create was adopted from the remote list by name."""

    type: Literal["schedule_created"] = "schedule_created"
    name: str
    plan_id: str
    schedule_id: str
    body: dict[str, Any]
    digest: str
    trigger_kind: TriggerKind
    at: datetime
    verify_after: datetime | None = None  # uniqueness pending from then (None: import, refresh)
    uncertain: bool = False


class UniquenessConfirmed(_Frozen):
    """A listing after `verify_after` showed exactly the recorded copy live under the name."""

    type: Literal["uniqueness_confirmed"] = "uniqueness_confirmed"
    name: str
    schedule_id: str


class TargetBound(_Frozen):
    """The state is bound to the API and AppKey it is first applied to."""

    type: Literal["target_bound"] = "target_bound"
    target: Target


class ScheduleUpdated(_Frozen):
    type: Literal["schedule_updated"] = "schedule_updated"
    name: str
    plan_id: str
    body: dict[str, Any]
    digest: str
    trigger_kind: TriggerKind
    at: datetime


class ScheduleDeleted(_Frozen):
    """A remote id is gone: the current one (record dropped) or a superseded one."""

    type: Literal["schedule_deleted"] = "schedule_deleted"
    name: str
    schedule_id: str


class ScheduleForgotten(_Frozen):
    """Dropped from state with no API call (already sent and expired, or a hand `state rm`)."""

    type: Literal["schedule_forgotten"] = "schedule_forgotten"
    name: str


Event = Annotated[
    PlanUpserted
    | PlanRetired
    | PlanForgotten
    | IntentRecorded
    | IntentCleared
    | ScheduleCreated
    | ScheduleUpdated
    | ScheduleDeleted
    | ScheduleForgotten
    | UniquenessConfirmed
    | TargetBound,
    Field(discriminator="type"),
]


def apply_event(state: State, event: Event) -> State:
    """The state after `event`, with the serial raised by one. Pure."""
    plans = dict(state.plans)
    schedules = dict(state.schedules)
    match event:
        case PlanUpserted():
            plans[event.plan_id] = PlanRecord(
                plan_id=event.plan_id, description=event.description, applied_at=event.at
            )
        case PlanRetired():
            if event.plan_id in plans:
                plans[event.plan_id] = plans[event.plan_id].model_copy(
                    update={"retired_at": event.at}
                )
        case PlanForgotten():
            plans.pop(event.plan_id, None)
        case IntentRecorded():
            old = schedules.get(event.name)
            if old is None:
                schedules[event.name] = ScheduleRecord(
                    name=event.name, plan_id=event.plan_id, intent=event.intent
                )
            else:
                schedules[event.name] = old.model_copy(update={"intent": event.intent})
        case IntentCleared():
            old = schedules.get(event.name)
            if old is not None:
                if old.schedule_id is None and not old.superseded:
                    del schedules[event.name]  # a create that never happened leaves nothing
                else:
                    schedules[event.name] = old.model_copy(update={"intent": None})
        case ScheduleCreated():
            old = schedules.get(event.name)
            superseded = old.superseded if old else ()
            if old is not None and old.schedule_id and old.schedule_id != event.schedule_id:
                superseded = (*superseded, old.schedule_id)
            schedules[event.name] = ScheduleRecord(
                name=event.name,
                plan_id=event.plan_id,
                schedule_id=event.schedule_id,
                body=event.body,
                digest=event.digest,
                trigger_kind=event.trigger_kind,
                applied_at=event.at,
                superseded=superseded,
                verify_after=event.verify_after,
                uncertain=event.uncertain,
            )
        case ScheduleUpdated():
            old = schedules[event.name]
            schedules[event.name] = old.model_copy(
                update={
                    "plan_id": event.plan_id,
                    "body": event.body,
                    "digest": event.digest,
                    "trigger_kind": event.trigger_kind,
                    "applied_at": event.at,
                    "intent": None,
                }
            )
        case ScheduleDeleted():
            old = schedules.get(event.name)
            if old is not None:
                if old.schedule_id == event.schedule_id:
                    if old.superseded:
                        schedules[event.name] = old.model_copy(
                            update={"schedule_id": None, "intent": None}
                        )
                    else:
                        del schedules[event.name]
                else:
                    rest = tuple(s for s in old.superseded if s != event.schedule_id)
                    if old.schedule_id is None and not rest:
                        del schedules[event.name]
                    else:
                        schedules[event.name] = old.model_copy(update={"superseded": rest})
        case ScheduleForgotten():
            schedules.pop(event.name, None)
        case UniquenessConfirmed():
            old = schedules.get(event.name)
            if old is not None and old.schedule_id == event.schedule_id:
                schedules[event.name] = old.model_copy(
                    update={"verify_after": None, "uncertain": False}
                )
        case TargetBound():
            return state.model_copy(update={"serial": state.serial + 1, "target": event.target})
    return state.model_copy(
        update={"serial": state.serial + 1, "plans": plans, "schedules": schedules}
    )
