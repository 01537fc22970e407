"""`reconcile import` through the CLI against the emulator over real HTTP: adopting what another
client created, and rebuilding a lost state with no duplicate sends (proved from the call log)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ExitCode
from reconciler.settings import Settings
from reconciler.spec.loader import load_desired
from reconciler.state.store import StateStore
from tests.support.campaign import apply, ids, run, write_project, writes
from tests.support.emulator import EMULATOR_NOW, EmulatorHandle


def spec_body(root: Path, name: str) -> dict[str, Any]:
    return dict(load_desired(root, Settings(), EMULATOR_NOW).schedules[name].body)


def create_elsewhere(emu: EmulatorHandle, body: dict[str, Any]) -> str:
    """Another client (a script, the console) creates a schedule: returns its id."""
    answer = emu.request("POST", "/v4/schedules", body)
    assert answer.status == 200, answer.body
    schedule_id: str = answer.json()["schedule_id"]
    return schedule_id


def make_plan(emu: EmulatorHandle, description: str) -> None:
    plan = {"plan_id": "camp", "plan_description": description}
    assert emu.request("POST", "/v4/push_plan", plan).status == 200


def plan_changes(
    emu: EmulatorHandle, root: Path, capsys: pytest.CaptureFixture[str]
) -> list[tuple[str, str]]:
    capsys.readouterr()
    assert run(emu, "plan", root, "--format", "json") == ExitCode.OK
    return [(c["address"], c["action"]) for c in json.loads(capsys.readouterr().out)["changes"]]


def test_a_schedule_created_by_another_client_imports_with_no_change(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    make_plan(env, "Test campaign")
    sid = create_elsewhere(env, spec_body(tmp_path, "msg_00"))
    assert plan_changes(env, tmp_path, capsys) == [
        ("plan.camp", "create"),
        ("schedule.msg_00", "create"),  # without the import: a duplicate send
    ]
    mark = len(env.calls())
    assert run(env, "import", tmp_path, "schedule.msg_00", sid) == ExitCode.OK
    assert run(env, "import", tmp_path, "plan.camp") == ExitCode.OK
    assert writes(env, mark) == []
    assert plan_changes(env, tmp_path, capsys) == []
    assert run(env, "plan", tmp_path, "--refresh", "--detailed-exitcode") == ExitCode.OK
    mark = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.OK
    assert len(env.calls()) == mark  # nothing to do: zero calls
    assert env.names() == {"msg_00": 1}


def test_after_an_import_the_plan_shows_only_real_differences(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    make_plan(env, "x")
    body = spec_body(tmp_path, "msg_00")
    body["push"]["body"]["notification"]["alert"] = "Typo 00"
    sid = create_elsewhere(env, body)
    assert run(env, "import", tmp_path, "schedule.msg_00", sid) == ExitCode.OK
    capsys.readouterr()
    assert run(env, "plan", tmp_path, "--format", "json", "--target", "schedule.msg_00") == 0
    changes = json.loads(capsys.readouterr().out)["changes"]
    schedule = [c for c in changes if c["address"] == "schedule.msg_00"]
    assert [(c["action"], c["schedule_id"]) for c in schedule] == [("update", sid)]
    assert [(d["path"], d["before"], d["after"]) for d in schedule[0]["diffs"]] == [
        ("notification.alert", "Typo 00", "Hi 00")
    ]


def test_a_lost_state_is_rebuilt_by_name_with_no_duplicate_send(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 55)  # more than one page of the schedule list (50)
    assert apply(env, tmp_path) == ExitCode.OK
    before = ids(tmp_path)
    for stale in (tmp_path / "state").iterdir():
        stale.unlink()  # the state file, its journal and its backup: all lost
    assert len(plan_changes(env, tmp_path, capsys)) == 56  # would send all 55 again
    mark = len(env.calls())
    assert run(env, "import", tmp_path, "--match-names") == ExitCode.OK
    assert writes(env, mark) == []
    assert ids(tmp_path) == before
    assert plan_changes(env, tmp_path, capsys) == []
    mark = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.OK
    assert len(env.calls()) == mark
    assert env.names() == {f"msg_{i:02d}": 1 for i in range(55)}


def test_match_names_refuses_a_name_held_twice_and_imports_the_rest(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 2)
    make_plan(env, "x")
    twins = {create_elsewhere(env, spec_body(tmp_path, "msg_00")) for _ in range(2)}
    single = create_elsewhere(env, spec_body(tmp_path, "msg_01"))
    capsys.readouterr()
    assert run(env, "import", tmp_path, "--match-names") == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "refused: schedule.msg_00: 2 live schedules" in err
    assert all(t in err for t in twins)
    assert ids(tmp_path) == {"msg_01": single}
    state = StateStore(tmp_path / "state" / "default.json").load()
    assert state.plans["camp"].description == "x"  # the spec plan, adopted as EngageLab has it


def test_import_refuses_what_it_cannot_record(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    assert run(env, "import", tmp_path, "schedule.msg_00", "no-such-id") == ExitCode.ERROR
    assert run(env, "import", tmp_path, "plan.nope") == ExitCode.ERROR
    assert run(env, "import", tmp_path, "schedule.msg_00") == ExitCode.ERROR  # id missing
    assert run(env, "import", tmp_path, "bogus") == ExitCode.ERROR
    assert not (tmp_path / "state" / "default.json").exists()
    assert writes(env) == []
    assert apply(env, tmp_path) == ExitCode.OK
    sid = ids(tmp_path)["msg_00"]
    assert sid is not None
    other = create_elsewhere(env, spec_body(tmp_path, "msg_00") | {"name": "msg_99"})
    capsys.readouterr()
    assert run(env, "import", tmp_path, "schedule.msg_00", other) == ExitCode.ERROR
    assert "already recorded as schedule" in capsys.readouterr().err
    assert run(env, "import", tmp_path, "schedule.msg_00", sid) == ExitCode.OK  # a no-op
    assert run(env, "import", tmp_path, "schedule.msg_99", other) == ExitCode.OK
    assert "not in the specs: the next plan deletes it" in capsys.readouterr().err
