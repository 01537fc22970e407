"""The steps more than one command runs: reading the drift, accepting it (refresh), reading
statistics, loading a project with its problems reported, showing a plan. I/O edge.

Command modules parse, call these and the stages below, and print; they never import each other
(an import contract in pyproject.toml).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from datetime import date, datetime

from reconciler.api.client import ClientConfig, EngageLabClient
from reconciler.api.reads import read_remote, read_stats
from reconciler.cli import common
from reconciler.cli.common import err
from reconciler.errors import ExitCode, SpecError
from reconciler.plan.planner import Plan
from reconciler.remote.drift import DriftItem, RemoteSnapshot, accept_events, detect_drift
from reconciler.remote.stats import StatsReport
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredState
from reconciler.state.model import State
from reconciler.views.plan import drift_lines, to_json, to_markdown, to_text

FORMATS = ("text", "markdown", "json")


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="text (default), markdown or json"
    )


def render(plan: Plan, fmt: str) -> str:
    if fmt == "json":
        return to_json(plan)
    if fmt == "markdown":
        return to_markdown(plan)
    return to_text(plan, color=common.color_enabled())


Loaded = tuple[DesiredState, Settings, datetime]


def load_or_report(args: argparse.Namespace) -> Loaded | None:
    """The project's desired state, settings and clock, its warnings printed; or None once
    every problem has been printed (the caller exits 1)."""
    project = common.Project(args)
    settings, now = project.settings, project.now
    try:
        desired = project.desired
    except SpecError as error:
        report(error)
        return None
    for warning in desired.warnings:
        err(str(warning))
    return desired, settings, now


def report(error: SpecError) -> int:
    """Print every problem (errors and warnings, sorted) and a count; the exit code to use."""
    for problem in error.problems:
        err(str(problem))
    errors = sum(not p.warning for p in error.problems)
    err(f"{errors} error{'s' if errors != 1 else ''} in specs; nothing was planned or sent.")
    return int(ExitCode.ERROR)


def owned(desired: DesiredState) -> dict[str, str]:
    """Spec-owned schedule names -> their push plan id: what drift may report as created."""
    return {name: s.plan_id for name, s in desired.schedules.items()}


async def _read(
    config: ClientConfig, state: State, now: datetime, settings: Settings
) -> RemoteSnapshot:
    async with EngageLabClient(config) as client:
        return await read_remote(client, state, now, settings)


def read_drift(
    args: argparse.Namespace, state: State, desired: DesiredState, now: datetime, settings: Settings
) -> tuple[DriftItem, ...]:
    """Read EngageLab (GETs only) and compare it with `state`."""
    snapshot = asyncio.run(_read(common.client_config(args), state, now, settings))
    return detect_drift(state, snapshot, owned(desired), now, settings)


def refresh_only(args: argparse.Namespace, command: str) -> int:
    project = common.Project(args)
    settings, now, store = project.settings, project.now, project.store
    with store.lock(command, timeout=common.lock_timeout(args)):
        state = common.load_state(store)
        common.check_target(state, project.client_config, store.name)
        desired = project.desired
        drift = read_drift(args, state, desired, now, settings)
        events = accept_events(state, drift, now)
        if drift:
            common.out("\n".join(["Drift (recorded -> EngageLab):", *drift_lines(drift)]))
        if not events:
            common.out(
                "The state already matches EngageLab: nothing to record (EngageLab was only read)."
            )
            return int(ExitCode.OK)
        if not args.auto_approve:
            common.confirm(
                f"Record these {len(events)} change(s) in {store.name}?",
                off_terminal="refusing to refresh the state without confirmation on a "
                "non-interactive terminal; review the drift, then rerun with --auto-approve",
                cancelled="refresh cancelled; the state was not changed",
            )
        new = store.append(state, events)
        store.write(new)
    common.out(
        f"Recorded {len(events)} change(s) from EngageLab in {store.name} (serial {state.serial} "
        f"-> {new.serial}); nothing was sent. The next plan diffs the specs against this."
    )
    return int(ExitCode.OK)


async def fetch(
    config: ClientConfig, plan_ids: Sequence[str], start: date, end: date
) -> StatsReport:
    async with EngageLabClient(config) as client:
        return await read_stats(client, plan_ids, start, end)
