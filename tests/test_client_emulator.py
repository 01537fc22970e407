"""The client against the emulator over real HTTP on loopback: faults, lost answers, rate limit."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest
from pydantic import SecretStr

from reconciler.api.client import ClientConfig, EngageLabClient
from reconciler.api.ratelimit import RateLimiter
from reconciler.errors import ApiError, ExitCode
from tests.support.emulator import EmulatorHandle, sample_push, sample_schedule


def schedule_body(name: str = "t1", plan_id: str = "p1") -> dict[str, Any]:
    return sample_schedule(name, push=sample_push(plan_id))


def client_for(handle: EmulatorHandle, **overrides: Any) -> EngageLabClient:
    values: dict[str, Any] = {
        "base_url": handle.base_url,
        "app_key": handle.app_key,
        "master_secret": SecretStr(handle.master_secret),
        "backoff_base": 0.005,  # real sleeps, kept to milliseconds
        "backoff_cap": 0.02,
        "timeout_seconds": 5.0,
    }
    secret_override = overrides.pop("master_secret", None)
    if secret_override is not None:
        values["master_secret"] = SecretStr(secret_override)
    values.update(overrides)
    limiter = RateLimiter(values.get("rate_limit", 500.0))
    return EngageLabClient(ClientConfig(**values), limiter=limiter)


T = Callable[[EngageLabClient], Awaitable[Any]]


def drive(handle: EmulatorHandle, action: T, **overrides: Any) -> tuple[Any, EngageLabClient]:
    client = client_for(handle, **overrides)

    async def main() -> Any:
        async with client:
            return await action(client)

    return asyncio.run(main()), client


async def with_plan(client: EngageLabClient, then: T) -> Any:
    await client.upsert_plan("p1", "Year-end sale")
    return await then(client)


def api_calls(handle: EmulatorHandle, method: str, prefix: str) -> list[Any]:
    return [c for c in handle.calls() if c.method == method and c.path.startswith(prefix)]


def test_every_typed_method_round_trips(emulator: EmulatorHandle) -> None:
    async def story(client: EngageLabClient) -> dict[str, Any]:
        await client.upsert_plan("p1", "Year-end sale")
        await client.upsert_plan("p1", "Year-end sale, renamed")
        plans = await client.list_plans()
        sid = await client.create_schedule(schedule_body())
        got = await client.get_schedule(sid)
        updated = await client.update_schedule(sid, {"enabled": False})
        listed = await client.list_schedules()
        stats = await client.plan_detail(["p1"], date(2025, 11, 1), date(2025, 11, 7))
        await client.delete_schedule(sid)
        gone = await client.get_schedule(sid)
        return locals()

    seen, client = drive(emulator, story)
    assert [(p.plan_id, p.description) for p in seen["plans"]] == [("p1", "Year-end sale, renamed")]
    assert seen["got"]["name"] == "t1" and seen["got"]["schedule_id"] == seen["sid"]
    assert seen["updated"]["enabled"] is False
    assert [s["schedule_id"] for s in seen["listed"]] == [seen["sid"]]
    assert "p1" in seen["stats"]
    assert seen["gone"] is None
    assert client.calls_made == len(emulator.calls()) == 10


def test_lists_read_every_page(emulator: EmulatorHandle) -> None:
    async def story(client: EngageLabClient) -> tuple[int, int]:
        await asyncio.gather(*(client.upsert_plan(f"p{i}", "d") for i in range(100)))
        await asyncio.gather(*(client.create_schedule(schedule_body(f"s{i}")) for i in range(60)))
        return len(await client.list_plans()), len(await client.list_schedules())

    (plans, schedules), _ = drive(emulator, story)
    assert (plans, schedules) == (100, 60)
    assert len(api_calls(emulator, "GET", "/v4/schedules")) > 1  # it did page


@pytest.mark.parametrize("kind", ["429", "23008", "502", "503", "504"])
def test_each_retryable_answer_is_retried(emulator: EmulatorHandle, kind: str) -> None:
    emulator.set_faults(script=[{"method": "GET", "path": "/v4/schedules", "kind": kind}])
    listed, client = drive(emulator, lambda c: c.list_schedules())
    assert listed == []
    assert [c.outcome for c in emulator.calls()] == [f"fault:{kind}", "ok"]
    assert client.calls_made == 2


@pytest.mark.parametrize("kind", ["429", "23008"])
def test_a_throttled_create_is_retried_and_made_once(emulator: EmulatorHandle, kind: str) -> None:
    emulator.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": kind}])
    sid, _ = drive(emulator, lambda c: with_plan(c, lambda c: c.create_schedule(schedule_body())))
    assert sid
    assert emulator.names() == {"t1": 1}
    assert len(api_calls(emulator, "POST", "/v4/schedules")) == 2


@pytest.mark.parametrize("kind", ["502", "503", "504"])
def test_a_create_answered_5xx_is_outcome_unknown(emulator: EmulatorHandle, kind: str) -> None:
    emulator.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": kind}])
    with pytest.raises(ApiError) as caught:
        drive(emulator, lambda c: with_plan(c, lambda c: c.create_schedule(schedule_body())))
    assert caught.value.outcome_unknown and caught.value.status == int(kind)
    assert len(api_calls(emulator, "POST", "/v4/schedules")) == 1


def test_a_lost_create_is_outcome_unknown_and_not_resent(emulator: EmulatorHandle) -> None:
    emulator.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": "lost"}])
    with pytest.raises(ApiError) as caught:
        drive(emulator, lambda c: with_plan(c, lambda c: c.create_schedule(schedule_body())))
    error = caught.value
    assert error.outcome_unknown and not error.retryable and error.status is None
    assert error.attempts == 1 and error.exit_code is ExitCode.ERROR
    assert "POST /v4/schedules" in str(error) and "outcome is unknown" in str(error)
    posts = api_calls(emulator, "POST", "/v4/schedules")
    assert [c.outcome for c in posts] == ["fault:lost"]
    assert emulator.names() == {"t1": 1}  # it did land: the applier must look it up by name


def test_a_create_whose_answer_is_too_slow_is_outcome_unknown(emulator: EmulatorHandle) -> None:
    emulator.set_faults(
        script=[{"method": "POST", "path": "/v4/schedules", "kind": "slow", "seconds": 0.4}]
    )
    with pytest.raises(ApiError) as caught:
        drive(
            emulator,
            lambda c: with_plan(c, lambda c: c.create_schedule(schedule_body())),
            timeout_seconds=0.1,
        )
    assert caught.value.outcome_unknown
    assert "ReadTimeout" in str(caught.value)
    deadline = time.monotonic() + 3
    while emulator.names() != {"t1": 1} and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.names() == {"t1": 1}
    assert len(api_calls(emulator, "POST", "/v4/schedules")) == 1


def test_a_lost_delete_is_retried_and_a_lost_put_is_not(emulator: EmulatorHandle) -> None:
    async def story(client: EngageLabClient) -> tuple[Any, Any]:
        await client.upsert_plan("p1", "d")
        sid = await client.create_schedule(schedule_body())
        emulator.set_faults(
            script=[
                {"method": "PUT", "path": "/v4/schedules", "kind": "lost"},
                {"method": "DELETE", "path": "/v4/schedules", "kind": "lost"},
            ]
        )
        try:
            await client.update_schedule(sid, {"enabled": False})
        except ApiError as error:
            lost_put = error
        await client.delete_schedule(sid)  # the retry meets a 404: already done
        return lost_put, await client.get_schedule(sid)

    (lost_put, gone), _ = drive(emulator, story)
    # A repeated PUT could be overtaken by the lost one landing late: it is outcome unknown.
    assert lost_put.outcome_unknown and gone is None
    assert [c.outcome for c in api_calls(emulator, "PUT", "/v4/")] == ["fault:lost"]
    assert [c.status for c in api_calls(emulator, "DELETE", "/v4/")] == [0, 404]


def test_a_validation_error_is_not_retried(emulator: EmulatorHandle) -> None:
    with pytest.raises(ApiError) as caught:
        drive(emulator, lambda c: c.create_schedule(schedule_body(plan_id="missing")))
    assert not caught.value.retryable and not caught.value.outcome_unknown
    assert caught.value.code is not None and caught.value.status == 400
    assert len(emulator.calls()) == 1


def test_bad_credentials_are_not_retried_and_not_shown(emulator: EmulatorHandle) -> None:
    with pytest.raises(ApiError) as caught:
        drive(emulator, lambda c: c.list_plans(), master_secret="wrong-secret-123")
    assert (caught.value.status, caught.value.code) == (401, 21004)
    assert "wrong-secret-123" not in str(caught.value) + repr(caught.value)
    assert len(emulator.calls()) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_refused_is_retried_then_exhausted(emulator: EmulatorHandle) -> None:
    emulator.base_url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ApiError) as caught:
        drive(emulator, lambda c: c.create_schedule(schedule_body()), max_attempts=3)
    error = caught.value
    assert error.attempts == 3 and error.exhausted and error.retryable
    assert not error.outcome_unknown  # never sent: safe to run again
    assert error.exit_code is ExitCode.RETRIES_EXHAUSTED
    assert "ConnectError" in str(error)


def test_server_retry_after_is_honoured(make_emulator: Callable[..., EmulatorHandle]) -> None:
    handle = make_emulator(rate_limit=4)  # 4 tokens of burst, then 429 with Retry-After: 1
    started = time.monotonic()
    listed, _ = drive(handle, lambda c: asyncio.gather(*(c.list_plans() for _ in range(6))))
    elapsed = time.monotonic() - started
    assert listed == [[]] * 6
    outcomes = [c.outcome for c in handle.calls()]
    assert outcomes.count("ratelimited") >= 1 and outcomes.count("ok") == 6
    assert elapsed >= 1.0  # waited as told, instead of hammering


def test_the_client_limit_holds_against_the_server(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    rate, n = 200.0, 220
    handle = make_emulator(rate_limit=rate)
    client = client_for(handle, rate_limit=rate)
    gate = asyncio.Semaphore(16)

    async def one(c: EngageLabClient) -> None:
        async with gate:
            await c.list_plans()

    async def main() -> float:
        async with client:
            await client.list_plans()  # warm the connection
            start = time.monotonic()
            await asyncio.gather(*(one(client) for _ in range(n)))
            return time.monotonic() - start

    elapsed = asyncio.run(main())
    achieved = n / elapsed
    burst = client.limiter.burst
    assert elapsed >= (n - burst) / rate * 0.98  # never faster than configured
    assert achieved >= rate * 0.7  # and not far below it, even on a loaded machine
    assert [c.outcome for c in handle.calls()].count("ratelimited") == 0


def test_no_secret_in_logs_or_errors(
    emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "reconciler", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    emulator.set_faults(
        script=[
            {"method": "GET", "path": "/v4/push_plan", "kind": "503"},
            {"method": "POST", "path": "/v4/schedules", "kind": "lost"},
        ]
    )
    errors: list[str] = []

    async def story(client: EngageLabClient) -> None:
        await client.upsert_plan("p1", "d")
        await client.list_plans()
        for call in (
            lambda: client.create_schedule(schedule_body()),
            lambda: client.create_schedule(schedule_body(plan_id="nope")),
            lambda: client.delete_schedule("missing"),
        ):
            try:
                await call()
            except ApiError as exc:
                errors.extend([str(exc), repr(exc), exc.message])
        errors.append(repr(client))

    drive(emulator, story)
    assert len(errors) == 10
    assert any("httpcore" in r.name for r in caplog.records)  # the wire was logged...
    token = emulator.auth_header().split()[1]
    for text in [caplog.text, *errors, *(str(r.__dict__) for r in caplog.records)]:
        assert emulator.master_secret not in text  # ...but never the secret
        assert token not in text
