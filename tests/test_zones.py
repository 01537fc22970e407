"""reconciler.zones: the real UTC offsets on a day, from the tz database."""

from __future__ import annotations

from datetime import date, timedelta

from reconciler import zones

H = timedelta(hours=1)


def _labels(day: date) -> list[str]:
    return [o.label for o in zones.offsets_on(day)]


def test_real_extremes_are_kiritimati_and_niue_not_the_uninhabited_utc_minus_12() -> None:
    table = zones.offsets_on(date(2025, 12, 28))
    assert zones.extremes(date(2025, 12, 28)) == (14 * H, -11 * H)
    assert "Pacific/Kiritimati" in table[0].zones
    assert "Pacific/Niue" in table[-1].zones
    assert all("Etc/" not in z for o in table for z in o.zones)


def test_half_hour_and_45_minute_zones_are_counted() -> None:
    labels = _labels(date(2025, 12, 28))
    for label in ("UTC+5:30", "UTC+5:45", "UTC+9:30", "UTC-9:30", "UTC+13:45", "UTC+10:30"):
        assert label in labels
    assert labels == sorted(labels, key=lambda x: -_minutes(x))  # earliest zone first


def _minutes(label: str) -> int:
    sign = -1 if label[3] == "-" else 1
    hours, _, minutes = label[4:].partition(":")
    return sign * (int(hours) * 60 + int(minutes or 0))


def test_offsets_follow_daylight_saving_time() -> None:
    def offset_of(zone: str, day: date) -> timedelta:
        return next(o.offset for o in zones.offsets_on(day) if zone in o.zones)

    assert offset_of("Europe/London", date(2026, 1, 15)) == timedelta(0)
    assert offset_of("Europe/London", date(2026, 7, 15)) == H
    assert offset_of("Pacific/Chatham", date(2026, 1, 15)) == timedelta(hours=13, minutes=45)
    assert offset_of("Pacific/Chatham", date(2026, 7, 15)) == timedelta(hours=12, minutes=45)
    assert "UTC+13:45" not in _labels(date(2026, 7, 15))


def test_format_offset() -> None:
    assert zones.format_offset(14 * H) == "UTC+14"
    assert zones.format_offset(-11 * H) == "UTC-11"
    assert zones.format_offset(timedelta(hours=5, minutes=45)) == "UTC+5:45"
    assert zones.format_offset(-timedelta(hours=9, minutes=30)) == "UTC-9:30"
    assert zones.format_offset(timedelta(0)) == "UTC+0"


def test_summarize_names_a_span_and_a_few_cities() -> None:
    table = zones.offsets_on(date(2025, 12, 28))
    assert zones.summarize(table[:1]) == "UTC+14 (Kiritimati)"
    two = zones.summarize(table[:3])
    assert two.startswith("UTC+13..UTC+14 (Kiritimati, Chatham, ")
    assert two.endswith(", …)")
    assert zones.summarize([]) == "no time zone"
    assert zones.city("America/Argentina/Buenos_Aires") == "Buenos Aires"
