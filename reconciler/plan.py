"""The plan: a frozen value saying what `apply` would change and why, and `build_plan`. Pure.

`build_plan(desired, state, now, settings)` diffs the specs against the recorded state by address
(no I/O, the clock passed in). The applier dispatches on `Change.action` only, never on `reason`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from reconciler.canonical import digest
from reconciler.checks import CheckResult, device_wall, passed_offsets, run_checks
from reconciler.diff import FieldDiff, diff_bodies
from reconciler.drift import DriftItem
from reconciler.engagelab import HORIZON, MIN_LEAD, request_id_for
from reconciler.errors import ConfigError
from reconciler.resources import DesiredSchedule, DesiredState
from reconciler.settings import Settings
from reconciler.state import ScheduleRecord, State
from reconciler.timeline import TimelineEntry, build_timeline
from reconciler.timing import FireWindow, fire_window, firings, format_utc
from reconciler.zones import summarize

FORMAT_VERSION = 1
NO_LINEAGE = ""  # the plan was made against an empty state (serial 0, no file yet)
# The delete *ratio* only means something with enough schedules: removing 1 of 3 is ordinary.
RATIO_MIN_RECORDED = 10


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"  # trigger kind changed: create the new task, then delete the old one
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
    address: str
    kind: Literal["plan", "schedule"]
    action: Action
    reason: str  # for people only
    plan_id: str
    schedule_id: str | None = None  # the remote id an update/replace/delete acts on
    superseded: tuple[str, ...] = ()  # older remote copies to delete (an interrupted replace)
    before: dict[str, Any] | None = None  # body last applied
    after: dict[str, Any] | None = None  # exact body to send; the applier never re-renders
    diffs: tuple[FieldDiff, ...] = ()
    window: Window | None = None  # of `after` when there is one, else of `before`
    language_copy: dict[str, dict[str, str]] = {}  # language -> {"title", "alert"}; views
    default_language: str | None = None
    digest_before: str | None = None
    digest_after: str | None = None
    renamed_from: str | None = None
    renamed_to: str | None = None


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
    # Every message of the campaigns this plan changes, on a UTC axis (reconciler.timeline).
    timeline: tuple[TimelineEntry, ...] = ()

    @property
    def has_drift(self) -> bool:
        return any(item.is_drift for item in self.drift)

    @property
    def has_changes(self) -> bool:
        return any(c.action in CHANGING for c in self.changes)


# --- building -------------------------------------------------------------------------------


def _window(trigger: Mapping[str, Any], settings: Settings, now: datetime) -> FireWindow:
    # Thousands of schedules share a few send times; parsing each one again dominated planning.
    key = json.dumps(trigger, sort_keys=True)
    return _cached_window(key, settings.site_time_zone, now)


@lru_cache(maxsize=16384)
def _cached_window(trigger_json: str, zone: str, now: datetime) -> FireWindow:
    return fire_window(json.loads(trigger_json), ZoneInfo(zone), now=now)


def _window_model(trigger: Mapping[str, Any], settings: Settings, now: datetime) -> Window:
    return _cached_model(json.dumps(trigger, sort_keys=True), settings.site_time_zone, now)


@lru_cache(maxsize=16384)
def _cached_model(trigger_json: str, zone: str, now: datetime) -> Window:
    trigger = json.loads(trigger_json)
    win = _cached_window(trigger_json, zone, now)
    fires = firings(trigger, ZoneInfo(zone), now)
    return Window(
        kind=win.kind,
        first=win.first,
        last=win.last,
        immediate=win.immediate,
        device_local=win.device_local,
        real_first=fires[0].first if fires else None,
        real_last=fires[0].last if fires else None,
        next_starts=tuple(f.first for f in fires) if win.kind == "periodical" else (),
    )


def _utc(instant: datetime | None) -> str:
    return format_utc(instant) if instant is not None else "an unknown time"


def describe_time(trigger: Mapping[str, Any]) -> str:
    """The spec-side words for a trigger's time: `backup_time 2025-12-28 09:00:00`."""
    if "intelligent" in trigger:
        return f"backup_time {trigger['intelligent']['backup_time']}"
    if "single" in trigger:
        return f"time {trigger['single']['time']}"
    per = trigger.get("periodical", {})
    return f"periodical {per.get('start')} to {per.get('end')} at {per.get('time')}"


