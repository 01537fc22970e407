"""The one normalisation step of remote schedules (reconciler/remote/shape.py). Pure.

Each shape here is one the evidence points to: the Java SDK (list items' trigger/push "non-standard
format", typed Object), JPush v3 (case-insensitive time_unit/point), EngageLab's own Smart Push
example (platform as one string). A shape that is no body at all is marked unreadable, never a
crash.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.remote.drift import DriftKind, RemoteSnapshot, detect_drift
from reconciler.remote.shape import UNREADABLE, comparable, is_summary, normalise
from reconciler.state.model import ScheduleCreated, State, apply_event
from reconciler.timing import periodical_walls

WEEKLY: dict[str, Any] = {
    "periodical": {
        "start": "2025-12-01 00:00:00",
        "end": "2025-12-31 23:59:59",
        "time": "09:00:00",
        "time_unit": "week",
        "point": ["MON", "FRI"],
        "frequency": 1,
        "zone_type": 2,
    }
}
PUSH: dict[str, Any] = {  # as reconcile sends it (spec_body.py)
    "from": "push",
    "to": {"tag": ["fans"]},
    "body": {
        "platform": ["android"],
        "notification": {"alert": "Hi"},
        "options": {"plan_id": "spring"},
    },
    "custom_args": {"managed_by": "reconcile"},
}


def with_body(**changes: Any) -> dict[str, Any]:
    return {**PUSH, "body": {**PUSH["body"], **changes}}


def with_options(**changes: Any) -> dict[str, Any]:
    return with_body(options={**PUSH["body"]["options"], **changes})


BODY: dict[str, Any] = {"name": "weekly", "enabled": True, "trigger": WEEKLY, "push": PUSH}


def remote(**changes: Any) -> dict[str, Any]:
    return {"schedule_id": "s1", **BODY, **changes}


def test_a_canonical_item_is_unchanged() -> None:
    assert normalise(remote()) == remote()


@pytest.mark.parametrize(
    ("unit", "points"),
    [("WEEK", ["MON", "FRI"]), ("Week", ["mon", "Fri"]), ("week", [" mon ", "FRI"])],
)
def test_time_unit_and_point_are_read_in_any_case(unit: str, points: list[str]) -> None:
    trigger = {"periodical": {**WEEKLY["periodical"], "time_unit": unit, "point": points}}
    assert normalise(remote(trigger=trigger)) == remote()


def test_month_points_are_two_digits_and_a_platform_string_is_a_list() -> None:
    monthly = {"periodical": {**WEEKLY["periodical"], "time_unit": "MONTH", "point": [1, "15"]}}
    item = normalise(remote(trigger=monthly, push=with_body(platform="android")))
    assert item["trigger"]["periodical"]["point"] == ["01", "15"]
    assert item["trigger"]["periodical"]["time_unit"] == "month"
    assert item["push"]["body"]["platform"] == ["android"]
    assert normalise(remote(push=with_body(platform="ALL")))["push"]["body"]["platform"] == "all"


def test_json_strings_are_decoded() -> None:
    args = {"managed_by": "reconcile"}
    item = normalise(
        remote(
            trigger=json.dumps(WEEKLY),
            push=json.dumps({**PUSH, "custom_args": json.dumps(args)}),
            enabled="true",
        )
    )
    assert item == remote(push={**PUSH, "custom_args": args})


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"trigger": "{not json"}, "trigger is a string that is not JSON"),
        ({"trigger": {"hourly": {}}}, "not one of single/periodical/intelligent"),
        ({"trigger": ["single"]}, "trigger is list, not an object"),
        ({"push": 7}, "push is int, not an object"),
        (
            {"trigger": {"periodical": {**WEEKLY["periodical"], "time_unit": "hour"}}},
            "time_unit is 'hour'",
        ),
        (
            {"trigger": {"periodical": {**WEEKLY["periodical"], "point": ["XYZ"]}}},
            "'XYZ' is not a weekday",
        ),
    ],
)
def test_what_is_no_schedule_body_is_marked_unreadable(
    changes: dict[str, Any], reason: str
) -> None:
    item = normalise(remote(**changes))
    assert reason in item[UNREADABLE]
    assert item["schedule_id"] == "s1"  # still identifiable


def test_a_list_item_without_trigger_or_push_is_a_summary() -> None:
    assert is_summary({"schedule_id": "s1", "name": "weekly", "enabled": True})
    assert not is_summary(remote())


def test_server_defaults_and_unsent_fields_are_not_compared() -> None:
    added = remote(
        push=with_options(time_to_live=86400, apns_production=True, ttl_x=3),
        trigger={"periodical": {**WEEKLY["periodical"]}},
    )
    body, extra = comparable({k: added[k] for k in BODY}, BODY)
    assert body == BODY
    # apns_production has no safe default (JPush v3: production, the SDKs: development).
    assert extra == ("push.body.options.apns_production", "push.body.options.ttl_x")
    # A known field with another value than its default is an edit, and compared.
    body, extra = comparable({**BODY, "push": with_options(time_to_live=60)}, BODY)
    assert body["push"]["body"]["options"]["time_to_live"] == 60 and extra == ()


def recorded_state(body: dict[str, Any]) -> State:
    return apply_event(
        State.new(),
        ScheduleCreated(
            name="weekly",
            plan_id="spring",
            schedule_id="s1",
            body=body,
            digest="sha256:x",
            trigger_kind="periodical",
            at=datetime(2025, 11, 20, tzinfo=UTC),
        ),
    )


NOW = datetime(2025, 11, 20, 12, tzinfo=UTC)


def test_drift_of_sdk_shapes_is_none_and_an_unreadable_answer_is_reported_with_its_id() -> None:
    state = recorded_state(BODY)
    sdk = normalise(
        remote(
            trigger=json.dumps({"periodical": {**WEEKLY["periodical"], "time_unit": "WEEK"}}),
            push={
                **with_body(platform="android"),
                "body": {**with_options(x=1)["body"], "platform": "android"},
            },
        )
    )
    drift = detect_drift(state, RemoteSnapshot(schedules=(sdk,)), {"weekly": "spring"}, NOW)
    assert [(d.kind, d.is_drift) for d in drift] == [(DriftKind.ADDED, False)]
    assert "push.body.options.x" in drift[0].detail
    broken = normalise(remote(trigger="{"))
    drift = detect_drift(state, RemoteSnapshot(schedules=(broken,)), {"weekly": "spring"}, NOW)
    assert [d.kind for d in drift] == [DriftKind.UNREADABLE]
    assert "schedule_id s1" in drift[0].detail and drift[0].remote is None


def test_a_state_holding_upper_case_units_still_plans() -> None:
    """What an older reconcile adopted as EngageLab sent it must not crash every plan."""
    upper = {**WEEKLY["periodical"], "time_unit": "WEEK", "point": ["mon", "FRI"]}
    walls = list(periodical_walls(upper))
    assert walls and {w.strftime("%a") for w in walls} == {"Mon", "Fri"}


def test_another_trigger_kind_is_a_difference_not_an_addition() -> None:
    smart = {"intelligent": {"backup_time": "2025-12-10 09:00:00"}}
    body, extra = comparable({**BODY, "trigger": smart}, BODY)
    assert body["trigger"] == smart and extra == ()


def test_a_field_added_to_the_audience_copy_or_trigger_is_an_edit() -> None:
    """A console edit that widens the audience or adds a link must show as drift."""
    wider = {**PUSH, "to": {"tag": ["fans"], "registration_id": ["r1"]}}
    link = with_body(notification={"alert": "Hi", "android": {"intent": {"url": "x"}}})
    later = {"periodical": {**WEEKLY["periodical"], "extra_day": "SAT"}}
    for changed in ({"push": wider}, {"push": link}, {"trigger": later}):
        body, extra = comparable({**BODY, **changed}, BODY)
        assert body == {**BODY, **changed} and extra == ()


def test_fields_a_server_need_not_echo_are_not_drift() -> None:
    recorded = {**BODY, "push": {**PUSH, "request_id": "reconcile:weekly"}}
    answer = {**BODY, "push": {**PUSH, "custom_args": {}}}  # no request_id, no managed_by
    body, _ = comparable(answer, recorded)
    assert body == recorded


def test_whole_numbers_as_strings_are_numbers() -> None:
    trigger = {"periodical": {**WEEKLY["periodical"], "zone_type": "2", "frequency": "1"}}
    item = normalise(remote(trigger=trigger, push=with_options(time_to_live="60")))
    assert item["trigger"] == WEEKLY
    assert item["push"]["body"]["options"]["time_to_live"] == 60


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"push": {**PUSH, "body": None}}, "push.body is NoneType"),
        ({"push": with_body(options=None)}, "push.body.options is NoneType"),
        ({"push": {**PUSH, "custom_args": [1, 2]}}, "push.custom_args is list"),
        (
            {"trigger": {"periodical": {**WEEKLY["periodical"], "start": "2025-12-01T00:00:00Z"}}},
            "trigger.periodical.start is '2025-12-01T00:00:00Z'",
        ),
        ({"trigger": {"periodical": {**WEEKLY["periodical"], "time": "09:00"}}}, "time is '09:00'"),
        ({"trigger": {"single": {"time": None}}}, "trigger.single.time is None"),
        ({"name": None}, "name is None"),
    ],
)
def test_shapes_the_planner_could_not_read_later_are_unreadable_now(
    changes: dict[str, Any], reason: str
) -> None:
    """Recorded, any of these would crash every later plan: so nothing of them is recorded."""
    assert reason in normalise(remote(**changes))[UNREADABLE]


def test_backup_time_now_is_a_time() -> None:
    smart = {"intelligent": {"backup_time": "now"}}
    assert UNREADABLE not in normalise(remote(trigger=smart))
