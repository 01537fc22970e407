"""The documented validation rules for plans, schedules and push bodies, enforced by the emulator.

Pure: the clock and the plan lookup are passed in. A refusal raises ApiError with the API's code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from reconciler import engagelab as api
from reconciler.timing import fire_window, parse_api_time, parse_clock

SITE_ZONE = ZoneInfo("UTC")  # [ours] the emulator's console time zone


class ApiError(Exception):
    """A refusal the API answers with `status` and an error `code`."""

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _refuse(message: str) -> ApiError:
    return ApiError(api.CODE_SCHEDULE_REFUSED, message)


def _require(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj or obj[key] is None:
        raise ApiError(api.CODE_MISSING_FIELD, f"{where}{key} is required")
    return obj[key]


def _object(value: Any, where: str, code: int = api.CODE_BAD_VALUE) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(code, f"{where} must be a JSON object")
    return value


# --- plans ----------------------------------------------------------------------------------
def check_plan(body: Mapping[str, Any]) -> tuple[str, str]:
    """(plan_id, description) of a valid POST /v4/push_plan body."""
    plan_id = body.get("plan_id")
    if plan_id is None or plan_id == "":
        raise ApiError(api.CODE_EMPTY_PLAN_ID, "Empty plan id")  # [doc] push-plan-api page
    if not isinstance(plan_id, str) or not api.PLAN_ID_RE.match(plan_id):
        raise ApiError(
            api.CODE_BAD_VALUE,
            "plan_id: letters, digits and _, not starting with _, at most 50 characters",
        )
    description = body.get("plan_description", "")
    if not isinstance(description, str) or len(description) > api.PLAN_DESCRIPTION_MAX:
        raise ApiError(api.CODE_BAD_VALUE, "plan_description: a string of at most 200 characters")
    return plan_id, description


# --- schedules ------------------------------------------------------------------------------
def check_name(name: Any) -> str:
    if name is None:
        raise ApiError(api.CODE_MISSING_FIELD, "name is required")
    if not isinstance(name, str) or not api.SCHEDULE_NAME_RE.match(name):
        raise _refuse("name: letters, digits, _ and CJK characters only")
    if len(name.encode("utf-8")) > api.SCHEDULE_NAME_MAX_BYTES:
        raise _refuse("name is longer than 255 bytes")
    return name


def trigger_kind(trigger: Any) -> str:
    if not isinstance(trigger, dict):
        raise _refuse("trigger must be a JSON object")
    kinds: list[str] = [k for k in trigger if k in api.SCHEDULE_TRIGGER_KINDS]
    if len(kinds) != 1 or len(trigger) != 1:
        raise _refuse("trigger must hold exactly one of single, periodical, intelligent")
    return kinds[0]


def check_trigger(trigger: Any, now: datetime) -> datetime:
    """Validate a trigger at `now`; return the instant it is over (when the schedule expires)."""
    kind = trigger_kind(trigger)
    inner = _object(trigger[kind], f"trigger.{kind}", api.CODE_SCHEDULE_REFUSED)
    where = f"trigger.{kind}."
    if kind == "periodical":
        _check_periodical(inner, now)
    else:
        key = "backup_time" if kind == "intelligent" else "time"
        text = _require(inner, key, where)
        if kind == "intelligent" and text == "now":
            return now  # fires at creation, so it is over at once
        _check_wall(_parse(text, where + key), now, where + key)
    if kind != "intelligent":
        _check_zone(inner, where)
    window = fire_window(folded_trigger(trigger), SITE_ZONE, now=now)
    if window.last is None or window.last <= now:
        raise _refuse(f"{where[:-1]} has no occurrence left in the future")
    return window.last


# [v3] JPush v3 Schedule API: time_unit is "case insensitive, such as day, Day, DAy"; the values in
# point are case-insensitive too ("WED,FRI 大小写不敏感") (docs.jiguang.cn/en/jpush/server/push/
# rest_api_push_schedule). [sdk] the SDKs send "WEEK"/"MONTH": Python `engagelab/schedule.py`
# (TriggerPeriodical.time_unit comment "day", "WEEK", "MONTH"), Java `enums/TimeUnit.java`.
# The stored task keeps what was sent (the answer echoes it); only the checks and the firing
# window read the folded form.
def folded_trigger(trigger: Mapping[str, Any]) -> dict[str, Any]:
    """`trigger` with periodical time_unit lower-case and point upper-case (a copy)."""
    folded = dict(trigger)
    per = trigger.get("periodical")
    if isinstance(per, dict):
        per = dict(per)
        if isinstance(per.get("time_unit"), str):
            per["time_unit"] = per["time_unit"].lower()
        if isinstance(per.get("point"), list):
            per["point"] = [p.upper() if isinstance(p, str) else p for p in per["point"]]
        folded["periodical"] = per
    return folded


def _parse(text: Any, where: str) -> datetime:
    try:
        return parse_api_time(text) if isinstance(text, str) else parse_api_time("")
    except ValueError:
        raise _refuse(f"{where} must be yyyy-MM-dd HH:mm:ss") from None


def _check_wall(wall: datetime, now: datetime, where: str) -> None:
    # [ours] wall times are compared with the clock in the site zone, as the console does.
    at = wall.replace(tzinfo=SITE_ZONE)
    if at < now + api.MIN_LEAD:
        raise _refuse(f"{where} is less than 3 minutes ahead")
    if at > now + api.HORIZON:
        raise _refuse(f"{where} is more than one year ahead")


def _check_zone(inner: Mapping[str, Any], where: str) -> None:
    zone = inner.get("zone_type", api.ZONE_SITE)
    if zone not in (api.ZONE_SITE, api.ZONE_DEVICE) or isinstance(zone, bool):
        raise _refuse(f"{where}zone_type must be 1 or 2")


def _check_periodical(per: Mapping[str, Any], now: datetime) -> None:
    where = "trigger.periodical."
    start = _parse(_require(per, "start", where), where + "start")
    end = _parse(_require(per, "end", where), where + "end")
    clock = _require(per, "time", where)
    unit = _require(per, "time_unit", where)
    unit = unit.lower() if isinstance(unit, str) else unit  # [v3] case-insensitive
    try:
        parse_clock(clock if isinstance(clock, str) else "")
    except ValueError:
        raise _refuse(f"{where}time must be HH:mm:ss") from None
    if end <= start or end - start > api.PERIODICAL_MAX_SPAN:
        raise _refuse(f"{where}end must follow start by at most one year")
    if start.replace(tzinfo=SITE_ZONE) > now + api.HORIZON:
        raise _refuse(f"{where}start is more than one year ahead")
    if unit not in api.PERIODICAL_UNITS:
        raise _refuse(f"{where}time_unit must be day, week or month")
    freq = per.get("frequency", 1)
    if not isinstance(freq, int) or isinstance(freq, bool):
        raise _refuse(f"{where}frequency must be an integer")
    if not 1 <= freq <= api.PERIODICAL_FREQUENCY_MAX:
        raise _refuse(f"{where}frequency must be between 1 and 100")
    _check_points(per.get("point"), unit, where)


def _check_points(points: Any, unit: str, where: str) -> None:
    if unit == "day":
        if points:
            raise _refuse(f"{where}point is not allowed with time_unit day")
        return
    allowed = api.WEEK_POINTS if unit == "week" else api.MONTH_POINTS
    if not isinstance(points, list) or not points:
        raise _refuse(f"{where}point is required with time_unit {unit}")
    if any(not isinstance(p, str) for p in points):
        raise _refuse(f"{where}point must list strings")
    points = [p.upper() for p in points]  # [v3] case-insensitive ("Mon" is "MON")
    if any(p not in allowed for p in points) or len(set(points)) != len(points):
        raise _refuse(f"{where}point must list distinct values of {allowed[0]}..{allowed[-1]}")


# --- push body ------------------------------------------------------------------------------
def check_push(push: Any, plan_exists: Callable[[str], bool]) -> None:
    push = _object(push, "push")
    # The audience first: 1001 aliases are over 4000 bytes, and the count is the clearer error.
    check_audience(_require(push, "to", "push."))
    if api.body_size(push) > api.BODY_MAX_BYTES:
        raise ApiError(api.CODE_BODY_TOO_LARGE, "push body is larger than 4000 bytes")
    body = _object(_require(push, "body", "push."), "push.body")
    _check_platform(_require(body, "platform", "push.body."))
    if "notification" in body and "message" in body:
        _check_together(body["message"])
    if "notification" not in body and "message" not in body:
        raise ApiError(api.CODE_MISSING_FIELD, "push.body needs notification or message")
    _object(body.get("notification", body.get("message")), "push.body content")
    if "options" in body:
        check_options(
            _object(body["options"], "push.body.options", api.CODE_BAD_OPTION), plan_exists
        )


def _check_together(message: Any) -> None:
    """`notification` and `message` in one push. [doc] the skill: they "cannot coexist (except
    notification+message in some cases — see doc)" (engagelab-apppush/SKILL.md); the zh_CN
    create-push page's example carries both; JPush v3 can push a notification and a custom
    message at once. [ours] which cases is unpublished: together they are accepted when the
    message is a real custom message (an object with msg_content); else 21306, whose HTTP status
    is 401 per the skill's error table (routes.STATUS_BY_CODE)."""
    if not (isinstance(message, dict) and message.get("msg_content")):
        raise ApiError(
            api.CODE_NOTIFICATION_AND_MESSAGE,
            "notification and message together need message.msg_content",
        )


