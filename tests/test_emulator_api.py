"""The emulator's endpoints over real HTTP: auth, envelopes, plans, schedules, quotas, expiry."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from reconciler import engagelab as api
from tests.support.emulator import (
    EMULATOR_NOW,
    MASTER_SECRET,
    EmulatorHandle,
    sample_push,
    sample_schedule,
)


def _create(emulator: EmulatorHandle, name: str, **overrides: object) -> str:
    answer = emulator.request("POST", "/v4/schedules", sample_schedule(name, **overrides))
    assert answer.status == 200, answer.body
    assert answer.json()["name"] == name
    return str(answer.json()["schedule_id"])


def test_wrong_or_missing_credentials_get_401_21004(emulator: EmulatorHandle) -> None:
    bad = "Basic " + base64.b64encode(b"test-app-key:wrong").decode()
    for auth in (None, bad, "Bearer x"):
        answer = emulator.request("GET", "/v4/schedules", auth=auth)
        assert answer.status == 401
        assert answer.json()["error"]["code"] == api.CODE_AUTH_FAILED
    plan = emulator.request("POST", "/v4/push_plan", {"plan_id": "p"}, auth=bad)
    assert (plan.status, plan.json()["error"]["code"]) == (401, api.CODE_AUTH_FAILED)
    assert [c.outcome for c in emulator.calls()] == ["unauthorized"] * 4
    assert emulator.request("GET", "/v4/push_plan/list").json()["total"] == 0


def test_secret_never_appears_in_answers_or_log(emulator: EmulatorHandle) -> None:
    emulator.request("GET", "/v4/schedules/nope")
    emulator.request("GET", "/v4/schedules", auth="Basic " + base64.b64encode(b"x:y").decode())
    seen = [emulator.request("GET", f"/_emulator/{n}").body for n in ("calls", "names", "state")]
    seen.append(repr(emulator.calls()).encode())
    for blob in seen:
        assert MASTER_SECRET.encode() not in blob
        assert b"Basic" not in blob


def test_plan_upsert_lists_once_with_the_new_description(emulator: EmulatorHandle) -> None:
    for desc in ("first", "second"):
        answer = emulator.request(
            "POST", "/v4/push_plan", {"plan_id": "promo", "plan_description": desc}
        )
        assert answer.json() == {"plan_id": "promo"}
    listed = emulator.request("GET", "/v4/push_plan/list?page_index=1&page_size=100").json()
    assert listed["total"] == 1
    (info,) = listed["push_plan_info"]
    assert info["plan_id"] == "promo"
    assert info["plan_description"] == "second"
    assert info["create_time"] == int(EMULATOR_NOW.timestamp() * 1000)  # [sdk] 13-digit ms
    assert len(str(info["create_time"])) == 13
    assert info["last_used_time"] == 0  # never used
    assert isinstance(info["entity_tag"], str)
    assert set(info) == {
        "plan_id",
        "plan_description",
        "count",
        "create_time",
        "last_used_time",
        "entity_tag",
    }


def test_plans_cannot_be_deleted(emulator: EmulatorHandle) -> None:
    emulator.request("POST", "/v4/push_plan", {"plan_id": "promo"})
    answer = emulator.request("DELETE", "/v4/push_plan/promo")
    assert answer.status == 400
    assert answer.json()["error"]["code"] == api.CODE_BAD_VALUE
    assert emulator.request("GET", "/v4/push_plan/list").json()["total"] == 1


def test_plan_cap_refuses_the_next_plan_but_allows_upserts(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    emulator = make_emulator(plan_quota=3)
    for i in range(3):
        assert emulator.request("POST", "/v4/push_plan", {"plan_id": f"p{i}"}).status == 200
    over = emulator.request("POST", "/v4/push_plan", {"plan_id": "p3"})
    assert (over.status, over.json()["error"]["code"]) == (400, api.CODE_QUOTA)
    assert emulator.request("POST", "/v4/push_plan", {"plan_id": "p0"}).status == 200


def test_default_plan_cap_is_100(emulator: EmulatorHandle) -> None:
    for i in range(100):
        emulator.server.call("POST", "/v4/push_plan", {}, json.dumps({"plan_id": f"p{i}"}).encode())
    assert emulator.request("POST", "/v4/push_plan", {"plan_id": "p100"}).status == 400


def test_plan_list_pages(emulator: EmulatorHandle) -> None:
    for i in range(5):
        emulator.request("POST", "/v4/push_plan", {"plan_id": f"p{i}"})
    pages = [
        emulator.request("GET", f"/v4/push_plan/list?page_index={n}&page_size=2").json()
        for n in (1, 2, 3, 4)
    ]
    ids = [[p["plan_id"] for p in page["push_plan_info"]] for page in pages]
    assert ids == [["p0", "p1"], ["p2", "p3"], ["p4"], []]
    assert {page["total"] for page in pages} == {5}
    bad = emulator.request("GET", "/v4/push_plan/list?page_index=0&page_size=2")
    assert (bad.status, bad.json()["error"]["code"]) == (400, api.CODE_BAD_VALUE)


def test_schedule_lifecycle_and_shapes(emulator: EmulatorHandle) -> None:
    emulator.request("POST", "/v4/push_plan", {"plan_id": "promo"})
    sid = _create(emulator, "promo_01", push=sample_push("promo"))
    got = emulator.request("GET", f"/v4/schedules/{sid}").json()
    assert isinstance(got, list)  # [sdk] decoded as a one-item array
    assert got[0] == {"schedule_id": sid, **sample_schedule("promo_01", push=sample_push("promo"))}
    updated = emulator.request("PUT", f"/v4/schedules/{sid}", {"enabled": False})
    assert updated.status == 200
    assert updated.json()["enabled"] is False
    assert updated.json()["push"] == sample_push("promo")
    deleted = emulator.request("DELETE", f"/v4/schedules/{sid}")
    assert (deleted.status, deleted.body) == (200, b"success")  # [sdk] as the Python SDK reads
    assert deleted.headers["Content-Type"] == "application/json"
    gone = emulator.request("GET", f"/v4/schedules/{sid}")
    assert (gone.status, gone.json()["error"]["code"]) == (404, api.CODE_NOT_FOUND)
    plan = emulator.request("GET", "/v4/push_plan/list").json()["push_plan_info"][0]
    assert (plan["count"], plan["last_used_time"]) == (1, int(EMULATOR_NOW.timestamp() * 1000))


def test_unknown_schedule_is_404_8104_for_every_verb(emulator: EmulatorHandle) -> None:
    for method, body in (("GET", None), ("PUT", {"enabled": False}), ("DELETE", None)):
        answer = emulator.request(method, "/v4/schedules/no-such-id", body)
        assert (answer.status, answer.json()["error"]["code"]) == (404, api.CODE_NOT_FOUND)


def test_update_replaces_trigger_and_push_whole(emulator: EmulatorHandle) -> None:
    sid = _create(emulator, "promo_01")
    new_push = {"to": "all", "body": {"platform": "all", "message": {"msg_content": "hi"}}}
    trigger = {"intelligent": {"backup_time": "2025-12-30 10:00:00"}}
    answer = emulator.request("PUT", f"/v4/schedules/{sid}", {"trigger": trigger, "push": new_push})
    assert answer.status == 200
    assert answer.json()["trigger"] == trigger
    assert answer.json()["push"] == new_push
    assert answer.json()["name"] == "promo_01"


def test_update_cannot_change_trigger_kind(emulator: EmulatorHandle) -> None:
    sid = _create(emulator, "promo_01")
    single = {"single": {"time": "2025-12-28 09:00:00"}}
    answer = emulator.request("PUT", f"/v4/schedules/{sid}", {"trigger": single})
    assert (answer.status, answer.json()["error"]["code"]) == (400, api.CODE_SCHEDULE_REFUSED)
    got = emulator.request("GET", f"/v4/schedules/{sid}").json()[0]
    assert "intelligent" in got["trigger"]


def test_refused_update_changes_nothing(emulator: EmulatorHandle) -> None:
    sid = _create(emulator, "promo_01")
    bad_push = sample_push()
    bad_push["body"]["message"] = {"title": "x"}  # with a notification: 21306
    answer = emulator.request("PUT", f"/v4/schedules/{sid}", {"name": "renamed", "push": bad_push})
    assert answer.json()["error"]["code"] == api.CODE_NOTIFICATION_AND_MESSAGE
    assert emulator.names() == {"promo_01": 1}
    empty = emulator.request("PUT", f"/v4/schedules/{sid}", {})
    assert empty.json()["error"]["code"] == api.CODE_MISSING_FIELD
    unknown = emulator.request("PUT", f"/v4/schedules/{sid}", {"colour": "red"})
    assert unknown.json()["error"]["code"] == api.CODE_BAD_VALUE


def test_expired_schedule_leaves_the_list_and_cannot_be_updated(emulator: EmulatorHandle) -> None:
    sid = _create(emulator, "promo_01")  # backup 2025-12-28 09:00 device time: over at 21:00 UTC
    emulator.set_now(EMULATOR_NOW.replace(month=12, day=28, hour=20, minute=59))
    assert emulator.request("GET", f"/v4/schedules/{sid}").status == 200
    emulator.set_now(EMULATOR_NOW.replace(month=12, day=28, hour=21))
    assert emulator.request("GET", f"/v4/schedules/{sid}").status == 404
    assert emulator.request("GET", "/v4/schedules").json()["total_count"] == 0
    answer = emulator.request("PUT", f"/v4/schedules/{sid}", {"enabled": False})
    assert (answer.status, answer.json()["error"]["code"]) == (400, api.CODE_SCHEDULE_REFUSED)
    assert emulator.names() == {}
    assert emulator.names(include_expired=True) == {"promo_01": 1}


def test_backup_time_now_expires_at_creation(emulator: EmulatorHandle) -> None:
    sid = _create(emulator, "blast", trigger={"intelligent": {"backup_time": "now"}})
    assert emulator.request("GET", f"/v4/schedules/{sid}").status == 404
    assert emulator.names(include_expired=True) == {"blast": 1}


def test_schedule_quota_counts_live_schedules_only(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    emulator = make_emulator(schedule_quota=2)
    early = {"single": {"time": "2025-11-21 12:00:00"}}
    _create(emulator, "a", trigger=early)
    _create(emulator, "b")
    over = emulator.request("POST", "/v4/schedules", sample_schedule("c"))
    assert (over.status, over.json()["error"]["code"]) == (400, api.CODE_QUOTA)
    emulator.set_now(EMULATOR_NOW + timedelta(days=1))  # "a" has fired: its slot is free
    _create(emulator, "c")
    assert emulator.names() == {"b": 1, "c": 1}


def test_schedule_list_pages_by_50(emulator: EmulatorHandle) -> None:
    for i in range(51):
        body = json.dumps(sample_schedule(f"s{i:02d}")).encode()
        assert emulator.server.call("POST", "/v4/schedules", {}, body).status == 200
    first = emulator.request("GET", "/v4/schedules?page=1").json()
    second = emulator.request("GET", "/v4/schedules?page=2").json()
    assert (first["total_count"], first["total_pages"], first["page"]) == (51, 2, 1)
    assert len(first["schedules"]) == api.SCHEDULE_PAGE_SIZE
    assert [s["name"] for s in second["schedules"]] == ["s50"]
    assert emulator.request("GET", "/v4/schedules?page=3").json()["schedules"] == []


def test_duplicate_names_are_allowed_and_counted(emulator: EmulatorHandle) -> None:
    _create(emulator, "dup")
    _create(emulator, "dup")
    assert emulator.names() == {"dup": 2}
    assert emulator.request("GET", "/_emulator/names").json() == {"names": {"dup": 2}}


def test_control_surface_is_not_logged_nor_authenticated(emulator: EmulatorHandle) -> None:
    _create(emulator, "a")
    calls = emulator.request("GET", "/_emulator/calls", auth=None).json()["calls"]
    assert [(c["method"], c["path"], c["outcome"], c["write_applied"]) for c in calls] == [
        ("POST", "/v4/schedules", "ok", True)
    ]
    clock = emulator.request("POST", "/_emulator/clock", {"now": "2025-12-29T00:00:00+00:00"})
    assert clock.json() == {"now": "2025-12-29T00:00:00+00:00"}
    assert emulator.names() == {}  # the clock moved past the send
    assert emulator.request("POST", "/_emulator/reset", auth=None).status == 200
    assert emulator.calls() == []
    assert emulator.names(include_expired=True) == {}
    assert emulator.server.now() == EMULATOR_NOW
    assert emulator.request("GET", "/_emulator/nope").status == 404


def test_console_edit_and_delete_bypass_the_api(emulator: EmulatorHandle) -> None:
    sid = _create(emulator, "a")
    emulator.server.edit_schedule(sid, {"name": "edited in console", "enabled": False})
    got = emulator.request("GET", f"/v4/schedules/{sid}").json()[0]
    assert (got["name"], got["enabled"]) == ("edited in console", False)
    emulator.server.delete_schedule(sid)
    assert emulator.request("GET", f"/v4/schedules/{sid}").status == 404
    assert [c.method for c in emulator.calls()] == ["POST", "GET", "GET"]


def test_unknown_endpoint_is_404(emulator: EmulatorHandle) -> None:
    answer = emulator.request("GET", "/v4/nothing")
    assert answer.status == 404
    assert "error" in answer.json()


def test_nan_is_not_json(emulator: EmulatorHandle) -> None:
    raw = json.dumps(sample_schedule()).replace('"Flash sale!"', "NaN").encode()
    answer = emulator.request("POST", "/v4/schedules", raw=raw)
    assert (answer.status, answer.json()["error"]["code"]) == (400, api.CODE_BAD_VALUE)


def test_an_internal_failure_answers_500_not_a_dropped_connection(
    emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(emulator.server._store, "create_schedule", broken)
    answer = emulator.request("POST", "/v4/schedules", sample_schedule())
    assert answer.status == 500
    assert [c.outcome for c in emulator.calls()] == ["crash"]
