"""Drift through the CLI against the emulator over real HTTP: `plan --refresh`, `refresh`,
`apply --refresh-only`. Drift is made through the emulator directly (console edits, other clients),
and every claim about calls is proved from the emulator's own call log.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ExitCode
from reconciler.state.store import StateStore
from tests.support.campaign import NOW, apply, ids, run, write_project, writes
from tests.support.emulator import EmulatorHandle, sample_push, sample_schedule


def drift_of(
    emu: EmulatorHandle, root: Path, capsys: pytest.CaptureFixture[str], now: str = NOW
) -> list[tuple[str, str]]:
    capsys.readouterr()
    assert run(emu, "plan", root, "--refresh", "--format", "json", now=now) == ExitCode.OK
    plan: dict[str, Any] = json.loads(capsys.readouterr().out)
    return [(d["address"], d["kind"]) for d in plan["drift"]]


def make_drift(emu: EmulatorHandle, root: Path) -> dict[str, str | None]:
    """Apply 3 schedules, then edit one, delete one, and let another client create a 4th."""
    write_project(root, 3)
    assert apply(emu, root) == ExitCode.OK
    write_project(root, 4)  # msg_03 is in the specs but never applied by reconcile
    recorded = ids(root)
    edited = {"enabled": False}
    assert recorded["msg_00"] and recorded["msg_01"]
    emu.server.edit_schedule(recorded["msg_00"], edited)
    emu.server.delete_schedule(recorded["msg_01"])
    other = sample_schedule("msg_03", push=sample_push("camp"))
    assert emu.request("POST", "/v4/schedules", other).status == 200
    plan = {"plan_id": "camp", "plan_description": "Renamed in the console"}
    assert emu.request("POST", "/v4/push_plan", plan).status == 200
    return recorded


EXPECTED = [
    ("plan.camp", "edited remotely"),
    ("schedule.msg_00", "edited remotely"),
    ("schedule.msg_01", "deleted remotely"),
    ("schedule.msg_03", "created remotely"),
]


def test_plan_refresh_shows_each_kind_of_drift_with_gets_only(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_drift(env, tmp_path)
    mark = len(env.calls())
    assert drift_of(env, tmp_path, capsys) == EXPECTED
    assert writes(env, mark) == []
    code = run(env, "plan", tmp_path, "--refresh", "--detailed-exitcode")
    text = capsys.readouterr().out
    assert code == ExitCode.CHANGES
    assert "      ~ enabled: true -> false" in text  # the drift: recorded -> remote
    assert "      ~ enabled: false -> true" in text  # the plan: puts the spec back
    assert "deleted remotely" in text and "made by another client" in text
    # Without --refresh the plan is blind to all of it: msg_03 would be a second create.
    assert run(env, "plan", tmp_path, "--format", "json") == ExitCode.OK
    blind = json.loads(capsys.readouterr().out)
    assert blind["drift"] == []
    assert [c["action"] for c in blind["changes"]] == ["create"]


def test_refresh_accepts_the_remote_with_no_write_call(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = make_drift(env, tmp_path)
    mark = len(env.calls())
    assert run(env, "refresh", tmp_path) == ExitCode.ERROR  # off a terminal: needs approval
    assert ids(tmp_path) == recorded
    assert run(env, "refresh", tmp_path, "--auto-approve") == ExitCode.OK
    assert writes(env, mark) == []
    state = StateStore(tmp_path / "state" / "default.json").load()
    assert state.plans["camp"].description == "Renamed in the console"
    assert state.schedules["msg_00"].body is not None
    assert state.schedules["msg_00"].body["enabled"] is False
    assert "msg_01" not in state.schedules
    assert state.schedules["msg_03"].schedule_id not in recorded.values()
    assert drift_of(env, tmp_path, capsys) == []  # the state now is what EngageLab holds
    # The next plain plan puts the specs back: update plan and msg_00, re-create msg_01,
    # update the adopted msg_03 in place (never a second msg_03).
    assert run(env, "plan", tmp_path, "--format", "json") == ExitCode.OK
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert [(c["address"], c["action"]) for c in changes] == [
        ("plan.camp", "update"),
        ("schedule.msg_00", "update"),
        ("schedule.msg_01", "create"),
        ("schedule.msg_03", "update"),
    ]
    assert apply(env, tmp_path) == ExitCode.OK
    assert env.names() == {f"msg_{i:02d}": 1 for i in range(4)}
    assert drift_of(env, tmp_path, capsys) == []


def test_apply_refresh_only_is_refresh(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_drift(env, tmp_path)
    mark = len(env.calls())
    assert run(env, "apply", tmp_path, "--refresh-only") == ExitCode.ERROR  # needs approval
    assert apply(env, tmp_path, "--refresh-only") == ExitCode.OK
    assert writes(env, mark) == []
    assert drift_of(env, tmp_path, capsys) == []
    assert apply(env, tmp_path, "--refresh-only", "--target", "plan.camp") == ExitCode.ERROR


def test_saved_refresh_plan_puts_the_remote_back(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = make_drift(env, tmp_path)
    saved = tmp_path / "putback.json"
    assert run(env, "plan", tmp_path, "--refresh", "--out", str(saved)) == ExitCode.OK
    planned = json.loads(saved.read_text(encoding="utf-8"))
    assert [(c["address"], c["action"]) for c in planned["changes"]] == [
        ("plan.camp", "update"),
        ("schedule.msg_00", "update"),
        ("schedule.msg_01", "create"),
        ("schedule.msg_03", "update"),  # adopted by the drift, then put back in place
    ]
    # The summary is the planner's own on the refreshed state: never patched afterwards.
    assert planned["summary"]["update"] == 3 and planned["summary"]["replace"] == 0
    mark = len(env.calls())
    assert apply(env, tmp_path, str(saved)) == ExitCode.OK
    methods = sorted(m for m, _ in writes(env, mark))
    # The drift is recorded first (msg_01 forgotten, msg_03 adopted), then exactly the plan:
    # plan upsert, PUT msg_00, POST msg_01, PUT msg_03. No delete of a vanished id any more.
    assert methods == ["POST", "POST", "PUT", "PUT"]
    assert env.names() == {f"msg_{i:02d}": 1 for i in range(4)}
    state = StateStore(tmp_path / "state" / "default.json").load()
    assert all(not rec.superseded for rec in state.schedules.values())
    assert state.schedules["msg_00"].schedule_id == recorded["msg_00"]
    assert drift_of(env, tmp_path, capsys) == []
    assert run(env, "plan", tmp_path, "--refresh", "--detailed-exitcode") == ExitCode.OK


def test_a_fired_and_expired_task_is_sent_not_drift(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 2)
    assert apply(env, tmp_path) == ExitCode.OK
    later = datetime.fromisoformat("2025-12-11T12:30:00+00:00")  # msg_00 (Dec 10) is over
    env.set_now(later)
    assert drift_of(env, tmp_path, capsys, now=later.isoformat()) == [
        ("schedule.msg_00", "sent and expired")
    ]
    code = run(env, "plan", tmp_path, "--refresh", "--detailed-exitcode", now=later.isoformat())
    assert code == ExitCode.OK
    # Nothing to record either: refresh changes no state for a sent task.
    serial = StateStore(tmp_path / "state" / "default.json").load().serial
    assert run(env, "refresh", tmp_path, now=later.isoformat()) == ExitCode.OK
    assert StateStore(tmp_path / "state" / "default.json").load().serial == serial


def test_a_task_deleted_before_it_fired_is_drift_and_is_recreated(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    assert apply(env, tmp_path) == ExitCode.OK
    sid = ids(tmp_path)["msg_00"]
    assert sid is not None
    env.server.delete_schedule(sid)
    mark = len(env.calls())
    assert drift_of(env, tmp_path, capsys) == [("schedule.msg_00", "deleted remotely")]
    # The recorded id was not listed, so it was looked up on its own before being called gone.
    assert [(c.method, c.path) for c in env.calls()[mark:]][-1] == ("GET", f"/v4/schedules/{sid}")
    assert run(env, "plan", tmp_path, "--refresh", "--detailed-exitcode") == ExitCode.CHANGES
