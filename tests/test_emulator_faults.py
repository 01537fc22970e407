"""Fault injection and the server-side rate limit, seen over real HTTP."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from reconciler import engagelab as api
from reconciler.emulator import FaultConfig
from tests.support.emulator import EMULATOR_NOW, EmulatorHandle, sample_schedule


def _outcomes(emulator: EmulatorHandle) -> list[str]:
    return [c.outcome for c in emulator.calls()]


def test_lost_post_creates_the_schedule_but_the_client_sees_a_drop(
    emulator: EmulatorHandle,
) -> None:
    emulator.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": "lost"}])
    with pytest.raises(http.client.RemoteDisconnected):
        emulator.request("POST", "/v4/schedules", sample_schedule("promo_01"))
    assert emulator.names() == {"promo_01": 1}
    (call,) = emulator.calls()
    assert (call.status, call.outcome, call.write_applied) == (0, "fault:lost", True)
    # The script was one-shot: the retry succeeds and makes the duplicate a real API would.
    assert emulator.request("POST", "/v4/schedules", sample_schedule("promo_01")).status == 200
    assert emulator.names() == {"promo_01": 2}


def test_lost_never_hits_reads(emulator: EmulatorHandle) -> None:
    emulator.set_faults(rate_lost=1.0)
    assert emulator.request("GET", "/v4/schedules").status == 200
    with pytest.raises(http.client.RemoteDisconnected):
        emulator.request("POST", "/v4/push_plan", {"plan_id": "p"})
    assert _outcomes(emulator) == ["ok", "fault:lost"]
    assert emulator.server.snapshot()["plans"][0]["plan_id"] == "p"


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("429", 429, api.CODE_RATE_LIMITED),
        ("23008", 400, api.CODE_RATE_LIMITED),
        ("502", 502, api.CODE_INTERNAL),
        ("503", 503, api.CODE_INTERNAL),
        ("504", 504, api.CODE_INTERNAL),
    ],
)
def test_scripted_error_faults_answer_without_writing(
    emulator: EmulatorHandle, kind: str, status: int, code: int
) -> None:
    emulator.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": kind}])
    answer = emulator.request("POST", "/v4/schedules", sample_schedule())
    assert (answer.status, answer.json()["error"]["code"]) == (status, code)
    assert emulator.names() == {}
    assert emulator.request("POST", "/v4/schedules", sample_schedule()).status == 200
    assert _outcomes(emulator) == [f"fault:{kind}", "ok"]


def test_script_matches_method_and_path_prefix_in_order(emulator: EmulatorHandle) -> None:
    emulator.set_faults(
        script=[
            {"method": "PUT", "path": "/v4/schedules/", "kind": "503"},
            {"method": "GET", "path": "/v4/push_plan", "kind": "429"},
            {"method": "GET", "path": "/v4/push_plan", "kind": "502"},
        ]
    )
    assert emulator.request("GET", "/v4/schedules").status == 200
    assert emulator.request("GET", "/v4/push_plan/list").status == 429
    assert emulator.request("PUT", "/v4/schedules/x", {"enabled": False}).status == 503
    assert emulator.request("GET", "/v4/push_plan/list").status == 502
    assert emulator.request("GET", "/v4/push_plan/list").status == 200


def test_plan_endpoints_fault_in_the_wrapped_envelope(emulator: EmulatorHandle) -> None:
    emulator.set_faults(script=[{"method": "POST", "path": "/v4/push_plan", "kind": "23008"}])
    answer = emulator.request("POST", "/v4/push_plan", {"plan_id": "p"})
    assert answer.status == 400
    assert answer.json()["error"]["code"] == api.CODE_RATE_LIMITED


def test_slow_answers_arrive_late_but_succeed(emulator: EmulatorHandle) -> None:
    emulator.set_faults(rate_slow=1.0, slow_seconds=0.2)
    started = time.monotonic()
    answer = emulator.request("GET", "/v4/schedules")
    assert time.monotonic() - started >= 0.2
    assert answer.status == 200
    assert _outcomes(emulator) == ["fault:slow"]


def test_random_faults_are_seeded_and_repeatable(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    faults = FaultConfig(rate_429=0.2, rate_23008=0.2, rate_5xx=0.2)
    runs = []
    for _ in range(2):
        emulator = make_emulator(seed=7, faults=faults)
        for _ in range(40):
            emulator.request("GET", "/v4/schedules")
        runs.append(_outcomes(emulator))
    assert runs[0] == runs[1]
    assert {"ok", "fault:429", "fault:23008"} <= set(runs[0])
    assert {o for o in runs[0] if o.startswith("fault:5")} <= {
        "fault:502",
        "fault:503",
        "fault:504",
    }
    assert any(o.startswith("fault:5") for o in runs[0])
    other = make_emulator(seed=8, faults=faults)
    for _ in range(40):
        other.request("GET", "/v4/schedules")
    assert _outcomes(other) != runs[0]


def test_faults_posted_to_the_control_surface(emulator: EmulatorHandle) -> None:
    answer = emulator.request("POST", "/_emulator/faults", {"rate_5xx": 1.0}, auth=None)
    assert answer.status == 200
    assert emulator.request("GET", "/v4/schedules").status in (502, 503, 504)
    assert emulator.request("GET", "/_emulator/names").status == 200  # never faulted
    bad = emulator.request("POST", "/_emulator/faults", {"rate_teapot": 1.0})
    assert bad.status == 400
    assert emulator.request("POST", "/_emulator/faults", {"rate_429": 2.0}).status == 400


def test_server_rate_limit_answers_429_with_retry_after(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    emulator = make_emulator(rate_limit=5)
    answers = [emulator.request("GET", "/v4/schedules") for _ in range(10)]
    assert [a.status for a in answers[:5]] == [200] * 5
    limited = [a for a in answers[5:] if a.status == 429]
    assert len(limited) >= 3
    assert limited[0].headers["Retry-After"] == "1"
    assert limited[0].json() == {"error": {"code": 2002, "message": "Rate limit exceeded"}}  # [v3]
    assert limited[0].headers["X-Rate-Limit-Quota"] == "5"
    assert limited[0].headers["X-Rate-Limit-Remaining"] == "0"
    assert limited[0].headers["X-Rate-Limit-Reset"] == "1"  # as Retry-After
    assert emulator.request("GET", "/_emulator/calls").status == 200  # not limited
    assert "ratelimited" in _outcomes(emulator)
    time.sleep(0.25)  # a token per 0.2 s
    assert emulator.request("GET", "/v4/schedules").status == 200


@pytest.mark.parametrize("kind", ["408", "409", "499"])
def test_gateway_faults_answer_like_a_proxy_without_writing(
    emulator: EmulatorHandle, kind: str
) -> None:
    emulator.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": kind}])
    answer = emulator.request("POST", "/v4/schedules", sample_schedule())
    assert answer.status == int(kind)
    assert answer.headers["Content-Type"] == "text/html" and kind.encode() in answer.body
    assert emulator.names() == {}
    (call,) = emulator.calls()
    assert (call.outcome, call.write_applied, call.code) == (f"fault:{kind}", False, None)


def _late(emulator: EmulatorHandle, seconds: float) -> None:
    emulator.set_faults(
        script=[{"method": "POST", "path": "/v4/schedules", "kind": "late", "seconds": seconds}]
    )


def _wait_for(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)
    return check()


def _late_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()]


def test_a_late_write_answers_504_at_once_and_lands_later(emulator: EmulatorHandle) -> None:
    _late(emulator, 0.6)
    started = time.monotonic()
    answer = emulator.request("POST", "/v4/schedules", sample_schedule("promo_01"))
    # Answered before the write landed (no timing bound: the machine may be loaded).
    assert (answer.status, answer.json()["error"]["code"]) == (504, api.CODE_INTERNAL)
    assert emulator.names() == {}
    late = emulator.calls()[-1]
    assert (late.status, late.outcome, late.write_applied) == (504, "fault:late", False)
    assert _wait_for(lambda: emulator.names() == {"promo_01": 1})
    assert time.monotonic() - started >= 0.6
    late = emulator.calls()[-1]
    assert (late.outcome, late.write_applied) == ("fault:late", True)
    assert len(emulator.calls()) == 1  # the landing is the same log entry, not a new one


def test_a_late_write_is_cancelled_by_stop(emulator: EmulatorHandle) -> None:
    _late(emulator, 0.4)
    assert emulator.request("POST", "/v4/schedules", sample_schedule()).status == 504
    emulator.server.stop()
    assert _late_threads() == []  # no thread is left to write after stop()
    time.sleep(0.6)
    assert emulator.names() == {}
    assert emulator.calls()[-1].write_applied is False


def test_a_late_write_is_cancelled_by_reset(emulator: EmulatorHandle) -> None:
    _late(emulator, 0.4)
    assert emulator.request("POST", "/v4/schedules", sample_schedule()).status == 504
    emulator.reset()
    assert _late_threads() == []
    time.sleep(0.6)
    assert emulator.names() == {} and emulator.calls() == []
    assert emulator.request("POST", "/v4/schedules", sample_schedule()).status == 200


def test_late_faults_posted_to_the_control_surface(emulator: EmulatorHandle) -> None:
    script = [{"method": "POST", "path": "/v4/schedules", "kind": "late", "seconds": 0.2}]
    assert emulator.request("POST", "/_emulator/faults", {"script": script}).status == 200
    assert emulator.request("POST", "/v4/schedules", sample_schedule()).status == 504
    assert _wait_for(lambda: emulator.names() == {"promo_01": 1})


def test_the_date_header_is_the_emulator_clock(emulator: EmulatorHandle) -> None:
    answer = emulator.request("GET", "/v4/schedules")
    assert answer.headers["Date"] == format_datetime(EMULATOR_NOW, usegmt=True)
    emulator.set_now(datetime(2030, 2, 3, 4, 5, 6, 900000, tzinfo=UTC))
    answer = emulator.request("POST", "/v4/schedules", {})  # an error answer carries it too
    assert answer.headers["Date"] == "Sun, 03 Feb 2030 04:05:06 GMT"
