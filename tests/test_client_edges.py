"""Client edges: guarded writes, outcome-unknown answers, a write that lands after the client gave
up, the server's Date, the request timeout knob and the AppKey fingerprint.

Against the emulator over real loopback HTTP wherever a request crosses the API.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from reconciler import engagelab as api
from reconciler.api.client import ClientConfig, EngageLabClient
from reconciler.api.ratelimit import RateLimiter
from reconciler.cli.common import api_parent, client_config, project_parent
from reconciler.errors import ApiError, ConfigError
from tests.support.emulator import EmulatorHandle, sample_push, sample_schedule

SCHEDULES = "/v4/schedules"


def body(name: str = "t1") -> dict[str, Any]:
    return sample_schedule(name, push=sample_push("p1"))


class Events:
    """Records limiter acquisitions, guard questions and sleeps, in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, float]] = []

    async def sleep(self, seconds: float) -> None:
        self.log.append(("sleep", seconds))

    def names(self) -> list[str]:
        return [what for what, _ in self.log]


class RecordingLimiter(RateLimiter):
    def __init__(self, events: Events) -> None:
        super().__init__(1e6)
        self._events = events

    async def acquire(self) -> None:
        self._events.log.append(("acquire", 0.0))
        await super().acquire()


def make_client(
    base_url: str, events: Events | None = None, *, app_key: str = "test-app-key", **over: Any
) -> EngageLabClient:
    from tests.support.emulator import MASTER_SECRET

    values: dict[str, Any] = {
        "base_url": base_url,
        "app_key": app_key,
        "master_secret": SecretStr(MASTER_SECRET),
        "backoff_base": 0.005,
        "backoff_cap": 0.02,
        "timeout_seconds": 5.0,
        "connect_timeout_seconds": 2.0,
    }
    values.update(over)
    events = events or Events()
    return EngageLabClient(
        ClientConfig(**values), limiter=RecordingLimiter(events), sleep=events.sleep
    )


