"""reconciler.timing's real-zone firings: what people see (the gates keep the safe bounds)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from reconciler.timing import (
    describe_firing,
    device_window,
    fire_window,
    firings,
    real_device_window,
)

NOW = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_device_local_window_spans_the_inhabited_zones() -> None:
    wall = datetime(2025, 12, 28, 9, 0)
    assert real_device_window(wall) == (utc(2025, 12, 27, 19), utc(2025, 12, 28, 20))
    # the gates' conservative bound still ends an hour later, at UTC-12
    assert device_window(wall) == (utc(2025, 12, 27, 19), utc(2025, 12, 28, 21))


def test_smart_push_firing_is_the_backup_time_window() -> None:
    (fire,) = firings({"intelligent": {"backup_time": "2025-12-28 09:00:00"}}, TOKYO, NOW)
    assert (fire.first, fire.last, fire.device_local) == (
        utc(2025, 12, 27, 19),
        utc(2025, 12, 28, 20),
        True,
    )
    assert describe_firing(fire) == (
        "2025-12-27 19:00 UTC (UTC+14) .. 2025-12-28 20:00 UTC (UTC-11), device time"
    )


def test_backup_time_now_has_no_firing_it_fires_when_applied() -> None:
    assert firings({"intelligent": {"backup_time": "now"}}, TOKYO, NOW) == ()
    assert fire_window({"intelligent": {"backup_time": "now"}}, TOKYO).immediate


def test_single_site_send_is_one_instant_in_the_site_zone() -> None:
    (fire,) = firings({"single": {"time": "2025-12-28 09:00:00", "zone_type": 1}}, TOKYO, NOW)
    assert fire.first == fire.last == utc(2025, 12, 28, 0)
    assert describe_firing(fire) == "2025-12-28 00:00 UTC"


def test_single_device_send_spans_the_world() -> None:
    (fire,) = firings({"single": {"time": "2025-12-28 09:00:00", "zone_type": 2}}, TOKYO, NOW)
    assert (fire.first, fire.last) == (utc(2025, 12, 27, 19), utc(2025, 12, 28, 20))


def test_periodical_shows_the_next_occurrences_after_now() -> None:
    per = {
        "periodical": {
            "start": "2025-11-01 00:00:00",
            "end": "2026-01-31 00:00:00",
            "time": "09:30:00",
            "time_unit": "week",
            "point": ["MON"],
            "frequency": 1,
            "zone_type": 1,
        }
    }
    fires = firings(per, ZoneInfo("UTC"), NOW)
    # Monday 2025-12-01 09:30 UTC is still ahead of 09:00
    assert [f.first for f in fires] == [
        utc(2025, 12, 1, 9, 30),
        utc(2025, 12, 8, 9, 30),
        utc(2025, 12, 15, 9, 30),
    ]
    later = firings(per, ZoneInfo("UTC"), utc(2026, 6, 1))
    assert [f.first for f in later] == [utc(2026, 1, 26, 9, 30)]  # all over: the last one
