"""Envelopes, statuses, headers and types the emulator answers like EngageLab (issue #13, 7)."""

from __future__ import annotations

import pytest

from reconciler import engagelab as api
from tests.support.emulator import EmulatorHandle, sample_push, sample_schedule

RATE_HEADERS = ("X-Rate-Limit-Quota", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v4/push_plan"),
        ("PUT", "/v4/push_plan"),
        ("POST", "/v4/push_plan/list"),
        ("DELETE", "/v4/schedules"),
        ("PUT", "/v4/schedules"),
        ("POST", "/v4/schedules/some-id"),
        ("PATCH", "/v4/schedules/some-id"),
        ("POST", "/v4/status/plan/detail"),
    ],
)
def test_a_wrong_method_gets_405_with_21001(
    emulator: EmulatorHandle, method: str, path: str
) -> None:
    answer = emulator.request(method, path, {})
    assert answer.status == 405
    assert answer.json()["error"]["code"] == 21001  # [doc] skill error-code table
    assert [c.status for c in emulator.calls()] == [405]


def test_an_unknown_path_is_still_404(emulator: EmulatorHandle) -> None:
    assert emulator.request("POST", "/v4/nothing", {}).status == 404
    assert emulator.request("GET", "/v4/schedules/a/b").status == 404


def test_every_api_answer_carries_the_jp3_rate_headers(emulator: EmulatorHandle) -> None:
    answers = [
        emulator.request("GET", "/v4/schedules"),
        emulator.request("GET", "/v4/schedules/missing"),
        emulator.request("POST", "/v4/push_plan", {"plan_id": ""}),
        emulator.request("GET", "/v4/schedules", auth=None),
    ]
    for answer in answers:
        assert all(h in answer.headers for h in RATE_HEADERS), answer.headers
        assert answer.headers["X-Rate-Limit-Quota"] == "500"  # [doc] 500/s per AppKey
        assert 0 <= int(answer.headers["X-Rate-Limit-Remaining"]) < 500
        assert int(answer.headers["X-Rate-Limit-Reset"]) == 0  # [ours] within the 1 s window
    remaining = [int(a.headers["X-Rate-Limit-Remaining"]) for a in answers]
    assert remaining == sorted(remaining, reverse=True)
    assert "X-Rate-Limit-Quota" not in emulator.request("GET", "/_emulator/calls").headers


def test_faults_carry_the_rate_headers_too(emulator: EmulatorHandle) -> None:
    emulator.set_faults(script=[{"method": "GET", "path": "/v4/schedules", "kind": "23008"}])
    answer = emulator.request("GET", "/v4/schedules")
    assert (answer.status, answer.json()["error"]["code"]) == (400, api.CODE_RATE_LIMITED)
    assert all(h in answer.headers for h in RATE_HEADERS)


def test_notification_and_message_together_are_accepted(emulator: EmulatorHandle) -> None:
    """[doc] the zh_CN create-push example carries both; the skill allows them "in some cases"."""
    push = sample_push()
    push["body"]["message"] = {"msg_content": "Flash sale details", "title": "Sale"}
    answer = emulator.request("POST", "/v4/schedules", sample_schedule(push=push))
    assert answer.status == 200, answer.body
    sid = answer.json()["schedule_id"]
    assert emulator.request("GET", f"/v4/schedules/{sid}").json()[0]["push"] == push


def test_21306_comes_with_http_401(emulator: EmulatorHandle) -> None:
    push = sample_push()
    push["body"]["message"] = {"title": "no content"}
    answer = emulator.request("POST", "/v4/schedules", sample_schedule(push=push))
    assert answer.status == 401  # [doc] skill error-code table
    assert answer.json()["error"]["code"] == api.CODE_NOTIFICATION_AND_MESSAGE
    assert emulator.names(include_expired=True) == {}


def test_plan_list_times_are_milliseconds_and_entity_tag_follows_the_description(
    emulator: EmulatorHandle,
) -> None:
    emulator.request("POST", "/v4/push_plan", {"plan_id": "p", "plan_description": "one"})
    first = emulator.request("GET", "/v4/push_plan/list").json()["push_plan_info"][0]
    assert isinstance(first["create_time"], int) and len(str(first["create_time"])) == 13
    emulator.request("POST", "/v4/push_plan", {"plan_id": "p", "plan_description": "two"})
    second = emulator.request("GET", "/v4/push_plan/list").json()["push_plan_info"][0]
    assert second["create_time"] == first["create_time"]
    assert second["entity_tag"] != first["entity_tag"]


def test_schedule_delete_answers_success_as_json(emulator: EmulatorHandle) -> None:
    sid = emulator.request("POST", "/v4/schedules", sample_schedule()).json()["schedule_id"]
    answer = emulator.request("DELETE", f"/v4/schedules/{sid}")
    assert (answer.status, answer.body) == (200, b"success")
    assert answer.headers["Content-Type"] == "application/json"
