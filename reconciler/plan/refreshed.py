"""Plans with the drift accepted: `plan --refresh`, and the rebuild of such a saved plan. Pure.

`plan --refresh` plans against an in-memory copy of the state with the drift accepted. Applying
such a plan records those same events first and then applies the plan built on that state: no
plan is patched after it is built.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from reconciler.plan.planner import NO_LINEAGE, Plan, build_plan
from reconciler.remote.drift import DriftItem, accept_events, refreshed_state
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredState
from reconciler.state.model import Event, State


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
    known = refreshed_state(state, drift_events(state, drift, now))
    plan = build_plan(desired, known, now, settings, targets=targets)
    # Only the bookkeeping is the disk state's (what a saved plan is checked fresh against);
    # every decision, count, quota and blocker is the planner's, on the refreshed state.
    return plan.model_copy(
        update={
            "drift": drift,
            "refreshed_at": now,
            "state_serial": state.serial,
            "state_lineage": state.lineage if state.serial else NO_LINEAGE,
        }
    )


def drift_events(state: State, drift: tuple[DriftItem, ...], now: datetime) -> list[Event]:
    """The events that accept `drift` into `state`: in memory for `plan --refresh`, and recorded
    first by `apply` of such a plan, before any call, so that it applies the plan it showed
    (as Terraform applies a refresh-only change to the state first)."""
    return accept_events(state, drift, now)
