"""Carries out a Plan on EngageLab: the one module that both calls the API and records state.

Not pure. `Applier` dispatches on `Change.action`, one handler per action. Every write is
announced by a durable intent and its outcome recorded durably after, so a kill at any point
leaves a state the next run finishes. What is live under a name is asked of one RemoteNames.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from reconciler.api.client import EngageLabClient
from reconciler.apply.names import Listing, RemoteNames
from reconciler.canonical import digest
from reconciler.diff import diff_bodies
from reconciler.errors import ApiError, BlockedError, ExitCode, ReconcileError, UnsafePlanError
from reconciler.plan.gates import lead_gate, window_for
from reconciler.plan.planner import Action, Change, Plan
from reconciler.remote.drift import (
    body_of,
    describe_owner,
    owner_of,
    unreadable,
    with_owner,
)
from reconciler.schedule_body import BODY_KEYS, trigger_kind_of
from reconciler.settings import Settings
from reconciler.state.model import (
    Intent,
    IntentCleared,
    IntentRecorded,
    PlanRetired,
    PlanUpserted,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleForgotten,
    ScheduleRecord,
    ScheduleUpdated,
    Target,
    TargetBound,
    UniquenessConfirmed,
    target_mismatch,
)
from reconciler.state.recorder import Recorder
from reconciler.timing import format_utc

Clock = Callable[[], datetime]
# Checks a `backup_time: "now"` create again at the instant it is sent: the address and that
# instant in, an error-level finding (quiet hours, min_gap) out, or None.
Recheck = Callable[[str, datetime], str | None]
# Answers after which every further call would fail the same way: stop launching new ones.
_FATAL_STATUS = frozenset({401, 403})
_FATAL_CODES = frozenset({21004, 21008, 23009})
WRONG_TARGET_SHARE = 0.5  # more recorded live schedules missing than this: wrong AppKey?


class Status(StrEnum):
    APPLIED = "applied"
    ADOPTED = "adopted"  # an interrupted create was found by name and recorded, not re-sent
    RECORDED = "recorded"  # state-only change (retire, forget): no call
    FAILED = "failed"
    UNKNOWN = "outcome unknown"
    NOT_ATTEMPTED = "not attempted"


DONE = frozenset({Status.APPLIED, Status.ADOPTED, Status.RECORDED})


@dataclass(frozen=True, slots=True)
class Outcome:
    address: str
    action: Action
    status: Status
    detail: str = ""
    exhausted: bool = False  # failed because retries ran out
    retry_helps: bool = True  # False: a rerun fails the same way until a person acts
    warning: str = ""  # shown whatever the status: something a person should know


@dataclass(frozen=True, slots=True)
class ApplyReport:
    outcomes: tuple[Outcome, ...]
    calls: int

    def with_status(self, *statuses: Status) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.warning]

    @property
    def exit_code(self) -> ExitCode:
        bad = [o for o in self.outcomes if o.status not in DONE]
        if not bad:
            return ExitCode.OK
        if any(not o.retry_helps for o in bad):
            return ExitCode.ERROR  # credentials, a refused body, a name conflict: act first
        if all(o.exhausted or o.status is Status.NOT_ATTEMPTED for o in bad) and any(
            o.exhausted for o in bad
        ):
            return ExitCode.RETRIES_EXHAUSTED
        return ExitCode.PARTIAL_APPLY

    @property
    def rerun_helps(self) -> bool:
        return all(o.retry_helps for o in self.outcomes if o.status not in DONE)


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    parallelism: int = 10
    allow_destroy: bool = False


class ConflictError(ReconcileError):
    """A name this run would create or owns is live on EngageLab without this state knowing."""


class ClockSkewError(ReconcileError):
    """The API's clock and ours disagree: every send-time gate would be measured wrongly."""


def plan_settings(plan: Plan, base: Settings | None = None) -> Settings:
    """The settings the plan was judged with (the gates must use the same at call time)."""
    return replace(
        base or Settings(),
        site_time_zone=plan.settings.site_time_zone,
        smart_window=plan.settings.smart_window,
    )


def preflight(plan: Plan, now: datetime, options: ApplyOptions) -> None:
    """Refuse, before any call, a plan with blockers, an unapproved mass delete, or a change that
    has come too close to firing since the plan was made. Pure."""
    reasons = [f"  {b.address}: {b.reason}" for b in plan.blockers]
    settings = plan_settings(plan)
    for change in plan.changes:
        late = too_late(change, now, settings)
        if late:
            reasons.append(f"  {change.address}: {late}")
    if reasons:
        raise BlockedError(
            "the plan is blocked; nothing was sent:\n" + "\n".join(sorted(set(reasons)))
        )
    if plan.unsafe and not options.allow_destroy:
        raise UnsafePlanError(
            f"the plan is unsafe: it {plan.unsafe_reason}. Review the deletions, then rerun "
            "with --allow-destroy; nothing was sent"
        )


def too_late(change: Change, at: datetime, settings: Settings) -> str | None:
    """Why a write of `change` must not land at `at`, or None. Pure (plan_gates.lead_gate)."""
    if change.kind != "schedule":
        return None
    return lead_gate(change.action, change.before, change.after, at, settings)


def _name(change: Change) -> str:
    return change.address.removeprefix("schedule.")


