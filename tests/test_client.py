"""The EngageLab client over httpx.MockTransport: retry matrix, envelopes, shapes, pagination."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import httpx
import pytest

from reconciler.api.client import EngageLabClient, RemotePlan
from reconciler.api.ratelimit import RateLimiter
from reconciler.errors import ApiError, ExitCode
from tests.support.fake_http import (
    ITEM,
    NOT_RETRYABLE,
    OK_CREATED,
    PAGE,
    RETRYABLE,
    SCHEDULE,
    TOKEN,
    Script,
    Step,
    answer,
    config,
    create,
    fail,
    list_all,
    run,
)


@pytest.mark.parametrize("name", sorted(RETRYABLE))
def test_reads_retry_each_retryable_answer(name: str) -> None:
    result = run(Script(RETRYABLE[name], answer(200, PAGE)), list_all)
    assert result.error is None
    assert result.value == [ITEM]
    assert result.client.calls_made == 2
    assert len(result.fake.sleeps) == 1


@pytest.mark.parametrize("name", sorted(NOT_RETRYABLE))
def test_reads_do_not_retry_the_rest(name: str) -> None:
    result = run(Script(NOT_RETRYABLE[name], answer(200, PAGE)), list_all)
    assert result.error is not None
    assert not result.error.retryable
    assert not result.error.outcome_unknown
    assert result.client.calls_made == 1
    assert result.error.exit_code is ExitCode.ERROR


@pytest.mark.parametrize(
    "name", ["429", "400/23008", "200/23008", "connect refused", "connect timeout"]
)
def test_create_retries_only_when_nothing_was_done(name: str) -> None:
    result = run(Script(RETRYABLE[name], OK_CREATED), create)
    assert result.error is None
    assert result.value == "s-new"
    assert len(result.script.requests) == 2


@pytest.mark.parametrize(
    "name",
    [
        "400/21030 bare",
        "500/27000",
        "502",
        "503",
        "504",
        "read timeout",
        "dropped after send",
        "read error",
        "write timeout",
    ],
)
def test_create_that_may_have_landed_is_outcome_unknown_and_not_resent(name: str) -> None:
    result = run(Script(RETRYABLE[name], OK_CREATED), create)
    assert result.error is not None
    assert result.error.outcome_unknown
    assert not result.error.retryable
    assert len(result.script.requests) == 1
    assert result.fake.sleeps == []
    assert "POST /v4/schedules" in str(result.error)
    assert "outcome is unknown" in str(result.error)


def test_create_after_a_throttle_then_a_lost_answer_is_outcome_unknown() -> None:
    script = Script(RETRYABLE["429"], fail(httpx.ReadTimeout), OK_CREATED)
    result = run(script, create)
    assert result.error is not None and result.error.outcome_unknown
    assert result.error.attempts == 2
    assert len(script.requests) == 2


@pytest.mark.parametrize("name", sorted(NOT_RETRYABLE))
def test_create_refused_is_a_known_outcome(name: str) -> None:
    result = run(Script(NOT_RETRYABLE[name], OK_CREATED), create)
    if name == "500 plain":  # any 5xx may come after the write
        assert result.error is not None and result.error.outcome_unknown
    else:
        assert result.error is not None and not result.error.outcome_unknown
    assert len(result.script.requests) == 1


def test_create_answered_200_without_an_id_is_outcome_unknown() -> None:
    result = run(Script(answer(200, text="success")), create)
    assert result.error is not None and result.error.outcome_unknown


def test_retries_run_out_with_full_jitter_and_the_exhausted_exit_code() -> None:
    result = run(Script(RETRYABLE["503"]), list_all, rng=0.5, max_attempts=6)
    assert result.error is not None
    assert result.client.calls_made == 6
    assert result.fake.sleeps == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert result.error.exit_code is ExitCode.RETRIES_EXHAUSTED
    assert result.error.retryable and result.error.attempts == 6
    assert not result.error.outcome_unknown  # a GET changes nothing
    assert "gave up after 6 attempts" in str(result.error)


def test_retries_stop_at_the_time_budget() -> None:
    result = run(Script(RETRYABLE["503"]), list_all, rng=1.0, max_retry_seconds=3.0)
    assert result.error is not None and result.error.exhausted
    assert result.fake.sleeps == [0.5, 1.0]  # 0.5 + 1 + 2 would pass 3 s
    assert result.client.calls_made == 3


def test_retry_after_and_rate_limit_reset_are_honoured() -> None:
    script = Script(
        answer(429, {}, retry_after="3"),
        answer(429, {}, x_rate_limit_reset="2"),
        answer(200, PAGE),
    )
    result = run(script, list_all, rng=0.0)
    assert result.error is None
    assert result.fake.sleeps == [3.0, 2.0]


def test_a_server_hint_holds_off_the_shared_limiter() -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    # The limiter's clock stands still, so its waits show exactly what was reserved.
    limiter = RateLimiter(100, burst=1, clock=lambda: 0.0, sleep=record)
    script = Script(answer(429, {}, retry_after="5"), answer(200, PAGE))
    result = run(script, list_all, limiter=limiter)
    assert result.error is None
    assert waits == [pytest.approx(5.0)]  # the retry waited for the hold-off, not one slot


def test_a_put_answered_5xx_may_have_applied_and_is_not_repeated() -> None:
    # Repeated, a first PUT committed late would overwrite whatever a later update sent.
    result = run(Script(RETRYABLE["503"]), lambda c: c.update_schedule("s1", {"enabled": False}))
    assert result.error is not None and result.error.outcome_unknown
    assert result.client.calls_made == 1


def test_every_attempt_takes_a_limiter_token() -> None:
    result = run(Script(RETRYABLE["503"], RETRYABLE["429"], answer(200, PAGE)), list_all)
    assert result.client.calls_made == 3
    assert result.client.limiter.acquired == 3


def test_local_bugs_are_not_retried() -> None:
    result = run(Script(fail(httpx.UnsupportedProtocol)), create)
    assert result.error is not None
    assert not result.error.retryable and not result.error.outcome_unknown
    assert result.client.calls_made == 1


# --- envelopes and shapes -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("step", "status", "code", "message"),
    [
        (answer(400, {"error": {"code": 21003, "message": "bad value"}}), 400, 21003, "bad value"),
        (answer(400, {"code": "21015", "message": "invalid"}), 400, 21015, "invalid"),
        (answer(404, {"code": 8104, "msg": "no such task"}), 404, 8104, "no such task"),
        (answer(418, text="I'm a teapot"), 418, None, 'non-JSON answer: "I\'m a teapot"'),
        (answer(400, text=""), 400, None, "empty answer"),
        (answer(400, [1, 2]), 400, None, "answer without an error message"),
    ],
)
def test_error_envelopes(step: Step, status: int, code: int | None, message: str) -> None:
    result = run(Script(step), lambda c: c.upsert_plan("p1", "d"))
    assert result.error is not None
    assert (result.error.status, result.error.code, result.error.message) == (
        status,
        code,
        message,
    )
    assert str(result.error).startswith(f"POST /v4/push_plan: HTTP {status}")


def test_success_text_bodies_are_success() -> None:
    assert run(Script(answer(text="success")), lambda c: c.upsert_plan("p1", "d")).error is None
    assert run(Script(answer(text="success")), lambda c: c.delete_schedule("s1")).error is None
    assert run(Script(answer(text="")), lambda c: c.delete_schedule("s1")).error is None
    updated = run(Script(answer(text="success")), lambda c: c.update_schedule("s1", {}))
    assert updated.value == {}


def test_upsert_plan_sends_the_documented_body() -> None:
    script = Script(answer(200, {"plan_id": "p1"}))
    run(script, lambda c: c.upsert_plan("p1", "Year end"))
    request = script.requests[0]
    assert (request.method, request.url.path) == ("POST", "/v4/push_plan")
    assert json.loads(request.content) == {"plan_id": "p1", "plan_description": "Year end"}
    assert request.headers["authorization"] == f"Basic {TOKEN}"


@pytest.mark.parametrize(
    "body", [[{"schedule_id": "s1", "name": "t1"}], {"schedule_id": "s1", "name": "t1"}]
)
def test_get_schedule_accepts_array_or_object(body: Any) -> None:
    result = run(Script(answer(200, body)), lambda c: c.get_schedule("s1"))
    assert result.value == {"schedule_id": "s1", "name": "t1"}


@pytest.mark.parametrize(
    "step", [answer(404, {"error": {"code": 8104, "message": "nope"}}), answer(200, [])]
)
def test_get_schedule_unknown_is_none(step: Step) -> None:
    result = run(Script(step), lambda c: c.get_schedule("s1"))
    assert result.error is None and result.value is None


def test_update_returns_the_updated_schedule_from_either_shape() -> None:
    script = Script(answer(200, [{"schedule_id": "s/1", "enabled": False}]))
    result = run(script, lambda c: c.update_schedule("s/1", {"enabled": False}))
    assert result.value == {"schedule_id": "s/1", "enabled": False}
    assert script.requests[0].url.raw_path == b"/v4/schedules/s%2F1"  # an id cannot escape


def test_delete_404_first_time_is_reported_not_found() -> None:
    result = run(
        Script(answer(404, {"error": {"code": 8104, "message": "gone"}})),
        lambda c: c.delete_schedule("s1"),
    )
    assert result.error is not None and result.error.not_found
    assert result.client.calls_made == 1


def test_delete_404_after_a_lost_answer_is_done() -> None:
    script = Script(fail(httpx.ReadTimeout), answer(404, {"code": 8104, "message": "gone"}))
    result = run(script, lambda c: c.delete_schedule("s1"))
    assert result.error is None
    assert len(script.requests) == 2


# --- pagination ---------------------------------------------------------------------------------
def test_list_plans_reads_every_page_and_both_id_names() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        index = int(request.url.params["page_index"])
        assert request.url.params["page_size"] == "100"
        size = 100 if index < 3 else 50
        key = "push_id" if index == 2 else "plan_id"
        items = [{key: f"p{index}_{i}", "plan_description": "d", "count": i} for i in range(size)]
        return httpx.Response(200, json={"push_plan_info": items, "total": 250})

    script = Script(page)
    result = run(script, lambda c: c.list_plans())
    assert len(result.value) == 250
    assert RemotePlan("p2_7", "d", 7) in result.value
    assert len(script.requests) == 3


def test_list_schedules_reads_every_page_once_each() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params["page"])
        # Page 3 repeats an item of page 2, as happens when a schedule is deleted mid-listing.
        ids = {1: ["a", "b"], 2: ["c", "d"], 3: ["d", "e"]}[n]
        items = [{**ITEM, "schedule_id": i} for i in ids]
        body = {"total_pages": 3, "page": n, "schedules": items}
        return httpx.Response(200, json=body)

    script = Script(page)
    result = run(script, list_all)
    assert [s["schedule_id"] for s in result.value] == ["a", "b", "c", "d", "e"]
    assert len(script.requests) == 3


def test_list_stops_on_an_empty_page() -> None:
    script = Script(
        answer(200, {"push_plan_info": [{"plan_id": "p1"}]}), answer(200, {"push_plan_info": []})
    )
    result = run(script, lambda c: c.list_plans())
    assert result.value == [RemotePlan("p1", "")]
    assert len(script.requests) == 2


def test_a_server_ignoring_the_page_number_does_not_loop() -> None:
    same = {**ITEM, "schedule_id": "a"}
    script = Script(answer(200, {"schedules": [same]}))  # same page forever
    result = run(script, list_all)
    assert result.value == [same]
    assert len(script.requests) == 2


def test_unexpected_list_shape_is_an_error() -> None:
    result = run(Script(answer(200, {"push_plan_info": [{"name": "x"}]})), lambda c: c.list_plans())
    assert result.error is not None and "plan without plan_id" in str(result.error)


def test_plan_detail_sends_ids_and_dates() -> None:
    stats = {"p1": {"targets": 10}, "error": {"targets": 1}, "code": {"clicks": 2}}
    script = Script(answer(200, stats))
    result = run(
        script, lambda c: c.plan_detail(["p1", "error"], date(2025, 11, 1), date(2025, 11, 7))
    )
    assert result.value == stats  # plans named "error" or "code" are not error envelopes
    params = script.requests[0].url.params
    assert script.requests[0].url.path == "/v4/status/plan/detail"
    assert (params["plan_ids"], params["start_date"], params["end_date"]) == (
        "p1,error",
        "2025-11-01",
        "2025-11-07",
    )


# --- concurrency --------------------------------------------------------------------------------
def test_many_calls_are_in_flight_at_once() -> None:
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, json={"schedule_id": "x"})

    async def main() -> None:
        async with EngageLabClient(
            config(), transport=httpx.MockTransport(slow), limiter=RateLimiter(1e6)
        ) as client:
            await asyncio.gather(*(client.create_schedule(SCHEDULE) for _ in range(40)))
            assert client.calls_made == 40

    asyncio.run(main())
    assert peak == 40


def test_an_unreachable_base_url_is_named_with_what_to_check() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("All connection attempts failed", request=request)

    async def scenario() -> ApiError:
        client = EngageLabClient(
            config(max_attempts=1, base_url="http://127.0.0.1:9"),
            transport=httpx.MockTransport(refuse),
        )
        try:
            await client.list_schedules()
        except ApiError as error:
            return error
        finally:
            await client.aclose()
        raise AssertionError("no error")

    error = asyncio.run(scenario())
    assert "cannot reach http://127.0.0.1:9" in str(error)
    assert "reconcile emulator" in str(error)
