"""`reconcile apply [PLAN_FILE]`: make EngageLab match the specs, exactly as planned. I/O edge.

Order: lock, load state, plan (or load and check a saved plan), refuse blocked/unsafe plans before
any call, confirm, then the applier; state is compacted at the end whatever happened.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reconciler.api.client import ClientConfig, EngageLabClient
from reconciler.apply.applier import (
    DONE,
    Applier,
    ApplyOptions,
    ApplyReport,
    Outcome,
    Status,
    preflight,
)
from reconciler.checks.findings import immediate_findings
from reconciler.cli import common
from reconciler.cli.workflows import read_drift, refresh_only
from reconciler.errors import (
    BlockedError,
    ConfigError,
    ExitCode,
    StateError,
)
from reconciler.plan.planner import CALLING, Action, Plan, build_plan
from reconciler.plan.refreshed import drift_events
from reconciler.plan.saved import load_plan, verify_saved
from reconciler.remote.drift import DriftItem
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredState
from reconciler.state.backend import Store
from reconciler.state.model import State, Target
from reconciler.state.recorder import Recorder
from reconciler.views.plan import to_text

PROGRESS_MIN_CALLS = 5


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "apply",
        parents=[common.project_parent(), common.api_parent()],
        help="make EngageLab match the specs (or apply a saved plan exactly)",
        description="Apply a saved plan (refused when stale or expired), or plan and apply. "
        "Asks for confirmation on a terminal; elsewhere needs --auto-approve.",
    )
    parser.add_argument("plan_file", nargs="?", type=Path, metavar="PLAN_FILE")
    parser.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--parallelism", type=int, default=10, help="API calls in flight at once (default 10)"
    )
    parser.add_argument(
        "--target",
        action="extend",
        nargs="+",
        metavar="ADDRESS",
        help="apply only these addresses (not with a saved plan: it was targeted when made)",
    )
    parser.add_argument(
        "--allow-destroy", action="store_true", help="allow a plan marked unsafe (mass deletion)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="with PLAN_FILE: only check it (fresh, not expired, not edited, not blocked, whole "
        "in CI) and exit as apply would (0, 3, 4, 6, 7); no API call, no credentials needed",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final report")
    common.add_lock_timeout(parser)
    parser.add_argument(
        "--refresh-only",
        action="store_true",
        help="only accept what EngageLab holds into the state (drift); no write to EngageLab. "
        "Same as `reconcile refresh`",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.refresh_only:
        if args.plan_file is not None or args.target or args.allow_destroy:
            raise ConfigError("--refresh-only takes no plan file, --target or --allow-destroy")
        return refresh_only(args, "reconcile apply --refresh-only")
    if args.check:
        return _check_only(args)
    project = common.Project(args)
    settings, now = project.settings, project.now
    if args.parallelism < 1:
        raise ConfigError(f"--parallelism must be at least 1, not {args.parallelism}")
    config = project.client_config
    pinned = args.now is not None
    if pinned and not common.is_loopback_url(config.base_url):
        raise ConfigError(
            "--now (or $RECONCILE_NOW) pins the clock for tests and the local emulator; it is "
            "refused against a real EngageLab, where the send-time gates need the real time"
        )
    if args.plan_file is not None and args.target:
        raise ConfigError("--target is chosen when planning: `reconcile plan --target ... --out`")
    options = ApplyOptions(parallelism=args.parallelism, allow_destroy=args.allow_destroy)
    target = common.target_of(config)
    store = project.store
    with store.lock("reconcile apply", timeout=common.lock_timeout(args)):
        state = common.load_state(store)
        common.check_target(state, config, store.name)
        desired = project.desired
        if args.plan_file is not None:
            plan = _reviewed_plan(args, state, desired, settings, now)
        else:
            plan = build_plan(desired, state, now, settings, targets=args.target)
            if not args.quiet:
                common.out(to_text(plan, color=common.color_enabled()))
        # Specs, state and plan are long-lived: keep the collector from rescanning them while
        # thousands of calls allocate (as `plan` does after loading).
        gc.freeze()
        if not plan.has_changes:
            state = _accept_drift(plan, state, store)
            common.out(
                "No changes: the specs match what was last applied; no call was made. "
                "(`reconcile plan --refresh` reads EngageLab for changes made elsewhere.)"
            )
            return int(ExitCode.OK)
        preflight(plan, now, options)

        def recheck(address: str, at: datetime) -> str | None:
            return immediate_findings(desired, settings, at, address)

        _recheck_immediate(plan, now, recheck)
        if args.plan_file is None and not args.auto_approve:
            common.confirm(
                "Apply these changes to EngageLab?",
                off_terminal="refusing to apply without confirmation on a non-interactive "
                "terminal; review the plan, then rerun with --auto-approve (or apply a saved, "
                "reviewed plan file)",
                cancelled="apply cancelled; nothing was sent",
            )
        started = time.monotonic()
        clock = _clock(now if pinned else None)
        state = _accept_drift(plan, state, store)
        recorder = Recorder(state, store.append)
        seen: list[Outcome] = []
        run = _Run(plan, recorder, config, clock, options, settings, target, recheck)
        compacted: StateError | None = None
        try:
            report = asyncio.run(run.apply(args.quiet, seen.append))
        except KeyboardInterrupt:
            _print_report(ApplyReport(tuple(seen), 0), time.monotonic() - started)
            common.err(
                "Interrupted. State is recorded for everything above; run `reconcile apply` "
                "again to finish: creates that were in flight are looked up by name first."
            )
            return int(ExitCode.INTERRUPTED)
        except BaseException:
            if seen:
                _print_report(ApplyReport(tuple(seen), 0), time.monotonic() - started)
            raise
        finally:
            if recorder.healthy and recorder.state.serial != state.serial:
                try:
                    store.write(recorder.state, run=common.run_description("reconcile apply"))
                except StateError as error:
                    compacted = error  # the journal holds every entry: nothing is lost
    _print_report(report, time.monotonic() - started)
    pending = recorder.state.unverified()
    if pending and recorder.healthy:
        until = max(r.verify_after for r in pending if r.verify_after is not None)
        wait = (
            f" after {until:%Y-%m-%d %H:%M:%S} UTC (a slow earlier write may land until then)"
            if until > clock()
            else ""
        )
        common.err(
            f"note: {len(pending)} uniqueness check(s) pending: the next `reconcile apply`{wait} "
            "lists EngageLab to confirm a single live copy of each"
        )
    if compacted is not None:
        common.err(f"error: {compacted}. The journal {store.journal_name} holds every outcome.")
        return int(ExitCode.ERROR)
    return int(report.exit_code)


def _accept_drift(plan: Plan, state: State, store: Store) -> State:
    """A `plan --refresh` plan was built on the state with its drift accepted: record those
    events first (journal, before any call), so the plan applies to the state it was made on."""
    if plan.refreshed_at is None or not plan.drift:
        return state
    events = drift_events(state, plan.drift, plan.created_at)
    return store.append(state, events) if events else state


def _check_only(args: argparse.Namespace) -> int:
    """`apply --check PLAN_FILE`: the saved-plan checks of an apply, made locally.

    For CI to tell a fresh reviewed plan from one to plan again, before any job that holds the
    credentials starts. The apply itself checks all of this again (and EngageLab's side)."""
    if args.plan_file is None or args.target or args.refresh_only:
        raise ConfigError("--check takes a PLAN_FILE, and no --target or --refresh-only")
    project = common.Project(args)
    settings, now, store = project.settings, project.now, project.store
    with store.lock("reconcile apply --check", timeout=common.lock_timeout(args)):
        state = common.load_state(store)
        desired = project.desired
        plan = _reviewed_plan(args, state, desired, settings, now, read_remote=False)
    if plan.has_changes:
        preflight(plan, now, ApplyOptions(allow_destroy=args.allow_destroy))
    calls = sum(1 for c in plan.changes if c.action in CALLING)
    common.out(f"{args.plan_file}: fresh and applicable; apply would make {calls} call(s)")
    return int(ExitCode.OK)


def _recheck_immediate(
    plan: Plan, now: datetime, recheck: Callable[[str, datetime], str | None]
) -> None:
    """A `backup_time: "now"` create sends at the instant of the apply: its quiet-hours and
    min_gap errors are judged at that instant, not when the plan was made."""
    reasons = []
    for change in plan.changes:
        immediate = change.window is not None and change.window.immediate
        if change.kind == "schedule" and change.action in (Action.CREATE, Action.REPLACE):
            found = recheck(change.address, now) if immediate else None
            if found:
                reasons.append(f"  {change.address}: {found}")
    if reasons:
        raise BlockedError(
            'the plan is blocked: a backup_time "now" message would send at this instant '
            "(nothing was sent):\n" + "\n".join(reasons)
        )


def _reviewed_plan(
    args: argparse.Namespace,
    state: State,
    desired: DesiredState,
    settings: Settings,
    now: datetime,
    read_remote: bool = True,
) -> Plan:
    """The plan to apply for PLAN_FILE, verified (plan.saved.verify_saved). `read_remote=False`
    (`--check`) takes a --refresh plan's drift from the file instead of reading EngageLab again;
    the apply that follows reads it."""
    saved = load_plan(args.plan_file)

    def remote_drift() -> tuple[DriftItem, ...]:
        if not read_remote:
            return saved.drift
        return read_drift(args, state, desired, saved.created_at, settings)

    return verify_saved(
        saved,
        state,
        desired,
        settings,
        now,
        read_drift=remote_drift,
        whole_only=common.in_ci(),
        source=str(args.plan_file),
    )


def _clock(pinned: datetime | None) -> common.Clock:
    if pinned is None:
        return common.utc_now
    start = time.monotonic()
    return lambda: pinned + common.seconds(time.monotonic() - start)


@dataclass(frozen=True, slots=True)
class _Run:
    plan: Plan
    recorder: Recorder
    config: ClientConfig
    clock: common.Clock
    options: ApplyOptions
    settings: Settings
    target: Target
    recheck: Callable[[str, datetime], str | None]

    async def apply(self, quiet: bool, sink: Callable[[Outcome], None]) -> ApplyReport:
        expected = sum(1 for c in self.plan.changes if c.action in CALLING)
        progress = _Progress(expected) if not quiet and expected > PROGRESS_MIN_CALLS else None

        def on_outcome(outcome: Outcome) -> None:
            sink(outcome)
            if progress is not None:
                progress.tick(outcome)

        async with EngageLabClient(self.config) as client:
            applier = Applier(
                self.plan,
                self.recorder,
                client,
                clock=self.clock,
                options=self.options,
                on_outcome=on_outcome,
                settings=self.settings,
                target=self.target,
                recheck=self.recheck,
            )
            try:
                return await applier.run()
            finally:
                if progress:
                    progress.close()


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.enabled = sys.stderr.isatty()

    def tick(self, outcome: Outcome) -> None:
        self.done += 1
        if self.enabled:
            width = 30
            filled = min(width, width * self.done // max(1, self.total))
            bar = "#" * filled + "-" * (width - filled)
            sys.stderr.write(f"\r  applying [{bar}] {self.done}/{self.total}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


REPORT_LISTED = 50  # addresses listed per group before "and N more"


def _print_report(report: ApplyReport, seconds: float) -> None:
    """The summary line, then, when anything is left to do, every group by name: what was
    applied (state is true for it), what failed, what is unknown and what was not attempted."""
    counts = {status: len(report.with_status(status)) for status in Status}
    bad = report.with_status(Status.FAILED, Status.UNKNOWN, Status.NOT_ATTEMPTED)
    if bad:
        for status in Status:
            group = report.with_status(status)
            if not group:
                continue
            common.err(f"{status.value} ({len(group)}):")
            for outcome in group[:REPORT_LISTED]:
                common.err(f"  {outcome.address} ({outcome.action.value})")
                if outcome.detail and status not in DONE:
                    common.err(f"      {outcome.detail}")
            if len(group) > REPORT_LISTED:
                common.err(f"  ... and {len(group) - REPORT_LISTED} more")
    for outcome in report.warnings:
        common.err(f"warning: {outcome.address}: {outcome.warning}")
    summary = ", ".join(f"{n} {status.value}" for status, n in counts.items() if n)
    verdict = "Apply complete" if not bad else "Apply incomplete"
    common.out(
        f"{verdict}: {summary or 'nothing to do'}. {report.calls} API calls in {seconds:.1f}s."
    )
    if bad and report.rerun_helps:
        common.err(
            "State is recorded for everything applied. Run `reconcile apply` again to finish: "
            "a create whose outcome is unknown is looked up by name first, never sent twice."
        )
    elif bad:
        common.err(
            "State is recorded for everything applied. Fix the failures above first (a rerun "
            "alone would fail the same way), then run `reconcile apply` again."
        )
