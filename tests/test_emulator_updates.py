"""PUT /v4/schedules/{id} with only the fields that change: merged, the merged task valid (#13)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler import engagelab as api
from tests.support.emulator import EMULATOR_NOW, EmulatorHandle, sample_push, sample_schedule

# Started ten days before EMULATOR_NOW (2025-11-20 12:00 UTC), daily until January.
RUNNING = {
    "periodical": {
        "start": "2025-11-10 00:00:00",
        "end": "2026-01-31 00:00:00",
        "time": "09:00:00",
        "time_unit": "day",
    }
}


def _create(emulator: EmulatorHandle, **overrides: Any) -> str:
    answer = emulator.request("POST", "/v4/schedules", sample_schedule(**overrides))
    assert answer.status == 200, answer.body
    return str(answer.json()["schedule_id"])


def _put(emulator: EmulatorHandle, sid: str, body: dict[str, Any]) -> Any:
    return emulator.request("PUT", f"/v4/schedules/{sid}", body)


def test_a_periodical_whose_start_is_past_may_be_created(emulator: EmulatorHandle) -> None:
    """The rule made explicit: `start` in the past is fine while an occurrence is left."""
    _create(emulator, trigger=RUNNING)


@pytest.mark.parametrize(
    "change",
    [
        {"name": "renamed"},
        {"enabled": False},
        {"push": sample_push()},
        {"name": "both", "enabled": False},
    ],
)
def test_a_put_without_trigger_does_not_rejudge_the_stored_one(
    emulator: EmulatorHandle, change: dict[str, Any]
) -> None:
    sid = _create(emulator, trigger=RUNNING)
    # Let the clock run until the stored trigger could not be created any more (its start is
    # months past): a copy-only edit of the running task still passes.
    emulator.set_now(EMULATOR_NOW.replace(month=12, day=30))
    answer = _put(emulator, sid, change)
    assert answer.status == 200, answer.body
    merged = {"schedule_id": sid, **sample_schedule(trigger=RUNNING), **change}
    assert answer.json() == merged
    assert emulator.request("GET", f"/v4/schedules/{sid}").json() == [merged]


def test_a_put_with_trigger_is_judged_like_a_create(emulator: EmulatorHandle) -> None:
    sid = _create(emulator, trigger={"single": {"time": "2025-11-21 12:00:00"}})
    too_soon = {"single": {"time": "2025-11-20 12:01:00"}}  # under the 3-minute lead
    answer = _put(emulator, sid, {"name": "moved", "trigger": too_soon})
    assert (answer.status, answer.json()["error"]["code"]) == (400, api.CODE_SCHEDULE_REFUSED)
    got = emulator.request("GET", f"/v4/schedules/{sid}").json()[0]
    assert got["name"] == "promo_01"  # refused whole: the name did not change either
    later = {"single": {"time": "2025-11-22 08:00:00"}}
    assert _put(emulator, sid, {"trigger": later}).json()["trigger"] == later


def test_a_resent_running_periodical_is_valid_while_an_occurrence_is_left(
    emulator: EmulatorHandle,
) -> None:
    """JPush v3's update example moves `end` of a task started long ago: the same trigger sent
    again is judged at `now`, and a past `start` alone does not refuse it."""
    sid = _create(emulator, trigger=RUNNING)
    emulator.set_now(EMULATOR_NOW.replace(month=12, day=30))
    longer = {"periodical": {**RUNNING["periodical"], "end": "2026-02-28 00:00:00"}}
    assert _put(emulator, sid, {"trigger": RUNNING}).status == 200
    assert _put(emulator, sid, {"trigger": longer}).json()["trigger"] == longer
    over = {"periodical": {**RUNNING["periodical"], "end": "2025-12-29 00:00:00"}}
    answer = _put(emulator, sid, {"trigger": over})  # no occurrence left after now
    assert (answer.status, answer.json()["error"]["code"]) == (400, api.CODE_SCHEDULE_REFUSED)


def test_a_put_replaces_push_whole_and_validates_it(emulator: EmulatorHandle) -> None:
    sid = _create(emulator)
    partial = {"body": {"platform": "android"}}  # v3: "WRONG" - push is not merged inside
    answer = _put(emulator, sid, {"push": partial})
    assert answer.status == 400
    assert emulator.request("GET", f"/v4/schedules/{sid}").json()[0]["push"] == sample_push()
