"""When a plan may run: firing windows, send-time gates, quotas, mass-delete safety, expiry. Pure.

The planner folds these into a Plan's blockers, warnings, quota and expiry. The lead-time rule,
`lead_gate`, is written once: the planner asks it at plan time, the applier before every write
attempt (retries included), at the instant that attempt could land.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from reconciler.checks.findings import CheckResult, device_wall, passed_offsets
from reconciler.engagelab import HORIZON, MIN_LEAD, ZONE_SITE
from reconciler.plan.model import CALLING, Action, Blocker, Change, Quota, Window
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredState
from reconciler.state.model import ScheduleRecord, State
from reconciler.timing import (
    FireWindow,
    device_window,
    fire_window,
    firings,
    format_utc,
    gate_start,
    parse_api_time,
    periodical_walls,
    wall_to_utc,
)
from reconciler.zones import summarize

# The delete *ratio* only means something with enough schedules: removing 1 of 3 is ordinary.
RATIO_MIN_RECORDED = 10


def window_for(trigger: Mapping[str, Any], settings: Settings, now: datetime) -> FireWindow:
    # Thousands of schedules share a few send times; parsing each one again dominated planning.
    key = json.dumps(trigger, sort_keys=True)
    return _cached_window(key, settings.site_time_zone, now, settings.smart_day)


@lru_cache(maxsize=16384)
def _cached_window(trigger_json: str, zone: str, now: datetime, smart_day: bool) -> FireWindow:
    return fire_window(json.loads(trigger_json), ZoneInfo(zone), now=now, smart_day=smart_day)


def window_model(trigger: Mapping[str, Any], settings: Settings, now: datetime) -> Window:
    key = json.dumps(trigger, sort_keys=True)
    return _cached_model(key, settings.site_time_zone, now, settings.smart_day)


@lru_cache(maxsize=16384)
def _cached_model(trigger_json: str, zone: str, now: datetime, smart_day: bool) -> Window:
    trigger = json.loads(trigger_json)
    win = _cached_window(trigger_json, zone, now, smart_day)
    fires = firings(trigger, ZoneInfo(zone), now)
    return Window(
        kind=win.kind,
        first=win.first,
        last=win.last,
        immediate=win.immediate,
        device_local=win.device_local,
        real_first=fires[0].first if fires else None,
        real_last=fires[0].last if fires else None,
        next_starts=tuple(f.first for f in fires) if win.kind == "periodical" else (),
    )


def utc_text(instant: datetime | None) -> str:
    return format_utc(instant) if instant is not None else "an unknown time"


def describe_time(trigger: Mapping[str, Any]) -> str:
    """The spec-side words for a trigger's time: `backup_time 2025-12-28 09:00:00`."""
    if "intelligent" in trigger:
        return f"backup_time {trigger['intelligent']['backup_time']}"
    if "single" in trigger:
        return f"time {trigger['single']['time']}"
    per = trigger.get("periodical", {})
    return f"periodical {per.get('start')} to {per.get('end')} at {per.get('time')}"


def lead_gate(
    action: Action,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    at: datetime,
    settings: Settings,
) -> str | None:
    """Why a write of `after` over `before` must not land at `at`, or None. Pure.

    The one lead-time rule, for plan time (`at` = now) and for every write attempt (`at` = when
    that attempt could still reach EngageLab). Both versions count: the new one must not start
    firing within MIN_LEAD, and the one it changes must not have started (or start within
    MIN_LEAD) either, or the call would race EngageLab's own send.
    """
    if action not in (Action.CREATE, Action.UPDATE, Action.REPLACE) or after is None:
        return None
    zone, day = settings.site_zone, settings.smart_day
    lead = f"{int(MIN_LEAD.total_seconds() // 60)} minutes"
    if before is not None and action is not Action.CREATE:
        old_first = gate_start(before["trigger"], zone, at, smart_day=day)
        if old_first is not None and old_first < at + MIN_LEAD:
            return (
                f"the version on EngageLab ({describe_time(before['trigger'])}) starts firing on "
                f"{format_utc(old_first)}, less than {lead} before {format_utc(at)} (or already "
                "has): changing it then would race the send; plan again after it"
            )
    first = gate_start(after["trigger"], zone, at, smart_day=day)
    if first is None or first >= at + MIN_LEAD:
        return None
    when = describe_time(after["trigger"])
    if first <= at:
        return (
            f"{when} began firing on {format_utc(first)} in the earliest time zones: sent at "
            f"{format_utc(at)} it would arrive at the wrong local time there; move its time"
        )
    return (
        f"{when} starts firing on {format_utc(first)}, less than {lead} after "
        f"{format_utc(at)}; move its time"
    )


