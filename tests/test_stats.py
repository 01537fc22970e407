"""Pure statistics: windows within the API's span, id batches, merging answers, rates, views."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import date, timedelta

import pytest

from reconciler import engagelab as api
from reconciler.remote.stats import (
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
from reconciler.views.stats import to_csv, to_json, to_markdown, to_table


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
    # Both spellings in one answer: the same figure twice, not two figures to add up.
    assert normalize({"target": 2, "targets": 2}) == {"targets": 2}
    assert normalize({"target": 1, "targets": 2}) == {"targets": 2, "target": 1}  # reported


def test_figures_as_strings_non_finite_ones_and_partial_totals_are_never_a_silent_zero() -> None:
    answer = {
        "p": {
            "sent": "900",  # a whole number as a string: a number
            "targets": float("nan"),
            "sub": {"notification": {"target": "1000", "sent": 900, "click": "x"}},
        }
    }
    plan = build_report(["p"], date(2025, 1, 1), date(2025, 1, 1), merge_answers([answer])).plans[0]
    assert plan.total.sent == 900
    assert plan.by_type["notification"].targets == 1000
    assert "targets = 'not a finite number'" in plan.unplaced  # NaN: said, not shown as 0
    assert "sub.notification.clicks = 'not a finite number'" in plan.unplaced  # "x"
    assert plan.total.targets == 1000  # the top's is no number: the sum of the types
    both = {"p": {"targets": 1000, "target": 1000, "click": 3, "clicks": 4}}
    plan = build_report(["p"], date(2025, 1, 1), date(2025, 1, 1), merge_answers([both])).plans[0]
    assert plan.total.targets == 1000 and plan.total.clicks == 4  # never 2,000
    assert "click = 3" in plan.unplaced  # the disagreeing spelling is reported
    partial = {"p": {"targets": 50, "sub": {"notification": _counts(3), "message": _counts(1)}}}
    plan = build_report(["p"], date(2025, 1, 1), date(2025, 1, 1), merge_answers([partial])).plans[
        0
    ]
    assert plan.total.targets == 50  # given at the top
    assert plan.total.sent == 36 and plan.total.clicks == 4  # the rest: the sum of the types


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


# The documented nesting (docs.engagelab.com AppPush statistics API, plan detail; Java SDK
# MessageStatusGetResult 0.0.22 Sub.Message.sub_android; Go SDK model_status.go): the vendor
# split sits inside each message type, and the counts there are singular (target, click).
def _counts(n: int) -> dict[str, int]:
    return {"target": n * 10, "sent": n * 9, "delivered": n * 8, "impressions": n * 4, "click": n}


DOC_ENTRY = {
    "plan_id": "spring",
    "pushContent": "Spring sale",
    "target": 150,
    "sent": 135,
    "delivered": 120,
    "impressions": 60,
    "click": 15,
    "sub": {
        "notification": {
            **_counts(12),
            "sub_android": {"engageLab_android": _counts(5), "xiaomi": _counts(4)},
            "sub_ios": {"apns": _counts(3)},
        },
        "message": {**_counts(3), "sub_hmos": {"engageLab_hmos": _counts(3)}},
    },
}


def test_the_documented_nesting_gives_the_platform_and_channel_split() -> None:
    report = build_report(
        ["spring"], date(2025, 1, 1), date(2025, 1, 1), merge_answers([{"spring": DOC_ENTRY}])
    )
    plan = report.plans[0]
    assert plan.by_channel["android/xiaomi"] == Funnel.of(normalize(_counts(4)))
    assert plan.by_platform["android"].clicks == 9
    assert plan.by_platform["ios"].targets == 30
    assert plan.by_platform["hmos"].sent == 27  # from inside `message`
    assert plan.by_type["notification"].clicks == 12
    assert plan.total.clicks == 15
    assert plan.unplaced == () and plan.absent == ()
    channels = Funnel()
    for funnel in plan.by_channel.values():
        channels = channels.plus(funnel)
    assert channels == plan.by_platform["android"].plus(plan.by_platform["ios"]).plus(
        plan.by_platform["hmos"]
    )


def test_the_same_figures_summed_over_windows_keep_their_split() -> None:
    merged = merge_answers([{"spring": DOC_ENTRY}, {"spring": DOC_ENTRY}])
    plan = build_report(["spring"], date(2025, 1, 1), date(2025, 1, 2), merged).plans[0]
    assert plan.by_channel["android/xiaomi"].clicks == 8
    assert plan.total.targets == 300


def test_a_figure_that_fits_no_row_is_reported_never_shown_as_zero() -> None:
    odd = {
        "sub": {
            "notification": {
                **_counts(2),
                "uninstalls": 7,  # a counter the funnel does not have
                "sub_android": {"fcm": _counts(2), "sub_web": 5},
            },
            "sms": _counts(1),  # a message type we do not list yet: kept as a row
        },
    }
    plan = build_report(
        ["p"], date(2025, 1, 1), date(2025, 1, 1), merge_answers([{"p": odd}])
    ).plans[0]
    assert "sub.notification.uninstalls = 7" in plan.unplaced
    assert "sub.notification.sub_android.sub_web = 5" in plan.unplaced
    assert plan.by_type["sms"].clicks == 1
    assert plan.total == plan.by_type["notification"].plus(
        plan.by_type["sms"]
    )  # no top-level total
    table = to_table(build_report(["p"], date(2025, 1, 1), date(2025, 1, 1), {"p": normalize(odd)}))
    assert "p: 2 figure(s) fit no row" in table and "uninstalls = 7" in table


def test_a_split_the_answer_does_not_carry_is_said_not_zero() -> None:
    bare = {"target": 10, "sent": 9, "delivered": 8, "impressions": 4, "click": 1}
    report = build_report(["p"], date(2025, 1, 1), date(2025, 1, 1), merge_answers([{"p": bare}]))
    plan = report.plans[0]
    assert plan.absent == ("type", "platform", "channel")
    assert plan.by_platform == {} and plan.by_channel == {} and plan.by_type == {}
    assert "p: EngageLab's answer has no type/platform/channel split" in to_table(report)
    assert "`p`: EngageLab's answer has no type/platform/channel split" in to_markdown(report)
    doc = json.loads(to_json(report))["plans"][0]
    assert doc["absent"] == ["type", "platform", "channel"] and doc["by_platform"] == {}
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert [r[1] for r in rows[1:]] == ["total"]  # no row of zeros for a split nobody sent


def test_the_older_top_level_groups_are_still_read() -> None:
    nested = DOC_ENTRY["sub"]["notification"]  # type: ignore[index]
    old = {
        **_counts(12),
        "sub": {"notification": _counts(12)},
        "sub_android": nested["sub_android"],
    }
    plan = build_report(
        ["p"], date(2025, 1, 1), date(2025, 1, 1), merge_answers([{"p": old}])
    ).plans[0]
    assert plan.by_platform["android"].clicks == 9 and plan.absent == ()