def _update_reason(diffs: Iterable[FieldDiff]) -> str:
    """`changed: fr copy, send time` — what a reviewer would call each changed area."""
    areas: list[str] = []
    for d in diffs:
        parts = d.path.split(".")
        if parts[:2] == ["options", "multi_language"] and len(parts) > 2:
            area = f"{parts[2]} copy"
        elif parts[0] == "trigger":
            area = "send time"
        elif parts[0] == "notification":
            area = "default copy"
        elif parts[0] == "to":
            area = "audience"
        else:
            area = parts[0].split("[")[0]
        if area not in areas:
            areas.append(area)
    return "changed: " + ", ".join(areas) if areas else "changed"


def _plan_changes(desired: DesiredState, state: State) -> tuple[list[Change], int]:
    changes: list[Change] = []
    unchanged = 0
    for pid in sorted(set(desired.plans) | set(state.plans)):
        want, rec = desired.plans.get(pid), state.plans.get(pid)
        before = None if rec is None else {"plan_id": pid, "plan_description": rec.description}
        common: dict[str, Any] = {"address": f"plan.{pid}", "kind": "plan", "plan_id": pid}
        if want is not None and (rec is None or rec.retired_at is not None):
            reason = (
                "new push plan"
                if rec is None
                else f"retired on {_utc(rec.retired_at)}; back in the specs"
            )
            changes.append(Change(**common, action=Action.CREATE, reason=reason, after=want.body()))
        elif want is not None and before is not None and rec is not None:
            if rec.description == want.description:
                unchanged += 1
                continue
            changes.append(
                Change(
                    **common,
                    action=Action.UPDATE,
                    reason="description changed",
                    before=before,
                    after=want.body(),
                    diffs=diff_bodies(before, want.body()),
                )
            )
        elif rec is not None and rec.retired_at is None:
            changes.append(
                Change(
                    **common,
                    action=Action.RETIRE,
                    reason="removed from the specs; EngageLab cannot delete push plans, so it "
                    "is retired: no call, and it still counts against the plan quota",
                    before=before,
                )
            )
    return changes, unchanged


