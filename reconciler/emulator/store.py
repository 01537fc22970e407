"""The emulator's account state: push plans and schedules, quotas, ids and expiry. No HTTP.

Not thread-safe by itself: the server holds one lock around every call. The clock is passed in.
"""

from __future__ import annotations

import copy
import hashlib
import math
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler import engagelab as api
from reconciler.emulator.validate import (
    ApiError,
    check_name,
    check_plan,
    check_push,
    check_trigger,
    trigger_kind,
)

SCHEDULE_FIELDS = ("name", "enabled", "trigger", "push")


@dataclass(slots=True)
class Plan:
    plan_id: str
    description: str
    created_at: datetime
    last_used_at: datetime | None = None
    count: int = 0  # schedules created with this plan [ours]


@dataclass(slots=True)
class Schedule:
    schedule_id: str
    name: str
    enabled: bool
    trigger: dict[str, Any]
    push: dict[str, Any]
    created_at: datetime
    expires_at: datetime  # when its firing window is fully over

    def live(self, now: datetime) -> bool:
        return now < self.expires_at

    def as_api(self) -> dict[str, Any]:
        return {
            "schedule_id": self.schedule_id,
            "name": self.name,
            "enabled": self.enabled,
            "trigger": self.trigger,
            "push": self.push,
        }


def _not_found(schedule_id: str) -> ApiError:
    return ApiError(api.CODE_NOT_FOUND, f"schedule {schedule_id} does not exist", status=404)


def _millis(at: datetime | None) -> int:
    """[sdk] plan list times are 13-digit millisecond timestamps: Java `PushPlanListResult`
    ("返回的是13位时间戳", Long), Go `model_plan.go` (int64) and Go CHANGELOG 0.1.1 ("continue to
    use millisecond timestamps"). [ours] a plan never used answers 0."""
    return int(at.timestamp() * 1000) if at is not None else 0


def entity_tag(plan: Plan) -> str:
    """[sdk] newer builds add `entity_tag` to each plan list item (Go CHANGELOG 0.1.1: PushPlanInfo
    "adds EntityTag"). [ours] its meaning and type are unpublished: the emulator sends an opaque
    string that changes when the plan's description does, like an HTTP entity tag."""
    digest = hashlib.sha256(f"{plan.plan_id}\0{plan.description}".encode()).hexdigest()
    return digest[:16]


