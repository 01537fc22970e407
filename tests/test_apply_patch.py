"""An update sends only the top-level fields that change, as EngageLab's SDKs do (#13).

JPush v3 judges any `trigger` a PUT carries again ("must still be valid after update, or the
update fails"), so a copy-only edit must not resend the trigger. Against the emulator over HTTP;
the client's update_schedule is wrapped (not replaced) to see what crossed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.api.client import EngageLabClient
from reconciler.errors import ExitCode
from tests.support.campaign import apply, daily, write_project
from tests.support.emulator import EmulatorHandle


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    real = EngageLabClient.update_schedule

    async def spy(self: EngageLabClient, schedule_id: str, patch: Any, **kw: Any) -> Any:
        seen.append(dict(patch))
        return await real(self, schedule_id, patch, **kw)

    monkeypatch.setattr(EngageLabClient, "update_schedule", spy)
    return seen


def test_a_copy_only_edit_sends_push_alone(
    env: EmulatorHandle, tmp_path: Path, sent: list[dict[str, Any]]
) -> None:
    write_project(tmp_path, 1, trigger=daily())
    assert apply(env, tmp_path) == ExitCode.OK
    write_project(tmp_path, 1, trigger=daily(), fr="Coucou")
    assert apply(env, tmp_path) == ExitCode.OK
    assert [sorted(p) for p in sent] == [["push"]]
    live = env.request("GET", "/v4/schedules?page=1").json()["schedules"][0]
    assert "Coucou" in str(live["push"]) and live["trigger"]["periodical"]["time"] == "09:00:00"
    assert "reconcile_state" in str(live["push"])  # the owner marker travels with push


def test_a_time_edit_sends_the_trigger_alone(
    env: EmulatorHandle, tmp_path: Path, sent: list[dict[str, Any]]
) -> None:
    write_project(tmp_path, 1, trigger=daily())
    assert apply(env, tmp_path) == ExitCode.OK
    write_project(tmp_path, 1, trigger=daily("10:30:00"))
    assert apply(env, tmp_path) == ExitCode.OK
    assert [sorted(p) for p in sent] == [["trigger"]]
    before = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.OK  # converged: the merged task is what we record
    assert len(env.calls()) == before
