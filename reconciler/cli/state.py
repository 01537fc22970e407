"""`reconcile state ...`: inspect, repair, restore and move the recorded state.

`list`, `show` and `history` read; `rm` only forgets (the remote object stays), and `restore`
goes back to a kept snapshot after showing what the next apply would send again: both ask for
confirmation (`--auto-approve` off a terminal). `migrate` copies the state to another backend
and marks the source as moved; `init-backend` creates or upgrades the PostgreSQL schema;
`where` names the backend (for CI scripts); `unlock` clears the info a dead holder left.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from reconciler.cli import common
from reconciler.cli.common import confirm, err, out, project_parent
from reconciler.errors import ConfigError, StateError
from reconciler.plan.planner import build_plan
from reconciler.state.backend import Moved, Store
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
from reconciler.views.plan import to_text

DEFAULT_URL_ENV = "RECONCILE_STATE_URL"


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
    show = actions.add_parser(
        "show", parents=parent, help="one recorded resource, or the whole state, as JSON"
    )
    show.add_argument("address", nargs="?", help="plan.<id> or schedule.<name> (default: all)")
    show.add_argument(
        "--serial", type=int, metavar="N", help="as kept at serial N (`state history` lists them)"
    )
    show.set_defaults(func=run)
    actions.add_parser(
        "history",
        parents=parent,
        help="the kept snapshots: serial, time and the run that wrote each",
    ).set_defaults(func=run)
    restore = actions.add_parser(
        "restore",
        parents=parent,
        help="go back to a kept snapshot, after showing what the next apply would send again",
        description="Make a kept snapshot the current state again (as a new serial, so saved "
        "plans made before are refused). A restored state forgets what was sent since: the "
        "plan it shows is what the next apply would create or send again. Needs confirmation.",
    )
    restore.add_argument("--serial", type=int, required=True, metavar="N")
    restore.add_argument(
        "--auto-approve", action="store_true", help="do not ask (required off a terminal)"
    )
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore over a current state that cannot be read (PostgreSQL; a file is "
        "restored from its .backup or git)",
    )
    common.add_lock_timeout(restore)
    restore.set_defaults(func=run)
    migrate = actions.add_parser(
        "migrate",
        parents=parent,
        help="copy the state to another backend; the source is kept, marked as moved",
        description="Copy the snapshot and journal of this environment's state to BACKEND: "
        "`postgres` (the connection string from $RECONCILE_STATE_URL or --url-env, the key "
        "from --project), `file` (the environment's state file) or `file:PATH`. Refused when "
        "the target holds another state. The source is left intact and marked as moved, so it "
        "is not used by mistake; then point reconcile.toml at the target.",
    )
    migrate.add_argument(
        "--to", required=True, metavar="BACKEND", help="postgres, file or file:PATH"
    )
    migrate.add_argument(
        "--url-env",
        metavar="VAR",
        default=None,
        help=f"with --to postgres: the variable holding the connection string "
        f"(default: the environment's url_env, else {DEFAULT_URL_ENV})",
    )
    migrate.add_argument(
        "--project",
        metavar="NAME",
        default=None,
        help="with --to postgres: the project part of the state's key (default: the environment's)",
    )
    common.add_lock_timeout(migrate)
    migrate.set_defaults(func=run)
    init = actions.add_parser(
        "init-backend",
        parents=parent,
        help="create or upgrade the PostgreSQL schema (also done on first use)",
    )
    init.add_argument(
        "--url-env",
        metavar="VAR",
        default=None,
        help=f"the variable holding the connection string (default: the environment's url_env, "
        f"else {DEFAULT_URL_ENV})",
    )
    init.set_defaults(func=run)
    actions.add_parser(
        "where",
        parents=parent,
        help="print where the state is: `file PATH` or `postgres PROJECT/ENV ($VAR)`; needs "
        "no credentials and no connection (for CI scripts)",
    ).set_defaults(func=run)
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
    common.add_lock_timeout(rm)
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
    if command == "init-backend":
        return _init_backend(args)
    if command == "where":
        env = common.environment(args)
        if getattr(args, "state", None) is None and env is not None and env.state_url_env:
            out(f"postgres {env.state_project}/{env.name} (${env.state_url_env})")
        else:
            out(f"file {common.state_path(args)}")
        return 0
    store = common.open_store(args)
    if command == "unlock":
        return _unlock(store)
    if command == "rm":
        return _rm(store, list(dict.fromkeys(args.addresses)), args)
    if command == "restore":
        return _restore(store, args)
    if command == "migrate":
        return _migrate(store, args)
    if command == "history":  # without loading the state: it is how to recover a broken one
        _history(store)
        return 0
    if command == "show" and args.serial is not None:
        state = store.load_serial(args.serial)
    else:
        state = store.load()
        _notices(store)
        if not store.exists():
            err(f"no state in {store.name}: nothing has been applied yet")
    if command == "list":
        _list(state)
    else:
        shown: object = (
            state.model_dump(mode="json")
            if args.address is None
            else _find(state, store, args.address).model_dump(mode="json")
        )
        out(json.dumps(shown, sort_keys=True, indent=2, ensure_ascii=False))
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


def _find(state: State, store: Store, address: str) -> PlanRecord | ScheduleRecord:
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
            f"{address} is not in {store.name}; `reconcile state list` shows what is recorded"
        )
    return found


def _rm(store: Store, addresses: list[str], args: argparse.Namespace) -> int:
    yes: bool = args.yes
    with store.lock("reconcile state rm", timeout=common.lock_timeout(args)):
        state = store.load()
        _notices(store)
        records = [_find(state, store, address) for address in addresses]  # all, or nothing
        for record in records:
            err(f"warning: {_consequence(record)}")
        if not yes:
            confirm(
                f"Forget {len(records)} resource(s) from {store.name}?",
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
        store.write(new, run=common.run_description("reconcile state rm"))
    out(
        f"forgot {', '.join(addresses)} (serial {state.serial} -> {new.serial}); "
        f"the previous state is in {store.kept_previous()}"
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


def _unlock(store: Store) -> int:
    holder = store.unlock()
    if holder is None:
        out(f"{store.name} is not locked")
    else:
        out(
            f"cleared the lock info on {store.name} left by {holder.describe()}; "
            "no process holds the lock now"
        )
    return 0


def _history(store: Store) -> None:
    entries = store.history()
    if not entries:
        out(f"no snapshot kept in {store.name} yet")
        return
    rows = [
        (
            f"{entry.serial}{' (current)' if entry.current else ''}",
            f"{entry.written_at:%Y-%m-%d %H:%M:%S} UTC" if entry.written_at else "-",
            entry.run or "-",
        )
        for entry in entries
    ]
    rows.insert(0, ("SERIAL", "WRITTEN", "BY"))
    width = [max(len(row[i]) for row in rows) for i in (0, 1)]
    for serial, written, run in rows:
        out(f"{serial:<{width[0]}}  {written:<{width[1]}}  {run}")
    if store.kind == "file":
        out(f"(the file backend keeps two; git holds the rest: git log -p -- {store.name})")


def _restore(store: Store, args: argparse.Namespace) -> int:
    project = common.Project(args)
    with store.lock("reconcile state restore", timeout=common.lock_timeout(args)):
        try:
            current = common.load_state(store)
        except StateError as error:
            if not args.force:
                raise StateError(
                    f"{error}\nTo restore serial {args.serial} over it anyway, add --force"
                ) from None
            return _restore_unreadable(store, args, project, error)
        if current.pending_intents():
            names = ", ".join(sorted(r.address for r in current.pending_intents()))
            raise ConfigError(
                f"{store.name} has writes whose outcome is not known yet ({names}); restoring "
                "would forget them and could send them twice. Run `reconcile apply` first, "
                "then restore. Nothing was changed"
            )
        kept = store.load_serial(args.serial)
        if kept.lineage != current.lineage:
            raise ConfigError(
                f"serial {args.serial} belongs to another state (lineage {kept.lineage}, the "
                f"current one is {current.lineage}); nothing was changed"
            )
        restored = kept.model_copy(
            update={"serial": current.serial + 1, "target": kept.target or current.target}
        )
        forgotten = _forgotten(current, restored)
        plan = build_plan(project.desired, restored, project.now, project.settings)
        out(f"Restoring serial {args.serial} of {store.name} (now at serial {current.serial}).")
        out("The next apply, on the restored state, would do this:\n")
        out(to_text(plan, color=common.color_enabled()))
        for line in forgotten:
            err(f"warning: {line}")
        if not args.auto_approve:
            confirm(
                f"Restore serial {args.serial} as serial {restored.serial}?",
                off_terminal="state restore forgets what was recorded since; not on a "
                "terminal, so pass --auto-approve to confirm",
                cancelled="nothing was changed",
            )
        store.write(restored, run=common.run_description(f"reconcile state restore {args.serial}"))
    out(
        f"restored serial {args.serial} as serial {restored.serial}; the state before is in "
        f"{store.kept_previous()}"
    )
    return 0


def _restore_unreadable(
    store: Store, args: argparse.Namespace, project: common.Project, error: StateError
) -> int:
    """`restore --force` over a current state that cannot be read (the lock is held)."""
    kept = store.load_serial(args.serial)
    plan = build_plan(project.desired, kept, project.now, project.settings)
    err(f"warning: the current state cannot be read ({error})")
    err(
        "warning: what it recorded since serial "
        f"{args.serial} is not known: any create below may send a push that already went"
    )
    out(f"Restoring serial {args.serial} of {store.name} over a state that cannot be read.")
    out("The next apply, on the restored state, would do this:\n")
    out(to_text(plan, color=common.color_enabled()))
    if not args.auto_approve:
        confirm(
            f"Restore serial {args.serial}?",
            off_terminal="state restore forgets what was recorded since; not on a terminal, "
            "so pass --auto-approve to confirm",
            cancelled="nothing was changed",
        )
    restored = store.replace_unreadable(
        kept, run=common.run_description(f"reconcile state restore {args.serial} --force")
    )
    out(f"restored serial {args.serial} as serial {restored.serial}")
    return 0


def _forgotten(current: State, restored: State) -> list[str]:
    """What the restored state does not know of: live copies the next apply may send again."""
    lines = []
    for name, record in sorted(current.schedules.items()):
        before = restored.schedules.get(name)
        if record.schedule_id and (before is None or before.schedule_id != record.schedule_id):
            lines.append(
                f"{record.address} (remote id {record.schedule_id}) is recorded now but not at "
                "the restored serial: if it already sent, the next apply sends it again"
            )
    return lines


def _migrate(source: Store, args: argparse.Namespace) -> int:
    target = _target_store(args)
    if target.kind == source.kind and target.name == source.name:
        raise ConfigError(f"--to names the state this environment already uses ({source.name})")
    timeout = common.lock_timeout(args)
    with (
        source.lock("reconcile state migrate", timeout=timeout),
        target.lock("reconcile state migrate", timeout=timeout),
    ):
        _notices(source)
        snapshot, entries = source.export()
        if snapshot is None:
            raise ConfigError(f"{source.name} holds no state yet: nothing to migrate")
        run = common.run_description(f"reconcile state migrate from {source.kind}")
        target.adopt(snapshot, entries, run=run)
        copied, original = target.load(), source.load()
        if copied != original:
            raise ConfigError(
                f"the copy in {target.name} does not read back as {source.name} does; the "
                "source was not marked as moved and stays in use"
            )
        source.mark_moved(
            Moved(
                to=f"{target.kind} {target.name}",
                at=datetime.now(UTC),
                lineage=original.lineage,
                serial=original.serial,
            )
        )
    out(
        f"copied serial {original.serial} (lineage {original.lineage}, {len(entries)} journal "
        f"entries) from {source.name} to {target.name}; the source is kept, marked as moved."
    )
    out(f"Now point the environment at it in reconcile.toml: {_config_line(target, args)}")
    return 0


def _target_store(args: argparse.Namespace) -> Store:
    kind, _, where = str(args.to).partition(":")
    env = common.environment(args)
    if kind == "file":
        if where:
            return StateStore(Path(where))
        root: Path = getattr(args, "root", None) or Path()
        return StateStore(root / (env.state_file if env else "state/default.json"))
    if kind in ("postgres", "postgresql", "pg"):
        if where:
            raise ConfigError("--to postgres takes no value: name the variable with --url-env")
        from reconciler.config.toml import Environment

        base = env or Environment(name="default")
        url_env = args.url_env or base.state_url_env or DEFAULT_URL_ENV
        project = args.project or base.state_project
        if not project:
            raise ConfigError(
                "--to postgres needs --project NAME: it keys the state in the database, with "
                "the environment and the AppKey"
            )
        import dataclasses

        chosen = dataclasses.replace(base, state_url_env=url_env, state_project=project)
        return common.postgres_store(chosen, os.environ)
    raise ConfigError(f"--to {args.to!r}: use postgres, file or file:PATH")


def _config_line(target: Store, args: argparse.Namespace) -> str:
    if target.kind == "file":
        return f'state = "{target.name}" (or no state key, for the default path)'
    env = common.environment(args)
    url_env = args.url_env or (env.state_url_env if env else None) or DEFAULT_URL_ENV
    project = args.project or (env.state_project if env else None)
    return f'state = {{ url_env = "{url_env}", project = "{project}" }}'


def _init_backend(args: argparse.Namespace) -> int:
    from reconciler.state.pg import SCHEMA_VERSION, migrate

    env = common.environment(args)
    url_env = args.url_env or (env.state_url_env if env else None) or DEFAULT_URL_ENV
    url = os.environ.get(url_env, "").strip()
    if not url:
        raise ConfigError(f"{url_env} is not set: export the PostgreSQL connection string in it")
    before, after = migrate(url, url_env)
    if before == after:
        out(f"the state database (${url_env}) is up to date (schema version {after})")
    else:
        out(
            f"the state database (${url_env}) schema: version {before} -> {after} "
            f"(this reconcile's: {SCHEMA_VERSION})"
        )
    return 0


def _notices(store: Store) -> None:
    for notice in store.notices:  # the loads here are the command's own (list, show, rm)
        err(f"note: {notice}")
    store.notices.clear()