def send_gate(change: Change, now: datetime, settings: Settings) -> Blocker | str | None:
    """A send-time blocker, an immediate-send warning, or None."""
    win = change.window
    if change.action not in (Action.CREATE, Action.UPDATE, Action.REPLACE) or win is None:
        return None
    if change.after is None:
        return None
    late = lead_gate(change.action, change.before, change.after, now, settings)
    if late is not None:
        where = passed_where(change, now) if "began firing" in late else ""
        return Blocker(address=change.address, reason=late + where)
    twice = periodical_repeat(change, now, settings)
    if twice is not None:
        return Blocker(address=change.address, reason=twice)
    if win.immediate:
        return (
            f'{change.address}: backup_time "now": sends immediately to users with no '
            "activity history when applied; once sent it is no longer listed, so a lost or "
            "rolled-back state file would send it again: keep the state safe, or prefer a time"
        )
    if win.first is not None and win.first > now + HORIZON:
        return Blocker(
            address=change.address,
            reason=f"{describe_time(change.after['trigger'])} first fires on "
            f"{format_utc(win.first)}, more than {HORIZON.days} days ahead, which EngageLab "
            "refuses",
        )
    return None


_DAY = timedelta(days=1)


def periodical_repeat(change: Change, now: datetime, settings: Settings) -> str | None:
    """A periodical moved later on a day whose occurrence has already reached some zones: those
    zones would get that day's message twice. Pure."""
    if change.action not in (Action.UPDATE, Action.REPLACE):
        return None
    if change.before is None or change.after is None:
        return None
    old, new = change.before["trigger"], change.after["trigger"]
    if "periodical" not in old:
        return None
    zone = settings.site_zone

    def spans(trigger: Mapping[str, Any]) -> dict[Any, tuple[datetime, datetime]]:
        kind, inner = next(iter(trigger.items()))
        if kind == "intelligent" and inner.get("backup_time") == "now":
            return {}
        device = kind == "intelligent" or inner.get("zone_type", ZONE_SITE) != ZONE_SITE
        walls = (
            periodical_walls(inner)
            if kind == "periodical"
            else iter([parse_api_time(inner["backup_time" if kind == "intelligent" else "time"])])
        )
        found: dict[Any, tuple[datetime, datetime]] = {}
        for wall in walls:
            span = device_window(wall) if device else (wall_to_utc(wall, zone),) * 2
            if span[1] < now - _DAY:
                continue
            if span[0] > now + _DAY:
                break
            found[wall.date()] = (span[0], span[1])
        return found

    old_spans, new_spans = spans(old), spans(new)
    for day, (old_first, old_last) in sorted(old_spans.items()):
        if day not in new_spans or old_first > now:
            continue
        new_first, new_last = new_spans[day]
        # Zones where the old occurrence has passed and the new one, later that day, has not.
        if new_first > old_first and new_last > now:
            return (
                f"moves {day:%Y-%m-%d}'s occurrence later ({describe_time(old)} -> "
                f"{describe_time(new)}), but that occurrence has already reached "
                f"some time zones (since {format_utc(old_first)}): they would get it twice. "
                "Make the change start the next day (`start`), or apply it after that "
                f"occurrence ends ({format_utc(old_last)})"
            )
    return None


def passed_where(change: Change, now: datetime) -> str:
    """` (passed in UTC+13..UTC+14 (…), 2 of 37 offsets)`: the real zones a device time missed."""
    found = device_wall(change.after["trigger"]) if change.after is not None else None
    if found is None:
        return ""
    passed, total = passed_offsets(found[1], now)
    if not passed:
        return " (in no inhabited time zone yet: the gate counts from UTC+14 to UTC-12)"
    if len(passed) == total:
        return " (it has passed in every time zone)"
    return f" (passed in {summarize(passed)}, {len(passed)} of {total} UTC offsets)"


def fold_checks(
    results: Iterable[CheckResult], blocked: Collection[str]
) -> tuple[list[str], list[Blocker]]:
    """Check findings as warnings (`quiet_hours: schedule.x: …`) and error-level blockers."""
    warnings: list[str] = []
    blockers: list[Blocker] = []
    for r in results:
        if r.check == "backup_passed" and r.address in blocked:
            continue  # the send-time gate already refuses it, naming the zones
        if r.level == "error":
            blockers.append(Blocker(address=r.address, reason=f"{r.check}: {r.message}"))
        else:
            warnings.append(str(r))
    return warnings, blockers


