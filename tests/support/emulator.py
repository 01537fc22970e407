"""Pytest fixtures that start the local EngageLab emulator on a free loopback port.

`emulator` gives a fresh emulator per test with the clock pinned at EMULATOR_NOW;
`make_emulator(**config_overrides)` builds more (custom quotas, rate limits, data files, answer
variants: `make_emulator(answers={"sdk"})` or a set of ANSWER_VARIANTS names).
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from reconciler.emulator import CallRecord, Emulator, EmulatorConfig, FaultConfig, parse_answers

EMULATOR_NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
APP_KEY = "test-app-key"
MASTER_SECRET = "test-master-secret-DO-NOT-LEAK"  # a test credential, safe to publish


def sample_push(plan_id: str | None = None) -> dict[str, Any]:
    """A small valid push body, optionally attributed to `plan_id` (which must exist)."""
    body: dict[str, Any] = {
        "platform": ["android", "ios"],
        "notification": {"alert": "Flash sale!", "android": {"title": "Sale"}},
        "options": {"time_to_live": 86400},
    }
    if plan_id is not None:
        body["options"]["plan_id"] = plan_id
    return {"from": "push", "to": {"tag": ["shoppers"]}, "body": body}


def sample_schedule(name: str = "promo_01", **overrides: Any) -> dict[str, Any]:
    """A valid POST /v4/schedules body at EMULATOR_NOW (a Smart Push on 2025-12-28)."""
    schedule: dict[str, Any] = {
        "name": name,
        "enabled": True,
        "trigger": {"intelligent": {"backup_time": "2025-12-28 09:00:00"}},
        "push": sample_push(),
    }
    schedule.update(overrides)
    return schedule


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class EmulatorHandle:
    server: Emulator
    base_url: str
    app_key: str = APP_KEY
    master_secret: str = MASTER_SECRET
    _host: str = field(init=False, default="")
    _port: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80

    def calls(self) -> list[CallRecord]:
        return self.server.calls()

    def names(self, *, include_expired: bool = False) -> dict[str, int]:
        return self.server.names(include_expired=include_expired)

    def set_faults(self, **kwargs: Any) -> None:
        """E.g. set_faults(rate_429=0.5) or set_faults(script=[{"method": "POST", ...}])."""
        self.server.set_faults(FaultConfig.from_mapping(kwargs))

    def set_now(self, now: datetime) -> None:
        self.server.set_now(now)

    def set_answers(self, *names: str) -> None:
        """set_answers("sdk"), set_answers("upper-enums", "summary-list"); none: documented."""
        self.server.set_answers(parse_answers(names))

    def reset(self) -> None:
        self.server.reset()

    def auth_header(self) -> str:
        token = base64.b64encode(f"{self.app_key}:{self.master_secret}".encode()).decode()
        return f"Basic {token}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: str | None = "default",
        raw: bytes | None = None,
    ) -> Response:
        """One request on a fresh connection (stdlib only). `auth=None` sends no credentials."""
        headers = {"Content-Type": "application/json"}
        if auth is not None:
            headers["Authorization"] = self.auth_header() if auth == "default" else auth
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn = http.client.HTTPConnection(self._host, self._port, timeout=10)
        try:
            conn.request(method, path, body=data, headers=headers)
            answer = conn.getresponse()
            return Response(answer.status, dict(answer.getheaders()), answer.read())
        finally:
            conn.close()


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., EmulatorHandle]]:
    started: list[Emulator] = []

    def make(**overrides: Any) -> EmulatorHandle:
        faults = overrides.pop("faults", FaultConfig())
        if isinstance(faults, dict):
            faults = FaultConfig.from_mapping(faults)
        if "answers" in overrides:
            overrides["answers"] = parse_answers(overrides["answers"])
        values: dict[str, Any] = {
            "app_key": APP_KEY,
            "master_secret": MASTER_SECRET,
            "now": EMULATOR_NOW,
            **overrides,
        }
        server = Emulator(EmulatorConfig(faults=faults, **values))
        started.append(server)
        return EmulatorHandle(server, server.start())

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return make_emulator()


@pytest.fixture
def env(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    """The emulator, with its credentials in the environment and nothing else redirecting the
    CLI (a pinned clock, another environment or base URL left over from a shell)."""
    monkeypatch.setenv("ENGAGELAB_APP_KEY", emulator.app_key)
    monkeypatch.setenv("ENGAGELAB_MASTER_SECRET", emulator.master_secret)
    for name in ("RECONCILE_NOW", "RECONCILE_ENV", "ENGAGELAB_BASE_URL", "ENGAGELAB_DATA_CENTER"):
        monkeypatch.delenv(name, raising=False)
    return emulator


@pytest.fixture
def answering(
    make_emulator: Callable[..., EmulatorHandle], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., EmulatorHandle]:
    """`answering(*variants)`: an emulator giving those answer variants (config.ANSWER_VARIANTS),
    its credentials in the environment, nothing else redirecting the CLI (as the `env` fixture)."""

    def make(*answers: str) -> EmulatorHandle:
        emu = make_emulator(answers=set(answers))
        monkeypatch.setenv("ENGAGELAB_APP_KEY", emu.app_key)
        monkeypatch.setenv("ENGAGELAB_MASTER_SECRET", emu.master_secret)
        for name in ("RECONCILE_NOW", "RECONCILE_ENV", "ENGAGELAB_BASE_URL"):
            monkeypatch.delenv(name, raising=False)
        return emu

    return make
