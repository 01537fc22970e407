"""Pure statistics: windows within the API's span, id batches, merging answers, rates, views."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import date, timedelta

import pytest

from reconciler import engagelab as api
from reconciler.stats import (
    Funnel,
    StatsReport,
    batches,
    build_report,
    default_range,
    merge_answers,
    normalize,
    percent,
    windows,
)
from reconciler.stats_views import to_csv, to_json, to_markdown, to_table


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (date(2025, 1, 1), date(2025, 1, 1), 1),
        (date(2025, 1, 1), date(2025, 1, 31), 1),
        (date(2025, 1, 1), date(2025, 2, 1), 2),
        (date(2024, 12, 1), date(2025, 3, 10), 4),
    ],
)
def test_windows_cover_the_range_exactly_within_the_span(
    start: date, end: date, count: int
) -> None:
    found = windows(start, end)
    assert len(found) == count
    assert found[0][0] == start and found[-1][1] == end
    for (_, last), (following, _) in itertools.pairwise(found):
        assert following == last + timedelta(days=1)
    assert all(0 <= (b - a).days < api.STATS_MAX_SPAN_DAYS for a, b in found)


def test_windows_refuse_a_reversed_range() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        windows(date(2025, 2, 1), date(2025, 1, 1))


def test_batches_dedupe_and_cap_the_ids() -> None:
    ids = [f"p{i}" for i in range(45)] + ["p0"]
    found = batches(ids)
    assert [len(b) for b in found] == [20, 20, 5]
    assert [i for b in found for i in b] == [f"p{i}" for i in range(45)]


def test_merge_sums_every_numeric_leaf_and_reads_both_spellings() -> None:
    first = {"a": {"target": 10, "sent": 9, "click": 1, "sub": {"message": {"targets": 2}}}}
    second = {
        "a": {"targets": 5, "sent": 5, "clicks": 2, "note": "x", "sub_ios": {"apns": {"sent": 3}}},
        "b": {"targets": 1},
    }
    merged = merge_answers([first, second])
    assert merged["a"] == {
        "targets": 15,
        "sent": 14,
        "clicks": 3,
        "sub": {"message": {"targets": 2}},
        "sub_ios": {"apns": {"sent": 3}},
    }
    assert merged["b"] == {"targets": 1}
    assert normalize({"target": 1, "targets": 2}) == {"targets": 3}


def test_rates_are_percent_with_one_decimal_and_a_dash_for_nothing() -> None:
    funnel = Funnel(targets=1000, sent=900, delivered=800, impressions=400, clicks=30)
    assert percent(funnel.delivery_rate) == "88.9%"
    assert percent(funnel.click_rate) == "3.8%"
    assert percent(funnel.impression_click_rate) == "7.5%"
    assert percent(Funnel().delivery_rate) == "—"


def test_default_range_is_the_last_seven_days_ending_yesterday() -> None:
    assert default_range(date(2025, 11, 20)) == (date(2025, 11, 13), date(2025, 11, 19))


def _report() -> StatsReport:
    entry = {
        "targets": 100,
        "sent": 90,
        "delivered": 80,
        "impressions": 40,
        "clicks": 4,
        "sub": {"notification": {"targets": 100, "sent": 90, "delivered": 80}},
        "sub_android": {"xiaomi": {"targets": 60, "sent": 50, "delivered": 0}},
        "sub_ios": {"apns": {"targets": 40, "sent": 40, "delivered": 40}},
    }
    return build_report(["a", "zz"], date(2025, 1, 1), date(2025, 1, 7), {"a": entry})


def test_views_show_totals_splits_and_missing_plans() -> None:
    report = _report()
    table = to_table(report)
    assert "2025-01-01 .. 2025-01-07 (7 days)" in table
    lines = table.splitlines()
    total = next(line for line in lines if line.startswith("a ") and " all " in line)
    assert total.split()[2:] == ["100", "90", "80", "40", "4", "88.9%", "5.0%", "10.0%"]
    assert any("platform: android" in line and "0.0%" in line for line in lines)
    assert not any("message_type" in line or "voip" in line for line in lines)  # empty splits
    assert "No figures from EngageLab for: zz" in table
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert rows[0]["split"] == "total" and rows[0]["delivery_rate"] == "0.8889"
    assert any(r["key"] == "voip" and r["delivery_rate"] == "" for r in rows)
    doc = json.loads(to_json(report))
    assert doc["plans"][0]["by_platform"]["ios"]["delivery_rate"] == 1.0
    assert doc["missing"] == ["zz"]
    block = to_markdown(report)
    assert "| `a` | 100 | 90 | 80 | 40 | 4 | 88.9% | 5.0% | 10.0% |" in block