def check_audience(to: Any) -> None:
    if to == "all":
        return
    if not isinstance(to, dict) or not to or set(to) - set(api.AUDIENCE_KINDS):
        raise ApiError(api.CODE_BAD_VALUE, f"to: 'all' or an object of {api.AUDIENCE_KINDS}")
    for kind in api.TAG_KINDS:
        if kind in to:
            _check_list(to[kind], f"to.{kind}", api.TAGS_MAX, api.TAG_MAX_BYTES)
    for kind, most in (("alias", api.ALIAS_MAX), ("registration_id", api.REGISTRATION_ID_MAX)):
        if kind in to:
            _check_list(to[kind], f"to.{kind}", most, None)
    if "seg" in to:
        seg = to["seg"]
        if not isinstance(seg, dict) or not isinstance(seg.get("id"), str) or not seg["id"]:
            raise ApiError(api.CODE_BAD_VALUE, 'to.seg must be {"id": "..."}')
    if "live_activity_id" in to and not (
        isinstance(to["live_activity_id"], str) and to["live_activity_id"]
    ):
        raise ApiError(api.CODE_BAD_VALUE, "to.live_activity_id must be a non-empty string")


def _check_list(values: Any, where: str, most: int, max_bytes: int | None) -> None:
    if not isinstance(values, list) or not values or len(values) > most:
        raise ApiError(api.CODE_BAD_VALUE, f"{where}: a list of 1 to {most} values")
    for value in values:
        if not isinstance(value, str) or not value:
            raise ApiError(api.CODE_BAD_VALUE, f"{where}: values must be non-empty strings")
        if max_bytes is not None and len(value.encode("utf-8")) > max_bytes:
            raise ApiError(api.CODE_BAD_VALUE, f"{where}: a value is over {max_bytes} bytes")


