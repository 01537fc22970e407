"""Each invalid input listed in engagelab-api.md is refused by the emulator with its code."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from reconciler import engagelab as api
from tests.support.emulator import EmulatorHandle, sample_push, sample_schedule

Mutator = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutator:
    def mutate(schedule: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = schedule
        for key in parents:
            target = target[key]
        target[last] = value

    return mutate


def _drop(path: str) -> Mutator:
    def mutate(schedule: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = schedule
        for key in parents:
            target = target[key]
        del target[last]

    return mutate


def _per(**fields: Any) -> dict[str, Any]:
    base = {
        "start": "2025-12-01 00:00:00",
        "end": "2026-01-31 00:00:00",
        "time": "09:00:00",
        "time_unit": "week",
        "point": ["MON"],
    }
    base.update(fields)
    return {"periodical": {k: v for k, v in base.items() if v is not None}}


REFUSED = api.CODE_SCHEDULE_REFUSED
SCHEDULE_CASES: list[tuple[str, Mutator, int]] = [
    ("name missing", _drop("name"), api.CODE_MISSING_FIELD),
    ("name bad chars", _set("name", "promo-01"), REFUSED),
    ("name too long", _set("name", "a" * 256), REFUSED),
    ("name cjk too long", _set("name", "促" * 86), REFUSED),  # 258 bytes
    ("enabled missing", _drop("enabled"), api.CODE_MISSING_FIELD),
    ("enabled false on create", _set("enabled", False), REFUSED),
    ("trigger missing", _drop("trigger"), api.CODE_MISSING_FIELD),
    ("trigger empty", _set("trigger", {}), REFUSED),
    (
        "two trigger kinds",
        _set(
            "trigger",
            {
                "single": {"time": "2025-12-28 09:00:00"},
                "intelligent": {"backup_time": "2025-12-28 09:00:00"},
            },
        ),
        REFUSED,
    ),
    ("unknown trigger kind", _set("trigger", {"cron": {"expr": "* * *"}}), REFUSED),
    ("single time missing", _set("trigger", {"single": {}}), api.CODE_MISSING_FIELD),
    ("single ISO time", _set("trigger", {"single": {"time": "2025-12-28T09:00:00"}}), REFUSED),
    ("single short time", _set("trigger", {"single": {"time": "2025-12-28 9:00:00"}}), REFUSED),
    ("single in the past", _set("trigger", {"single": {"time": "2025-11-20 11:00:00"}}), REFUSED),
    (
        "single under 3 minutes",
        _set("trigger", {"single": {"time": "2025-11-20 12:02:00"}}),
        REFUSED,
    ),
    (
        "single over a year",
        _set("trigger", {"single": {"time": "2026-11-21 12:00:00"}}),
        REFUSED,
    ),
    (
        "single bad zone_type",
        _set("trigger", {"single": {"time": "2025-12-28 09:00:00", "zone_type": 3}}),
        REFUSED,
    ),
    ("smart bad backup_time", _set("trigger.intelligent.backup_time", "soon"), REFUSED),
    (
        "smart backup over a year",
        _set("trigger.intelligent.backup_time", "2027-01-01 00:00:00"),
        REFUSED,
    ),
    ("periodical no start", _set("trigger", _per(start=None)), api.CODE_MISSING_FIELD),
    ("periodical bad time", _set("trigger", _per(time="9:00")), REFUSED),
    ("periodical end before start", _set("trigger", _per(end="2025-11-30 00:00:00")), REFUSED),
    ("periodical span > 1 year", _set("trigger", _per(end="2026-12-02 00:00:00")), REFUSED),
    ("periodical bad unit", _set("trigger", _per(time_unit="year")), REFUSED),
    ("periodical frequency 101", _set("trigger", _per(frequency=101)), REFUSED),
    ("periodical week bad point", _set("trigger", _per(point=["MONDAY"])), REFUSED),
    ("periodical week no point", _set("trigger", _per(point=None)), REFUSED),
    ("periodical day with point", _set("trigger", _per(time_unit="day")), REFUSED),
    ("periodical month bad point", _set("trigger", _per(time_unit="month", point=["32"])), REFUSED),
    (
        "periodical all in the past",
        _set("trigger", _per(start="2025-01-01 00:00:00", end="2025-06-01 00:00:00")),
        REFUSED,
    ),
    ("push missing", _drop("push"), api.CODE_MISSING_FIELD),
    ("to missing", _drop("push.to"), api.CODE_MISSING_FIELD),
    ("to unknown kind", _set("push.to", {"everyone": True}), api.CODE_BAD_VALUE),
    ("to 21 tags", _set("push.to", {"tag": [f"t{i}" for i in range(21)]}), api.CODE_BAD_VALUE),
    ("to tag over 40 bytes", _set("push.to", {"tag_and": ["x" * 41]}), api.CODE_BAD_VALUE),
    ("to empty tag list", _set("push.to", {"tag_not": []}), api.CODE_BAD_VALUE),
    ("to 1001 aliases", _set("push.to", {"alias": ["a"] * 1001}), api.CODE_BAD_VALUE),
    (
        "to 1001 registration ids",
        _set("push.to", {"registration_id": ["r"] * 1001}),
        api.CODE_BAD_VALUE,
    ),
    ("to seg without id", _set("push.to", {"seg": {}}), api.CODE_BAD_VALUE),
    ("body missing", _drop("push.body"), api.CODE_MISSING_FIELD),
    ("platform missing", _drop("push.body.platform"), api.CODE_MISSING_FIELD),
    ("platform unknown", _set("push.body.platform", ["windows"]), api.CODE_BAD_VALUE),
    (
        "notification and message",
        _set("push.body.message", {"title": "x"}),  # no msg_content beside a notification
        api.CODE_NOTIFICATION_AND_MESSAGE,
    ),
    ("no content", _drop("push.body.notification"), api.CODE_MISSING_FIELD),
    ("body over 4000 bytes", _set("push.body.notification.alert", "x" * 4000), 21005),
    ("ttl over 10 days", _set("push.body.options.time_to_live", 864001), api.CODE_BAD_OPTION),
    ("ttl not a number", _set("push.body.options.time_to_live", "1d"), api.CODE_BAD_OPTION),
    ("big push over 1440", _set("push.body.options.big_push_duration", 1441), api.CODE_BAD_OPTION),
    ("cid over 64", _set("push.body.options.cid", "c" * 65), api.CODE_BAD_OPTION),
    ("unknown plan_id", _set("push.body.options.plan_id", "no_such_plan"), api.CODE_BAD_OPTION),
    ("apns_production text", _set("push.body.options.apns_production", "yes"), api.CODE_BAD_OPTION),
]


@pytest.mark.parametrize(
    ("mutate", "code"), [c[1:] for c in SCHEDULE_CASES], ids=[c[0] for c in SCHEDULE_CASES]
)
def test_invalid_schedule_is_refused_with_its_code(
    emulator: EmulatorHandle, mutate: Mutator, code: int
) -> None:
    body = copy.deepcopy(sample_schedule())
    mutate(body)
    answer = emulator.request("POST", "/v4/schedules", body)
    # [doc] 21306 comes with HTTP 401 (skill error-code table); every other refusal with 400.
    assert answer.status == (401 if code == api.CODE_NOTIFICATION_AND_MESSAGE else 400)
    assert answer.json() == {"error": {"code": code, "message": answer.json()["error"]["message"]}}
    assert emulator.names(include_expired=True) == {}


def test_the_sample_schedule_itself_is_valid(emulator: EmulatorHandle) -> None:
    """The cases above are only meaningful if the unmutated body passes."""
    answer = emulator.request("POST", "/v4/schedules", sample_schedule())
    assert answer.status == 200


@pytest.mark.parametrize(
    "trigger",
    [
        _per(),
        _per(time_unit="day", point=None, frequency=2),
        _per(time_unit="month", point=["01", "15"], zone_type=2),
        {"single": {"time": "2025-11-20 12:04:00", "zone_type": 2}},
        {"intelligent": {"backup_time": "now"}},
    ],
)
def test_valid_triggers_are_accepted(emulator: EmulatorHandle, trigger: dict[str, Any]) -> None:
    answer = emulator.request("POST", "/v4/schedules", sample_schedule(trigger=trigger))
    assert answer.status == 200, answer.body


def test_body_limit_counts_utf8_bytes(emulator: EmulatorHandle) -> None:
    push = sample_push()
    overhead = api.body_size(push) - len("Flash sale!")
    push["body"]["notification"]["alert"] = "é" * ((api.BODY_MAX_BYTES - overhead) // 2)
    assert api.body_size(push) <= api.BODY_MAX_BYTES
    ok = emulator.request("POST", "/v4/schedules", sample_schedule(push=push))
    push["body"]["notification"]["alert"] += "éé"
    too_big = emulator.request("POST", "/v4/schedules", sample_schedule("b", push=push))
    assert (ok.status, too_big.status) == (200, 400)
    assert too_big.json()["error"]["code"] == api.CODE_BODY_TOO_LARGE


PLAN_CASES: list[tuple[str, dict[str, Any], int]] = [
    ("empty id", {"plan_id": "", "plan_description": "x"}, api.CODE_EMPTY_PLAN_ID),
    ("missing id", {"plan_description": "x"}, api.CODE_EMPTY_PLAN_ID),
    ("leading underscore", {"plan_id": "_promo"}, api.CODE_BAD_VALUE),
    ("dash", {"plan_id": "promo-1"}, api.CODE_BAD_VALUE),
    ("51 characters", {"plan_id": "p" * 51}, api.CODE_BAD_VALUE),
    ("not a string", {"plan_id": 12}, api.CODE_BAD_VALUE),
    ("description too long", {"plan_id": "p", "plan_description": "d" * 201}, api.CODE_BAD_VALUE),
]


@pytest.mark.parametrize(
    ("body", "code"), [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES]
)
def test_invalid_plan_is_refused_in_the_wrapped_envelope(
    emulator: EmulatorHandle, body: dict[str, Any], code: int
) -> None:
    answer = emulator.request("POST", "/v4/push_plan", body)
    assert answer.status == 400
    assert set(answer.json()) == {"error"}  # [doc] push-plan-api "Failed Response"
    assert answer.json()["error"]["code"] == code
    if code == api.CODE_EMPTY_PLAN_ID:
        assert answer.json()["error"]["message"] == "Empty plan id"  # [doc] word for word
    listed = emulator.request("GET", "/v4/push_plan/list?page_index=1&page_size=100").json()
    assert listed["total"] == 0


def test_plan_id_of_50_characters_is_accepted(emulator: EmulatorHandle) -> None:
    answer = emulator.request("POST", "/v4/push_plan", {"plan_id": "P" * 50})
    assert answer.status == 200
    assert answer.json() == {"plan_id": "P" * 50}


def test_malformed_json_is_a_bad_value(emulator: EmulatorHandle) -> None:
    answer = emulator.request("POST", "/v4/schedules", raw=b"{not json")
    assert (answer.status, answer.json()["error"]["code"]) == (400, api.CODE_BAD_VALUE)
    answer = emulator.request("POST", "/v4/schedules", raw=b"[1, 2]")
    assert (answer.status, answer.json()["error"]["code"]) == (400, api.CODE_BAD_VALUE)
