"""`reconcile import`: adopt existing EngageLab schedules and push plans into the state. I/O edge.

`import schedule.<name> <schedule_id>`, `import plan.<plan_id>`, or `import --match-names`.
Reads EngageLab (GETs only) and records under the state lock; nothing is sent or changed remotely.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from typing import Any

from reconciler.api.client import ClientConfig, EngageLabClient
from reconciler.cli import common
from reconciler.cli.workflows import owned
from reconciler.errors import ConfigError, ExitCode
from reconciler.remote.importer import ImportResult, import_plan, import_schedule, match_names
from reconciler.remote.importer import parse_address as parse
from reconciler.spec.desired import DesiredState
from reconciler.state.model import State


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "import",
        parents=[common.project_parent(), common.api_parent()],
        help="adopt existing EngageLab schedules and plans into the state (no remote change)",
        description="Record remote objects in the state so the next plan shows only real "
        "differences; rebuilds a lost state with no duplicate sends. Makes GET calls only.",
    )
    common.add_lock_timeout(parser)
    parser.add_argument("address", nargs="?", help="schedule.<name> or plan.<plan_id>")
    parser.add_argument("schedule_id", nargs="?", help="the remote schedule_id (schedules only)")
    parser.add_argument(
        "--match-names",
        action="store_true",
        help="adopt every live remote schedule whose name is in the specs and not in the state "
        "(and the specs' push plans EngageLab has); a name held twice is refused",
    )
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> tuple[str, str]:
    if args.match_names:
        if args.address:
            raise ConfigError("--match-names imports by name: give no address with it")
        return "match", ""
    if not args.address:
        raise ConfigError("give an address (schedule.<name> <id> or plan.<id>) or --match-names")
    kind, name = parse(args.address)
    if kind == "schedule" and not args.schedule_id:
        raise ConfigError(f"import {args.address} needs the remote schedule_id after it")
    if kind == "plan" and args.schedule_id:
        raise ConfigError(f"import {args.address} takes no schedule_id")
    return kind, name


async def _fetch(config: ClientConfig, kind: str, schedule_id: str | None) -> dict[str, Any]:
    async with EngageLabClient(config) as client:
        if kind == "schedule":
            assert schedule_id is not None
            return {"schedule": await client.get_schedule(schedule_id)}
        plans = {p.plan_id: p.description for p in await client.list_plans()}
        schedules = await client.list_schedules() if kind == "match" else []
        return {"plans": plans, "schedules": schedules}


def run(args: argparse.Namespace) -> int:
    kind, name = _check(args)
    project = common.Project(args)
    now, config, store = project.now, project.client_config, project.store
    with store.lock("reconcile import", timeout=common.lock_timeout(args)):
        state = common.load_state(store)
        common.check_target(state, config, store.name)
        desired = project.desired if kind != "plan" else None
        remote = asyncio.run(_fetch(config, kind, args.schedule_id))
        result = _decide(state, kind, name, args.schedule_id, remote, desired, now)
        if result.events:
            new = store.append(state, result.events)
            store.write(new)
    for note in result.notes:
        (common.err if note.startswith("warning:") else common.out)(note)
    for refusal in result.refused:
        common.err(f"refused: {refusal}")
    if result.events:
        common.out(
            f"Recorded {len(result.events)} import(s) in {store.name} (serial {state.serial} -> "
            f"{new.serial}). Run `reconcile plan` to see the remaining differences."
        )
    elif not result.refused and kind == "match":
        common.out("Nothing to import: no unrecorded remote schedule carries a spec name.")
    return int(ExitCode.ERROR if result.refused else ExitCode.OK)


def _decide(
    state: State,
    kind: str,
    name: str,
    schedule_id: str | None,
    remote: dict[str, Any],
    desired: DesiredState | None,
    now: datetime,
) -> ImportResult:
    if kind == "plan" or desired is None:
        return import_plan(state, name, remote["plans"], now)
    names = owned(desired)
    if kind == "schedule":
        assert schedule_id is not None
        return import_schedule(state, name, schedule_id, remote["schedule"], names, now)
    return match_names(state, remote["schedules"], remote["plans"], names, desired.plans, now)