def _schedule_change(
    want: DesiredSchedule | None, rec: ScheduleRecord | None, now: datetime, settings: Settings
) -> Change | None:
    """The change for one schedule address, or None when it is up to date."""
    if (  # digest-first: the common, unchanged case costs one string comparison
        want is not None
        and rec is not None
        and rec.digest == want.digest
        and rec.intent is None
        and rec.schedule_id is not None
        and not rec.superseded
    ):
        return None
    common: dict[str, Any] = {"kind": "schedule"}
    if want is not None:
        win = _window(want.trigger, settings, now)
        common |= {
            "address": want.address,
            "plan_id": want.plan_id,
            "after": dict(want.body),
            "digest_after": want.digest,
            "window": _window_model(want.trigger, settings, now),
            "language_copy": {lang: dict(fields) for lang, fields in want.copy.items()},
            "default_language": want.default_language,
        }
    if rec is None:
        if want is None:
            return None
        if want.body.get("enabled", True) is False:
            return Change(**common, action=Action.NOOP, reason="disabled in the spec; not created")
        if win.is_over(now, None):
            where = "everywhere " if win.device_local else ""
            reason = (
                f"{describe_time(want.trigger)} passed {where}on {_utc(win.last)}"
                "; remove it from the specs or move its time"
            )
            return Change(**common, action=Action.EXPIRED, reason=reason)
        return Change(**common, action=Action.CREATE, reason=f"new in plan {want.plan_id}")

    common |= {
        "schedule_id": rec.schedule_id,
        "superseded": rec.superseded,
        "before": rec.body,
        "digest_before": rec.digest,
    }
    if want is None:
        common |= {"address": rec.address, "plan_id": rec.plan_id}
    old_win = None if rec.body is None else _window(rec.body["trigger"], settings, now)
    if want is None and old_win is not None and rec.body is not None:
        common["window"] = _window_model(rec.body["trigger"], settings, now)
    diffs = diff_bodies(rec.body, dict(want.body)) if want and rec.body is not None else ()
    if diffs:
        common["diffs"] = diffs
    interrupted = (
        f"a previous {rec.intent.action} was interrupted; the applier looks it up by name "
        "before acting"
        if rec.intent is not None
        else ""
    )

    if want is None:
        if (
            rec.intent is None
            and not rec.superseded
            and old_win is not None
            and old_win.is_over(now, rec.applied_at)
        ):
            return Change(
                **common,
                action=Action.FORGET,
                reason="removed from the specs; it already went out and has expired on "
                "EngageLab: dropped from state, no call",
            )
        reason = interrupted or "removed from the specs"
        if old_win is not None and old_win.has_fired(now, rec.applied_at):
            reason += "; it has begun sending in some time zones, deleting stops the rest"
        return Change(**common, action=Action.DELETE, reason=reason)

    # Checked before any interrupted write is resumed: once the recorded version has begun
    # sending, changing it would reach some users twice, whatever was in flight before.
    fired = (
        rec.schedule_id is not None
        and rec.body is not None
        and old_win is not None
        and old_win.has_fired(now, rec.applied_at)
        and (old_win.kind != "periodical" or old_win.is_over(now, rec.applied_at))
    )
    if fired and rec.body is not None and old_win is not None and rec.digest != want.digest:
        began = (
            "it was sent when applied"
            if old_win.immediate
            else (f"{describe_time(rec.body['trigger'])} began sending on {_utc(old_win.first)}")
        )
        return Change(
            **common,
            action=Action.SENT,
            reason=f"already sent: {began}; editing it now would change nothing for users, so "
            "no call is made (give it a new name to send it again)",
        )
    if rec.intent is not None or rec.schedule_id is None or rec.body is None:
        if rec.schedule_id is None or rec.intent is None or rec.intent.action == "delete":
            reason = interrupted or "finishes an interrupted replace"
            return Change(**common, action=Action.CREATE, reason=reason)
        action = Action.UPDATE if rec.trigger_kind == want.trigger_kind else Action.REPLACE
        return Change(**common, action=action, reason=interrupted)

    if rec.digest == want.digest:
        if rec.superseded:
            # schedule_id None: the current task stays; only the superseded ids are deleted.
            return Change(
                **common | {"schedule_id": None},
                action=Action.DELETE,
                reason="finishes an interrupted replace: deletes the older copy still live",
            )
        return None
    if old_win is None:  # unreachable: a record without a body took the branch above
        return Change(**common, action=Action.CREATE, reason="no body recorded")
    if rec.trigger_kind != want.trigger_kind:
        return Change(
            **common,
            action=Action.REPLACE,
            reason=f"trigger kind changed from {rec.trigger_kind} to {want.trigger_kind}: "
            "EngageLab cannot change it in place, so the old task is deleted, then the new "
            "one created",
        )
    return Change(**common, action=Action.UPDATE, reason=_update_reason(diffs))


def _blank(value: Any, derived: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _blank(v, derived) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v, derived) for v in value]
    return "\x00" if isinstance(value, str) and value in derived else value


def _rename_key(body: Mapping[str, Any], name: str) -> str:
    # The name also shapes derived values (request_id): blank every value that is one of them.
    return digest(_blank(body, frozenset({name, request_id_for(name)})))


def _detect_renames(changes: list[Change], now: datetime, settings: Settings) -> list[str]:
    """Pair removed + added schedules whose bodies differ only by name; returns warnings."""
    gone: dict[str, list[int]] = {}
    for i, c in enumerate(changes):
        if c.kind != "schedule" or c.after is not None or not c.before:
            continue
        if c.action in (Action.DELETE, Action.FORGET):
            gone.setdefault(_rename_key(c.before, c.before["name"]), []).append(i)
    warnings: list[str] = []
    for i, c in enumerate(changes):
        if c.kind != "schedule" or c.action is not Action.CREATE or c.before or not c.after:
            continue
        olds = gone.get(_rename_key(c.after, c.after["name"]))
        if not olds:
            continue
        j = olds.pop(0)
        old = changes[j]
        changes[i] = c.model_copy(
            update={"renamed_from": old.address, "reason": f"renamed from {old.address}"}
        )
        changes[j] = old.model_copy(
            update={"renamed_to": c.address, "reason": f"renamed to {c.address}; {old.reason}"}
        )
        assert old.before is not None
        old_win = _window(old.before["trigger"], settings, now)
        if old_win.has_fired(now, None) or old.action is Action.FORGET:
            warnings.append(
                f"{c.address}: renamed from {old.address}, which has already been sent: users "
                "will receive it again under the new name"
            )
    return warnings


