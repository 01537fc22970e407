"""What EngageLab's own examples and SDKs send is accepted, and echoed as sent (issue #13)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler import engagelab as api
from tests.support.emulator import EmulatorHandle, sample_push, sample_schedule


def _periodical(unit: str, point: list[Any] | None, **extra: Any) -> dict[str, Any]:
    per: dict[str, Any] = {
        "start": "2025-12-01 00:00:00",
        "end": "2026-01-31 00:00:00",
        "time": "09:00:00",
        "time_unit": unit,
        **extra,
    }
    if point is not None:
        per["point"] = point
    return {"periodical": per}


def _create(emulator: EmulatorHandle, body: dict[str, Any]) -> str:
    answer = emulator.request("POST", "/v4/schedules", body)
    assert answer.status == 200, answer.body
    return str(answer.json()["schedule_id"])


def _get(emulator: EmulatorHandle, sid: str) -> dict[str, Any]:
    answer = emulator.request("GET", f"/v4/schedules/{sid}")
    assert answer.status == 200, answer.body
    got: dict[str, Any] = answer.json()[0]
    return got


@pytest.mark.parametrize(
    ("unit", "point"),
    [
        ("WEEK", ["MON", "FRI"]),  # as the SDKs send it
        ("Week", ["Mon", "fri"]),
        ("MONTH", ["01", "15"]),
        ("Day", None),
        ("DAY", None),
    ],
)
def test_time_unit_and_point_in_any_case_are_accepted_and_echoed(
    emulator: EmulatorHandle, unit: str, point: list[str] | None
) -> None:
    trigger = _periodical(unit, point)
    sid = _create(emulator, sample_schedule("per_01", trigger=trigger))
    assert _get(emulator, sid)["trigger"] == trigger  # echoed as sent, not folded
    listed = emulator.request("GET", "/v4/schedules").json()["schedules"]
    assert [s["trigger"] for s in listed] == [trigger]
    # An update carrying the same kind of trigger in another case is judged the same way.
    other = _periodical(unit.swapcase(), [p.swapcase() for p in point] if point else None)
    answer = emulator.request("PUT", f"/v4/schedules/{sid}", {"trigger": other})
    assert answer.status == 200, answer.body
    assert answer.json()["trigger"] == other


@pytest.mark.parametrize(
    "trigger",
    [
        _periodical("WEEKLY", ["MON"]),
        _periodical("Week", ["Monday"]),
        _periodical("week", ["MON", "mon"]),  # the same day twice, once folded
        _periodical("DAY", ["MON"]),
        _periodical("week", [1]),
    ],
)
def test_case_folding_does_not_let_bad_values_through(
    emulator: EmulatorHandle, trigger: dict[str, Any]
) -> None:
    answer = emulator.request("POST", "/v4/schedules", sample_schedule(trigger=trigger))
    assert (answer.status, answer.json()["error"]["code"]) == (400, api.CODE_SCHEDULE_REFUSED)


def test_an_upper_case_week_fires_on_its_points(emulator: EmulatorHandle) -> None:
    """The firing window (and so the expiry) reads the folded trigger: a week ending on a
    Sunday point stays live until that Sunday has passed."""
    trigger = _periodical("WEEK", ["SUN"], end="2025-12-07 23:00:00")
    sid = _create(emulator, sample_schedule(trigger=trigger))
    emulator.set_now(emulator.server.now().replace(month=12, day=7, hour=8))
    assert emulator.request("GET", f"/v4/schedules/{sid}").status == 200
    emulator.set_now(emulator.server.now().replace(hour=10))
    assert emulator.request("GET", f"/v4/schedules/{sid}").status == 404


def _smart_push_example() -> dict[str, Any]:
    """EngageLab's Smart Push example (../shared/reference/, plan-push-smart-push best
    practices), moved to the emulator's clock: the plan, then a single-string platform."""
    return {
        "name": "promo_year_end_reminder_01",
        "enabled": True,
        "trigger": {"intelligent": {"backup_time": "2025-12-28 09:00:00"}},
        "push": {
            "from": "push",
            "to": {"registration_id": ["regId_userA", "regId_userB"]},
            "body": {
                "platform": "android",
                "notification": {
                    "alert": "La vente flash est en cours ! Profitez-en maintenant !",
                    "android": {
                        "title": "Offres Exceptionnelles",
                        "extras": {"promo": "year_end_sale"},
                    },
                },
                "options": {"plan_id": "promo_year_end_2025", "time_to_live": 86400},
            },
            "request_id": "req_year_end_01",
            "custom_args": {"task": "reminder_01"},
        },
    }


def test_engagelabs_smart_push_example_is_accepted(emulator: EmulatorHandle) -> None:
    plan = {"plan_id": "promo_year_end_2025", "plan_description": "Plan Push Vente de Fin d'Année"}
    assert emulator.request("POST", "/v4/push_plan", plan).json() == {"plan_id": plan["plan_id"]}
    example = _smart_push_example()
    sid = _create(emulator, example)
    assert _get(emulator, sid) == {"schedule_id": sid, **example}


@pytest.mark.parametrize(
    "platform", ["android", "ios", "hmos", "all", ["android"], ["ios", "hmos"]]
)
def test_platform_may_be_one_string_all_or_a_list(emulator: EmulatorHandle, platform: Any) -> None:
    push = sample_push()
    push["body"]["platform"] = platform
    sid = _create(emulator, sample_schedule(push=push))
    assert _get(emulator, sid)["push"]["body"]["platform"] == platform
    update = copy.deepcopy(push)
    update["body"]["platform"] = "ios" if platform != "ios" else ["ios"]
    answer = emulator.request("PUT", f"/v4/schedules/{sid}", {"push": update})
    assert answer.status == 200, answer.body


@pytest.mark.parametrize("platform", ["windows", "Android", "", ["android", "android"], [], 3])
def test_bad_platforms_are_still_refused(emulator: EmulatorHandle, platform: Any) -> None:
    push = sample_push()
    push["body"]["platform"] = platform
    answer = emulator.request("POST", "/v4/schedules", sample_schedule(push=push))
    assert (answer.status, answer.json()["error"]["code"]) == (400, api.CODE_BAD_VALUE)
