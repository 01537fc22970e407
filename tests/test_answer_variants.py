"""Every answer shape the SDKs and JPush v3 point to, through every command that reads (#13).

The emulator's answer variants (reconciler/emulator/config.py ANSWER_VARIANTS, "sdk" = all at
once) change only what EngageLab answers, never what it stores. Each variant goes through
apply, `plan --refresh`, `refresh`, `import --match-names`, `stats` and a delete of a task that
is already gone. Nothing may crash, and nothing may loop: after one apply, `plan --refresh
--detailed-exitcode` says 0 (no change, no drift) and a second apply makes no write.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.emulator.config import ANSWER_VARIANTS, ANSWERS_ALL
from reconciler.errors import ExitCode
from tests.support.campaign import NOW, apply, project, run, writes
from tests.support.emulator import EmulatorHandle

VARIANTS = [*ANSWER_VARIANTS, ANSWERS_ALL]


def shows(emu: EmulatorHandle, variant: str) -> None:
    """The variant is really in the answers (else these tests would prove nothing)."""
    items = emu.request("GET", "/v4/schedules?page=1").json()["schedules"]
    weekly = next(i for i in items if i["name"] == "msg_00")
    full = emu.request("GET", f"/v4/schedules/{weekly['schedule_id']}").json()[0]
    missing = emu.request("GET", "/v4/schedules/no-such-id")
    checks = {
        "upper-enums": full["trigger"]["periodical"]["time_unit"] == "WEEK",
        "added-defaults": "time_to_live" in full["push"]["body"]["options"],
        "json-strings": isinstance(weekly.get("trigger"), str),
        "summary-list": "push" not in weekly,
        "not-found-400": missing.status == 400,
        "platform-string": isinstance(full["push"]["body"]["platform"], str),
    }
    wanted = ANSWER_VARIANTS if variant == ANSWERS_ALL else (variant,)
    for name in wanted:
        if name == "json-strings" and variant == ANSWERS_ALL:
            continue  # with summary-list on too, list items are summaries
        assert checks[name], f"variant {name} is not in the answers"


def converged(emu: EmulatorHandle, root: Path) -> None:
    assert run(emu, "plan", root, "--refresh", "--detailed-exitcode") == ExitCode.OK
    mark = len(emu.calls())
    assert apply(emu, root) == ExitCode.OK
    assert writes(emu, mark) == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_apply_refresh_and_edits_converge_under_each_answer_shape(
    variant: str, answering: Callable[[str], EmulatorHandle], tmp_path: Path
) -> None:
    emu = answering(variant)
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK
    assert set(emu.names().values()) == {1} and len(emu.names()) == 6
    shows(emu, variant)
    converged(emu, tmp_path)
    assert run(emu, "refresh", tmp_path, "--auto-approve") == ExitCode.OK
    converged(emu, tmp_path)
    project(tmp_path, fr="Coucou")  # a copy edit: one PUT each, then nothing more
    mark = len(emu.calls())
    assert apply(emu, tmp_path) == ExitCode.OK
    assert [m for m, _ in writes(emu, mark)] == ["PUT"] * 6
    converged(emu, tmp_path)
    assert run(emu, "stats", tmp_path, "--from", "2025-11-01", "--to", "2025-11-19") == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_lost_state_is_rebuilt_by_import_under_each_answer_shape(
    variant: str, answering: Callable[[str], EmulatorHandle], tmp_path: Path
) -> None:
    emu = answering(variant)
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK
    shutil.rmtree(tmp_path / "state")
    assert run(emu, "import", tmp_path, "--match-names") == ExitCode.OK
    mark = len(emu.calls())
    assert apply(emu, tmp_path) == ExitCode.OK  # at most an update per task: never a create
    assert [m for m, _ in writes(emu, mark) if m == "POST"] == []
    assert set(emu.names().values()) == {1} and len(emu.names()) == 6
    converged(emu, tmp_path)


@pytest.mark.parametrize("variant", VARIANTS)
def test_deleting_a_task_that_is_already_gone_completes_under_each_answer_shape(
    variant: str, answering: Callable[[str], EmulatorHandle], tmp_path: Path
) -> None:
    emu = answering(variant)
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK
    listed = emu.request("GET", "/v4/schedules?page=1").json()["schedules"]
    gone = next(s["schedule_id"] for s in listed if s["name"] == "msg_02")
    assert emu.request("DELETE", f"/v4/schedules/{gone}").status == 200  # the console did it
    project(tmp_path, count=2)  # msg_02 and smart_02 leave the specs
    assert apply(emu, tmp_path, now=NOW) == ExitCode.OK
    assert "msg_02" not in emu.names() and "smart_02" not in emu.names()
    converged(emu, tmp_path)