class Store:
    def __init__(self, *, plan_quota: int, schedule_quota: int, seed: int) -> None:
        self.plan_quota = plan_quota
        self.schedule_quota = schedule_quota
        self.seed = seed
        self.plans: dict[str, Plan] = {}
        self.schedules: dict[str, Schedule] = {}  # expired ones stay, for inspection
        self.counter = 0

    # --- plans --------------------------------------------------------------------------
    def upsert_plan(self, body: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        plan_id, description = check_plan(body)
        plan = self.plans.get(plan_id)
        if plan is not None:
            plan.description = description
        elif len(self.plans) >= self.plan_quota:
            raise ApiError(api.CODE_QUOTA, f"plan quota reached ({self.plan_quota} per AppKey)")
        else:
            self.plans[plan_id] = Plan(plan_id, description, now)
        return {"plan_id": plan_id}

    def list_plans(self, page_index: int, page_size: int, search: str) -> dict[str, Any]:
        if page_index < 1 or not 1 <= page_size <= api.PLAN_PAGE_SIZE_MAX:
            raise ApiError(api.CODE_BAD_VALUE, "page_index >= 1 and page_size 1..100")
        found = [p for p in self.plans.values() if search in p.description]
        first = (page_index - 1) * page_size
        return {
            "push_plan_info": [
                {
                    "plan_id": p.plan_id,
                    "plan_description": p.description,
                    "count": p.count,
                    "create_time": _millis(p.created_at),
                    "last_used_time": _millis(p.last_used_at),
                    "entity_tag": entity_tag(p),
                }
                for p in found[first : first + page_size]
            ],
            "total": len(found),
        }

    # --- schedules ----------------------------------------------------------------------
    def live_schedules(self, now: datetime) -> list[Schedule]:
        return [s for s in self.schedules.values() if s.live(now)]

    def create_schedule(self, body: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        name = check_name(body.get("name"))
        enabled = body.get("enabled")
        if enabled is None:
            raise ApiError(api.CODE_MISSING_FIELD, "enabled is required")
        if enabled is not True:
            raise ApiError(api.CODE_SCHEDULE_REFUSED, "enabled must be true on create")
        trigger = body.get("trigger")
        if trigger is None:
            raise ApiError(api.CODE_MISSING_FIELD, "trigger is required")
        expires_at = check_trigger(trigger, now)
        push = body.get("push")
        if push is None:
            raise ApiError(api.CODE_MISSING_FIELD, "push is required")
        check_push(push, self.plans.__contains__)
        if len(self.live_schedules(now)) >= self.schedule_quota:
            raise ApiError(
                api.CODE_QUOTA, f"live schedule quota reached ({self.schedule_quota} per AppKey)"
            )
        self.counter += 1
        digest = hashlib.sha256(f"{self.seed}:{self.counter}".encode()).digest()
        schedule_id = str(uuid.UUID(bytes=digest[:16]))
        schedule = Schedule(
            schedule_id, name, True, copy.deepcopy(trigger), copy.deepcopy(push), now, expires_at
        )
        self.schedules[schedule_id] = schedule
        self._use_plan(schedule, now)
        return {"schedule_id": schedule_id, "name": name}

    def _use_plan(self, schedule: Schedule, now: datetime) -> None:
        plan = self.plans.get(schedule.push.get("body", {}).get("options", {}).get("plan_id", ""))
        if plan is not None:
            plan.count += 1
            plan.last_used_at = now

    def _live(self, schedule_id: str, now: datetime) -> Schedule:
        schedule = self.schedules.get(schedule_id)
        if schedule is None or not schedule.live(now):
            raise _not_found(schedule_id)
        return schedule

    def get_schedule(self, schedule_id: str, now: datetime) -> list[dict[str, Any]]:
        return [self._live(schedule_id, now).as_api()]  # [sdk] decoded as a one-item array

    def update_schedule(
        self, schedule_id: str, body: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        """PUT /v4/schedules/{id}: merge the top-level fields sent into the stored task.

        [sdk] The SDKs send only the top-level fields that change (Python `engagelab/schedule.py`
        SchedulePushParam fields all Optional; Java `bean/schedule/SchedulePushParam.java`, sent by
        `ScheduleClient.updateSchedulePush`, has JsonInclude NON_NULL on each). [v3] "Update
        operation can be one or more of name, enabled, trigger, or push"; `trigger` and `push`
        are replaced whole; "the updated trigger must still be valid, otherwise the update fails
        even if the trigger is updated as a whole"; single and periodical cannot be swapped; an
        expired task cannot be updated (JPush v3 Schedule API, docs.jiguang.cn/en/jpush/server/
        push/rest_api_push_schedule). So:
        - a `trigger` sent is judged exactly as on create, at `now` (lead time, horizon, an
          occurrence left). A periodical whose `start` is past is valid while an occurrence is
          left: v3's own example moves `end` of a task started long ago;
        - [ours] a PUT without `trigger` does not re-judge the stored trigger (it was valid when
          stored, and the task is live): a copy-only edit of a running periodical passes;
        - the merged task is valid in full before anything changes (a refusal changes nothing).
        """
        schedule = self.schedules.get(schedule_id)
        if schedule is None:
            raise _not_found(schedule_id)
        if not schedule.live(now):
            raise ApiError(api.CODE_SCHEDULE_REFUSED, "an expired schedule cannot be updated")
        unknown = set(body) - set(SCHEDULE_FIELDS)
        if unknown:
            raise ApiError(api.CODE_BAD_VALUE, f"unknown fields: {sorted(unknown)}")
        if not body:
            raise ApiError(api.CODE_MISSING_FIELD, "nothing to update")
        name = check_name(body["name"]) if "name" in body else schedule.name
        enabled = body.get("enabled", schedule.enabled)
        if not isinstance(enabled, bool):
            raise ApiError(api.CODE_SCHEDULE_REFUSED, "enabled must be true or false")
        expires_at = schedule.expires_at
        if "trigger" in body:
            if trigger_kind(body["trigger"]) != trigger_kind(schedule.trigger):
                raise ApiError(api.CODE_SCHEDULE_REFUSED, "the trigger kind cannot be changed")
            expires_at = check_trigger(body["trigger"], now)
        if "push" in body:
            check_push(body["push"], self.plans.__contains__)
        # Validated in full before any change, so a refused update changes nothing.
        schedule.name, schedule.enabled, schedule.expires_at = name, enabled, expires_at
        if "trigger" in body:
            schedule.trigger = copy.deepcopy(body["trigger"])
        if "push" in body:
            schedule.push = copy.deepcopy(body["push"])
        return schedule.as_api()

    def delete_schedule(self, schedule_id: str, now: datetime) -> None:
        self._live(schedule_id, now)
        del self.schedules[schedule_id]

    def list_schedules(self, page: int, now: datetime) -> dict[str, Any]:
        if page < 1:
            raise ApiError(api.CODE_BAD_VALUE, "page must be >= 1")
        live = self.live_schedules(now)
        size = api.SCHEDULE_PAGE_SIZE
        return {
            "total_count": len(live),
            "total_pages": math.ceil(len(live) / size),
            "page": page,
            "schedules": [s.as_api() for s in live[(page - 1) * size : page * size]],
        }

    def names(self, now: datetime, *, include_expired: bool = False) -> dict[str, int]:
        found = self.schedules.values()
        return dict(Counter(s.name for s in found if include_expired or s.live(now)))

    def edit(self, schedule_id: str, patch: Mapping[str, Any], now: datetime) -> None:
        """A console edit: no API rules apply (drift tests need states the API would refuse)."""
        schedule = self.schedules.get(schedule_id)
        if schedule is None:
            raise KeyError(schedule_id)
        for key, value in patch.items():
            if key not in SCHEDULE_FIELDS:
                raise KeyError(key)
            setattr(schedule, key, copy.deepcopy(value))
        if "trigger" in patch:
            try:
                schedule.expires_at = check_trigger(schedule.trigger, now)
            except ApiError:
                schedule.expires_at = now