def live_count(rec: ScheduleRecord, now: datetime, settings: Settings) -> int:
    """Remote tasks this record holds that still count against the schedule quota."""
    live = len(rec.superseded)  # unknown bodies: count them, erring on the safe side
    if (
        rec.schedule_id is not None
        and rec.body is not None
        and not window_for(rec.body["trigger"], settings, now).is_over(now, rec.applied_at)
    ):
        live += 1
    return live


_LIVE_AFTER = {Action.CREATE: 1, Action.UPDATE: 1, Action.REPLACE: 1}


def quota_for(
    changes: list[Change], state: State, desired: DesiredState, now: datetime, settings: Settings
) -> tuple[Quota, list[Blocker]]:
    by_address = {c.address: c for c in changes}
    live_now = live_after = 0
    for rec in state.schedules.values():
        now_count = live_count(rec, now, settings)
        live_now += now_count
        change = by_address.get(rec.address)
        if change is None or change.action in (Action.SENT, Action.NOOP):
            live_after += now_count
    added = 0
    for c in changes:
        if c.kind == "schedule" and c.action in _LIVE_AFTER:
            live_after += 1
            if c.action is not Action.UPDATE:
                added += 1  # created before any delete runs
    plans_used = len(state.plans) + sum(
        1
        for c in changes
        if c.kind == "plan" and c.action is Action.CREATE and c.plan_id not in state.plans
    )
    quota = Quota(
        plans_used=plans_used,
        plans_limit=settings.plan_quota,
        schedules_live=live_after,
        schedules_peak=max(live_now + added, live_after),
        schedules_limit=settings.schedule_quota,
    )
    blockers: list[Blocker] = []
    if quota.plans_used > quota.plans_limit:
        blockers.append(
            Blocker(
                address="quota.plans",
                reason=f"{quota.plans_used} push plans needed, over the AppKey's limit of "
                f"{quota.plans_limit}; plans cannot be deleted, and retired ones still count",
            )
        )
    if quota.schedules_live > quota.schedules_limit:
        blockers.append(
            Blocker(
                address="quota.schedules",
                reason=f"{quota.schedules_live} live schedules after this plan, over the quota "
                f"of {quota.schedules_limit}; remove schedules or raise --schedule-quota if "
                "EngageLab raised it for this AppKey",
            )
        )
    elif quota.schedules_peak > quota.schedules_limit:
        blockers.append(
            Blocker(
                address="quota.schedules",
                reason=f"apply creates before it deletes, so {quota.schedules_peak} schedules "
                f"would be live at once, over the quota of {quota.schedules_limit}; apply the "
                "deletions first (--target) and then the rest",
            )
        )
    return quota, blockers


def mass_delete_reason(changes: list[Change], state: State, settings: Settings) -> str | None:
    deletes = sum(1 for c in changes if c.action is Action.DELETE and c.after is None)
    recorded = len(state.schedules)
    if deletes > settings.delete_threshold_count:
        return (
            f"deletes {deletes} schedules, more than {settings.delete_threshold_count}; "
            "`reconcile apply` needs --allow-destroy"
        )
    if recorded >= RATIO_MIN_RECORDED and deletes / recorded > settings.delete_threshold_ratio:
        return (
            f"deletes {deletes} of {recorded} recorded schedules ({deletes / recorded:.0%}), more "
            f"than {settings.delete_threshold_ratio:.0%}; `reconcile apply` needs --allow-destroy"
        )
    return None


def expiry(changes: Iterable[Change], now: datetime, settings: Settings) -> datetime | None:
    """MIN_LEAD before the earliest future firing that a calling change touches; and a plan that
    creates a `backup_time: "now"` push lives `immediate_plan_minutes` at most, since it sends
    at the instant of the apply, whenever that is."""
    starts: list[datetime] = []
    for c in changes:
        if c.kind != "schedule" or c.action not in CALLING:
            continue
        for body in (c.before, c.after):
            if body is not None:
                win = window_for(body["trigger"], settings, now)
                if win.immediate and body is c.after:
                    starts.append(
                        now + timedelta(minutes=settings.immediate_plan_minutes) + MIN_LEAD
                    )
                first = win.first
                if first is not None and first > now:
                    starts.append(first)
    return min(starts) - MIN_LEAD if starts else None
