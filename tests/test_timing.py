"""Unit tests for reconciler.timing: firing windows from API triggers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reconciler.timing import fire_window, parse_api_time, periodical_walls

UTC_ZONE = ZoneInfo("UTC")


def test_parse_api_time_is_strict() -> None:
    assert parse_api_time("2025-12-28 09:00:00") == datetime(2025, 12, 28, 9)
    for bad in ("2025-1-2 3:4:5", "2025-12-28T09:00:00", "2025-12-28 09:00", "tomorrow"):
        with pytest.raises(ValueError):
            parse_api_time(bad)


def test_smart_push_window_spans_the_world() -> None:
    window = fire_window({"intelligent": {"backup_time": "2025-12-28 09:00:00"}}, UTC_ZONE)
    assert window.first == datetime(2025, 12, 27, 19, tzinfo=UTC)  # 09:00 at UTC+14
    assert window.last == datetime(2025, 12, 28, 21, tzinfo=UTC)  # 09:00 at UTC-12
    assert window.device_local
    assert not window.has_fired(datetime(2025, 12, 27, 18, 59, tzinfo=UTC), None)
    assert window.has_fired(datetime(2025, 12, 27, 19, tzinfo=UTC), None)
    assert not window.is_over(datetime(2025, 12, 28, 20, tzinfo=UTC), None)


def test_backup_time_now_fires_on_creation() -> None:
    window = fire_window({"intelligent": {"backup_time": "now"}}, UTC_ZONE)
    assert window.immediate
    assert not window.has_fired(datetime(2030, 1, 1, tzinfo=UTC), None)
    assert window.has_fired(datetime(2030, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC))


def test_single_site_time_uses_site_zone() -> None:
    trig = {"single": {"time": "2025-12-28 09:00:00", "zone_type": 1}}
    window = fire_window(trig, ZoneInfo("Europe/Paris"))
    assert window.first == window.last == datetime(2025, 12, 28, 8, tzinfo=UTC)


def test_periodical_weekly_points_and_next_occurrence() -> None:
    per = {
        "start": "2025-12-01 00:00:00",
        "end": "2025-12-31 23:59:59",
        "time": "10:00:00",
        "time_unit": "week",
        "frequency": 1,
        "point": ["MON", "THU"],
    }
    walls = list(periodical_walls(per))
    assert [w.day for w in walls] == [1, 4, 8, 11, 15, 18, 22, 25, 29]
    window = fire_window(
        {"periodical": {**per, "zone_type": 1}},
        UTC_ZONE,
        now=datetime(2025, 12, 9, tzinfo=UTC),
    )
    assert window.first == datetime(2025, 12, 11, 10, tzinfo=UTC)
    assert window.last == datetime(2025, 12, 29, 10, tzinfo=UTC)


def test_periodical_monthly_skips_missing_days() -> None:
    per = {
        "start": "2026-01-01 00:00:00",
        "end": "2026-04-30 00:00:00",
        "time": "08:00:00",
        "time_unit": "month",
        "frequency": 1,
        "point": ["31"],
    }
    assert [(w.month, w.day) for w in periodical_walls(per)] == [(1, 31), (3, 31)]


def test_a_now_smart_push_keeps_sending_for_a_day_after_apply() -> None:
    window = fire_window({"intelligent": {"backup_time": "now"}}, UTC_ZONE)
    applied = datetime(2030, 1, 1, tzinfo=UTC)
    assert not window.is_over(applied + timedelta(hours=23), applied)
    assert window.is_over(applied + timedelta(hours=24), applied)


def test_the_gates_measure_a_periodical_from_its_next_unstarted_occurrence() -> None:
    from reconciler.timing import gate_start

    daily = {
        "periodical": {
            "start": "2025-12-01 00:00:00",
            "end": "2025-12-31 23:59:59",
            "time": "09:00:00",
            "time_unit": "day",
            "frequency": 1,
            "zone_type": 2,
        }
    }
    # 15:00 UTC on Dec 20: Dec 20 09:00 began at UTC+14 (Dec 19 19:00) and runs until Dec 20
    # 21:00; Dec 21 09:00 starts at Dec 20 19:00 UTC, which is what the gates look at.
    now = datetime(2025, 12, 20, 15, tzinfo=UTC)
    assert gate_start(daily, UTC_ZONE, now) == datetime(2025, 12, 20, 19, tzinfo=UTC)
    single = {"single": {"time": "2025-12-28 09:00:00", "zone_type": 1}}
    assert gate_start(single, UTC_ZONE, now) == datetime(2025, 12, 28, 9, tzinfo=UTC)
    assert gate_start({"intelligent": {"backup_time": "now"}}, UTC_ZONE, now) is None
