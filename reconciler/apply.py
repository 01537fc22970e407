"""Carries out a Plan on EngageLab: the one module that both calls the API and records state.

Not pure. It dispatches on `Change.action` only. Every write is announced by a durable intent and
its outcome recorded durably after, so a kill at any point leaves a state the next run finishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast
from zoneinfo import ZoneInfo

from reconciler.canonical import digest
from reconciler.client import EngageLabClient
from reconciler.engagelab import MIN_LEAD
from reconciler.errors import ApiError, BlockedError, ExitCode, ReconcileError, UnsafePlanError
from reconciler.plan import Action, Change, Plan
from reconciler.recorder import Recorder
from reconciler.resources import TriggerKind
from reconciler.state import (
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
)
from reconciler.timing import format_utc, gate_start

Clock = Callable[[], datetime]
BODY_KEYS = ("name", "enabled", "trigger", "push")
LISTING_ATTEMPTS = 4
# Answers after which every further call would fail the same way: stop launching new ones.
_FATAL_STATUS = frozenset({401, 403})
_FATAL_CODES = frozenset({21004, 21008, 23009})


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


@dataclass(frozen=True, slots=True)
class ApplyReport:
    outcomes: tuple[Outcome, ...]
    calls: int

    def with_status(self, *statuses: Status) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in statuses]

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


def preflight(plan: Plan, now: datetime, options: ApplyOptions) -> None:
    """Refuse, before any call, a plan with blockers, an unapproved mass delete, or a change that
    has come too close to firing since the plan was made. Pure."""
    reasons = [f"  {b.address}: {b.reason}" for b in plan.blockers]
    zone = ZoneInfo(plan.settings.site_time_zone)
    for change in plan.changes:
        late = too_late(change, now, zone)
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


def too_late(change: Change, now: datetime, zone: ZoneInfo) -> str | None:
    """Why a write must not be made at `now`, or None. Pure.

    Both versions count: the new one must not start firing within MIN_LEAD, and the one it
    changes must not have started (or start within MIN_LEAD) either, or the call would race
    EngageLab's own send and some users would get the old copy and then the new one.
    """
    writes = (Action.CREATE, Action.UPDATE, Action.REPLACE)
    if change.kind != "schedule" or change.action not in writes or change.after is None:
        return None
    lead = int(MIN_LEAD.total_seconds() // 60)
    first = gate_start(change.after["trigger"], zone, now)
    if first is not None and first < now + MIN_LEAD:
        if first <= now:
            return (
                f"began firing on {format_utc(first)} in the earliest time zones: sent now "
                "it would arrive at the wrong local time there; move its time and plan again"
            )
        return (
            f"starts firing on {format_utc(first)}, less than {lead} minutes from "
            "now; move its time and plan again"
        )
    if change.action is not Action.CREATE and change.before is not None:
        old_first = gate_start(change.before["trigger"], zone, now)
        if old_first is not None and old_first < now + MIN_LEAD:
            return (
                f"the version on EngageLab starts firing on {format_utc(old_first)}, less than "
                f"{lead} minutes from now (or already has): changing it now would race the send"
            )
    return None


def _kind(body: Mapping[str, Any]) -> TriggerKind:
    return cast(TriggerKind, next(iter(body["trigger"])))


def _name(change: Change) -> str:
    return change.address.removeprefix("schedule.")


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
    ) -> None:
        self._plan = plan
        self._recorder = recorder
        self._client = client
        self._clock = clock
        self._options = options
        self._on_outcome = on_outcome
        self._outcomes: list[Outcome] = []
        self._stop_reason: str | None = None
        self._remote: dict[str, list[dict[str, Any]]] | None = None
        self._listing_problem = "the remote schedules were not listed"
        self._rename_deletes: dict[str, Change] = {}
        self._gone: set[str] = set()  # remote ids this run deleted (still in the listing)
        self._zone = ZoneInfo(plan.settings.site_time_zone)

    async def run(self) -> ApplyReport:
        calls_before = self._client.calls_made
        plans = [c for c in self._plan.changes if c.kind == "plan"]
        schedules = [c for c in self._plan.changes if c.kind == "schedule"]
        if any(c.action in (Action.CREATE, Action.REPLACE, Action.DELETE) for c in schedules):
            # One consistent listing before any write: it guards every create against a name
            # that is already live, and lets interrupted creates be found by name.
            await self._load_remote()
        failed_plans = await self._run_all(plans, self._plan_change)
        deletes = {c.address: c for c in schedules if c.action is Action.DELETE}
        # A rename deletes the old name before creating the new one: the two have the same
        # copy, so both live at once would be a double send.
        self._rename_deletes = {
            c.address: deletes.pop(c.renamed_from)
            for c in schedules
            if c.action is Action.CREATE and c.renamed_from in deletes
        }
        writes = [
            c
            for c in schedules
            if c.action in (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.FORGET)
        ]
        blocked = [c for c in writes if c.plan_id in failed_plans and c.after is not None]
        for change in blocked:
            self._note(change, Status.NOT_ATTEMPTED, f"plan.{change.plan_id} was not applied")
        await self._run_all([c for c in writes if c not in blocked], self._schedule_write)
        created = [
            o.address
            for o in list(self._outcomes)
            if o.action in (Action.CREATE, Action.REPLACE) and o.status in DONE
        ]
        if created:
            await self._verify_unique(created)
        await self._run_all(list(deletes.values()), self._delete)
        return ApplyReport(tuple(self._outcomes), self._client.calls_made - calls_before)

    async def _load_remote(self) -> None:
        """List every remote schedule until two passes agree (pages shift under deletes).

        Runs before any write; if no reliable listing can be had, the apply stops here with
        nothing sent (a create could otherwise duplicate a live name).
        """
        previous: dict[str, dict[str, Any]] | None = None
        for _ in range(LISTING_ATTEMPTS):
            listing = {str(s.get("schedule_id")): s for s in await self._client.list_schedules()}
            if previous is not None and listing.keys() == previous.keys():
                self._remote = {}
                for item in listing.values():
                    self._remote.setdefault(str(item.get("name")), []).append(item)
                return
            previous = listing
        raise ReconcileError(
            "the remote schedule list kept changing while it was read (another tool is "
            "writing to this AppKey); nothing was sent. Apply again when it is quiet"
        )

    async def _verify_unique(self, addresses: list[str]) -> None:
        """After creating, make sure no name this run created is live twice.

        The pre-write listing cannot stop another machine (whose lock is not ours) creating the
        same name at the same moment. A run that finds a second live copy deletes its own new
        one: the other run may have finished and will not look again. If both runs find each
        other, both delete theirs and both report it: a missed send, never a double one.
        """
        # One pass, not the two the pre-write listing takes: a shifted page could only hide a
        # duplicate if another machine's create and someone's deletes coincide with this read,
        # and it saves a full listing on every apply that creates.
        by_address = {c.address: c for c in self._plan.changes}
        remote: dict[str, list[dict[str, Any]]] = {}
        try:
            listed = await self._client.list_schedules()
        except ApiError as error:
            # The creates are done and recorded; say so, and how to finish the check.
            self._note(
                by_address[addresses[0]],
                Status.FAILED,
                f"created, but the check for a second live copy of the {len(addresses)} new "
                f"name(s) could not list the schedules ({error}); `reconcile plan --refresh` "
                "shows any such copy",
                exhausted=error.exhausted,
            )
            return
        for item in listed:
            remote.setdefault(str(item.get("name")), []).append(item)
        for address in addresses:
            name = address.removeprefix("schedule.")
            record = self._recorder.state.schedules.get(name)
            if record is None or record.schedule_id is None:
                continue
            ours = record.schedule_id
            known = {ours, *record.superseded, *self._gone}
            others = sorted(
                str(s.get("schedule_id"))
                for s in remote.get(name, [])
                if str(s.get("schedule_id")) not in known
            )
            if not others:
                continue
            change = by_address[address]
            await self._delete_id(name, change.plan_id, ours)
            self._note(
                change,
                Status.FAILED,
                f"another run or tool created {name} at the same moment ({', '.join(others)}); "
                f"this run deleted its own copy ({ours}) so that it is never sent twice. Record "
                f"the live one here with `reconcile import {address} <id>`",
                retry_helps=False,
            )

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

    def _note(self, change: Change, status: Status, detail: str = "", **kw: bool) -> None:
        outcome = Outcome(change.address, change.action, status, detail, **kw)
        self._outcomes.append(outcome)
        if self._on_outcome is not None:
            self._on_outcome(outcome)

    def _api_failure(self, change: Change, error: ApiError) -> None:
        if error.outcome_unknown:
            then = (
                "its intent stays recorded: the next apply looks it up by name before sending "
                "anything"
                if error.method == "POST" and change.kind == "schedule"
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

    # --- push plans ------------------------------------------------------------------------
    async def _plan_change(self, change: Change) -> None:
        if change.action is Action.RETIRE:
            await self._recorder.record(PlanRetired(plan_id=change.plan_id, at=self._clock()))
            self._note(change, Status.RECORDED, "retired: no call (plans cannot be deleted)")
            return
        if change.action not in (Action.CREATE, Action.UPDATE) or change.after is None:
            return
        description = str(change.after["plan_description"])
        await self._client.upsert_plan(change.plan_id, description)
        await self._recorder.record(
            PlanUpserted(plan_id=change.plan_id, description=description, at=self._clock())
        )
        self._note(change, Status.APPLIED)

    # --- schedules: create / update / replace / forget ---------------------------------------
    async def _schedule_write(self, change: Change) -> None:
        name = _name(change)
        if change.action is Action.FORGET:
            await self._recorder.record(ScheduleForgotten(name=name))
            self._note(change, Status.RECORDED, "dropped from state: it already went out")
            return
        late = too_late(change, self._clock(), self._zone)
        if late:
            self._note(change, Status.NOT_ATTEMPTED, late)
            return
        renamed = self._rename_deletes.get(change.address)
        if renamed is not None:
            await self._delete(renamed)
            if self._last_status(renamed) not in DONE:
                self._note(
                    change,
                    Status.NOT_ATTEMPTED,
                    f"renamed from {renamed.address}, which could not be deleted first; not "
                    "created, so the two copies are never live together",
                )
                return
        record = self._recorder.state.schedules.get(name)
        if change.action is Action.UPDATE and record is not None and record.schedule_id:
            for old_id in change.superseded:  # leftover duplicates go before anything else
                await self._delete_id(name, change.plan_id, old_id)
            await self._update(change, record.schedule_id)
            return
        # A replace, or a create that finishes an interrupted replace: old copies go first, so
        # two live tasks with one name (and so a double send) can never be left behind.
        for old_id in (*([change.schedule_id] if change.schedule_id else []), *change.superseded):
            await self._delete_id(name, change.plan_id, old_id)
        record = self._recorder.state.schedules.get(name)
        if record is not None and record.intent is not None and record.intent.action == "create":
            await self._resume_create(change, record)
        else:
            await self._create_checked(change)

    async def _create_checked(self, change: Change) -> None:
        """Create, unless the name is already live on EngageLab without state knowing it."""
        name = _name(change)
        found = self._lookup(name)
        if found is None:
            self._note(
                change,
                Status.NOT_ATTEMPTED,
                f"{self._listing_problem}; not created, since a name that is already live "
                "would then be sent twice",
            )
            return
        if found:
            ids = ", ".join(sorted(str(s.get("schedule_id")) for s in found))
            self._note(
                change,
                Status.FAILED,
                f"a live schedule named {name} already exists on EngageLab ({ids}) but this "
                "state does not record it (was the state lost or rolled back, or does another "
                f"tool use the name?). Adopt it with `reconcile import {change.address} <id>` "
                "or `reconcile import --match-names`, or delete it in the console. Nothing was "
                "created",
                retry_helps=False,
            )
            return
        await self._create(change)

    async def _create(self, change: Change) -> None:
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
            schedule_id = await self._client.create_schedule(change.after)
        except ApiError as error:
            if not error.outcome_unknown:
                await self._recorder.record(IntentCleared(name=name))
            raise
        await self._recorder.record(self._created(change, schedule_id, change.after))
        self._note(change, Status.APPLIED, f"schedule_id {schedule_id}")

    async def _resume_create(self, change: Change, record: ScheduleRecord) -> None:
        """A create whose outcome is unknown: adopt it by name, or create it only if it cannot
        have been sent already."""
        assert record.intent is not None and change.after is not None
        found = self._lookup(_name(change))
        if found is None:
            self._note(
                change,
                Status.UNKNOWN,
                f"an earlier create's outcome is unknown and {self._listing_problem}: not "
                "re-created; apply again later",
            )
            return
        if len(found) > 1:
            ids = ", ".join(sorted(str(s.get("schedule_id")) for s in found))
            self._note(
                change,
                Status.FAILED,
                f"{len(found)} live schedules are named {_name(change)} on EngageLab ({ids}); "
                "delete the extra ones in the console, then apply again. Nothing was created",
                retry_helps=False,
            )
            return
        if found:
            remote = found[0]
            body = {k: remote[k] for k in BODY_KEYS if k in remote}
            schedule_id = str(remote["schedule_id"])
            await self._recorder.record(self._created(change, schedule_id, body))
            if digest(body) == change.digest_after:
                self._note(change, Status.ADOPTED, f"found by name as schedule_id {schedule_id}")
            elif _kind(body) == _kind(change.after):
                await self._update(change, schedule_id, adopted=True)
            else:
                self._note(
                    change,
                    Status.FAILED,
                    f"adopted schedule_id {schedule_id} by name, but its trigger kind differs "
                    "from the plan's; run `reconcile plan` again to review the replace",
                )
            return
        intent, now = record.intent, self._clock()
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
        await self._create(change)

    async def _update(self, change: Change, schedule_id: str, *, adopted: bool = False) -> None:
        assert change.after is not None
        name, now = _name(change), self._clock()
        intent = Intent(action="update", digest=change.digest_after, started_at=now)
        await self._recorder.record(
            IntentRecorded(name=name, plan_id=change.plan_id, intent=intent)
        )
        patch = {k: change.after[k] for k in BODY_KEYS if k in change.after}
        try:
            await self._client.update_schedule(schedule_id, patch)
        except ApiError as error:
            if not error.outcome_unknown:
                await self._recorder.record(IntentCleared(name=name))
            raise
        await self._recorder.record(
            ScheduleUpdated(
                name=name,
                plan_id=change.plan_id,
                body=change.after,
                digest=change.digest_after or digest(change.after),
                trigger_kind=_kind(change.after),
                at=self._clock(),
            )
        )
        detail = f"adopted schedule_id {schedule_id} by name, then updated" if adopted else ""
        self._note(change, Status.ADOPTED if adopted else Status.APPLIED, detail)

    def _created(
        self, change: Change, schedule_id: str, body: Mapping[str, Any]
    ) -> ScheduleCreated:
        return ScheduleCreated(
            name=_name(change),
            plan_id=change.plan_id,
            schedule_id=schedule_id,
            body=dict(body),
            digest=digest(body),
            trigger_kind=_kind(body),
            at=self._clock(),
        )

    def _lookup(self, name: str) -> list[dict[str, Any]] | None:
        """Live remote schedules named `name` that the state does not account for, from the
        listing made before any write; None when no reliable listing could be made."""
        if self._remote is None:
            return None
        known = self._recorder.state.schedules.get(name)
        skip = set(self._gone) | ({known.schedule_id, *known.superseded} if known else set())
        return [s for s in self._remote.get(name, []) if str(s.get("schedule_id")) not in skip]

    # --- schedules: delete --------------------------------------------------------------------
    async def _delete(self, change: Change) -> None:
        """Delete exactly the remote ids the change names: the recorded task when it left the
        specs, or only the older copies an interrupted replace left (the live one stays)."""
        name = _name(change)
        ids = [i for i in (change.schedule_id, *change.superseded) if i]
        record = self._recorder.state.schedules.get(name)
        intent = record.intent if record is not None else None
        if change.after is None and intent is not None and intent.action == "create":
            # The create's outcome is unknown: adopt whatever exists under the name first, so a
            # failed delete below still leaves the live task recorded rather than forgotten.
            found = self._lookup(name)
            if found is None:
                self._note(
                    change,
                    Status.NOT_ATTEMPTED,
                    f"an earlier create's outcome is unknown and {self._listing_problem}",
                )
                return
            for remote in found:
                schedule_id = str(remote["schedule_id"])
                body = {k: remote[k] for k in BODY_KEYS if k in remote}
                await self._recorder.record(self._created(change, schedule_id, body))
                ids.append(schedule_id)
        for schedule_id in dict.fromkeys(ids):
            await self._delete_id(name, change.plan_id, schedule_id)
        record = self._recorder.state.schedules.get(name)
        left = record is not None and record.schedule_id is None and not record.superseded
        if change.after is None and left:
            # Only a create intent that never reached EngageLab is left: nothing to delete.
            await self._recorder.record(ScheduleForgotten(name=name))
        self._note(change, Status.APPLIED, ", ".join(f"deleted {i}" for i in ids))

    async def _delete_id(self, name: str, plan_id: str, schedule_id: str) -> None:
        # No intent is written for a delete: it is idempotent, the recorded id (or superseded
        # list) already says what is to go, and an id that is already gone answers 404.
        try:
            await self._client.delete_schedule(schedule_id)
        except ApiError as error:
            if not error.not_found:
                raise
            # Already gone (expired after firing, or deleted in the console): the goal is met.
        self._gone.add(schedule_id)
        await self._recorder.record(ScheduleDeleted(name=name, schedule_id=schedule_id))
