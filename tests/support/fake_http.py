"""A scripted httpx transport for client unit tests (the emulator covers real HTTP)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from reconciler.api.client import ClientConfig, EngageLabClient
from reconciler.api.ratelimit import RateLimiter
from reconciler.errors import ApiError

APP_KEY = "app-key-4711"


SECRET = "master-secret-Zq9xK2"


TOKEN = base64.b64encode(f"{APP_KEY}:{SECRET}".encode()).decode()


SCHEDULE = {
    "name": "t1",
    "enabled": True,
    "trigger": {"intelligent": {"backup_time": "2025-12-28 09:00:00"}},
    "push": {"from": "push", "to": {"tag": ["shoppers"]}, "body": {"platform": ["android"]}},
}


Step = Callable[[httpx.Request], httpx.Response]


def answer(status: int = 200, body: Any = None, *, text: str | None = None, **headers: str) -> Step:
    def step(request: httpx.Request) -> httpx.Response:
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        if text is not None:
            return httpx.Response(status, text=text, headers=hdrs)
        return httpx.Response(status, json=body if body is not None else {}, headers=hdrs)

    return step


def fail(kind: type[httpx.RequestError]) -> Step:
    def step(request: httpx.Request) -> httpx.Response:
        raise kind("simulated", request=request)

    return step


class Script:
    """Answers requests in order; the last step repeats. Records every request."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        return step(request)


@dataclass
class FakeTime:
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Run:
    value: Any
    error: ApiError | None
    client: EngageLabClient
    fake: FakeTime
    script: Script


def config(**overrides: Any) -> ClientConfig:
    values: dict[str, Any] = {
        "base_url": "https://pushapi-sgp.engagelab.com",
        "app_key": APP_KEY,
        "master_secret": SecretStr(SECRET),
    }
    values.update(overrides)
    return ClientConfig(**values)


def run(
    script: Script,
    action: Callable[[EngageLabClient], Awaitable[Any]],
    *,
    rng: float = 0.5,
    limiter: RateLimiter | None = None,
    **overrides: Any,
) -> Run:
    fake = FakeTime()
    client = EngageLabClient(
        config(**overrides),
        transport=httpx.MockTransport(script),
        limiter=limiter or RateLimiter(1e6, clock=fake, sleep=fake.sleep),
        sleep=fake.sleep,
        rng=lambda: rng,
        clock=fake,
    )

    async def main() -> tuple[Any, ApiError | None]:
        async with client:
            try:
                return await action(client), None
            except ApiError as exc:
                return None, exc

    value, error = asyncio.run(main())
    return Run(value, error, client, fake, script)


def create(client: EngageLabClient) -> Awaitable[str]:
    return client.create_schedule(SCHEDULE)


def list_all(client: EngageLabClient) -> Awaitable[list[dict[str, Any]]]:
    return client.list_schedules()


ITEM = {"schedule_id": "s1", "name": "t1", "enabled": True, "trigger": {"single": {}}, "push": {}}


PAGE = {"total_count": 1, "total_pages": 1, "page": 1, "schedules": [ITEM]}


OK_CREATED = answer(200, {"schedule_id": "s-new", "name": "t1"})


RETRYABLE = {
    "429": answer(429, {"error": {"code": 23008, "message": "too many"}}),
    "400/23008": answer(400, {"error": {"code": 23008, "message": "rate limited"}}),
    "200/23008": answer(200, {"code": 23008, "message": "rate limited"}),
    "400/21030 bare": answer(400, {"code": 21030, "message": "internal timeout"}),
    "500/27000": answer(500, {"error": {"code": 27000, "message": "internal"}}),
    "502": answer(502, text="<html>bad gateway</html>"),
    "503": answer(503, text=""),
    "504": answer(504, {"error": {"code": 0, "message": "gateway timeout"}}),
    "connect refused": fail(httpx.ConnectError),
    "connect timeout": fail(httpx.ConnectTimeout),
    "read timeout": fail(httpx.ReadTimeout),
    "dropped after send": fail(httpx.RemoteProtocolError),
    "read error": fail(httpx.ReadError),
    "write timeout": fail(httpx.WriteTimeout),
}


NOT_RETRYABLE = {
    "400/21003": answer(400, {"error": {"code": 21003, "message": "bad value"}}),
    "401/21004": answer(401, {"code": 21004, "message": "auth failed"}),
    "403/23009": answer(403, {"error": {"code": 23009, "message": "ip not allowed"}}),
    "500 plain": answer(500, text="oops"),
    "200/21002": answer(200, {"error": {"code": 21002, "message": "missing field"}}),
}