def _gate(change: Change, now: datetime, settings: Settings) -> Blocker | str | None:
    """A send-time blocker, an immediate-send warning, or None."""
    win = change.window
    if change.action not in (Action.CREATE, Action.UPDATE, Action.REPLACE) or win is None:
        return None
    if change.after is None:
        return None
    if change.before is not None and change.action is not Action.CREATE:
        old = _window(change.before["trigger"], settings, now)
        # Changing a task in the minutes before it fires races EngageLab's own send.
        if old.first is not None and now <= old.first < now + MIN_LEAD:
            return Blocker(
                address=change.address,
                reason=f"the recorded {describe_time(change.before['trigger'])} starts firing on "
                f"{format_utc(old.first)}, less than {int(MIN_LEAD.total_seconds() // 60)} "
                "minutes from now: changing it now races the send; plan again after it",
            )
    if win.immediate:
        return (
            f'{change.address}: backup_time "now": sends immediately to users with no '
            "activity history when applied"
        )
    if win.first is None:
        return None
    when = describe_time(change.after["trigger"])
    if win.first < now:
        return Blocker(
            address=change.address,
            reason=f"{when} already began on {format_utc(win.first)}{_passed_where(change, now)}"
            ": applied now it would fire at the wrong local time somewhere; move its time",
        )
    if win.first < now + MIN_LEAD:
        return Blocker(
            address=change.address,
            reason=f"{when} starts firing on {format_utc(win.first)}, less than "
            f"{int(MIN_LEAD.total_seconds() // 60)} minutes from now; move its time",
        )
    if win.first > now + HORIZON:
        return Blocker(
            address=change.address,
            reason=f"{when} first fires on {format_utc(win.first)}, more than "
            f"{HORIZON.days} days ahead, which EngageLab refuses",
        )
    return None


def _passed_where(change: Change, now: datetime) -> str:
    """` (passed in UTC+13..UTC+14 (…), 2 of 37 offsets)`: the real zones a device time missed."""
    found = device_wall(change.after["trigger"]) if change.after is not None else None
    if found is None:
        return ""
    passed, total = passed_offsets(found[1], now)
    if not passed:
        return " (in no inhabited time zone yet: the gate counts from UTC+14 to UTC-12)"
    if len(passed) == total:
        return " (it has passed in every time zone)"
    return f" (passed in {summarize(passed)}, {len(passed)} of {total} UTC offsets)"


def _fold_checks(
    results: Iterable[CheckResult], blocked: Collection[str]
) -> tuple[list[str], list[Blocker]]:
    """Check findings as warnings (`quiet_hours: schedule.x: …`) and error-level blockers."""
    warnings: list[str] = []
    blockers: list[Blocker] = []
    for r in results:
        if r.check == "backup_passed" and r.address in blocked:
            continue  # the send-time gate already refuses it, naming the zones
        if r.level == "error":
            blockers.append(Blocker(address=r.address, reason=f"{r.check}: {r.message}"))
        else:
            warnings.append(str(r))
    return warnings, blockers


def _live_now(rec: ScheduleRecord, now: datetime, settings: Settings) -> int:
    """Remote tasks this record holds that still count against the schedule quota."""
    live = len(rec.superseded)  # unknown bodies: count them, erring on the safe side
    if (
        rec.schedule_id is not None
        and rec.body is not None
        and not _window(rec.body["trigger"], settings, now).is_over(now, rec.applied_at)
    ):
        live += 1
    return live


_LIVE_AFTER = {Action.CREATE: 1, Action.UPDATE: 1, Action.REPLACE: 1}


