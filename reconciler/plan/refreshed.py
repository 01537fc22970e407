"""Make a plan built on refreshed state appliable to the state on disk. Pure.

`plan --refresh` plans against an in-memory copy of the state with the drift accepted; this
module adjusts that plan so that applying it to the unrefreshed state does exactly what it shows.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from reconciler.plan.planner import NO_LINEAGE, Action, Plan, build_plan
from reconciler.remote.drift import DriftItem, DriftKind, accept_events, refreshed_state
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredState
from reconciler.state.model import State


def with_drift(plan: Plan, drift: tuple[DriftItem, ...], state: State, now: datetime) -> Plan:
    """A plan built on the refreshed copy of `state`, made appliable to `state` itself. Pure.

    It keeps the serial and lineage of the state on disk (which `plan` does not write), so a
    saved `plan --refresh` applies as reviewed, with no call beyond the ones it shows:
    - a re-create of a schedule deleted remotely names the vanished id as superseded, so the
      applier clears it (a delete answered 404) instead of keeping it as an "older copy";
    - an update of a schedule adopted only in memory (created remotely) is shown as what the
      applier does with it, since the state on disk does not know it: a replace.
    """
    gone = {i.address: i.schedule_id for i in drift if i.kind is DriftKind.DELETED}
    adopted = {i.address for i in drift if i.kind is DriftKind.CREATED and i.remote is not None}
    changes = []
    for c in plan.changes:
        sid = gone.get(c.address)
        if c.action is Action.CREATE and sid and sid not in c.superseded:
            c = c.model_copy(update={"superseded": (*c.superseded, sid)})
        elif c.action is Action.UPDATE and c.address in adopted:
            reason = (
                f"created remotely and not recorded: it is deleted and the spec's created in its "
                f"place (`reconcile refresh` first would update it in place instead); {c.reason}"
            )
            c = c.model_copy(update={"action": Action.REPLACE, "reason": reason})
        changes.append(c)
    moved = sum(
        1 for old, new in zip(plan.changes, changes, strict=True) if old.action != new.action
    )
    summary = plan.summary.model_copy(
        update={"update": plan.summary.update - moved, "replace": plan.summary.replace + moved}
    )
    return plan.model_copy(
        update={
            "drift": drift,
            "refreshed_at": now,
            "changes": tuple(changes),
            "summary": summary,
            "state_serial": state.serial,
            "state_lineage": state.lineage if state.serial else NO_LINEAGE,
        }
    )


def make_plan(
    desired: DesiredState,
    state: State,
    now: datetime,
    settings: Settings,
    *,
    targets: Collection[str] | None = None,
    drift: tuple[DriftItem, ...] | None = None,
) -> Plan:
    """The plan `reconcile plan` shows: plain, or (`drift` given) against the refreshed state.

    One function for `plan` and for `apply`, which rebuilds a saved plan to prove it unedited.
    """
    if drift is None:
        return build_plan(desired, state, now, settings, targets=targets)
    known = refreshed_state(state, accept_events(state, drift, now))
    plan = build_plan(desired, known, now, settings, targets=targets)
    return with_drift(plan, drift, state, now)
