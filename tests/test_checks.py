"""reconciler.checks.findings: each send-time and copy check firing and not, with `now` pinned."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from reconciler.checks.findings import CheckResult, audience_keys, in_quiet, parse_hhmm, run_checks
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredSchedule, DesiredState
from tests.support.plans import NOW, desired, sched


def smart(name: str, backup: str, **kw: Any) -> DesiredSchedule:
    return sched(name, backup=backup, **kw)


def to(s: DesiredSchedule, audience: Any) -> DesiredSchedule:
    push = {**s.body["push"], "to": audience}
    return dataclasses.replace(s, body={**s.body, "push": push})


def checks(
    *schedules: DesiredSchedule, settings: Settings | None = None, **kw: Any
) -> list[CheckResult]:
    return run_checks(desired(schedules), settings or Settings(), NOW, **kw)


def ids(results: list[CheckResult]) -> list[tuple[str, str]]:
    return [(r.check, r.address) for r in results]


# --- backup_passed --------------------------------------------------------------------------


def test_backup_passed_names_the_zones_where_it_already_passed() -> None:
    # 20:00 device time is reached at 06:00 UTC in UTC+14 and at 09:00 UTC in UTC+11
    (result,) = checks(smart("a", "2025-12-01 20:00:00"))
    assert (result.check, result.level) == ("backup_passed", "warning")
    assert "UTC+11..UTC+14 (Kiritimati" in result.message
    assert "5 of 37 UTC offsets" in result.message


def test_backup_passed_is_quiet_before_and_after_everywhere() -> None:
    assert checks(smart("later", "2025-12-02 20:00:00")) == []
    # passed everywhere: the spec layer warns and the planner shows `expired`
    assert checks(smart("gone", "2025-11-29 12:00:00")) == []


def test_backup_passed_covers_device_time_single_sends() -> None:
    single = {"single": {"time": "2025-12-01 20:00:00", "zone_type": 2}}
    assert ids(checks(sched("s", trigger=single))) == [("backup_passed", "schedule.s")]


# --- quiet_hours ----------------------------------------------------------------------------


def test_quiet_hours_wrap_midnight() -> None:
    start, end = parse_hhmm("21:00"), parse_hhmm("08:00")
    assert in_quiet(parse_hhmm("23:30"), start, end)
    assert in_quiet(parse_hhmm("07:59"), start, end)
    assert not in_quiet(parse_hhmm("08:00"), start, end)
    assert not in_quiet(parse_hhmm("20:59"), start, end)
    assert in_quiet(parse_hhmm("13:00"), parse_hhmm("12:00"), parse_hhmm("14:00"))


def test_quiet_hours_smart_push_is_about_the_fallback_only() -> None:
    (result,) = checks(smart("late", "2025-12-10 23:30:00"))
    assert result.check == "quiet_hours"
    assert "backup_time 23:30 device time" in result.message
    assert "users with history get it at their own best moment" in result.message
    assert checks(smart("noon", "2025-12-10 12:00:00")) == []


def test_quiet_hours_follow_the_configured_hours() -> None:
    late = smart("late", "2025-12-10 23:30:00")
    assert checks(late, settings=Settings(quiet_hours_start="23:45")) == []
    noon = smart("noon", "2025-12-10 12:00:00")
    hits = checks(noon, settings=Settings(quiet_hours_start="11:00", quiet_hours_end="13:00"))
    assert ids(hits) == [("quiet_hours", "schedule.noon")]


def test_quiet_hours_for_a_site_time_send_name_the_zones_at_night() -> None:
    single = {"single": {"time": "2025-12-12 09:00:00", "zone_type": 1}}
    (result,) = checks(sched("site", trigger=single))
    assert "21:00-23:00 local in UTC+12..UTC+14" in result.message
    assert "22:00-07:00 local in UTC-11..UTC-2" in result.message
    # in Tokyo's site zone, 09:00 is 00:00 UTC: 21:00 in UTC-3 to 07:00 in UTC+7, one run
    tokyo = checks(sched("site", trigger=single), settings=Settings(site_time_zone="Asia/Tokyo"))
    assert "users in: 21:00-07:00 local in UTC-3..UTC+7 (" in tokyo[0].message
    assert ";" not in tokyo[0].message


# --- min_gap --------------------------------------------------------------------------------


def test_min_gap_fires_for_overlapping_audiences_closer_than_the_gap() -> None:
    a = smart("a", "2025-12-10 12:00:00")
    b = smart("b", "2025-12-10 12:30:00", tags=("shoppers", "vip"))
    (result,) = checks(a, b)
    assert (result.check, result.address) == ("min_gap", "schedule.b")  # reported once
    assert "within 30 min of schedule.a (both to tag shoppers)" in result.message


def test_min_gap_does_not_fire_at_the_gap_or_for_disjoint_audiences() -> None:
    a = smart("a", "2025-12-10 12:00:00")
    assert checks(a, smart("b", "2025-12-10 13:00:00")) == []
    assert checks(a, smart("c", "2025-12-10 12:10:00", tags=("vip",))) == []
    assert checks(a, smart("d", "2025-12-10 12:10:00"), settings=Settings(min_gap_minutes=5)) == []


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("all", "all", True),
        ("all", {"alias": ["x"]}, True),
        ({"tag_and": ["a", "b"]}, {"tag": ["b"]}, True),
        ({"tag": ["a"], "tag_not": ["b"]}, {"tag": ["a"]}, True),  # tag_not only narrows
        ({"tag": ["a"]}, {"tag_not": ["a"], "tag": ["c"]}, False),
        ({"alias": ["x"]}, {"alias": ["x", "y"]}, True),
        ({"registration_id": ["r1"]}, {"registration_id": ["r2"]}, False),
        ({"seg": {"id": "s1"}}, {"seg": {"id": "s1"}}, True),
        ({"seg": {"id": "s1"}}, {"seg": {"id": "s2"}}, False),
    ],
)
def test_min_gap_audience_overlap(first: Any, second: Any, overlap: bool) -> None:
    a = to(smart("a", "2025-12-10 12:00:00"), first)
    b = to(smart("b", "2025-12-10 12:20:00"), second)
    assert bool(checks(a, b)) is overlap
    keys_a, keys_b = audience_keys(first), audience_keys(second)
    assert bool(keys_a & keys_b or "all" in keys_a | keys_b) is overlap


def test_min_gap_between_site_and_device_time_uses_the_nearest_real_zone() -> None:
    site = sched("site", trigger={"single": {"time": "2025-12-10 12:00:00", "zone_type": 1}})
    device = sched("dev", trigger={"single": {"time": "2025-12-10 21:20:00", "zone_type": 2}})
    # 21:20 in UTC+9:30 (Darwin) is 11:50 UTC: 10 min from the site send (UTC+9: 20 min)
    results = [r for r in checks(site, device) if r.check == "min_gap"]
    assert len(results) == 1
    assert results[0].address == "schedule.site"  # the later name of two touched
    assert "within 10 min of schedule.dev for users in UTC+9:30 (Darwin)" in results[0].message
    far = sched("far", trigger={"single": {"time": "2025-12-11 08:00:00", "zone_type": 2}})
    assert [r for r in checks(site, far) if r.check == "min_gap"] == []


def test_min_gap_only_reports_on_touched_schedules() -> None:
    a = smart("a", "2025-12-10 12:00:00")
    b = smart("b", "2025-12-10 12:30:00")
    assert ids(checks(a, b, only={"schedule.a"})) == [("min_gap", "schedule.a")]
    assert checks(a, b, only=set()) == []


# --- copy -----------------------------------------------------------------------------------

NOON = "2025-12-10 12:00:00"


def test_placeholder_copy_fires_on_test_words_per_language() -> None:
    copy = {
        "en": {"title": "Sale", "alert": "TODO write me"},
        "fr": {"title": "Test", "alert": "x"},
    }
    (result,) = checks(smart("a", NOON, copy=copy))
    assert result.check == "placeholder_copy"
    assert "en alert 'TODO'" in result.message and "fr title 'Test'" in result.message


def test_placeholder_copy_ignores_words_that_only_contain_test() -> None:
    copy = {"en": {"title": "Latest deals", "alert": "Contest winners, protest-free todos"}}
    assert checks(smart("a", NOON, copy=copy)) == []


def test_empty_title_fires_when_a_language_has_none() -> None:
    copy = {"en": {"title": " ", "alert": "Sale"}, "fr": {"alert": "Soldes"}}
    (result,) = checks(smart("a", NOON, copy=copy))
    assert (result.check, result.message.split(":")[0]) == ("empty_title", "no title in en, fr")


def test_copy_length_uses_the_ios_limit_when_ios_is_a_target() -> None:
    alert = "x" * 200
    copy = {"en": {"title": "T" * 51, "alert": alert}}
    (result,) = checks(smart("a", NOON, copy=copy))
    assert result.check == "copy_length"
    assert "en alert 200 > 178" in result.message and "en title 51 > 50" in result.message
    s = smart("b", NOON, copy={"en": {"title": "T", "alert": alert}})
    android = dataclasses.replace(
        s,
        body={**s.body, "push": {**s.body["push"], "body": {**s.body["push"]["body"]}}},
    )
    android.body["push"]["body"]["platform"] = ["android"]
    assert checks(android) == []  # 200 <= 240


def test_short_copy_raises_nothing() -> None:
    assert checks(smart("a", NOON)) == []


# --- levels ---------------------------------------------------------------------------------


def _spec_levels(state: DesiredState, levels: dict[str, str]) -> DesiredState:
    return DesiredState(
        plans=state.plans,
        schedules=state.schedules,
        inputs_digest=state.inputs_digest,
        check_levels={"promo": levels},
    )


def test_levels_environment_then_spec_and_off() -> None:
    late = desired([smart("late", "2025-12-10 23:30:00")])
    env = Settings(check_levels=(("quiet_hours", "error"),))
    assert [r.level for r in run_checks(late, env, NOW)] == ["error"]
    spec = _spec_levels(late, {"quiet_hours": "warning"})
    assert [r.level for r in run_checks(spec, env, NOW)] == ["warning"]  # the spec wins
    assert run_checks(_spec_levels(late, {"quiet_hours": "off"}), Settings(), NOW) == []


def test_disabled_and_finished_schedules_are_not_checked() -> None:
    late = smart("late", "2025-12-10 23:30:00", enabled=False)
    assert checks(late) == []
    assert checks(smart("over", (NOW - timedelta(days=3)).strftime("%Y-%m-%d 23:30:00"))) == []