def _quota(
    changes: list[Change], state: State, desired: DesiredState, now: datetime, settings: Settings
) -> tuple[Quota, list[Blocker]]:
    by_address = {c.address: c for c in changes}
    live_now = live_after = 0
    for rec in state.schedules.values():
        now_count = _live_now(rec, now, settings)
        live_now += now_count
        change = by_address.get(rec.address)
        if change is None or change.action in (Action.SENT, Action.NOOP):
            live_after += now_count
    added = 0
    for c in changes:
        if c.kind == "schedule" and c.action in _LIVE_AFTER:
            live_after += 1
            if c.action is not Action.UPDATE:
                added += 1  # created before any delete runs
    plans_used = len(state.plans) + sum(
        1
        for c in changes
        if c.kind == "plan" and c.action is Action.CREATE and c.plan_id not in state.plans
    )
    quota = Quota(
        plans_used=plans_used,
        plans_limit=settings.plan_quota,
        schedules_live=live_after,
        schedules_peak=max(live_now + added, live_after),
        schedules_limit=settings.schedule_quota,
    )
    blockers: list[Blocker] = []
    if quota.plans_used > quota.plans_limit:
        blockers.append(
            Blocker(
                address="quota.plans",
                reason=f"{quota.plans_used} push plans needed, over the AppKey's limit of "
                f"{quota.plans_limit}; plans cannot be deleted, and retired ones still count",
            )
        )
    if quota.schedules_live > quota.schedules_limit:
        blockers.append(
            Blocker(
                address="quota.schedules",
                reason=f"{quota.schedules_live} live schedules after this plan, over the quota "
                f"of {quota.schedules_limit}; remove schedules or raise --schedule-quota if "
                "EngageLab raised it for this AppKey",
            )
        )
    elif quota.schedules_peak > quota.schedules_limit:
        blockers.append(
            Blocker(
                address="quota.schedules",
                reason=f"apply creates before it deletes, so {quota.schedules_peak} schedules "
                f"would be live at once, over the quota of {quota.schedules_limit}; apply the "
                "deletions first (--target) and then the rest",
            )
        )
    return quota, blockers


def _unsafe(changes: list[Change], state: State, settings: Settings) -> str | None:
    deletes = sum(1 for c in changes if c.action is Action.DELETE and c.after is None)
    recorded = len(state.schedules)
    if deletes > settings.delete_threshold_count:
        return (
            f"deletes {deletes} schedules, more than {settings.delete_threshold_count}; "
            "`reconcile apply` needs --allow-destroy"
        )
    if recorded >= RATIO_MIN_RECORDED and deletes / recorded > settings.delete_threshold_ratio:
        return (
            f"deletes {deletes} of {recorded} recorded schedules ({deletes / recorded:.0%}), more "
            f"than {settings.delete_threshold_ratio:.0%}; `reconcile apply` needs --allow-destroy"
        )
    return None


def _expires_at(changes: Iterable[Change], now: datetime, settings: Settings) -> datetime | None:
    """MIN_LEAD before the earliest future firing that a calling change touches."""
    starts: list[datetime] = []
    for c in changes:
        if c.kind != "schedule" or c.action not in CALLING:
            continue
        for body in (c.before, c.after):
            if body is not None:
                first = _window(body["trigger"], settings, now).first
                if first is not None and first > now:
                    starts.append(first)
    return min(starts) - MIN_LEAD if starts else None


def _restrict(
    changes: list[Change], targets: Collection[str], desired: DesiredState, state: State
) -> list[Change]:
    known = {p.address for p in desired.plans.values()} | {f"plan.{p}" for p in state.plans}
    known |= {s.address for s in desired.schedules.values()}
    known |= {r.address for r in state.schedules.values()}
    unknown = sorted(set(targets) - known)
    if unknown:
        raise ConfigError(
            f"--target {', '.join(unknown)}: no such address in the specs or the state; "
            "addresses look like plan.<plan_id> or schedule.<name>"
        )
    kept = [c for c in changes if c.address in targets]
    # A schedule cannot be created under a plan that does not exist yet.
    needed = {f"plan.{c.plan_id}" for c in kept if c.kind == "schedule" and c.after}
    return [
        c
        for c in changes
        if c.address in targets
        or (c.address in needed and c.action in (Action.CREATE, Action.UPDATE))
    ]


