"""When a plan may run: firing windows, send-time gates, quotas, mass-delete safety, expiry. Pure.

The planner folds these into a Plan's blockers, warnings, quota and expiry; the applier re-checks
the send-time gate at call time (reconciler.apply.too_late).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from reconciler.checks import CheckResult, device_wall, passed_offsets
from reconciler.engagelab import HORIZON, MIN_LEAD
from reconciler.plan_model import CALLING, Action, Blocker, Change, Quota, Window
from reconciler.resources import DesiredState
from reconciler.settings import Settings
from reconciler.state import ScheduleRecord, State
from reconciler.timing import FireWindow, fire_window, firings, format_utc, gate_start
from reconciler.zones import summarize

# The delete *ratio* only means something with enough schedules: removing 1 of 3 is ordinary.
RATIO_MIN_RECORDED = 10


def window_for(trigger: Mapping[str, Any], settings: Settings, now: datetime) -> FireWindow:
    # Thousands of schedules share a few send times; parsing each one again dominated planning.
    key = json.dumps(trigger, sort_keys=True)
    return _cached_window(key, settings.site_time_zone, now)


@lru_cache(maxsize=16384)
def _cached_window(trigger_json: str, zone: str, now: datetime) -> FireWindow:
    return fire_window(json.loads(trigger_json), ZoneInfo(zone), now=now)


def window_model(trigger: Mapping[str, Any], settings: Settings, now: datetime) -> Window:
    return _cached_model(json.dumps(trigger, sort_keys=True), settings.site_time_zone, now)


@lru_cache(maxsize=16384)
def _cached_model(trigger_json: str, zone: str, now: datetime) -> Window:
    trigger = json.loads(trigger_json)
    win = _cached_window(trigger_json, zone, now)
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


def send_gate(change: Change, now: datetime, settings: Settings) -> Blocker | str | None:
    """A send-time blocker, an immediate-send warning, or None."""
    win = change.window
    if change.action not in (Action.CREATE, Action.UPDATE, Action.REPLACE) or win is None:
        return None
    if change.after is None:
        return None
    if change.before is not None and change.action is not Action.CREATE:
        old_first = gate_start(change.before["trigger"], settings.site_zone, now)
        # Changing a task in the minutes before it fires races EngageLab's own send.
        if old_first is not None and now <= old_first < now + MIN_LEAD:
            return Blocker(
                address=change.address,
                reason=f"the recorded {describe_time(change.before['trigger'])} starts firing on "
                f"{format_utc(old_first)}, less than {int(MIN_LEAD.total_seconds() // 60)} "
                "minutes from now: changing it now races the send; plan again after it",
            )
    if win.immediate:
        return (
            f'{change.address}: backup_time "now": sends immediately to users with no '
            "activity history when applied; once sent it is no longer listed, so a lost or "
            "rolled-back state file would send it again: keep the state safe, or prefer a time"
        )
    first = gate_start(change.after["trigger"], settings.site_zone, now)
    if win.first is None or first is None:
        return None
    when = describe_time(change.after["trigger"])
    if first < now:
        return Blocker(
            address=change.address,
            reason=f"{when} already began on {format_utc(first)}{passed_where(change, now)}"
            ": applied now it would fire at the wrong local time somewhere; move its time",
        )
    if first < now + MIN_LEAD:
        return Blocker(
            address=change.address,
            reason=f"{when} starts firing on {format_utc(first)}, less than "
            f"{int(MIN_LEAD.total_seconds() // 60)} minutes from now; move its time",
        )
    if win.first > now + HORIZON:
        return Blocker(
            address=change.address,
            reason=f"{when} first fires on {format_utc(win.first)}, more than "
            f"{HORIZON.days} days ahead, which EngageLab refuses",
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
    """MIN_LEAD before the earliest future firing that a calling change touches."""
    starts: list[datetime] = []
    for c in changes:
        if c.kind != "schedule" or c.action not in CALLING:
            continue
        for body in (c.before, c.after):
            if body is not None:
                first = window_for(body["trigger"], settings, now).first
                if first is not None and first > now:
                    starts.append(first)
    return min(starts) - MIN_LEAD if starts else None
