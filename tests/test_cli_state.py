"""`reconcile state list|show|rm|unlock` through the real entry point."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.errors import ExitCode
from reconciler.state.lock import FileLock
from reconciler.state.model import (
    Event,
    Intent,
    IntentRecorded,
    PlanRetired,
    PlanUpserted,
    ScheduleCreated,
)
from reconciler.state.store import StateStore

AT = datetime(2025, 12, 1, 9, tzinfo=UTC)


def created(name: str) -> ScheduleCreated:
    return ScheduleCreated(
        name=name,
        plan_id="promo",
        schedule_id=f"sid-{name}",
        body={"name": name, "push": {"title": "Soldes"}},
        digest="sha256:x",
        trigger_kind="intelligent",
        at=AT,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    events: list[Event] = [
        PlanUpserted(plan_id="promo", description="d", at=AT),
        PlanUpserted(plan_id="old", description="d", at=AT),
        PlanRetired(plan_id="old", at=AT),
        created("reminder_01"),
        created("reminder_02"),
        IntentRecorded(
            name="reminder_03",
            plan_id="promo",
            intent=Intent(action="create", digest="sha256:y", started_at=AT),
        ),
    ]
    store = StateStore(tmp_path / "state" / "default.json")
    with store.lock("test"):
        store.append(store.load(), events)
    return tmp_path


def state(*argv: str, root: Path) -> int:
    return main(["state", *argv, "--root", str(root)])


def test_list_shows_addresses_ids_and_pending_intents(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert state("list", root=root) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["plan.old", "old"],
        ["plan.promo", "promo"],
        ["schedule.reminder_01", "sid-reminder_01"],
        ["schedule.reminder_02", "sid-reminder_02"],
        ["schedule.reminder_03", "-"],
    ]
    assert "retired 2025-12-01 09:00" in lines[0]
    assert "applied 2025-12-01 09:00" in lines[2]
    assert "PENDING create (since 2025-12-01 09:00" in lines[4]


def test_show_prints_the_record_as_json(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert state("show", "schedule.reminder_01", root=root) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["schedule_id"] == "sid-reminder_01"
    assert record["body"] == {"name": "reminder_01", "push": {"title": "Soldes"}}


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("schedule.nope", "schedule.nope is not in .*state list"),
        ("reminder_01", "is not an address; use plan.<id> or schedule.<name>"),
    ],
)
def test_show_names_a_bad_address(
    root: Path, capsys: pytest.CaptureFixture[str], address: str, message: str
) -> None:
    assert state("show", address, root=root) == ExitCode.ERROR
    assert re.search(message, capsys.readouterr().err)


def test_rm_forgets_warns_and_keeps_a_backup(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = root / "state" / "default.json"
    before = StateStore(path).load()
    assert state("rm", "schedule.reminder_01", "plan.old", "--yes", root=root) == 0
    captured = capsys.readouterr()
    assert "NOT deleted on EngageLab" in captured.err
    assert "(remote id sid-reminder_01)" in captured.err
    assert "a duplicate send" in captured.err
    assert "plans cannot be deleted" in captured.err
    assert "serial 6 -> 8" in captured.out
    after = StateStore(path).load()
    assert sorted(after.schedules) == ["reminder_02", "reminder_03"]
    assert sorted(after.plans) == ["promo"]
    assert after.lineage == before.lineage
    assert StateStore(path.with_name("default.json.backup")).load() == before


def test_rm_off_a_terminal_needs_yes_and_changes_nothing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = root / "state" / "default.json"
    before = path.read_bytes(), (root / "state" / "default.journal").read_bytes()
    assert state("rm", "schedule.reminder_01", root=root) == ExitCode.ERROR
    assert "pass --auto-approve" in capsys.readouterr().err
    assert (path.read_bytes(), (root / "state" / "default.journal").read_bytes()) == before
    # --auto-approve, as for apply and refresh (and --yes, its first name) go on.
    assert state("rm", "schedule.reminder_01", "--auto-approve", root=root) == ExitCode.OK


def test_rm_of_an_unknown_address_removes_nothing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = StateStore(root / "state" / "default.json").load()
    assert state("rm", "schedule.reminder_01", "schedule.nope", "--yes", root=root) == 1
    assert "schedule.nope is not in" in capsys.readouterr().err
    assert StateStore(root / "state" / "default.json").load() == before


def test_rm_while_locked_exits_with_the_lock_code(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = FileLock(root / "state" / "default.json.lock", "state/default.json")
    lock.acquire("reconcile apply")
    try:
        assert state("rm", "schedule.reminder_01", "--yes", root=root) == ExitCode.LOCKED
    finally:
        lock.release()
    assert "locked by pid" in capsys.readouterr().err


def test_unlock_reports_what_it_cleared(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock_file = root / "state" / "default.json.lock"
    lock = FileLock(lock_file, "state/default.json")
    lock.acquire("reconcile apply", now=AT)
    info = lock_file.read_bytes()
    lock.release()
    lock_file.write_bytes(info)  # as a run killed mid-apply leaves it
    assert state("unlock", root=root) == 0
    assert "left by pid" in capsys.readouterr().out
    assert lock_file.read_bytes() == b""
    assert state("unlock", root=root) == 0
    assert "is not locked" in capsys.readouterr().out


def test_a_corrupt_state_is_reported_not_listed(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "state" / "default.json").write_text("{")
    assert state("list", root=root) == ExitCode.ERROR
    assert "not valid JSON" in capsys.readouterr().err


def test_a_torn_journal_is_listed_with_a_note(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = root / "state" / "default.journal"
    journal.write_bytes(journal.read_bytes()[:-5])
    assert state("list", root=root) == 0
    captured = capsys.readouterr()
    assert "note: " in captured.err
    assert "interrupted write" in captured.err
    assert "reminder_03" not in captured.out  # the torn entry was the last one


def test_list_of_a_missing_state_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert state("list", root=tmp_path) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "nothing has been applied yet" in captured.err
    assert not (tmp_path / "state").exists()


def test_state_without_a_subcommand_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state"]) == 1
    assert "SUBCOMMAND" in capsys.readouterr().err
