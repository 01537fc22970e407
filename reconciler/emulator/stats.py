"""Deterministic synthetic plan statistics for GET /v4/status/plan/detail. Pure.

Each (plan_id, day) gets figures from a SHA-256 seed (never `hash()`, which PYTHONHASHSEED varies),
per leaf = (message type, platform group, vendor channel). Totals and every split are sums of
leaves, so splits add up, each funnel is monotone, and a range is exactly the sum of its days.

The answer shape is the documented one (SHAPE below): the vendor split sits *inside* each message
type, never at the top of a plan entry.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from reconciler import engagelab as api
from reconciler.emulator.validate import ApiError

Funnel = tuple[int, int, int, int, int]
Leaf = tuple[str, str, str]  # (message type, platform group, channel)

_TYPE_WEIGHT = {
    "notification": 0.80,
    "message": 0.08,
    "live_activity": 0.03,
    "voip": 0.02,
    "inapp_message": 0.07,
}
_GROUP_WEIGHT = {"sub_android": 0.6, "sub_ios": 0.3, "sub_hmos": 0.1}
_OWN_CHANNELS = ("engageLab_android", "engageLab_ios", "engageLab_hmos")
# Stage ratios (low, high): sent/targets, delivered/sent, impressions/delivered, clicks/impressions.
_RATIOS = ((0.90, 1.0), (0.70, 0.98), (0.30, 0.90), (0.01, 0.20))


def _carries(kind: str, group: str, channel: str) -> bool:
    """[ours] live activities and VoIP are iOS-only; in-app and custom messages skip vendors."""
    if kind in ("live_activity", "voip"):
        return group == "sub_ios"
    if kind in ("message", "inapp_message"):
        return channel in _OWN_CHANNELS
    return True


LEAVES: tuple[Leaf, ...] = tuple(
    (kind, group, channel)
    for kind in api.STATS_MESSAGE_TYPES
    for group, channels in api.STATS_CHANNELS.items()
    for channel in channels
    if _carries(kind, group, channel)
)


@lru_cache(maxsize=65536)
def day_leaves(plan_id: str, day: date) -> tuple[Funnel, ...]:
    """One funnel per leaf of LEAVES for one plan on one day."""
    seed = hashlib.sha256(f"{plan_id}|{day.isoformat()}".encode()).digest()
    rng = random.Random(int.from_bytes(seed[:8], "big"))
    scale = rng.randint(0, 20_000)
    out = []
    for kind, group, _channel in LEAVES:
        weight = _TYPE_WEIGHT[kind] * _GROUP_WEIGHT[group] / len(api.STATS_CHANNELS[group])
        stage = int(scale * weight * rng.uniform(0.5, 1.5))
        funnel = [stage]
        for low, high in _RATIOS:
            stage = int(stage * rng.uniform(low, high))
            funnel.append(stage)
        out.append((funnel[0], funnel[1], funnel[2], funnel[3], funnel[4]))
    return tuple(out)


# The documented answer (https://www.engagelab.com/docs/app-push/rest-api/statistics-api, message
# statistics example; the Go SDK `model_status.go` MessageStatusGetResult/MessageStatusDetail/
# MessageStatusChannel and the Java SDK 0.0.20 `bean/status/MessageStatusGetResult.java` decode it):
#   entry:            targets, sent, delivered, impressions, clicks, sub
#   entry.sub.<type>: target, sent, delivered, impressions, click (singular), sub_android, sub_ios,
#                     sub_hmos
#   <group>.<vendor>: targets, sent, delivered, impressions, clicks (plural again)
# [sdk] Go SDK CHANGELOG 0.1.1: plan detail entries add "Plan ID, push content, Live Activity, VoIP,
# in-app message, HMOS subtotal and HMOS channels", so an entry also carries `plan_id` and
# `pushContent`, `sub` has all five message types and each type a `sub_hmos`.
# [ours] the type of `pushContent` is unpublished: the emulator sends a string (empty).
# [ours] every type lists every group and vendor of STATS_CHANNELS, zero where it cannot travel.
ENTRY_FUNNEL = api.STATS_FUNNEL  # targets, sent, delivered, impressions, clicks
TYPE_FUNNEL = ("target", "sent", "delivered", "impressions", "click")
CHANNEL_FUNNEL = api.STATS_FUNNEL
PUSH_CONTENT_DEFAULT = ""


def _as_dict(funnel: list[int], names: tuple[str, ...] = ENTRY_FUNNEL) -> dict[str, int]:
    return dict(zip(names, funnel, strict=True))


def plan_figures(plan_id: str, start: date, end: date) -> dict[str, Any]:
    """The answer entry for one plan over [start, end], both days included."""
    total = [0] * 5
    by_type = {kind: [0] * 5 for kind in api.STATS_MESSAGE_TYPES}
    by_leaf = {
        (kind, g, c): [0] * 5
        for kind in api.STATS_MESSAGE_TYPES
        for g, chans in api.STATS_CHANNELS.items()
        for c in chans
    }
    day = start
    while day <= end:
        for leaf, funnel in zip(LEAVES, day_leaves(plan_id, day), strict=True):
            for i, value in enumerate(funnel):
                total[i] += value
                by_type[leaf[0]][i] += value
                by_leaf[leaf][i] += value
        day += timedelta(days=1)
    entry: dict[str, Any] = {"plan_id": plan_id, **_as_dict(total)}
    entry["pushContent"] = PUSH_CONTENT_DEFAULT
    sub: dict[str, Any] = {}
    for kind, counts in by_type.items():
        part: dict[str, Any] = _as_dict(counts, TYPE_FUNNEL)
        for group, channels in api.STATS_CHANNELS.items():
            part[group] = {c: _as_dict(by_leaf[(kind, group, c)], CHANNEL_FUNNEL) for c in channels}
        sub[kind] = part
    entry["sub"] = sub
    return entry


def _day(text: str | None, key: str) -> date:
    if not text:
        raise ApiError(api.CODE_MISSING_FIELD, f"{key} is required")
    try:
        parsed = datetime.strptime(text, api.STATS_DATE_FORMAT).date()
    except ValueError:
        raise ApiError(api.CODE_BAD_VALUE, f"{key} must be YYYY-MM-DD") from None
    if parsed.isoformat() != text:
        raise ApiError(api.CODE_BAD_VALUE, f"{key} must be YYYY-MM-DD")
    return parsed


def plan_detail(query: Mapping[str, str], known: Collection[str]) -> dict[str, Any]:
    """Answer of GET /v4/status/plan/detail; plans that do not exist are left out."""
    raw_ids = query.get("plan_ids", "")
    if not raw_ids:
        raise ApiError(api.CODE_MISSING_FIELD, "plan_ids is required")
    plan_ids = list(dict.fromkeys(p for p in raw_ids.split(",") if p))
    if len(plan_ids) > api.STATS_MAX_PLAN_IDS:
        raise ApiError(api.CODE_BAD_VALUE, f"at most {api.STATS_MAX_PLAN_IDS} plan_ids")
    start = _day(query.get("start_date"), "start_date")
    end = _day(query.get("end_date"), "end_date")
    if end < start:
        raise ApiError(api.CODE_BAD_VALUE, "end_date is before start_date")
    if (end - start).days + 1 > api.STATS_MAX_SPAN_DAYS:
        raise ApiError(api.CODE_BAD_VALUE, f"at most {api.STATS_MAX_SPAN_DAYS} days per request")
    return {p: plan_figures(p, start, end) for p in plan_ids if p in known}
