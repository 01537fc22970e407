"""The planner: `build_plan(desired, state, now, settings)` diffs the specs against the recorded
state by address and returns a frozen Plan. Pure (no I/O; the clock is passed in).

The Plan's vocabulary lives in reconciler.plan.model, its time and quota gates in
reconciler.plan.gates; the names callers use are re-exported here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
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
    common: dict[str, Any] = {"kind": "schedule"}
    if want is not None:
        win = window_for(want.trigger, settings, now)
        common |= {
            "address": want.address,
            "plan_id": want.plan_id,
            "after": dict(want.body),
            "digest_after": want.digest,
            "window": window_model(want.trigger, settings, now),
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
                f"{describe_time(want.trigger)} passed {where}on {utc_text(win.last)}"
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
    old_win = None if rec.body is None else window_for(rec.body["trigger"], settings, now)
    if want is None and old_win is not None and rec.body is not None:
        common["window"] = window_model(rec.body["trigger"], settings, now)
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
            else (
                f"{describe_time(rec.body['trigger'])} began sending on {utc_text(old_win.first)}"
            )
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
