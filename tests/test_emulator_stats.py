"""Synthetic plan statistics: deterministic, additive over days, monotone, splits that add up."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from typing import Any

import pytest

from reconciler import engagelab as api
from reconciler.emulator.stats import CHANNEL_FUNNEL, TYPE_FUNNEL, plan_figures
from tests.support.emulator import EmulatorHandle


def _stats(emulator: EmulatorHandle, ids: str, start: str, end: str) -> Any:
    path = f"/v4/status/plan/detail?plan_ids={ids}&start_date={start}&end_date={end}"
    return emulator.request("GET", path)


def _funnel(entry: dict[str, Any], names: tuple[str, ...] = api.STATS_FUNNEL) -> list[int]:
    return [entry[k] for k in names]


def _type(part: dict[str, Any]) -> list[int]:
    return _funnel(part, TYPE_FUNNEL)


def _channels(part: dict[str, Any]) -> list[dict[str, Any]]:
    return [part[g][c] for g, chans in api.STATS_CHANNELS.items() for c in chans]


def test_range_equals_the_sum_of_its_windows() -> None:
    whole = plan_figures("promo", date(2025, 12, 1), date(2025, 12, 31))
    parts = [
        plan_figures("promo", date(2025, 12, 1), date(2025, 12, 10)),
        plan_figures("promo", date(2025, 12, 11), date(2025, 12, 31)),
    ]
    assert _funnel(whole) == [sum(x) for x in zip(*(_funnel(p) for p in parts), strict=True)]
    for kind in api.STATS_MESSAGE_TYPES:
        summed = [sum(x) for x in zip(*(_type(p["sub"][kind]) for p in parts), strict=True)]
        assert _type(whole["sub"][kind]) == summed
        for i, leaf in enumerate(_channels(whole["sub"][kind])):
            each = [_funnel(_channels(p["sub"][kind])[i], CHANNEL_FUNNEL) for p in parts]
            assert _funnel(leaf, CHANNEL_FUNNEL) == [sum(x) for x in zip(*each, strict=True)]


def test_funnel_is_monotone_and_splits_add_up() -> None:
    entry = plan_figures("promo", date(2025, 11, 1), date(2025, 11, 30))
    assert entry["targets"] > 0
    types = list(entry["sub"].values())
    leaves = [leaf for part in types for leaf in _channels(part)]
    funnels = [_funnel(entry), *map(_type, types), *(_funnel(f, CHANNEL_FUNNEL) for f in leaves)]
    for values in funnels:
        assert values == sorted(values, reverse=True)
    by_type = [sum(_type(part)[i] for part in types) for i in range(5)]
    by_channel = [sum(_funnel(f, CHANNEL_FUNNEL)[i] for f in leaves) for i in range(5)]
    assert by_type == by_channel == _funnel(entry)
    for part in types:  # each type's vendor split adds up to that type
        inner = [sum(_funnel(f, CHANNEL_FUNNEL)[i] for f in _channels(part)) for i in range(5)]
        assert inner == _type(part)


def test_entry_has_the_documented_shape() -> None:
    """The vendor split sits inside each message type; counts are singular there only
    (statistics-api doc example, Go SDK model_status.go, Go CHANGELOG 0.1.1)."""
    entry = plan_figures("promo", date(2025, 11, 1), date(2025, 11, 30))
    assert set(entry) == {"plan_id", "pushContent", *api.STATS_FUNNEL, "sub"}
    assert entry["plan_id"] == "promo"
    assert isinstance(entry["pushContent"], str)
    assert set(entry["sub"]) == set(api.STATS_MESSAGE_TYPES)
    for part in entry["sub"].values():
        assert set(part) == {
            "target",
            "sent",
            "delivered",
            "impressions",
            "click",
            *api.STATS_CHANNELS,
        }
        for group, channels in api.STATS_CHANNELS.items():
            assert set(part[group]) == set(channels)
            for leaf in part[group].values():
                assert set(leaf) == set(api.STATS_FUNNEL)
    assert entry["sub"]["notification"]["sub_android"]["xiaomi"]["targets"] > 0
    assert entry["sub"]["notification"]["sub_hmos"]["harmonyos"]["targets"] > 0


def test_figures_do_not_depend_on_pythonhashseed() -> None:
    code = (
        "from datetime import date; from reconciler.emulator.stats import plan_figures;"
        "print(plan_figures('promo', date(2025, 12, 1), date(2025, 12, 3))['clicks'])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    expected = plan_figures("promo", date(2025, 12, 1), date(2025, 12, 3))["clicks"]
    assert outputs == {f"{expected}\n"}


def test_http_answer_covers_existing_plans_only(emulator: EmulatorHandle) -> None:
    for plan_id in ("a", "b"):
        emulator.request("POST", "/v4/push_plan", {"plan_id": plan_id})
    answer = _stats(emulator, "a,b,ghost", "2025-12-01", "2025-12-31")
    assert answer.status == 200
    body = answer.json()
    assert set(body) == {"a", "b"}
    assert body["a"] == plan_figures("a", date(2025, 12, 1), date(2025, 12, 31))
    assert body["a"] != body["b"]
    assert _stats(emulator, "a,b", "2025-12-01", "2025-12-31").json() == body


@pytest.mark.parametrize(
    ("ids", "start", "end", "code"),
    [
        ("", "2025-12-01", "2025-12-02", api.CODE_MISSING_FIELD),
        ("a", "", "2025-12-02", api.CODE_MISSING_FIELD),
        ("a", "2025-12-1", "2025-12-02", api.CODE_BAD_VALUE),
        ("a", "2025-12-03", "2025-12-02", api.CODE_BAD_VALUE),
        ("a", "2025-12-01", "2026-01-01", api.CODE_BAD_VALUE),  # 32 days
        (",".join(f"p{i}" for i in range(21)), "2025-12-01", "2025-12-02", api.CODE_BAD_VALUE),
    ],
)
def test_invalid_stats_requests(
    emulator: EmulatorHandle, ids: str, start: str, end: str, code: int
) -> None:
    answer = _stats(emulator, ids, start, end)
    assert (answer.status, answer.json()["error"]["code"]) == (400, code)


def test_limits_are_inclusive(emulator: EmulatorHandle) -> None:
    ids = ",".join(f"p{i}" for i in range(api.STATS_MAX_PLAN_IDS))
    assert _stats(emulator, ids, "2025-12-01", "2025-12-31").status == 200
