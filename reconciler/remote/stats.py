"""Plan statistics: request windows and plan-id batches, merging answers, funnels and rates. Pure.

EngageLab answers at most STATS_MAX_SPAN_DAYS days and STATS_MAX_PLAN_IDS plans per call, so a
long range is split into windows and the ids into batches; the answers are merged by summing
every numeric leaf (daily figures add up). Field names wobble (`target`/`targets`,
`click`/`clicks`): both are read as the plural.

Where the splits sit (docs.engagelab.com, AppPush statistics API, "plan detail"; Java SDK
`MessageStatusGetResult` 0.0.22 `Sub.Message.sub_android`; Go SDK `model_status.go`): each plan
entry holds `sub.<message type>`, and the vendor split sits INSIDE each message type:
`sub.notification.sub_android.{engageLab_android, xiaomi, ...}`, then `sub_ios`, `sub_hmos`.
The platform split is the sum of its channels over the message types. An answer with the groups
at the top of the entry (what this project's emulator served before 2026-12) is still read. A
figure that fits no row (an unknown counter, a number where a split should be) is listed in
`PlanStats.unplaced`, and a split the answer does not carry is listed in `absent`: never a 0.
"""

from __future__ import annotations

import math
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
# Entries also say what they are about (Java SDK MessageStatusGetResult 0.0.22: `plan_id`, and
# `pushContent`, a map of the push's content): not figures, so never "unplaced".
NOT_FIGURES = frozenset({"plan_id", "pushContent"})
NOT_A_NUMBER = "not a finite number"  # what normalize keeps of NaN or Infinity, to report it


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
    """Plural field names throughout; whole numbers given as strings are numbers; other
    non-numeric leaves are dropped (they do not add up), but a figure that is not a finite
    number stays as NOT_A_NUMBER, to be reported. Where an answer gives both spellings (`target`
    and `targets`), the plural is taken; a singular that disagrees stays as it is, to be listed
    as a figure that fits no row."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            inner = normalize(item)
            if (
                inner is None
                and item is not None
                and ALIASES.get(str(key), key) in api.STATS_FUNNEL
            ):
                inner = NOT_A_NUMBER  # a counter that is no number: reported, never a 0
            if inner is not None:
                name = ALIASES.get(str(key), str(key))
                if name != key and name in value:
                    if normalize(value[name]) == inner:
                        continue  # the same figure twice
                    name = str(key)
                out[name] = merge(out[name], inner) if name in out else inner
        return out
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if _number(value) and not math.isfinite(value):
        return NOT_A_NUMBER
    return value if _number(value) else None


def merge(left: Any, right: Any) -> Any:
    """Sum of two normalized answers, leaf by leaf; a leaf on one side only is kept."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return {k: merge(left.get(k), right.get(k)) for k in sorted(set(left) | set(right))}
    if _number(left) and _number(right):
        return left + right
    if NOT_A_NUMBER in (left, right):
        return NOT_A_NUMBER
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
        """The counters of `entry` that are numbers (anything else is reported by the caller)."""
        return cls(**{k: int(v) if _number(v := entry.get(k, 0)) else 0 for k in api.STATS_FUNNEL})

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
    unplaced: tuple[str, ...] = ()  # "path = value" of each figure that fits no row
    absent: tuple[str, ...] = ()  # splits ("type", "platform", "channel") the answer lacks

    @classmethod
    def of(cls, plan_id: str, entry: Mapping[str, Any]) -> PlanStats:
        unplaced: list[str] = []
        sub = entry.get("sub")
        types = sub if isinstance(sub, Mapping) else {}
        if sub is not None and not isinstance(sub, Mapping):
            unplaced.append(f"sub = {sub!r}")
        names = [*api.STATS_MESSAGE_TYPES, *sorted(set(types) - set(api.STATS_MESSAGE_TYPES))]
        by_type: dict[str, Funnel] = {}
        channels: dict[str, Funnel] = {}
        for kind in names:
            part = types.get(kind)
            if part is not None and not isinstance(part, Mapping):
                unplaced.append(f"sub.{kind} = {part!r}")
                continue
            by_type[kind] = _funnel(part or {}, f"sub.{kind}", unplaced)
            _channels(part or {}, f"sub.{kind}.", channels, unplaced)
        if not channels:  # the groups at the top of the entry (older shape); never both
            _channels(entry, "", channels, unplaced)
        by_platform, by_channel = _platforms(channels)
        total = _funnel(entry, "", unplaced, skip=("sub",))
        if types:  # a counter the top level leaves out is the sum of the types'
            summed = _sum(by_type.values())
            total = Funnel(
                **{
                    k: getattr(total, k) if _number(entry.get(k)) else getattr(summed, k)
                    for k in api.STATS_FUNNEL
                }
            )
        absent = (["type"] if not types else []) + ([] if channels else ["platform", "channel"])
        return cls(
            plan_id=plan_id,
            total=total,
            by_type=by_type if types else {},
            by_platform=by_platform,
            by_channel=by_channel,
            unplaced=tuple(unplaced),
            absent=tuple(absent),
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


def _has_number(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_number(v) for v in value.values())
    return _number(value)


def _sum(funnels: Iterable[Funnel]) -> Funnel:
    total = Funnel()
    for funnel in funnels:
        total = total.plus(funnel)
    return total


def _funnel(
    part: Mapping[str, Any], path: str, unplaced: list[str], skip: Sequence[str] = ()
) -> Funnel:
    """The funnel counters of `part`; any other number there is noted in `unplaced`."""
    for key, value in part.items():
        if key in api.STATS_FUNNEL and not _number(value):
            unplaced.append(f"{path + '.' if path else ''}{key} = {value!r}")
            continue
        if key in api.STATS_FUNNEL or key in skip or key in PLATFORM_GROUPS or key in NOT_FIGURES:
            continue
        if _number(value) or (isinstance(value, Mapping) and _has_number(value)):
            unplaced.append(f"{path + '.' if path else ''}{key} = {value!r}")
    return Funnel.of(part)


def _channels(
    part: Mapping[str, Any],
    prefix: str,
    into: dict[str, Funnel],
    unplaced: list[str],
) -> None:
    """Add the vendor channels of `part` (its sub_android/sub_ios/sub_hmos) into `into`."""
    for group in PLATFORM_GROUPS:
        found = part.get(group)
        if found is None:
            continue
        if not isinstance(found, Mapping):
            unplaced.append(f"{prefix}{group} = {found!r}")
            continue
        for channel, figures in found.items():
            key = f"{group}/{channel}"
            if not isinstance(figures, Mapping):
                unplaced.append(f"{prefix}{group}.{channel} = {figures!r}")
                continue
            funnel = _funnel(figures, f"{prefix}{group}.{channel}", unplaced)
            into[key] = into[key].plus(funnel) if key in into else funnel


def _platforms(channels: Mapping[str, Funnel]) -> tuple[dict[str, Funnel], dict[str, Funnel]]:
    """Per platform (every known one, 0 if absent) and per "<platform>/<channel>", in order."""
    if not channels:
        return {}, {}
    by_platform: dict[str, Funnel] = {}
    by_channel: dict[str, Funnel] = {}
    for group, platform in PLATFORM_GROUPS.items():
        known = api.STATS_CHANNELS[group]
        extra = sorted(k.split("/", 1)[1] for k in channels if k.startswith(group + "/"))
        names = [*known, *(c for c in extra if c not in known)]
        for channel in names:
            by_channel[f"{platform}/{channel}"] = channels.get(f"{group}/{channel}", Funnel())
        by_platform[platform] = _sum(by_channel[f"{platform}/{c}"] for c in names)
    return by_platform, by_channel


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
