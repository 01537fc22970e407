"""Saved plan files: write/read the JSON view, and the pure freshness check `apply` runs first.

`save_plan`/`load_plan` do file I/O; `check_fresh` is pure (clock passed in). A reviewed plan is
applied only if the state, the specs and the clock are still where the review saw them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from reconciler.atomicfile import atomic_write
from reconciler.canonical import digest
from reconciler.errors import ExpiredPlanError, ReconcileError, StalePlanError, UnsafePlanError
from reconciler.plan.planner import FORMAT_VERSION, NO_LINEAGE, Action, Plan
from reconciler.plan.refreshed import make_plan
from reconciler.remote.drift import DriftItem
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredState
from reconciler.state.model import State
from reconciler.timing import format_utc


class PlanFileError(ReconcileError):
    """The file is not a plan this version of reconcile can read."""


def plan_json(plan: Plan) -> str:
    """The saved-plan file format: format_version 1, sorted keys, byte-stable (`reconcile plan
    --format json` shows the same)."""
    return (
        json.dumps(plan.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=False)
        + "\n"
    )


def save_plan(plan: Plan, path: Path) -> None:
    """Write the JSON view atomically, so a reviewer never picks up half a plan."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, plan_json(plan).encode("utf-8"))


def parse_plan(text: str, source: str = "plan") -> Plan:
    """The Plan in `text` (a saved JSON plan); PlanFileError says why it is not one."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise PlanFileError(f"{source} is not a reconcile plan: not JSON ({error})") from None
    if not isinstance(raw, dict) or "format_version" not in raw:
        raise PlanFileError(
            f"{source} is not a reconcile plan (no format_version); "
            "save one with `reconcile plan --out FILE`"
        )
    version = raw["format_version"]
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"{source} has plan format_version {version!r}; this reconcile reads "
            f"{FORMAT_VERSION}: plan again with this version"
        )
    try:
        return Plan.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanFileError(
            f"{source} is not a valid reconcile plan: {where}: {first['msg']} "
            f"({error.error_count()} problem(s)); was it edited by hand?"
        ) from None


def load_plan(path: Path) -> Plan:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanFileError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PlanFileError(f"{path}: cannot read the plan file ({error})") from None
    return parse_plan(text, str(path))


def check_fresh(plan: Plan, state: State, inputs_digest: str, now: datetime) -> None:
    """Refuse a plan whose state or inputs moved (stale), or whose first send is too near."""
    moved: list[str] = []
    if plan.created_at > now:
        # A plan made with a clock set ahead judged "sent" and "expired" by that clock: applied
        # now it could forget or skip schedules that are in fact still to fire. No tolerance:
        # a plan is never classified at a time later than the applier's own clock.
        moved.append(
            f"it was made for {plan.created_at:%Y-%m-%d %H:%M:%S} UTC, later than this "
            f"machine's clock ({now:%Y-%m-%d %H:%M:%S} UTC): the planning machine's clock was "
            "ahead (or --now was set ahead)"
        )
    if plan.state_lineage != NO_LINEAGE and state.lineage != plan.state_lineage:
        moved.append(
            f"the state was replaced (lineage {plan.state_lineage} when planned, "
            f"{state.lineage} now)"
        )
    elif state.serial != plan.state_serial:
        moved.append(
            f"the state moved from serial {plan.state_serial} to {state.serial} since the plan "
            "was made (another apply ran)"
        )
    if inputs_digest != plan.inputs_digest:
        moved.append(
            f"the specs or templates changed since the plan was made ({plan.inputs_digest[:19]}"
            f" when planned, {inputs_digest[:19]} now)"
        )
    if moved:
        raise StalePlanError(
            "the saved plan is stale: " + "; ".join(moved) + ". Run `reconcile plan` again and "
            "review the new plan."
        )
    if plan.expires_at is not None and now >= plan.expires_at:
        raise ExpiredPlanError(
            f"the saved plan expired on {format_utc(plan.expires_at)} (3 minutes before the "
            f"earliest send it touches); it is now {format_utc(now)}. Run `reconcile plan` "
            "again: a send that is due or passed may no longer be changed as reviewed."
        )


def _fingerprint(plan: Plan) -> list[tuple[object, ...]]:
    return [
        (
            c.address,
            c.action.value,
            None if c.after is None else digest(c.after),
            c.schedule_id,
            c.superseded,
        )
        for c in plan.changes
    ]


def check_reproducible(saved: Plan, rebuilt: Plan) -> None:
    """Refuse a saved plan whose changes are not what its specs and state give (an edited file).

    `rebuilt` is the plan made again from the same specs, state and `created_at`: the planner is
    pure, so an unedited file matches it exactly, bodies included (compared by digest).
    """
    ours, theirs = _fingerprint(saved), _fingerprint(rebuilt)
    if ours != theirs:
        differ = next(
            (a[0] for a, b in zip(ours, theirs, strict=False) if a != b),
            "the list of changes",
        )
        raise StalePlanError(
            f"the saved plan does not match what its specs and state give (first difference: "
            f"{differ}); was the plan file edited? Run `reconcile plan` again and review it"
        )


def verify_saved(
    saved: Plan,
    state: State,
    desired: DesiredState,
    settings: Settings,
    now: datetime,
    *,
    read_drift: Callable[[], tuple[DriftItem, ...]],
    whole_only: bool,
    source: str,
) -> Plan:
    """The plan to apply for a saved plan: made again here, from the same specs, state, settings
    and EngageLab (`read_drift`, asked only for a --refresh plan), at the plan's own time. The
    file only proves what was reviewed; nothing in it (blockers, windows, drift, bodies) is
    trusted, so an edited file cannot change what runs. `whole_only` (CI) refuses a plan made
    with --target."""
    if saved.targets and whole_only:
        raise UnsafePlanError(
            f"{source} was planned with --target {' '.join(saved.targets)}: CI applies "
            "only whole plans, so that a merge never leaves the rest of the specs unapplied "
            "unnoticed. Apply a targeted plan by hand, outside CI (nothing was sent)"
        )
    check_fresh(saved, state, desired.inputs_digest, now)
    drift = None
    if saved.refreshed_at is not None:
        drift = read_drift()
        if _drift_key(drift) != _drift_key(saved.drift):
            raise StalePlanError(
                "EngageLab changed since this plan was made with --refresh (its drift is not "
                "the same any more); run `reconcile plan --refresh` again and review it"
            )
    rebuilt = make_plan(
        desired,  # bodies do not depend on the clock; only warnings do
        state,
        saved.created_at,
        settings,
        targets=saved.targets or None,
        drift=drift,
    )
    if rebuilt.settings.environment != saved.settings.environment:
        made, here = (
            saved.settings.environment or "(none)",
            rebuilt.settings.environment or "(none)",
        )
        raise StalePlanError(
            f"the saved plan was made for environment {made}, and this apply targets {here}: "
            "nothing was sent. Plan again with the --env you mean to apply"
        )
    if rebuilt.settings != saved.settings:
        raise StalePlanError(
            f"the saved plan was made with other settings ({saved.settings}) than this "
            f"environment's ({rebuilt.settings}); plan again with the same --env and options"
        )
    check_reproducible(saved, rebuilt)
    check_fresh(rebuilt, state, desired.inputs_digest, now)  # expiry, from our own windows
    check_verdicts_now(rebuilt, desired, state, settings, now, drift)
    return rebuilt


_TIME_VERDICTS = frozenset({Action.SENT, Action.FORGET, Action.EXPIRED})


def check_verdicts_now(
    rebuilt: Plan,
    desired: DesiredState,
    state: State,
    settings: Settings,
    now: datetime,
    drift: tuple[DriftItem, ...] | None,
) -> None:
    """ "Already sent", "forget" and "expired" depend on the clock: decide them again on ours.

    A plan made on a runner whose clock was fast could call a schedule sent that has not
    finished here, turning its cancellation into a silent no-op."""
    if not any(c.action in _TIME_VERDICTS for c in rebuilt.changes):
        return
    here = make_plan(desired, state, now, settings, targets=rebuilt.targets or None, drift=drift)
    ours = {c.address: c.action for c in here.changes}
    for change in rebuilt.changes:
        if change.action in _TIME_VERDICTS and ours.get(change.address) is not change.action:
            raise StalePlanError(
                f"the saved plan calls {change.address} {change.action.value}, but by this "
                f"machine's clock ({now:%Y-%m-%d %H:%M:%S} UTC) it is "
                f"{ours.get(change.address, 'unchanged')}: was the plan made on a machine whose "
                "clock was ahead? Run `reconcile plan` again and review it"
            )


def _drift_key(drift: tuple[DriftItem, ...]) -> list[tuple[object, ...]]:
    return [
        (d.address, d.kind.value, d.schedule_id, None if d.remote is None else digest(d.remote))
        for d in drift
    ]
