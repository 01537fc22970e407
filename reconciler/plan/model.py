"""The plan's vocabulary: a frozen value saying what `apply` would change and why. Pure.

`Change` is an action with the value before and after; the applier dispatches on `action`, never
on `reason`, which is for people. Built by reconciler.plan.build_plan.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from reconciler.checks.timeline import TimelineEntry
from reconciler.diff import FieldDiff
from reconciler.remote.drift import DriftItem

FORMAT_VERSION = 1
NO_LINEAGE = ""  # the plan was made against an empty state (serial 0, no file yet)


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"  # the trigger kind changed: delete the old task, then create the new one
    DELETE = "delete"
    RETIRE = "retire"  # a plan left the specs; EngageLab plans cannot be deleted. No call.
    SENT = "sent"  # the recorded send time has passed: editing changes nothing. No call.
    NOOP = "noop"
    FORGET = "forget"  # removed from specs, firing over, expired remotely: drop from state
    EXPIRED = "expired"  # never applied and its send time passed everywhere. No call.


CALLING = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE})
CHANGING = CALLING | {Action.RETIRE, Action.FORGET}  # what `apply` acts on (state or API)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Window(_Frozen):
    """When a trigger fires, in UTC (see reconciler.timing.FireWindow).

    `first`/`last` use the conservative UTC+14..UTC-12 bounds the gates need; `real_first`/
    `real_last` span the inhabited zones of that day, for people (of the next occurrence, for a
    periodical send, whose next few starts are in `next_starts`).
    """

    kind: str
    first: datetime | None = None
    last: datetime | None = None
    immediate: bool = False
    device_local: bool = False
    real_first: datetime | None = None
    real_last: datetime | None = None
    next_starts: tuple[datetime, ...] = ()


class Change(_Frozen):
    """One planned change. Each field says who reads it: the applier (apply/), the gates
    (plan/gates.py, apply's preflight), the views (views/), saved-plan verification
    (plan/saved.py compares address, action, digest_after, schedule_id and superseded)."""

    address: str  # all; the one name of a resource ("plan.<id>", "schedule.<name>")
    kind: Literal["plan", "schedule"]  # all
    action: Action  # all
    reason: str  # views only: for people
    plan_id: str  # applier (records, creates), views
    schedule_id: str | None = None  # applier: the remote id an update/replace/delete acts on
    superseded: tuple[str, ...] = ()  # applier: older remote copies to delete (a replace left)
    before: dict[str, Any] | None = None  # gates (the version being changed), applier, views
    after: dict[str, Any] | None = None  # applier: the exact body to send, never re-rendered
    diffs: tuple[FieldDiff, ...] = ()  # views
    window: Window | None = None  # gates and views: of `after` if there is one, else `before`
    language_copy: dict[str, dict[str, str]] = {}  # views: language -> {"title", "alert"}
    default_language: str | None = None  # views
    digest_before: str | None = None  # applier: is the live version the recorded one?
    digest_after: str | None = None  # applier (adopt, verify), saved-plan verification
    renamed_from: str | None = None  # applier (the old name's copies), views
    renamed_to: str | None = None  # views


class Blocker(_Frozen):
    address: str
    reason: str


class Quota(_Frozen):
    """Usage once the plan is applied; `schedules_peak` while creates run before deletes."""

    plans_used: int
    plans_limit: int
    schedules_live: int
    schedules_peak: int
    schedules_limit: int


class Summary(_Frozen):
    create: int = 0
    update: int = 0
    replace: int = 0
    delete: int = 0
    retire: int = 0
    sent: int = 0
    noop: int = 0
    forget: int = 0
    expired: int = 0
    unchanged: int = 0  # up-to-date resources, left out of `changes`


class PlanSettings(_Frozen):
    schedule_quota: int
    plan_quota: int
    site_time_zone: str
    delete_threshold_count: int
    delete_threshold_ratio: float
    smart_window: str = "local_day"
    # Which environment it was planned for, and its check levels: a plan reviewed for one is
    # never applied to another (a first apply has no state lineage to tell them apart).
    environment: str = ""
    check_levels: tuple[tuple[str, str], ...] = ()


class Plan(_Frozen):
    format_version: Literal[1] = 1
    created_at: datetime
    expires_at: datetime | None  # earliest send it touches, minus MIN_LEAD
    state_lineage: str
    state_serial: int
    inputs_digest: str
    settings: PlanSettings
    targets: tuple[str, ...] = ()
    changes: tuple[Change, ...]
    blockers: tuple[Blocker, ...] = ()
    warnings: tuple[str, ...] = ()
    quota: Quota
    unsafe: bool = False
    unsafe_reason: str | None = None
    summary: Summary
    # Filled only by `plan --refresh`: what changed on EngageLab outside reconcile.
    drift: tuple[DriftItem, ...] = ()
    refreshed_at: datetime | None = None
    # Every message of the campaigns this plan changes, on a UTC axis (reconciler.checks.timeline).
    timeline: tuple[TimelineEntry, ...] = ()
    # Schedules whose uniqueness on EngageLab is not confirmed yet (a create, maybe after an
    # unknown outcome): apply lists EngageLab and deletes any second copy before anything else.
    pending_checks: tuple[str, ...] = ()

    @property
    def has_drift(self) -> bool:
        return any(item.is_drift for item in self.drift)

    @property
    def has_changes(self) -> bool:
        return bool(self.pending_checks) or any(c.action in CHANGING for c in self.changes)