def _ids(items: Iterable[Mapping[str, Any]]) -> str:
    return ", ".join(sorted(str(s.get("schedule_id")) for s in items))


class Applier:
    """One apply run. Use `await Applier(...).run()` once."""

    def __init__(
        self,
        plan: Plan,
        recorder: Recorder,
        client: EngageLabClient,
        *,
        clock: Clock,
        options: ApplyOptions,
        on_outcome: Callable[[Outcome], None] | None = None,
        settings: Settings | None = None,
        target: Target | None = None,
        recheck: Recheck | None = None,
    ) -> None:
        self._plan = plan
        self._recorder = recorder
        self._client = client
        self._clock = clock
        self._options = options
        self._on_outcome = on_outcome
        self._settings = plan_settings(plan, settings)
        self._target = target
        self._recheck = recheck
        self._outcomes: list[Outcome] = []
        self._stop_reason: str | None = None
        self._names = RemoteNames(client, clock)
        self._rename_deletes: dict[str, Change] = {}
        self._called: set[str] = set()  # addresses whose write reached the network
        # plan_id -> (address, until): a name leaving it whose create may still land
        self._unsettled_leaving: dict[str, tuple[str, datetime | None]] = {}
        self._handlers: dict[Action, Callable[[Change], Awaitable[None]]] = {
            Action.CREATE: self._on_create,
            Action.UPDATE: self._on_update,
            Action.REPLACE: self._on_replace,
            Action.FORGET: self._on_forget,
            Action.DELETE: self._on_delete,
        }

    @property
    def _lineage(self) -> str:
        return self._recorder.state.lineage

    def _record(self, name: str) -> ScheduleRecord | None:
        return self._recorder.state.schedules.get(name)

    async def run(self) -> ApplyReport:
        calls_before = self._client.calls_made
        plans = [c for c in self._plan.changes if c.kind == "plan"]
        schedules = [c for c in self._plan.changes if c.kind == "schedule"]
        unverified = self._recorder.state.unverified()
        if unverified or any(
            c.action in (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE)
            for c in schedules
        ):
            # One consistent listing before any write: it guards every create against a name
            # that is already live, lets interrupted creates be found by name, and re-checks
            # the names whose uniqueness is not confirmed yet.
            listing = await self._names.load()
            self._check_clock()
            self._check_not_wrong_target(listing)
            self._check_conflicts(schedules, listing)
            await self._verify(unverified, listing)
        await self._bind_target()  # before the first write, after the reads that may refuse
        failed_plans = await self._run_all(plans, self._plan_change)
        deletes = {c.address: c for c in schedules if c.action is Action.DELETE}
        # A rename deletes the old name before creating the new one: the two have the same
        # copy, so both live at once would be a double send.
        self._rename_deletes = {
            c.address: deletes.pop(c.renamed_from)
            for c in schedules
            if c.action is Action.CREATE and c.renamed_from in deletes
        }
        # A create of unknown outcome with no body recorded cannot be paired with its rename,
        # also when --target leaves it out of the plan: it holds back creates in its push plan.
        creating = {c.address for c in schedules if c.action in (Action.CREATE, Action.REPLACE)}
        planned = {c.address for c in schedules}
        for record in self._recorder.state.schedules.values():
            intent = record.intent
            if record.schedule_id is not None or intent is None or intent.action != "create":
                continue
            until = self._unsettled(record)
            if record.address not in creating and (
                until is not None or record.address not in planned
            ):
                self._unsettled_leaving[record.plan_id] = (record.address, until)
        writes = [
            c for c in schedules if c.action in self._handlers and c.action is not Action.DELETE
        ]
        blocked = [c for c in writes if c.plan_id in failed_plans and c.after is not None]
        for change in blocked:
            self._note(change, Status.NOT_ATTEMPTED, f"plan.{change.plan_id} was not applied")
        await self._run_all([c for c in writes if c not in blocked], self._schedule_write)
        done = {o.address for o in self._outcomes if o.status in DONE}
        created = [r for r in self._recorder.state.unverified() if r.address in done]
        if created and self._stop_reason is None:
            await self._verify_after_create(created)
        await self._run_all(list(deletes.values()), self._on_delete)
        return ApplyReport(tuple(self._outcomes), self._client.calls_made - calls_before)

    # --- before any write -------------------------------------------------------------------
    async def _bind_target(self) -> None:
        """Refuse a state applied elsewhere; bind a new one to this API and AppKey."""
        if self._target is None:
            return
        state = self._recorder.state
        mismatch = target_mismatch(state, self._target)
        if mismatch is not None:
            raise ReconcileError(mismatch)
        if state.target is None:
            await self._recorder.record(TargetBound(target=self._target))

    def _check_clock(self) -> None:
        """Refuse to write when the API's Date header and our clock disagree: every gate is
        measured on our clock, and EngageLab fires on its own."""
        seen = self._client.server_date()
        if seen is None:
            return  # no Date header: nothing to compare
        server, age = seen
        ours = self._clock()
        skew = (server + timedelta(seconds=age) - ours).total_seconds()
        bound = self._settings.max_clock_skew_seconds
        if abs(skew) > bound:
            raise ClockSkewError(
                f"the API's clock reads {server:%Y-%m-%d %H:%M:%S} UTC and this machine's "
                f"{ours:%Y-%m-%d %H:%M:%S} UTC: {abs(skew):.0f} s apart, more than the "
                f"{bound:.0f} s allowed (max_clock_skew_seconds). Fix this machine's clock "
                "(NTP); nothing was sent"
            )

    def _check_not_wrong_target(self, listing: Listing) -> None:
        """Stop when most recorded live schedules are not on EngageLab at all: a delete would
        then answer "not found" and look done while the message still goes out elsewhere."""
        now = self._clock()
        live = [
            r
            for r in self._recorder.state.schedules.values()
            if r.schedule_id is not None
            and r.body is not None
            and r.intent is None
            and not (win := window_for(r.body["trigger"], self._settings, now)).immediate
            and not win.is_over(now, r.applied_at)
        ]
        missing = [r for r in live if r.schedule_id not in listing.ids]
        if live and len(missing) > WRONG_TARGET_SHARE * len(live):
            shown = ", ".join(r.address for r in missing[:5])
            raise ReconcileError(
                f"{len(missing)} of the {len(live)} schedules this state records as live are not "
                f"on EngageLab ({shown}{', ...' if len(missing) > 5 else ''}): wrong AppKey or "
                "data center? Nothing was sent. If they were deleted in the console, "
                "`reconcile refresh` records that"
            )

    def _check_conflicts(self, schedules: list[Change], listing: Listing) -> None:
        """Refuse the whole run, before its first write, when a name the specs own is live on
        EngageLab in a copy this state does not record (another state file, a rolled-back state,
        another tool). Creating beside it would send the message twice."""
        found: list[str] = []
        creating = {
            _name(c): c
            for c in schedules
            if c.action in (Action.CREATE, Action.REPLACE) and c.after is not None
        }
        leaving = {_name(c) for c in schedules if c.after is None}
        names = set(creating) | {
            r.name for r in self._recorder.state.schedules.values() if r.name not in leaving
        }
        for name in sorted(names):
            record = self._record(name)
            if record is not None and (
                record.verify_after is not None
                or (record.intent is not None and record.intent.action == "create")
            ):
                continue  # our own copies: verification and resume decide about them
            if record is None and name not in creating:
                continue
            if record is not None and name not in creating and record.schedule_id is None:
                continue
            named = creating.get(name)
            planned = {named.schedule_id, *named.superseded} if named is not None else set()
            others = [
                s
                for s in self._names.unknown_copies(name, record, listing) or []
                if str(s.get("schedule_id")) not in planned  # a reviewed replace deletes it
            ]
            for item in others:
                found.append(
                    f"  schedule.{name}: live as {item.get('schedule_id')}, "
                    f"{describe_owner(item, self._lineage)}"
                )
        if creating:
            known = {
                i
                for r in self._recorder.state.schedules.values()
                for i in (r.schedule_id, *r.superseded)
                if i
            }
            for item in listing.nameless:
                if str(item.get("schedule_id")) not in known | self._names.gone:
                    found.append(
                        f"  a live schedule {item.get('schedule_id')} whose name EngageLab's "
                        "answer does not give: it may be a copy of any of these"
                    )
        if found:
            raise ConflictError(
                "names the specs own are live on EngageLab in copies this state does not record; "
                "nothing was sent:\n" + "\n".join(found) + "\nAdopt one with `reconcile import "
                "schedule.<name> <id>` (or `reconcile import --match-names`), or delete it in the "
                "console, then apply again"
            )

    # --- uniqueness verification ------------------------------------------------------------
    async def _verify(
        self, records: Iterable[ScheduleRecord], listing: Listing, *, later_run: bool = True
    ) -> None:
        """Confirm, or repair, names created earlier whose uniqueness is not confirmed.

        A second copy that carries this state's lineage is a slow earlier create that landed
        late: it is deleted, the recorded copy stays. A copy from elsewhere means two writers
        created the name at once: this run deletes its own copy, so the message is missed
        rather than sent twice, and says so. Until a listing taken after the settle time (two
        agreeing passes after an unknown outcome) shows one copy, the check stays pending. A
        name created or adopted after an unknown outcome is confirmed only by a later run.
        """
        confirmed: list[UniquenessConfirmed] = []
        for record in records:
            current = self._record(record.name)
            if current is None or current.verify_after is None or current.schedule_id is None:
                continue
            if listing.taken_at < current.verify_after:
                continue  # a late write may still land: check again on a later run
            extras = self._names.unknown_copies(current.name, current, listing) or []
            mine = [s for s in extras if owner_of(s) == self._lineage]
            theirs = [s for s in extras if owner_of(s) != self._lineage]
            address = current.address
            for item in mine:
                await self._delete_id(current.name, current.plan_id, str(item["schedule_id"]))
                self._warn(
                    address,
                    f"deleted {item['schedule_id']}, a second copy of {address} that an earlier "
                    "create whose outcome was unknown left behind (it landed late)",
                )
            if theirs:
                ours = current.schedule_id
                await self._delete_id(current.name, current.plan_id, ours)
                self._outcome(
                    address,
                    Action.CREATE,
                    Status.FAILED,
                    f"another run or tool created {current.name} too ({_ids(theirs)}, "
                    f"{describe_owner(theirs[0], self._lineage)}); this run deleted its own copy "
                    f"({ours}) so that it is never sent twice. Record the live one here with "
                    f"`reconcile import {address} <id>`",
                    retry_helps=False,
                )
                continue
            sure = not current.uncertain or (listing.agreed and later_run)
            if (current.schedule_id in listing.ids or self._gone_by_design(current)) and sure:
                confirmed.append(
                    UniquenessConfirmed(name=current.name, schedule_id=current.schedule_id)
                )
        if confirmed:
            await self._recorder.record(*confirmed)  # one journal write for them all

    async def _verify_after_create(self, records: list[ScheduleRecord]) -> None:
        """After creating, list once more: another machine (whose lock is not ours) may have
        created the same name at the same moment. A failed listing leaves the check pending in
        the state, so the next apply makes it before anything else."""
        try:
            listing = await self._names.load(passes=1)
        except (ApiError, ReconcileError) as error:
            shown = ", ".join(r.address for r in records[:5])
            more = f" and {len(records) - 5} more" if len(records) > 5 else ""
            self._outcome(
                records[0].address,
                Action.CREATE,
                Status.FAILED,
                f"created, but the check that no second copy of {shown}{more} is live could not "
                f"list the schedules ({error}); the check stays pending in the state and the "
                "next `reconcile apply` makes it first",
                retry_helps=False,
            )
            return
        await self._verify(records, listing, later_run=False)

    # --- plumbing -------------------------------------------------------------------------
    async def _run_all(
        self, changes: Iterable[Change], handler: Callable[[Change], Awaitable[None]]
    ) -> set[str]:
        """Run `handler` over changes, `parallelism` at a time; return ids of failed plans."""
        semaphore = asyncio.Semaphore(max(1, self._options.parallelism))
        failed: set[str] = set()

        async def one(change: Change) -> None:
            async with semaphore:
                if self._stop_reason is not None:
                    self._note(change, Status.NOT_ATTEMPTED, self._stop_reason, retry_helps=False)
                    return
                try:
                    await handler(change)
                except ApiError as error:
                    self._api_failure(change, error)
                except ReconcileError as error:  # the state could not be written
                    self._stop_reason = f"not sent: {error}"
                    if change.address in self._called:
                        self._note(
                            change,
                            Status.UNKNOWN,
                            f"the call was made but its outcome could not be recorded ({error}); "
                            "its intent is on disk, so the next apply looks it up by name first",
                            retry_helps=False,
                        )
                    else:
                        self._note(change, Status.NOT_ATTEMPTED, str(error), retry_helps=False)
                if change.kind == "plan" and self._last_status(change) not in DONE:
                    failed.add(change.plan_id)

        async with asyncio.TaskGroup() as group:
            for change in changes:
                group.create_task(one(change))
        return failed

    def _last_status(self, change: Change) -> Status | None:
        for outcome in reversed(self._outcomes):
            if outcome.address == change.address:
                return outcome.status
        return None

    def _outcome(
        self, address: str, action: Action, status: Status, detail: str, **kw: Any
    ) -> None:
        outcome = Outcome(address, action, status, detail, **kw)
        self._outcomes.append(outcome)
        if self._on_outcome is not None:
            self._on_outcome(outcome)

    def _note(self, change: Change, status: Status, detail: str = "", **kw: Any) -> None:
        self._outcome(change.address, change.action, status, detail, **kw)

    def _warn(self, address: str, text: str) -> None:
        self._outcome(address, Action.DELETE, Status.APPLIED, "", warning=text)

    def _api_failure(self, change: Change, error: ApiError) -> None:
        if error.gated:
            self._note(
                change,
                Status.UNKNOWN if error.outcome_unknown else Status.FAILED,
                f"{error}",
                retry_helps=False,
            )
        elif error.outcome_unknown:
            then = (
                "its intent stays recorded: the next apply looks it up by name, and sends "
                f"nothing before {self._settle_text()}"
                if error.method == "POST" and change.kind == "schedule"
                else f"the next apply reads it back, after {self._settle_text()} for a schedule "
                "update (a slow write may still land)"
                if error.method == "PUT"
                else "the next apply checks it again"
            )
            self._note(change, Status.UNKNOWN, f"{error}; {then}")
        else:
            helps = error.retryable or error.exhausted
            self._note(
                change, Status.FAILED, str(error), exhausted=error.exhausted, retry_helps=helps
            )
        if error.status in _FATAL_STATUS or error.code in _FATAL_CODES:
            self._stop_reason = (
                f"stopped after an authorization failure ({error}); check the credentials "
                "(ENGAGELAB_APP_KEY / ENGAGELAB_MASTER_SECRET, or the variables the environment "
                "names) and the base URL"
            )

    def _settle(self) -> timedelta:
        return timedelta(seconds=self._settings.create_settle_seconds)

    def _settle_text(self) -> str:
        return format_utc(self._clock() + self._settle())

    def _guard(
        self, change: Change, before: Mapping[str, Any] | None = None
    ) -> Callable[[float], str | None]:
        """The lead-time rule for one write attempt: `worst` seconds from now it may land."""

        def check(worst: float) -> str | None:
            at = self._clock() + timedelta(seconds=worst)
            found = lead_gate(
                change.action, before or change.before, change.after, at, self._settings
            )
            immediate = change.window is not None and change.window.immediate
            if found is None and self._recheck is not None and immediate:
                found = self._recheck(change.address, at)
            return found  # the client says "not sent: <this>"

        return check

    # --- push plans ------------------------------------------------------------------------
    async def _plan_change(self, change: Change) -> None:
        if change.action is Action.RETIRE:
            await self._recorder.record(PlanRetired(plan_id=change.plan_id, at=self._clock()))
            self._note(change, Status.RECORDED, "retired: no call (plans cannot be deleted)")
            return
        if change.action not in (Action.CREATE, Action.UPDATE) or change.after is None:
            return
        description = str(change.after["plan_description"])
        self._called.add(change.address)
        await self._client.upsert_plan(change.plan_id, description)
        await self._recorder.record(
            PlanUpserted(plan_id=change.plan_id, description=description, at=self._clock())
        )
        self._note(change, Status.APPLIED)

    # --- schedules ---------------------------------------------------------------------------
    async def _schedule_write(self, change: Change) -> None:
        """Dispatch on the action; every write is gated at call time first."""
        if change.action is not Action.FORGET:
            late = too_late(change, self._clock(), self._settings)
            if late:
                self._note(change, Status.NOT_ATTEMPTED, late)
                return
        await self._handlers[change.action](change)

    async def _on_forget(self, change: Change) -> None:
        """Removed from the specs, sent and expired remotely: drop it from the state, no call."""
        await self._recorder.record(ScheduleForgotten(name=_name(change)))
        self._note(change, Status.RECORDED, "dropped from state: it already went out")

    async def _on_update(self, change: Change) -> None:
        """PUT over the recorded id; leftover copies of an interrupted replace go first.

        Recovery: an update whose outcome is unknown reads the live schedule first, and gates on
        that version, not on the recorded one (it may be either).
        """
        name = _name(change)
        record = self._record(name)
        if record is None or record.schedule_id is None:
            await self._on_replace(change)
            return
        for old_id in change.superseded:
            await self._delete_id(name, change.plan_id, old_id)
        if record.intent is not None and record.intent.action == "update":
            await self._resume_update(change, record)
            return
        judged = self._judge_live(change, record)
        if judged is not None:
            await self._update(judged, record.schedule_id)

    async def _on_replace(self, change: Change) -> None:
        """Delete the old copies, then create: two live tasks with one name would be a double
        send. Also finishes an interrupted replace (a create with old ids still to delete).

        Recovery: the version deleted is judged as EngageLab lists it (a rolled-back state, or
        an earlier update whose outcome is unknown and which waits out the settle time first).
        """
        name = _name(change)
        record = self._record(name)
        replacing = change.action is Action.REPLACE and record is not None and record.schedule_id
        if (
            replacing
            and record is not None
            and (self._update_settling(change, record) or self._judge_live(change, record) is None)
        ):
            return
        for old_id in (*([change.schedule_id] if change.schedule_id else []), *change.superseded):
            await self._delete_id(name, change.plan_id, old_id)
        await self._create_or_resume(change)

    async def _on_create(self, change: Change) -> None:
        """Create; a rename deletes its old name first and creates nothing if that fails.

        A name leaving the campaign whose own create may still land (outcome unknown, within
        the settle time) may be this one under its old name: the planner cannot pair a rename
        whose old body was never confirmed, so nothing is created in that push plan until then.
        """
        waiting = self._unsettled_leaving.get(change.plan_id)
        if waiting is not None and change.renamed_from is None:
            address, until = waiting
            why = (
                f"may still land (until {format_utc(until)}): run `reconcile apply` again after "
                "that"
                if until is not None
                else "is left out of this run by --target: apply without --target, or add "
                f"{address} to it"
            )
            self._note(
                change,
                Status.NOT_ATTEMPTED,
                f"{address}, an earlier create of unknown outcome in the same push plan, {why}. "
                "If this message is it renamed, both would be sent, so it is not created",
            )
            return
        renamed = self._rename_deletes.get(change.address)
        if renamed is not None:
            await self._on_delete(renamed)
            if self._last_status(renamed) not in DONE:
                self._note(
                    change,
                    Status.NOT_ATTEMPTED,
                    f"renamed from {renamed.address}, which could not be deleted first; not "
                    "created, so the two copies are never live together",
                )
                return
        await self._on_replace(change)

    async def _create_or_resume(self, change: Change) -> None:
        record = self._record(_name(change))
        if record is not None and record.intent is not None and record.intent.action == "create":
            await self._resume_create(change, record)
        else:
            await self._create_checked(change)

    async def _create_checked(self, change: Change) -> None:
        """Create, unless the name is already live on EngageLab without state knowing it."""
        name = _name(change)
        found = self._names.unknown_copies(name, self._record(name))
        if found is None:
            self._note(
                change,
                Status.NOT_ATTEMPTED,
                f"{self._names.problem}; not created, since a name that is already live "
                "would then be sent twice",
            )
            return
        if found:
            # _check_conflicts refuses these before any write; this is the last line.
            self._note(
                change,
                Status.FAILED,
                f"a live schedule named {name} already exists on EngageLab ({_ids(found)}), "
                f"{describe_owner(found[0], self._lineage)}. Adopt it with `reconcile import "
                f"{change.address} <id>`, or delete it in the console. Nothing was created",
                retry_helps=False,
            )
            return
        await self._create(change)

    async def _create(self, change: Change, *, uncertain: bool = False) -> None:
        assert change.after is not None
        name, now = _name(change), self._clock()
        win = change.window
        intent = Intent(
            action="create",
            digest=change.digest_after,
            started_at=now,
            fires_from=win.first if win else None,
            immediate=bool(win and win.immediate),
        )
        await self._recorder.record(
            IntentRecorded(name=name, plan_id=change.plan_id, intent=intent)
        )
        try:
            self._called.add(change.address)
            schedule_id = await self._client.create_schedule(
                with_owner(change.after, self._lineage), guard=self._guard(change)
            )
        except ApiError as error:
            if not error.outcome_unknown:
                self._called.discard(change.address)
                await self._recorder.record(IntentCleared(name=name))
            else:
                # The settle time counts from the last moment the request could have been sent.
                later = intent.model_copy(update={"started_at": self._clock()})
                await self._recorder.record(
                    IntentRecorded(name=name, plan_id=change.plan_id, intent=later)
                )
            raise
        await self._recorder.record(
            self._created(change, schedule_id, change.after, verify_after=now, uncertain=uncertain)
        )
        self._note(change, Status.APPLIED, f"schedule_id {schedule_id}")

    async def _resume_create(self, change: Change, record: ScheduleRecord) -> None:
        """A create whose outcome is unknown: adopt it by name, or create it again only once the
        settle time has passed and it cannot have been sent already.

        A slow write may land long after the client gave up, so before the settle time nothing
        is created; a found copy that has begun sending is recorded as it is, never updated.
        """
        assert record.intent is not None and change.after is not None
        name = _name(change)
        found = self._names.unknown_copies(name, record)
        settled_at = record.intent.started_at + self._settle()
        now = self._clock()
        if found is None:
            self._note(
                change,
                Status.UNKNOWN,
                f"an earlier create's outcome is unknown and {self._names.problem}: not "
                "re-created; apply again later",
            )
            return
        mine = [s for s in found if owner_of(s) in (self._lineage, None)]
        if len(found) > 1 or (found and not mine):
            self._note(
                change,
                Status.FAILED,
                f"{len(found)} live schedule(s) named {name} on EngageLab ({_ids(found)}), "
                f"{describe_owner(found[0], self._lineage)}; delete the extra ones in the "
                "console, then apply again. Nothing was created",
                retry_helps=False,
            )
            return
        if found and (reason := unreadable(found[0])) is not None:
            self._note(
                change,
                Status.FAILED,
                f"a live schedule named {name} ({_ids(found)}) may be this create, but "
                f"EngageLab's answer for it cannot be read ({reason}): not adopted, not "
                "re-created. Check it in the console",
                retry_helps=False,
            )
            return
        if found:
            await self._adopt(change, found[0], settled_at)
            return
        if now < settled_at:
            self._note(
                change,
                Status.UNKNOWN,
                f"an earlier create's outcome is unknown and it is not listed yet; a slow write "
                f"may still land, so nothing is sent before {format_utc(settled_at)} "
                f"({self._settings.create_settle_seconds:.0f} s settle time): run `reconcile "
                "apply` again after that",
            )
            return
        intent = record.intent
        if intent.immediate or (intent.fires_from is not None and now >= intent.fires_from):
            self._note(
                change,
                Status.UNKNOWN,
                "an earlier create may have been sent already (it is not listed, and it could "
                "have fired and expired since): not re-created. Check the EngageLab console or "
                "the statistics: if it went out, remove the message from the specs (the next "
                "apply only forgets it); to send it anyway, run `reconcile state rm "
                f"{change.address}` and apply again",
                retry_helps=False,
            )
            return
        await self._create(change, uncertain=True)

    async def _adopt(self, change: Change, remote: Mapping[str, Any], settled_at: datetime) -> None:
        """Record a found copy of an interrupted create; update it only if it is not sending."""
        assert change.after is not None
        body = body_of(remote, change.after)
        schedule_id = str(remote["schedule_id"])
        verify_after = max(self._clock(), settled_at)
        await self._recorder.record(
            self._created(change, schedule_id, body, verify_after=verify_after, uncertain=True)
        )
        if digest(body) == change.digest_after:
            self._note(change, Status.ADOPTED, f"found by name as schedule_id {schedule_id}")
            return
        if trigger_kind_of(body) != trigger_kind_of(change.after):
            self._note(
                change,
                Status.FAILED,
                f"adopted schedule_id {schedule_id} by name, but its trigger kind differs "
                "from the plan's; run `reconcile plan` again to review the replace",
            )
            return
        found = replace_before(change, body)
        late = too_late(found, self._clock(), self._settings)
        if late:
            self._note(
                change,
                Status.ADOPTED,
                f"found by name as schedule_id {schedule_id}, in another version that is "
                f"already sending or about to ({late}); recorded as it is and not changed: "
                "`reconcile plan` shows the difference",
            )
            return
        await self._update(found, schedule_id, adopted=True)

    async def _resume_update(self, change: Change, record: ScheduleRecord) -> None:
        """An update whose outcome is unknown: after the settle time (a late PUT would overwrite
        this one), gate on the live version and diff against it."""
        assert change.after is not None and record.intent is not None
        assert record.schedule_id is not None
        schedule_id = record.schedule_id
        if self._update_settling(change, record):
            return
        live = await self._client.get_schedule(schedule_id)
        if live is None:
            self._note(
                change,
                Status.FAILED,
                f"EngageLab does not know schedule_id {schedule_id} any more (deleted in the "
                "console, or a wrong AppKey?); `reconcile plan --refresh` shows it",
                retry_helps=False,
            )
            return
        body = body_of(live, change.after)
        if digest(body) == change.digest_after:
            await self._record_updated(change)
            self._note(change, Status.ADOPTED, "the interrupted update had been applied")
            return
        found = replace_before(change, body)
        late = too_late(found, self._clock(), self._settings)
        if late:
            self._note(change, Status.NOT_ATTEMPTED, late, retry_helps=False)
            return
        paths = ", ".join(d.path for d in diff_bodies(body, change.after)[:6])
        await self._update(found, schedule_id, detail=f"changed against the live version: {paths}")

    async def _update(
        self, change: Change, schedule_id: str, *, adopted: bool = False, detail: str = ""
    ) -> None:
        assert change.after is not None
        name, now = _name(change), self._clock()
        intent = Intent(action="update", digest=change.digest_after, started_at=now)
        await self._recorder.record(
            IntentRecorded(name=name, plan_id=change.plan_id, intent=intent)
        )
        # A listed task whose answer cannot be read may hold anything: send the whole body.
        whole = adopted or self._names.listed_unreadable(schedule_id)
        patch = update_patch(change, self._lineage, adopted=whole)
        try:
            self._called.add(change.address)
            await self._client.update_schedule(schedule_id, patch, guard=self._guard(change))
        except ApiError as error:
            if not error.outcome_unknown:
                self._called.discard(change.address)
                await self._recorder.record(IntentCleared(name=name))
            else:  # the settle time counts from the last moment the PUT could have been sent
                later = intent.model_copy(update={"started_at": self._clock()})
                await self._recorder.record(
                    IntentRecorded(name=name, plan_id=change.plan_id, intent=later)
                )
            raise
        await self._record_updated(change)
        if adopted:
            detail = f"adopted schedule_id {schedule_id} by name, then updated"
        self._note(change, Status.ADOPTED if adopted else Status.APPLIED, detail)

    async def _record_updated(self, change: Change) -> None:
        assert change.after is not None
        await self._recorder.record(
            ScheduleUpdated(
                name=_name(change),
                plan_id=change.plan_id,
                body=change.after,
                digest=change.digest_after or digest(change.after),
                trigger_kind=trigger_kind_of(change.after),
                at=self._clock(),
            )
        )

    def _created(
        self,
        change: Change,
        schedule_id: str,
        body: Mapping[str, Any],
        *,
        verify_after: datetime,
        uncertain: bool,
    ) -> ScheduleCreated:
        return ScheduleCreated(
            name=_name(change),
            plan_id=change.plan_id,
            schedule_id=schedule_id,
            body=dict(body),
            digest=digest(body),
            trigger_kind=trigger_kind_of(body),
            at=self._clock(),
            verify_after=verify_after,
            uncertain=uncertain,
        )

    # --- schedules: delete --------------------------------------------------------------------
    async def _on_delete(self, change: Change) -> None:
        """Delete exactly the remote ids the change names: the recorded task when it left the
        specs, or only the older copies an interrupted replace left (the live one stays).

        Recovery: when the create's outcome was unknown, whatever is live under the name is
        adopted first, so a failed delete still leaves the live task recorded. Before the settle
        time a late copy may still land: the name stays recorded (an intent with no id) so the
        next apply looks again, and the outcome is unknown, so a rename does not create yet.
        """
        name = _name(change)
        ids = [i for i in (change.schedule_id, *change.superseded) if i]
        record = self._record(name)
        intent = record.intent if record is not None else None
        unsettled = self._unsettled(record) if change.after is None else None
        if change.after is None and intent is not None and intent.action == "create":
            found = self._names.unknown_copies(name, record)
            if found is None:
                self._note(
                    change,
                    Status.NOT_ATTEMPTED,
                    f"an earlier create's outcome is unknown and {self._names.problem}",
                )
                return
            for remote in found:
                schedule_id = str(remote["schedule_id"])
                if unreadable(remote) is not None:
                    ids.append(schedule_id)  # ours to delete; its body cannot be recorded
                    continue
                body = body_of(remote, change.after)
                await self._recorder.record(
                    self._created(
                        change, schedule_id, body, verify_after=self._clock(), uncertain=True
                    )
                )
                ids.append(schedule_id)
        missing: list[str] = []
        for schedule_id in dict.fromkeys(ids):
            if not await self._delete_id(name, change.plan_id, schedule_id):
                missing.append(schedule_id)
        record = self._record(name)
        left = record is not None and record.schedule_id is None and not record.superseded
        if unsettled is not None:
            keep = intent or Intent(action="create", started_at=unsettled - self._settle())
            await self._recorder.record(
                IntentRecorded(name=name, plan_id=change.plan_id, intent=keep)
            )
            done = ", ".join(f"deleted {i}" for i in ids) or "nothing listed yet"
            self._note(
                change,
                Status.UNKNOWN,
                f"{done}; an earlier create's outcome is unknown and a slow write may still "
                f"land until {format_utc(unsettled)}: run `reconcile apply` again after that to "
                "delete it too (the name stays recorded until then)",
            )
            return
        if change.after is None and left:
            # Only a create intent that never reached EngageLab is left: nothing to delete.
            await self._recorder.record(ScheduleForgotten(name=name))
        warning = ""
        if missing and change.before is not None:
            win = window_for(change.before["trigger"], self._settings, self._clock())
            if not win.immediate and not win.is_over(self._clock(), None):
                warning = (
                    f"EngageLab did not find {', '.join(missing)} although it had not finished "
                    f"sending (until {format_utc(win.last) if win.last else 'unknown'}): deleted "
                    "in the console, or is this the wrong AppKey or data center? If the latter, "
                    "the message still goes out: check the console"
                )
        self._note(change, Status.APPLIED, ", ".join(f"deleted {i}" for i in ids), warning=warning)

    def _judge_live(self, change: Change, record: ScheduleRecord) -> Change | None:
        """`change` judged against the version EngageLab lists, when that is not the recorded
        one (a rolled-back state, a console edit, a PUT that landed unseen); None, noted, when
        that version is sending or about to, so the write must not be made."""
        live = (
            self._names.live_body(record.schedule_id, record.body) if record.schedule_id else None
        )
        if live is None or digest(live) == record.digest:
            return change
        judged = change.model_copy(update={"before": live, "digest_before": digest(live)})
        late = too_late(judged, self._clock(), self._settings)
        if late is None:
            return judged
        self._note(
            change,
            Status.NOT_ATTEMPTED,
            f"EngageLab holds another version than the state records, and {late}",
            retry_helps=False,
        )
        return None

    def _update_settling(self, change: Change, record: ScheduleRecord) -> bool:
        """Note and say so when an update of unknown outcome may still land: a write now would
        be overwritten by it (or judge the wrong version)."""
        intent = record.intent
        if intent is None or intent.action != "update":
            return False
        settled_at = intent.started_at + self._settle()
        if self._clock() >= settled_at:
            return False
        self._note(
            change,
            Status.UNKNOWN,
            "an earlier update's outcome is unknown; a slow write may still land, so nothing is "
            f"sent before {format_utc(settled_at)}: run `reconcile apply` again after that",
        )
        return True

    def _gone_by_design(self, record: ScheduleRecord) -> bool:
        """A task EngageLab stops listing once sent (backup_time "now", or its firing is over):
        absent from the listing, with no other copy beside it, nothing can be live twice."""
        if record.body is None:
            return False
        win = window_for(record.body["trigger"], self._settings, self._clock())
        return win.immediate or win.is_over(self._clock(), record.applied_at)

    def _unsettled(self, record: ScheduleRecord | None) -> datetime | None:
        """Until when a late copy of `record`'s create may still land, if that is ahead."""
        if record is None:
            return None
        until = None
        if record.intent is not None and record.intent.action == "create":
            until = record.intent.started_at + self._settle()
        elif record.uncertain and record.verify_after is not None:
            until = record.verify_after
        return until if until is not None and until > self._clock() else None

    async def _delete_id(self, name: str, plan_id: str, schedule_id: str) -> bool:
        """Delete one remote id; False when EngageLab did not know it (the goal is met)."""
        # No intent is written for a delete: it is idempotent, the recorded id (or superseded
        # list) already says what is to go, and an id that is already gone answers 404.
        found = True
        try:
            await self._client.delete_schedule(schedule_id)
        except ApiError as error:
            if error.maybe_not_found:
                # 400/8100 is "not exist" and every other refusal too: gone only if a fresh
                # listing (two agreeing passes) agrees. The wrong-target check ran before.
                listing = await self._names.load()
                if schedule_id in listing.ids:
                    raise
            elif not error.not_found:
                raise
            found = False
        self._names.gone.add(schedule_id)
        await self._recorder.record(ScheduleDeleted(name=name, schedule_id=schedule_id))
        return found


def update_patch(change: Change, lineage: str, *, adopted: bool = False) -> dict[str, Any]:
    """The top-level fields of an update that change, as the SDKs send them: JPush v3 judges
    any `trigger` a PUT carries again ("must still be valid after update"), so a copy-only edit
    must not resend the trigger. `push` is always sent: it carries the owner marker, and a task
    adopted from EngageLab (import, refresh, an interrupted create) may carry another state's
    marker or none, which the recorded body cannot show. With `adopted` (also: a live task whose
    answer cannot be read) every field is sent, as nothing is known of what it holds. Pure."""
    assert change.after is not None
    sent = with_owner(change.after, lineage)
    if change.before is None or adopted:
        return {k: sent[k] for k in BODY_KEYS if k in sent}
    before = change.before
    patch = {k: sent[k] for k in BODY_KEYS if k in sent and sent[k] != before.get(k)}
    if "push" in sent:
        patch["push"] = sent["push"]
    return patch


def replace_before(change: Change, body: Mapping[str, Any]) -> Change:
    """`change` as an update of `body` (what EngageLab holds), so the gates judge that version."""
    return change.model_copy(
        update={"action": Action.UPDATE, "before": dict(body), "digest_before": digest(body)}
    )