def _check_platform(platform: Any) -> None:
    # [doc/sdk] one platform may be given as a plain string: EngageLab's Smart Push best-practice
    # example (`"platform": "android"`), the skill's Create Push table ("string or array":
    # DevEngageLab/engagelab-skills engagelab-apppush/SKILL.md). "all" is itself a string.
    if platform == "all" or platform in api.PLATFORMS:
        return
    if (
        not isinstance(platform, list)
        or not platform
        or any(p not in api.PLATFORMS for p in platform)
        or len(set(platform)) != len(platform)
    ):
        raise ApiError(
            api.CODE_BAD_VALUE,
            "push.body.platform: 'all', one of android/ios/hmos, or a list of them",
        )


def check_options(options: Mapping[str, Any], plan_exists: Callable[[str], bool]) -> None:
    def bad(message: str) -> ApiError:
        return ApiError(api.CODE_BAD_OPTION, f"push.body.options.{message}")

    for key, most in (
        ("time_to_live", api.TIME_TO_LIVE_MAX),
        ("big_push_duration", api.BIG_PUSH_DURATION_MAX),
    ):
        if key in options:
            value = options[key]
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= most:
                raise bad(f"{key} must be an integer from 0 to {most}")
    if "plan_id" in options:
        plan_id = options["plan_id"]
        if not isinstance(plan_id, str) or not plan_exists(plan_id):
            raise bad("plan_id does not name an existing push plan; create the plan first")
    if "cid" in options and not (
        isinstance(options["cid"], str) and 0 < len(options["cid"]) <= api.CID_MAX
    ):
        raise bad("cid must be a string of 1 to 64 characters")
    if "apns_production" in options and not isinstance(options["apns_production"], bool):
        raise bad("apns_production must be true or false")
    for key in ("multi_language", "third_party_channel"):
        if key in options and not isinstance(options[key], dict):
            raise bad(f"{key} must be a JSON object")