def run(client: EngageLabClient, action: Callable[[EngageLabClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with client:
            return await action(client)

    return asyncio.run(main())


def fails(client: EngageLabClient, action: Callable[[EngageLabClient], Awaitable[Any]]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        run(client, action)
    return caught.value


def posts(emulator: EmulatorHandle) -> list[Any]:
    return [c for c in emulator.calls() if c.method == "POST" and c.path == SCHEDULES]


def with_plan(then: Callable[[EngageLabClient], Awaitable[Any]]) -> Any:
    async def action(client: EngageLabClient) -> Any:
        await client.upsert_plan("p1", "Plan")
        return await then(client)

    return action


class Guard:
    """Answers None (send) for the first `allow` questions, then `reason`; records each."""

    def __init__(self, events: Events, allow: int, reason: str = "too close to its send time"):
        self.events, self.allow, self.reason = events, allow, reason
        self.asked: list[float] = []

    def __call__(self, worst: float) -> str | None:
        self.asked.append(worst)
        self.events.log.append(("guard", worst))
        return None if len(self.asked) <= self.allow else self.reason


# --- A. guarded write attempts ----------------------------------------------------------------
def test_a_guard_refusing_the_retry_stops_after_one_post(emulator: EmulatorHandle) -> None:
    emulator.set_faults(script=[{"method": "POST", "path": SCHEDULES, "kind": "429"}])
    events = Events()
    client = make_client(emulator.base_url, events)
    guard = Guard(events, allow=1)
    error = fails(client, with_plan(lambda c: c.create_schedule(body(), guard=guard)))
    assert error.gated and not error.retryable and not error.outcome_unknown
    assert "too close to its send time" in str(error) and "not sent" in str(error)
    assert error.attempts == 1 and error.status is None
    assert [c.outcome for c in posts(emulator)] == ["fault:429"]  # exactly one POST reached it
    assert emulator.names() == {}
    # Asked after the limiter let the attempt through, just before sending.
    assert events.names()[-3:] == ["acquire", "guard", "guard"]
    assert "sleep" not in events.names()  # refused before the useless sleep


def test_the_guard_is_asked_before_every_attempt_with_the_worst_landing_time(
    emulator: EmulatorHandle,
) -> None:
    emulator.set_faults(
        script=[
            {"method": "POST", "path": SCHEDULES, "kind": "429"},
            {"method": "POST", "path": SCHEDULES, "kind": "23008"},
        ]
    )
    events = Events()
    client = make_client(
        emulator.base_url, events, timeout_seconds=3.0, connect_timeout_seconds=1.5
    )
    guard = Guard(events, allow=99)
    assert run(client, with_plan(lambda c: c.create_schedule(body(), guard=guard)))
    assert client.worst_landing_seconds == 4.5  # connect + one request timeout
    # First attempt, then per retry: before the sleep (delay + worst), and after it (worst).
    assert guard.asked[::2] == [4.5, 4.5, 4.5]
    assert all(w > 4.5 for w in guard.asked[1::2]) and len(guard.asked) == 5
    creates = [e for e in events.names() if e != "acquire"]
    assert creates == ["guard", "guard", "sleep", "guard", "guard", "sleep", "guard"]
    assert len(posts(emulator)) == 3 and emulator.names() == {"t1": 1}


def test_a_guard_refusing_the_first_attempt_sends_nothing(emulator: EmulatorHandle) -> None:
    events = Events()
    guard = Guard(events, allow=0, reason="the version it changes has begun firing")
    error = fails(
        make_client(emulator.base_url, events), lambda c: c.create_schedule(body(), guard=guard)
    )
    assert error.gated and error.attempts == 0 and not error.outcome_unknown
    assert "has begun firing" in str(error)
    assert emulator.calls() == []


def test_a_gated_update_after_a_throttle_is_unsent(emulator: EmulatorHandle) -> None:
    async def story(client: EngageLabClient) -> Any:
        await client.upsert_plan("p1", "Plan")
        sid = await client.create_schedule(body())
        emulator.set_faults(script=[{"method": "PUT", "path": SCHEDULES, "kind": "429"}])
        return await client.update_schedule(sid, {"enabled": False}, guard=guard)

    events = Events()
    guard = Guard(events, allow=1)
    error = fails(make_client(emulator.base_url, events), story)
    assert error.gated and not error.outcome_unknown and not error.retryable  # 429: not applied
    assert "HTTP 429" in str(error)  # what the attempt before answered
    assert [c.outcome for c in emulator.calls() if c.method == "PUT"] == ["fault:429"]


def test_an_update_answered_5xx_is_unknown_and_not_repeated(emulator: EmulatorHandle) -> None:
    async def story(client: EngageLabClient) -> Any:
        await client.upsert_plan("p1", "Plan")
        sid = await client.create_schedule(body())
        emulator.set_faults(script=[{"method": "PUT", "path": SCHEDULES, "kind": "503"}])
        return await client.update_schedule(sid, {"enabled": False})

    error = fails(make_client(emulator.base_url, Events()), story)
    assert error.outcome_unknown and not error.gated
    assert [c.outcome for c in emulator.calls() if c.method == "PUT"] == ["fault:503"]


def test_an_update_the_guard_allows_is_sent(emulator: EmulatorHandle) -> None:
    async def story(client: EngageLabClient) -> Any:
        await client.upsert_plan("p1", "Plan")
        sid = await client.create_schedule(body())
        return await client.update_schedule(sid, {"enabled": False}, guard=guard)

    events = Events()
    guard = Guard(events, allow=99)
    assert run(make_client(emulator.base_url, events), story)["enabled"] is False
    assert guard.asked == [7.0]


class Stalling(httpx.AsyncBaseTransport):
    """Never answers within `seconds` (httpx's own timeouts do not apply to a custom transport)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        await asyncio.sleep(self.seconds)
        return httpx.Response(200, json={"schedule_id": "s1"})


def stalling_client(seconds: float) -> tuple[EngageLabClient, Stalling]:
    transport = Stalling(seconds)
    config = ClientConfig(
        base_url="https://pushapi-sgp.engagelab.com",
        app_key="k",
        master_secret=SecretStr("s3cret"),
        timeout_seconds=0.15,
        connect_timeout_seconds=0.05,
    )
    return EngageLabClient(config, transport=transport), transport


def test_a_guarded_attempt_is_held_to_its_worst_landing_time() -> None:
    client, transport = stalling_client(5.0)
    started = time.monotonic()
    error = fails(client, lambda c: c.create_schedule(body(), guard=lambda worst: None))
    assert time.monotonic() - started < 2
    assert error.outcome_unknown and not error.gated and transport.requests == 1
    assert "no answer within 0.2 s" in str(error)
    # Unguarded, the same slow answer is waited for.
    client, _ = stalling_client(0.4)
    assert run(client, lambda c: c.create_schedule(body())) == "s1"


# --- B. answers that are not a definite refusal -------------------------------------------------
@pytest.mark.parametrize("kind", ["408", "409", "499"])
def test_a_create_answered_with_an_ambiguous_status_is_outcome_unknown(
    emulator: EmulatorHandle, kind: str
) -> None:
    emulator.set_faults(script=[{"method": "POST", "path": SCHEDULES, "kind": kind}])
    error = fails(make_client(emulator.base_url), with_plan(lambda c: c.create_schedule(body())))
    assert error.outcome_unknown and not error.retryable and not error.gated
    assert error.status == int(kind) and error.code is None
    assert [c.outcome for c in posts(emulator)] == [f"fault:{kind}"]  # exactly one POST


@pytest.mark.parametrize("kind", ["408", "409", "499", "502"])
def test_an_update_answered_with_an_ambiguous_status_is_outcome_unknown(
    emulator: EmulatorHandle, kind: str
) -> None:
    async def story(client: EngageLabClient) -> Any:
        await client.upsert_plan("p1", "Plan")
        sid = await client.create_schedule(body())
        emulator.set_faults(
            script=[{"method": "PUT", "path": SCHEDULES, "kind": k} for k in [kind] * 9]
        )
        return await client.update_schedule(sid, {"enabled": False})

    error = fails(make_client(emulator.base_url, max_attempts=2), story)
    assert error.outcome_unknown and error.status == int(kind)


@pytest.mark.parametrize("status", [408, 409, 425, 499, 500, 501, 504, 599])
def test_every_ambiguous_status_leaves_a_create_unknown(status: int) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, text="")

    config = ClientConfig(
        base_url="https://x.example.com", app_key="k", master_secret=SecretStr("s3cret")
    )
    client = EngageLabClient(config, transport=httpx.MockTransport(answer))
    error = fails(client, lambda c: c.create_schedule(body()))
    assert error.outcome_unknown and len(seen) == 1
    assert {408, 409, 425, 499} <= api.WRITE_OUTCOME_UNKNOWN_HTTP_STATUS


def test_a_definite_refusal_is_still_a_known_outcome(emulator: EmulatorHandle) -> None:
    bad = body()
    bad["trigger"] = {"intelligent": {"backup_time": "not a time"}}
    error = fails(make_client(emulator.base_url), with_plan(lambda c: c.create_schedule(bad)))
    assert not error.outcome_unknown and error.status == 400


# --- C. a write the server commits after the client gave up -------------------------------------
def test_a_late_create_is_unknown_then_lands(emulator: EmulatorHandle) -> None:
    emulator.set_faults(
        script=[{"method": "POST", "path": SCHEDULES, "kind": "late", "seconds": 1.5}]
    )
    error = fails(make_client(emulator.base_url), with_plan(lambda c: c.create_schedule(body())))
    assert error.outcome_unknown and error.status == 504 and error.code == api.CODE_INTERNAL
    assert emulator.names() == {}  # not listed at once
    (call,) = posts(emulator)
    assert (call.status, call.outcome, call.write_applied) == (504, "fault:late", False)
    deadline = time.monotonic() + 5
    while not emulator.names() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulator.names() == {"t1": 1}  # listed after the delay
    (call,) = posts(emulator)
    assert (call.outcome, call.write_applied) == ("fault:late", True)
    listed = run(make_client(emulator.base_url), lambda c: c.list_schedules())
    assert [s["name"] for s in listed] == ["t1"]


# --- D. the server's clock ----------------------------------------------------------------------
def test_server_date_is_the_emulator_clock(emulator: EmulatorHandle) -> None:
    pinned = datetime(2031, 5, 6, 7, 8, 9, 700000, tzinfo=UTC)
    emulator.set_now(pinned)
    client = make_client(emulator.base_url)

    async def story(c: EngageLabClient) -> Any:
        before = c.server_date()
        await c.list_schedules()
        return before, c.server_date()

    before, after = run(client, story)
    assert before is None
    assert after is not None
    when, elapsed = after
    assert when.tzinfo is not None and when.utcoffset() == timedelta(0)
    assert abs((when - pinned).total_seconds()) < 1
    assert when == pinned.replace(microsecond=0)
    assert 0 <= elapsed < 5


def test_server_date_keeps_the_latest_parsable_one() -> None:
    dates = iter(
        [
            format_datetime(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), usegmt=True),
            "not a date",
            None,
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        date = next(dates)
        headers = {"Date": date} if date else {}
        return httpx.Response(200, json={"schedules": []}, headers=headers)

    now = [100.0]
    config = ClientConfig(
        base_url="https://x.example.com", app_key="k", master_secret=SecretStr("s3cret")
    )
    client = EngageLabClient(config, transport=httpx.MockTransport(answer), clock=lambda: now[0])

    async def story(c: EngageLabClient) -> Any:
        await c.list_schedules()
        now[0] = 103.5
        await c.list_schedules()  # an unparsable Date is ignored
        await c.list_schedules()  # so is a missing one
        now[0] = 104.0
        return c.server_date()

    assert run(client, story) == (datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), 4.0)


# --- F. the request timeout knob and the AppKey fingerprint ------------------------------------
def parse(root: Path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(parents=[project_parent(), api_parent()])
    return parser.parse_args(["--root", str(root), *argv])


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("RECONCILE_ENV", api.ENV_BASE_URL, api.ENV_DATA_CENTER, api.ENV_RATE_LIMIT):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(api.ENV_TIMEOUT, raising=False)
    monkeypatch.setenv(api.ENV_APP_KEY, "key-1234")
    monkeypatch.setenv(api.ENV_MASTER_SECRET, "secret-5678")
    return monkeypatch


def test_the_timeout_option_and_variable(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    assert client_config(parse(tmp_path)).timeout_seconds == 10.0
    assert client_config(parse(tmp_path, "--timeout", "2.5")).timeout_seconds == 2.5
    clean_env.setenv(api.ENV_TIMEOUT, "3")
    assert client_config(parse(tmp_path)).timeout_seconds == 3.0
    assert client_config(parse(tmp_path, "--timeout", "4")).timeout_seconds == 4.0  # flag wins
    clean_env.setenv(api.ENV_TIMEOUT, "soon")
    with pytest.raises(ConfigError, match=api.ENV_TIMEOUT):
        client_config(parse(tmp_path))
    with pytest.raises(ConfigError, match="timeout_seconds"):
        client_config(parse(tmp_path, "--timeout", "0"))


def test_the_timeout_reaches_the_http_client(emulator: EmulatorHandle) -> None:
    emulator.set_faults(
        script=[{"method": "GET", "path": SCHEDULES, "kind": "slow", "seconds": 0.6}]
    )
    client = make_client(emulator.base_url, timeout_seconds=0.2, max_attempts=1)
    error = fails(client, lambda c: c.list_schedules())
    assert "ReadTimeout" in str(error)


def test_the_app_key_fingerprint_is_stable_and_hides_the_key() -> None:
    key = "my-app-key-0123456789"
    one = ClientConfig(
        base_url="https://x.example.com", app_key=key, master_secret=SecretStr("s3cret")
    )
    two = ClientConfig(
        base_url="https://y.example.com", app_key=key, master_secret=SecretStr("other")
    )
    other = ClientConfig(
        base_url="https://x.example.com", app_key="k2", master_secret=SecretStr("s3cret")
    )
    expected = "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    assert one.app_key_fingerprint == two.app_key_fingerprint == expected
    assert other.app_key_fingerprint != expected
    assert key not in one.app_key_fingerprint and len(one.app_key_fingerprint) == 7 + 16
    assert "app_key_fingerprint" in (ClientConfig.__doc__ or "")
