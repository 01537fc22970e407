"""`reconcile refresh` (and `apply --refresh-only`): make the state what EngageLab holds. I/O edge.

Reads the remote (GETs only), shows the drift, asks for approval as apply does, then records the
events that accept the remote into the state, under the lock. Never writes to EngageLab.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable
from datetime import datetime

from reconciler.cli import common
from reconciler.client import ClientConfig, EngageLabClient
from reconciler.desired import load_desired
from reconciler.drift import DriftItem, RemoteSnapshot, accept_events, detect_drift
from reconciler.errors import ConfigError, ExitCode
from reconciler.remote import read_remote
from reconciler.resources import DesiredState
from reconciler.settings import Settings
from reconciler.state import State
from reconciler.store import StateStore
from reconciler.views import diff_line


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "refresh",
        parents=[common.project_parent(), common.api_parent()],
        help="accept what EngageLab holds into the state (drift), with no write to EngageLab",
        description="Read every schedule and push plan, show the drift, and record the remote "
        "as it is: edited bodies are recorded, deleted schedules forgotten, remote schedules "
        "with a spec-owned name adopted. Makes GET calls only. Asks for confirmation on a "
        "terminal; elsewhere needs --auto-approve. Same as `reconcile apply --refresh-only`.",
    )
    parser.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return refresh_only(args, "reconcile refresh")


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


def drift_lines(items: Iterable[DriftItem]) -> list[str]:
    """Recorded -> remote, for people: the diffs read from the state's body to EngageLab's."""
    out: list[str] = []
    for item in items:
        out.append(f"  ~ {item.address}: {item.kind.value}: {item.detail}")
        out += [f"      {diff_line(d)}" for d in item.diffs]
    return out


def refresh_only(args: argparse.Namespace, command: str) -> int:
    settings = common.resolve_settings(args)
    now = common.resolve_now(args)
    store = StateStore(common.state_path(args))
    with store.lock(command):
        state = store.load()
        for notice in store.notices:
            common.err(f"note: {notice}")
        common.check_target(state, common.client_config(args), store.path)
        desired = load_desired(args.root, settings, now)
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
            _confirm(len(events), store)
        new = store.append(state, events)
        store.write(new)
    common.out(
        f"Recorded {len(events)} change(s) from EngageLab in {store.path} (serial {state.serial} "
        f"-> {new.serial}); nothing was sent. The next plan diffs the specs against this."
    )
    return int(ExitCode.OK)


def _confirm(count: int, store: StateStore) -> None:
    if not sys.stdin.isatty():
        raise ConfigError(
            "refusing to refresh the state without confirmation on a non-interactive terminal; "
            "review the drift, then rerun with --auto-approve"
        )
    common.out(f"\nRecord these {count} change(s) in {store.path}? Only 'yes' is accepted.")
    if input("  Enter a value: ").strip() != "yes":
        raise ConfigError("refresh cancelled; the state was not changed")
