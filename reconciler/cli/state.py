"""`reconcile state list|show|rm|unlock`: inspect and hand-repair the recorded state.

`rm` only forgets: the remote object stays, so it asks for confirmation (`--auto-approve` off a
terminal).
"""

from __future__ import annotations

import argparse
import json
import sys

from reconciler.cli.common import confirm, err, out, project_parent, state_path
from reconciler.errors import ConfigError
from reconciler.state.model import (
    Event,
    PlanForgotten,
    PlanRecord,
    ScheduleForgotten,
    ScheduleRecord,
    State,
    apply_event,
)
from reconciler.state.store import StateStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "state",
        help="list, show or remove recorded resources; clear a stale lock",
        description="Inspect the state file, and repair it by hand on the rare occasion.",
    )
    parser.set_defaults(func=run, state_help=parser.format_help)
    actions = parser.add_subparsers(dest="state_command", metavar="SUBCOMMAND")
    parent = [project_parent()]
    actions.add_parser(
        "list", parents=parent, help="addresses with remote ids and status (pending intents)"
    ).set_defaults(func=run)
    show = actions.add_parser("show", parents=parent, help="one recorded resource, as JSON")
    show.add_argument("address", help="plan.<id> or schedule.<name>")
    show.set_defaults(func=run)
    rm = actions.add_parser(
        "rm",
        parents=parent,
        help="forget resources (the remote objects are NOT deleted)",
        description="Forget resources from state. Nothing is deleted on EngageLab: a forgotten "
        "schedule still sends, and the next apply creates it again (a duplicate send) unless "
        "it is re-imported or removed from the specs.",
    )
    rm.add_argument("addresses", nargs="+", metavar="ADDRESS")
    rm.add_argument(
        "--auto-approve",
        "--yes",  # the name it had first
        dest="yes",
        action="store_true",
        help="do not ask (required off a terminal), as for apply and refresh",
    )
    rm.set_defaults(func=run)
    actions.add_parser(
        "unlock",
        parents=parent,
        help="clear the lock info a dead run left (refused while the holder is alive)",
    ).set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command: str | None = getattr(args, "state_command", None)
    if command is None:
        err(args.state_help())
        return 1
    store = StateStore(state_path(args))
    if command == "unlock":
        return _unlock(store)
    if command == "rm":
        return _rm(store, list(dict.fromkeys(args.addresses)), yes=args.yes)
    state = store.load()
    _notices(store)
    if not store.exists():
        err(f"no state at {store.path}: nothing has been applied yet")
    if command == "list":
        _list(state)
    else:
        record = _find(state, store, args.address)
        out(
            json.dumps(record.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=False)
        )
    return 0


def _list(state: State) -> None:
    rows: list[tuple[str, str, str]] = []
    for plan in state.plans.values():
        status = f"retired {plan.retired_at:%Y-%m-%d %H:%M}" if plan.retired_at else "recorded"
        rows.append((f"plan.{plan.plan_id}", plan.plan_id, status))
    for record in state.schedules.values():
        rows.append((record.address, record.schedule_id or "-", _status(record)))
    rows.sort()
    width = [max((len(row[i]) for row in rows), default=0) for i in (0, 1)]
    for address, remote, status in rows:
        out(f"{address:<{width[0]}}  {remote:<{width[1]}}  {status}")


def _status(record: ScheduleRecord) -> str:
    parts = []
    if record.applied_at is not None:
        parts.append(f"applied {record.applied_at:%Y-%m-%d %H:%M}")
    if record.intent is not None:
        since = f"{record.intent.started_at:%Y-%m-%d %H:%M}"
        parts.append(f"PENDING {record.intent.action} (since {since}; the next apply resolves it)")
    if record.superseded:
        parts.append(f"old copies still live: {', '.join(record.superseded)}")
    return "; ".join(parts) or "-"


def _find(state: State, store: StateStore, address: str) -> PlanRecord | ScheduleRecord:
    kind, _, name = address.partition(".")
    found: PlanRecord | ScheduleRecord | None = None
    if kind == "plan":
        found = state.plans.get(name)
    elif kind == "schedule":
        found = state.schedules.get(name)
    else:
        raise ConfigError(f"{address!r} is not an address; use plan.<id> or schedule.<name>")
    if found is None:
        raise ConfigError(
            f"{address} is not in {store.path}; `reconcile state list` shows what is recorded"
        )
    return found


def _rm(store: StateStore, addresses: list[str], *, yes: bool) -> int:
    with store.lock("reconcile state rm"):
        state = store.load()
        _notices(store)
        records = [_find(state, store, address) for address in addresses]  # all, or nothing
        for record in records:
            err(f"warning: {_consequence(record)}")
        if not yes:
            confirm(
                f"Forget {len(records)} resource(s) from {store.path}?",
                off_terminal="state rm forgets resources; not on a terminal, so pass "
                "--auto-approve to confirm",
                cancelled="nothing was changed",
            )
        events: list[Event] = [
            ScheduleForgotten(name=r.name)
            if isinstance(r, ScheduleRecord)
            else PlanForgotten(plan_id=r.plan_id)
            for r in records
        ]
        new = state
        for event in events:
            new = apply_event(new, event)
        store.write(new)
    out(
        f"forgot {', '.join(addresses)} (serial {state.serial} -> {new.serial}); "
        f"the previous state is in {store.backup_path}"
    )
    return 0


def _consequence(record: PlanRecord | ScheduleRecord) -> str:
    if isinstance(record, PlanRecord):
        return (
            f"plan.{record.plan_id} is only forgotten: EngageLab plans cannot be deleted and it "
            "still counts against the 100-plan quota"
        )
    remote = f" (remote id {record.schedule_id})" if record.schedule_id else ""
    pending = " It has a pending write intent: it may exist remotely." if record.intent else ""
    return (
        f"{record.address}{remote} is only forgotten: it is NOT deleted on EngageLab and will "
        "still send. Re-import it (`reconcile import`) or the next apply creates it again, "
        f"a duplicate send.{pending}"
    )


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise ConfigError("state rm forgets resources; not on a terminal, so pass --yes to confirm")
    answer = input(f"{question} Only 'yes' is accepted: ")
    return answer.strip() == "yes"


def _unlock(store: StateStore) -> int:
    holder = store.unlock()
    if holder is None:
        out(f"{store.path} is not locked")
    else:
        out(
            f"cleared the lock info on {store.path} left by {holder.describe()}; "
            "no process holds the lock now"
        )
    return 0


def _notices(store: StateStore) -> None:
    for notice in store.notices:  # the loads here are the command's own (list, show, rm)
        err(f"note: {notice}")
    store.notices.clear()