def _skip_idle_plans(changes: list[Change], state: State) -> list[Change]:
    """Do not create a push plan none of whose messages will be sent.

    EngageLab cannot delete push plans and allows 100 per AppKey, so a plan created for a
    campaign whose every message has expired (or is disabled) would waste a slot for ever.
    """
    sending = {
        c.plan_id
        for c in changes
        if c.kind == "schedule" and c.action in (Action.CREATE, Action.UPDATE, Action.REPLACE)
    }
    kept = []
    for c in changes:
        idle = c.plan_id not in sending and c.plan_id not in state.plans  # retired: no new slot
        if c.kind == "plan" and c.action is Action.CREATE and idle:
            c = c.model_copy(
                update={
                    "action": Action.NOOP,
                    "reason": "not created: none of its messages will be sent, and push plans "
                    "can never be deleted (each one holds one of the AppKey's 100 for ever)",
                }
            )
        kept.append(c)
    return kept


def build_plan(
    desired: DesiredState,
    state: State,
    now: datetime,
    settings: Settings | None = None,
    *,
    targets: Collection[str] | None = None,
) -> Plan:
    """What applying `desired` over `state` at `now` would do. Pure; raises ConfigError only
    for an unknown --target address."""
    settings = settings or Settings()
    changes, unchanged = _plan_changes(desired, state)
    for name in sorted(set(desired.schedules) | set(state.schedules)):
        change = _schedule_change(
            desired.schedules.get(name), state.schedules.get(name), now, settings
        )
        if change is None:
            unchanged += 1
        else:
            changes.append(change)
    changes = _skip_idle_plans(changes, state)
    warnings = [str(p) for p in desired.warnings]
    planner_warnings = _detect_renames(changes, now, settings)
    if targets:
        changes = _restrict(changes, targets, desired, state)
        unchanged = 0
    blockers: list[Blocker] = []
    for change in changes:
        gate = _gate(change, now, settings)
        if isinstance(gate, Blocker):
            blockers.append(gate)
        elif gate is not None:
            planner_warnings.append(gate)
    touched = {
        c.address
        for c in changes
        if c.kind == "schedule" and c.action in (Action.CREATE, Action.UPDATE, Action.REPLACE)
    }
    results = run_checks(desired, settings, now, only=touched) if touched else []
    check_warnings, check_blockers = _fold_checks(results, {b.address for b in blockers})
    planner_warnings += check_warnings
    blockers += check_blockers
    flags: dict[str, set[str]] = {}
    for r in results:
        flags.setdefault(r.address, set()).add(r.check)
    campaigns = {c.plan_id for c in changes if c.action in CHANGING}
    timeline = (
        build_timeline(desired, settings, now, campaigns=campaigns, flags=flags)
        if campaigns
        else ()
    )
    quota, quota_blockers = _quota(changes, state, desired, now, settings)
    blockers += quota_blockers
    unsafe_reason = _unsafe(changes, state, settings)
    counts = Counter(c.action.value for c in changes)
    # Plans sort before schedules ("plan." < "schedule."), then by address.
    changes.sort(key=lambda c: c.address)
    return Plan(
        created_at=now,
        expires_at=_expires_at(changes, now, settings),
        # Serial 0 is "nothing recorded yet": its lineage is minted afresh on every load.
        state_lineage=state.lineage if state.serial else NO_LINEAGE,
        state_serial=state.serial,
        inputs_digest=desired.inputs_digest,
        settings=PlanSettings(
            schedule_quota=settings.schedule_quota,
            plan_quota=settings.plan_quota,
            site_time_zone=settings.site_time_zone,
            delete_threshold_count=settings.delete_threshold_count,
            delete_threshold_ratio=settings.delete_threshold_ratio,
        ),
        targets=tuple(sorted(targets or ())),
        changes=tuple(changes),
        blockers=tuple(sorted(blockers, key=lambda b: (b.address, b.reason))),
        warnings=(*warnings, *sorted(set(planner_warnings))),
        quota=quota,
        unsafe=unsafe_reason is not None,
        unsafe_reason=unsafe_reason,
        summary=Summary(**counts, unchanged=unchanged),
        timeline=timeline,
    )
