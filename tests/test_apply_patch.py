"""An update sends only the top-level fields that change, as EngageLab's SDKs do (#13).

JPush v3 judges any `trigger` a PUT carries again ("must still be valid after update, or the
update fails"), so a copy-only edit must not resend the trigger. Against the emulator over HTTP;
the client's update_schedule is wrapped (not replaced) to see what crossed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.client import EngageLabClient
from reconciler.errors import ExitCode
from tests.support.campaign import apply, daily, run, write_project
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


def test_a_time_edit_sends_the_trigger_and_push_only(
    env: EmulatorHandle, tmp_path: Path, sent: list[dict[str, Any]]
) -> None:
    """push always goes along: it carries the owner marker (see the next test)."""
    write_project(tmp_path, 1, trigger=daily())
    assert apply(env, tmp_path) == ExitCode.OK
    write_project(tmp_path, 1, trigger=daily("10:30:00"))
    assert apply(env, tmp_path) == ExitCode.OK
    assert [sorted(p) for p in sent] == [["push", "trigger"]]
    before = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.OK  # converged: the merged task is what we record
    assert len(env.calls()) == before


def test_a_task_adopted_from_another_state_gets_our_owner_marker_with_any_update(
    env: EmulatorHandle, tmp_path: Path, sent: list[dict[str, Any]]
) -> None:
    """Imported after a lost state, the task still carries the old state's marker; the first
    update, even of the time alone, replaces it, so no other state file takes it for its own."""
    write_project(tmp_path, 1, trigger=daily())
    assert apply(env, tmp_path) == ExitCode.OK
    old = env.request("GET", "/v4/schedules?page=1").json()["schedules"][0]
    old_owner = old["push"]["custom_args"]["reconcile_state"]
    shutil.rmtree(tmp_path / "state")
    assert run(env, "import", tmp_path, "--match-names") == ExitCode.OK
    write_project(tmp_path, 1, trigger=daily("10:30:00"))
    assert apply(env, tmp_path) == ExitCode.OK
    live = env.request("GET", "/v4/schedules?page=1").json()["schedules"][0]
    assert live["push"]["custom_args"]["reconcile_state"] != old_owner
    assert live["trigger"]["periodical"]["time"] == "10:30:00"
