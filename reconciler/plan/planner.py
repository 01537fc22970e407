"""The planner: `build_plan(desired, state, now, settings)` diffs the specs against the recorded
state by address and returns a frozen Plan. Pure (no I/O; the clock is passed in).

The Plan's vocabulary lives in reconciler.plan.model, its time and quota gates in
reconciler.plan.gates; the names callers use are re-exported here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

from reconciler.addresses import plan_address
from reconciler.canonical import digest
from reconciler.checks.findings import run_checks
from reconciler.checks.timeline import build_timeline
from reconciler.diff import FieldDiff, diff_bodies
from reconciler.engagelab import request_id_for
from reconciler.errors import ConfigError
from reconciler.plan.gates import (
    describe_time,
    expiry,
    fold_checks,
    mass_delete_reason,
    quota_for,
    send_gate,
    utc_text,
    window_for,
    window_model,
)
from reconciler.plan.model import (
    CALLING,
    CHANGING,
    FORMAT_VERSION,
    NO_LINEAGE,
    Action,
    Blocker,
    Change,
    Plan,
    PlanSettings,
    Quota,
    Summary,
    Window,
)
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredSchedule, DesiredState
from reconciler.state.model import ScheduleRecord, State

__all__ = [
    "CALLING",
    "CHANGING",
    "FORMAT_VERSION",
    "NO_LINEAGE",
    "Action",
    "Blocker",
    "Change",
    "Plan",
    "PlanSettings",
    "Quota",
    "Summary",
    "Window",
    "build_plan",
    "describe_time",
]


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
        common: dict[str, Any] = {"address": plan_address(pid), "kind": "plan", "plan_id": pid}
        if want is not None and (rec is None or rec.retired_at is not None):
            reason = (
                "new push plan"
                if rec is None
                else f"retired on {utc_text(rec.retired_at)}; back in the specs"
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
    if rec is None:
        return None if want is None else _new_schedule(want, now, settings)
    if want is None:
        return _left_schedule(rec, now, settings)
    return _changed_schedule(want, rec, now, settings)


@dataclass(frozen=True, slots=True)
class _Facts:
    """What a schedule change says about both sides: built once, given to Change by name."""

    address: str
    plan_id: str
    window: Window | None = None
    after: dict[str, Any] | None = None
    digest_after: str | None = None
    language_copy: Mapping[str, Mapping[str, str]] = dataclass_field(default_factory=dict)
    default_language: str | None = None
    schedule_id: str | None = None
    superseded: tuple[str, ...] = ()
    before: dict[str, Any] | None = None
    digest_before: str | None = None
    diffs: tuple[FieldDiff, ...] = ()

    @classmethod
    def of(
        cls,
        want: DesiredSchedule | None,
        rec: ScheduleRecord | None,
        now: datetime,
        settings: Settings,
    ) -> _Facts:
        before = rec.body if rec is not None else None
        trigger = want.trigger if want is not None else (before or {}).get("trigger")
        return cls(
            address=want.address if want is not None else rec.address if rec else "",
            plan_id=want.plan_id if want is not None else rec.plan_id if rec else "",
            window=None if trigger is None else window_model(trigger, settings, now),
            after=None if want is None else dict(want.body),
            digest_after=None if want is None else want.digest,
            language_copy={} if want is None else {k: dict(v) for k, v in want.copy.items()},
            default_language=None if want is None else want.default_language,
            schedule_id=None if rec is None else rec.schedule_id,
            superseded=() if rec is None else rec.superseded,
            before=before,
            digest_before=None if rec is None else rec.digest,
            diffs=diff_bodies(before, dict(want.body)) if want and before is not None else (),
        )

    def change(self, action: Action, reason: str, *, schedule_id: str | None = None) -> Change:
        """The Change, every field by name; `schedule_id` overrides the recorded id."""
        return Change(
            address=self.address,
            kind="schedule",
            action=action,
            reason=reason,
            plan_id=self.plan_id,
            schedule_id=self.schedule_id if schedule_id is None else schedule_id or None,
            superseded=self.superseded,
            before=self.before,
            after=self.after,
            diffs=self.diffs,
            window=self.window,
            language_copy={k: dict(v) for k, v in self.language_copy.items()},
            default_language=self.default_language,
            digest_before=self.digest_before,
            digest_after=self.digest_after,
        )


def _new_schedule(want: DesiredSchedule, now: datetime, settings: Settings) -> Change:
    """In the specs, not in the state: created, unless disabled or already past everywhere."""
    facts = _Facts.of(want, None, now, settings)
    if want.body.get("enabled", True) is False:
        return facts.change(Action.NOOP, "disabled in the spec; not created")
    win = window_for(want.trigger, settings, now)
    if win.is_over(now, None):
        where = "everywhere " if win.device_local else ""
        reason = (
            f"{describe_time(want.trigger)} passed {where}on {utc_text(win.last)}"
            "; remove it from the specs or move its time"
        )
        return facts.change(Action.EXPIRED, reason)
    return facts.change(Action.CREATE, f"new in plan {want.plan_id}")


def _interrupted(rec: ScheduleRecord) -> str:
    if rec.intent is None:
        return ""
    return (
        f"a previous {rec.intent.action} was interrupted; the applier looks it up by name "
        "before acting"
    )


def _left_schedule(rec: ScheduleRecord, now: datetime, settings: Settings) -> Change:
    """In the state, gone from the specs: forgotten once its firing is over, else deleted."""
    facts = _Facts.of(None, rec, now, settings)
    old_win = None if rec.body is None else window_for(rec.body["trigger"], settings, now)
    if (
        rec.intent is None
        and not rec.superseded
        and old_win is not None
        and old_win.is_over(now, rec.applied_at)
    ):
        return facts.change(
            Action.FORGET,
            "removed from the specs; it already went out and has expired on EngageLab: "
            "dropped from state, no call",
        )
    reason = _interrupted(rec) or "removed from the specs"
    if old_win is not None and old_win.has_fired(now, rec.applied_at):
        reason += "; it has begun sending in some time zones, deleting stops the rest"
    return facts.change(Action.DELETE, reason)


def _changed_schedule(
    want: DesiredSchedule, rec: ScheduleRecord, now: datetime, settings: Settings
) -> Change | None:
    """In both: sent (no call), resumed, finished, replaced, updated, or up to date."""
    facts = _Facts.of(want, rec, now, settings)
    old_win = None if rec.body is None else window_for(rec.body["trigger"], settings, now)
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
            else (
                f"{describe_time(rec.body['trigger'])} began sending on {utc_text(old_win.first)}"
            )
        )
        return facts.change(
            Action.SENT,
            f"already sent: {began}; editing it now would change nothing for users, so no "
            "call is made (give it a new name to send it again)",
        )
    if rec.intent is not None or rec.schedule_id is None or rec.body is None:
        if rec.schedule_id is None or rec.intent is None or rec.intent.action == "delete":
            return facts.change(
                Action.CREATE, _interrupted(rec) or "finishes an interrupted replace"
            )
        action = Action.UPDATE if rec.trigger_kind == want.trigger_kind else Action.REPLACE
        return facts.change(action, _interrupted(rec))
    if rec.digest == want.digest:
        if not rec.superseded:
            return None
        # schedule_id "": the current task stays; only the superseded ids are deleted.
        return facts.change(
            Action.DELETE,
            "finishes an interrupted replace: deletes the older copy still live",
            schedule_id="",
        )
    if rec.trigger_kind != want.trigger_kind:
        return facts.change(
            Action.REPLACE,
            f"trigger kind changed from {rec.trigger_kind} to {want.trigger_kind}: EngageLab "
            "cannot change it in place, so the old task is deleted, then the new one created",
        )
    return facts.change(Action.UPDATE, _update_reason(facts.diffs))


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
    if not gone:  # nothing leaves the specs: no create can be a rename (and keys are costly)
        return warnings
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
        old_win = window_for(old.before["trigger"], settings, now)
        if old_win.has_fired(now, None) or old.action is Action.FORGET:
            warnings.append(
                f"{c.address}: renamed from {old.address}, which has already been sent: users "
                "will receive it again under the new name"
            )
    return warnings


def _restrict(
    changes: list[Change], targets: Collection[str], desired: DesiredState, state: State
) -> list[Change]:
    known = {p.address for p in desired.plans.values()} | {plan_address(p) for p in state.plans}
    known |= {s.address for s in desired.schedules.values()}
    known |= {r.address for r in state.schedules.values()}
    unknown = sorted(set(targets) - known)
    if unknown:
        raise ConfigError(
            f"--target {', '.join(unknown)}: no such address in the specs or the state; "
            "addresses look like plan.<plan_id> or schedule.<name>"
        )
    chosen = set(targets)
    # A rename is one change in two addresses: applying only the new name would leave the old
    # one live beside it (the same copy twice), so either half brings the other.
    for c in changes:
        if c.address in targets:
            chosen.update(a for a in (c.renamed_from, c.renamed_to) if a)
    kept = [c for c in changes if c.address in chosen]
    # A schedule cannot be created under a plan that does not exist yet.
    needed = {plan_address(c.plan_id) for c in kept if c.kind == "schedule" and c.after}
    return [
        c
        for c in changes
        if c.address in chosen
        or (c.address in needed and c.action in (Action.CREATE, Action.UPDATE))
    ]


def _target_notes(changes: list[Change], targets: Collection[str]) -> list[str]:
    """Say which addresses --target brought in: the other half of a rename."""
    notes = []
    for c in changes:
        for other in (c.renamed_from, c.renamed_to):
            if other and c.address in targets and other not in targets:
                notes.append(
                    f"{other}: included with --target {c.address}: a rename is applied whole "
                    "(the old name is deleted before the new one is created)"
                )
    return notes


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
        planner_warnings += _target_notes(changes, targets)
        unchanged = 0
    blockers: list[Blocker] = []
    for change in changes:
        gate = send_gate(change, now, settings)
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
    check_warnings, check_blockers = fold_checks(results, {b.address for b in blockers})
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
    quota, quota_blockers = quota_for(changes, state, desired, now, settings)
    blockers += quota_blockers
    unsafe_reason = mass_delete_reason(changes, state, settings)
    counts = Counter(c.action.value for c in changes)
    # Plans sort before schedules ("plan." < "schedule."), then by address.
    changes.sort(key=lambda c: c.address)
    return Plan(
        created_at=now,
        expires_at=expiry(changes, now, settings),
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
            smart_window=settings.smart_window,
            environment=settings.environment,
            check_levels=settings.check_levels,
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
        pending_checks=tuple(sorted(r.address for r in state.unverified())),
    )
