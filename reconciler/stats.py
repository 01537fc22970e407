"""Plan statistics: request windows and plan-id batches, merging answers, funnels and rates. Pure.

EngageLab answers at most STATS_MAX_SPAN_DAYS days and STATS_MAX_PLAN_IDS plans per call, so a
long range is split into windows and the ids into batches; the answers are merged by summing
every numeric leaf (daily figures add up). Field names wobble (`target`/`targets`,
`click`/`clicks`): both are read as the plural.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler import engagelab as api

ALIASES: Mapping[str, str] = {"target": "targets", "click": "clicks"}  # [doc/sdk] both spellings
PLATFORM_GROUPS: Mapping[str, str] = {
    "sub_android": "android",
    "sub_ios": "ios",
    "sub_hmos": "hmos",
}
SPLITS = ("total", "type", "platform", "channel")  # row order within one plan


def windows(
    start: date, end: date, max_days: int = api.STATS_MAX_SPAN_DAYS
) -> list[tuple[date, date]]:
    """[start, end] (both included) cut into consecutive windows of at most `max_days` days."""
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    out: list[tuple[date, date]] = []
    first = start
    while first <= end:
        last = min(end, first + timedelta(days=max_days - 1))
        out.append((first, last))
        first = last + timedelta(days=1)
    return out


def batches(ids: Sequence[str], size: int = api.STATS_MAX_PLAN_IDS) -> list[tuple[str, ...]]:
    """The ids, each once and in order, in groups of at most `size`."""
    unique = list(dict.fromkeys(ids))
    return [tuple(unique[i : i + size]) for i in range(0, len(unique), size)]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def normalize(value: Any) -> Any:
    """Plural field names throughout; non-numeric leaves are dropped (they do not add up)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            inner = normalize(item)
            if inner is not None:
                name = ALIASES.get(str(key), str(key))
                out[name] = merge(out[name], inner) if name in out else inner
        return out
    return value if _number(value) else None


def merge(left: Any, right: Any) -> Any:
    """Sum of two normalized answers, leaf by leaf; a leaf on one side only is kept."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return {k: merge(left.get(k), right.get(k)) for k in sorted(set(left) | set(right))}
    if _number(left) and _number(right):
        return left + right
    return left if left is not None else right


def merge_answers(answers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """plan_id -> the sum of its entries over every answer (windows and batches)."""
    total: dict[str, Any] = {}
    for answer in answers:
        for plan_id, entry in answer.items():
            if isinstance(entry, Mapping):
                part = normalize(entry)
                total[plan_id] = merge(total[plan_id], part) if plan_id in total else part
    return total


def rate(part: int, whole: int) -> float | None:
    """part / whole, or None when `whole` is 0 (no rate to speak of)."""
    return part / whole if whole else None


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


class Funnel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: int = 0
    sent: int = 0
    delivered: int = 0
    impressions: int = 0
    clicks: int = 0

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Funnel:
        return cls(**{k: int(entry.get(k, 0)) for k in api.STATS_FUNNEL})

    def plus(self, other: Funnel) -> Funnel:
        return Funnel(**{k: getattr(self, k) + getattr(other, k) for k in api.STATS_FUNNEL})

    @property
    def delivery_rate(self) -> float | None:
        return rate(self.delivered, self.sent)

    @property
    def click_rate(self) -> float | None:
        """Clicks per delivered message."""
        return rate(self.clicks, self.delivered)

    @property
    def impression_click_rate(self) -> float | None:
        return rate(self.clicks, self.impressions)

    @property
    def empty(self) -> bool:
        return not any(getattr(self, k) for k in api.STATS_FUNNEL)


class Row(BaseModel):
    """One line of a statistics table: a plan's total, or one split of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plan_id: str
    split: str  # one of SPLITS
    key: str  # "all", a message type, a platform, or "<platform>/<channel>"
    funnel: Funnel


class PlanStats(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    plan_id: str
    total: Funnel
    by_type: dict[str, Funnel]
    by_platform: dict[str, Funnel]
    by_channel: dict[str, Funnel]  # "<platform>/<channel>"

    @classmethod
    def of(cls, plan_id: str, entry: Mapping[str, Any]) -> PlanStats:
        sub = entry.get("sub") or {}
        by_type = {t: Funnel.of(sub.get(t) or {}) for t in api.STATS_MESSAGE_TYPES}
        by_platform: dict[str, Funnel] = {}
        by_channel: dict[str, Funnel] = {}
        for group, platform in PLATFORM_GROUPS.items():
            channels = entry.get(group) or {}
            names = [
                *api.STATS_CHANNELS[group],
                *sorted(set(channels) - set(api.STATS_CHANNELS[group])),
            ]
            total = Funnel()
            for channel in names:
                funnel = Funnel.of(channels.get(channel) or {})
                by_channel[f"{platform}/{channel}"] = funnel
                total = total.plus(funnel)
            by_platform[platform] = total
        return cls(
            plan_id=plan_id,
            total=Funnel.of(entry),
            by_type=by_type,
            by_platform=by_platform,
            by_channel=by_channel,
        )

    def rows(self) -> list[Row]:
        out = [Row(plan_id=self.plan_id, split="total", key="all", funnel=self.total)]
        for split, part in (
            ("type", self.by_type),
            ("platform", self.by_platform),
            ("channel", self.by_channel),
        ):
            out += [
                Row(plan_id=self.plan_id, split=split, key=k, funnel=f) for k, f in part.items()
            ]
        return out


class StatsReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start: date
    end: date
    plans: tuple[PlanStats, ...]
    missing: tuple[str, ...] = ()  # asked for, but EngageLab returned nothing for them
    calls: int = 0

    def rows(self) -> list[Row]:
        return [row for plan in self.plans for row in plan.rows()]


def build_report(
    plan_ids: Sequence[str], start: date, end: date, merged: Mapping[str, Any], *, calls: int = 0
) -> StatsReport:
    """The report for `plan_ids` (in the order asked) from merged answers."""
    ids = list(dict.fromkeys(plan_ids))
    return StatsReport(
        start=start,
        end=end,
        plans=tuple(PlanStats.of(p, merged[p]) for p in ids if p in merged),
        missing=tuple(p for p in ids if p not in merged),
        calls=calls,
    )


def default_range(today: date, days: int = 7) -> tuple[date, date]:
    """The last `days` full days: ending yesterday."""
    end = today - timedelta(days=1)
    return end - timedelta(days=days - 1), end
