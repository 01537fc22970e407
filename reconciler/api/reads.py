"""Reads of EngageLab for drift, import and statistics, through EngageLabClient. Not pure: I/O.

Only GETs: nothing here writes to EngageLab. Pure decisions live in reconciler.remote.drift,
reconciler.remote.importer and reconciler.remote.stats; this module only fetches what they need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from reconciler.api.client import EngageLabClient
from reconciler.errors import ApiError
from reconciler.remote.drift import RemoteSnapshot, must_fetch
from reconciler.remote.stats import StatsReport, batches, build_report, merge_answers, windows
from reconciler.settings import Settings
from reconciler.state.model import State

READ_PARALLELISM = 8  # GETs in flight at once; the client's rate limiter still applies
T = TypeVar("T")


async def _bounded(calls: Iterable[Awaitable[T]], limit: int = READ_PARALLELISM) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with semaphore:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def read_remote(
    client: EngageLabClient, state: State, now: datetime, settings: Settings
) -> RemoteSnapshot:
    """Every schedule page, the push plans, and each recorded id the listing left out.

    A recorded id missing from the list is fetched on its own (listings can lag or page past
    it) unless its firing is over anyway: then its absence is the expected end of a task.
    """
    schedules, plans = await asyncio.gather(client.list_schedules(), client.list_plans())
    listed = {str(s.get("schedule_id")) for s in schedules}
    wanted = sorted(
        {
            rec.schedule_id
            for rec in state.schedules.values()
            if rec.schedule_id is not None
            and rec.schedule_id not in listed
            and must_fetch(rec, now, settings)
        }
    )
    found = await _bounded(_unlisted(client, sid) for sid in wanted)
    return RemoteSnapshot(
        schedules=tuple(schedules),
        fetched=dict(zip(wanted, found, strict=True)),
        plans={p.plan_id: p.description for p in plans},
    )


async def _unlisted(client: EngageLabClient, schedule_id: str) -> dict[str, Any] | None:
    """GET of a recorded id the listing leaves out. A 400 with code 8100 ("schedule request is
    not exist" in JPush v3, and every other refusal too) is "gone" here, because the listing
    agrees; elsewhere it is not (reconciler.apply.applier, the client's summary reads)."""
    try:
        return await client.get_schedule(schedule_id)
    except ApiError as error:
        if error.maybe_not_found:
            return None
        raise


async def read_stats(
    client: EngageLabClient, plan_ids: Sequence[str], start: date, end: date
) -> StatsReport:
    """Plan statistics over [start, end]: one call per (allowed window, plan-id batch), merged."""
    jobs = [(ids, w) for w in windows(start, end) for ids in batches(plan_ids)]
    answers: list[dict[str, Any]] = await _bounded(
        client.plan_detail(ids, first, last) for ids, (first, last) in jobs
    )
    return build_report(plan_ids, start, end, merge_answers(answers), calls=len(jobs))
