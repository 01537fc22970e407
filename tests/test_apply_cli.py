"""`reconcile apply` through the CLI against the emulator over real HTTP on loopback.

Every test proves its claim from the emulator's own call log and per-name counts, never from
what reconcile says about itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.errors import ExitCode
from reconciler.state.store import StateStore
from tests.support.campaign import NOW, SINGLE, apply, daily, write_project, writes
from tests.support.emulator import EMULATOR_NOW, EmulatorHandle
from tests.support.postgres import Backend

REPO = Path(__file__).resolve().parents[1]


def assert_converged(emu: EmulatorHandle, root: Path, names: set[str], now: str = NOW) -> None:
    live = emu.names()
    assert set(live) == names
    assert all(count == 1 for count in live.values()), f"duplicates: {live}"
    before = len(emu.calls())
    assert apply(emu, root, now=now) == ExitCode.OK
    assert len(emu.calls()) == before, "a converged state must apply with zero calls"


def test_examples_apply_then_reapply_makes_zero_calls(env: EmulatorHandle, tmp_path: Path) -> None:
    for folder in ("specs", "templates"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    later = datetime.fromisoformat("2026-11-29T12:00:00+00:00")
    env.set_now(later)
    assert apply(env, tmp_path, now=later.isoformat()) == ExitCode.OK
    created = [p for m, p in writes(env) if m == "POST" and p == "/v4/schedules"]
    assert len(created) == len(env.names()) == 8  # the 2025 sale has expired: not sent
    before = len(env.calls())
    assert apply(env, tmp_path, now=later.isoformat()) == ExitCode.OK
    assert len(env.calls()) == before


def test_editing_one_language_makes_exactly_one_put(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 1)
    assert apply(env, tmp_path) == ExitCode.OK
    mark = len(env.calls())
    write_project(tmp_path, 1, fr="Coucou")
    assert apply(env, tmp_path) == ExitCode.OK
    assert [m for m, _ in writes(env, mark)] == ["PUT"]
    assert_converged(env, tmp_path, {"msg_00"})


def test_removal_deletes_and_mass_removal_needs_allow_destroy(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 14)
    assert apply(env, tmp_path) == ExitCode.OK
    write_project(tmp_path, 13)  # drop msg_13
    (tmp_path / "state").mkdir(exist_ok=True)
    mark = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.OK
    assert [m for m, _ in writes(env, mark)] == ["DELETE"]
    write_project(tmp_path, 1)  # drop 12 more: over the threshold of 10
    mark = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.UNSAFE_PLAN
    assert len(env.calls()) == mark
    assert apply(env, tmp_path, "--allow-destroy") == ExitCode.OK
    assert [m for m, _ in writes(env, mark)] == ["DELETE"] * 12
    assert_converged(env, tmp_path, {"msg_00"})


def test_replace_deletes_the_old_task_before_creating_the_new(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 1)
    assert apply(env, tmp_path) == ExitCode.OK
    mark = len(env.calls())
    write_project(tmp_path, 1, trigger=SINGLE)
    assert apply(env, tmp_path) == ExitCode.OK
    assert [m for m, _ in writes(env, mark)] == ["DELETE", "POST"]
    assert_converged(env, tmp_path, {"msg_00"})


def test_saved_plan_is_refused_when_stale_or_expired(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 2)
    plan_file = tmp_path / "plan.json"
    assert main(["plan", "--root", str(tmp_path), "--now", NOW, "--out", str(plan_file)]) == 0
    late = (EMULATOR_NOW + timedelta(days=25)).isoformat()  # past 2025-12-10 09:00 at UTC+14
    assert apply(env, tmp_path, str(plan_file), now=late) == ExitCode.EXPIRED_PLAN
    write_project(tmp_path, 2, fr="Coucou")
    assert apply(env, tmp_path, str(plan_file)) == ExitCode.STALE_PLAN
    assert env.calls() == []
    assert main(["plan", "--root", str(tmp_path), "--now", NOW, "--out", str(plan_file)]) == 0
    assert apply(env, tmp_path, str(plan_file)) == ExitCode.OK
    assert apply(env, tmp_path, str(plan_file)) == ExitCode.STALE_PLAN  # serial moved: used up
    assert_converged(env, tmp_path, {"msg_00", "msg_01"})


def test_a_held_lock_refuses_a_second_apply(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 1)
    store = StateStore(tmp_path / "state" / "default.json")
    (tmp_path / "state").mkdir()
    with store.lock("another apply"):
        assert apply(env, tmp_path) == ExitCode.LOCKED
    assert env.calls() == []
    assert not (tmp_path / "state" / "default.json").exists()


def test_blocked_plan_makes_no_call(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 1)
    # 2025-12-10 09:00 first fires at UTC+14 on 2025-12-09 19:00 UTC; be 2 minutes before that.
    almost = datetime.fromisoformat("2025-12-09T18:58:00+00:00")
    env.set_now(almost)
    assert apply(env, tmp_path, now=almost.isoformat()) == ExitCode.BLOCKED
    assert env.calls() == []


def test_non_interactive_apply_needs_auto_approve(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 1)
    argv = ["apply", "--root", str(tmp_path), "--base-url", env.base_url, "--now", NOW]
    assert main(argv) == ExitCode.ERROR  # pytest's stdin is not a terminal
    assert env.calls() == []


def test_pinned_clock_is_refused_against_a_real_data_center(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 1)
    argv = ["apply", "--root", str(tmp_path), "--data-center", "sgp", "--now", NOW]
    assert main([*argv, "--auto-approve"]) == ExitCode.ERROR


def test_lost_create_response_is_adopted_never_resent(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 3)
    env.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": "lost"}])
    assert apply(env, tmp_path, "--parallelism", "1") == ExitCode.PARTIAL_APPLY
    state = StateStore(tmp_path / "state" / "default.json").load()
    assert len(state.pending_intents()) == 1
    mark = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.OK
    assert [m for m, _ in writes(env, mark)] == []  # found by name: adopted, not re-sent
    # Its uniqueness is confirmed only after the settle time: a late second copy may land.
    assert [r.name for r in StateStore(tmp_path / "state" / "default.json").load().unverified()]
    later = (EMULATOR_NOW + timedelta(minutes=3)).isoformat()
    env.set_now(datetime.fromisoformat(later))
    assert apply(env, tmp_path, now=later) == ExitCode.OK
    assert_converged(env, tmp_path, {"msg_00", "msg_01", "msg_02"}, now=later)


def test_lost_immediate_send_is_never_recreated(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 1, trigger='{smart: {backup_time: "now"}}')
    env.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": "lost"}])
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY  # within the settle time: wait
    later = (EMULATOR_NOW + timedelta(minutes=3)).isoformat()
    env.set_now(datetime.fromisoformat(later))
    for _ in range(2):
        assert apply(env, tmp_path, now=later) == ExitCode.ERROR  # a person decides: never re-sent
    posts = [c for c in env.calls() if c.method == "POST" and c.path == "/v4/schedules"]
    assert len(posts) == 1


@pytest.mark.slow
def test_fault_storm_converges_without_duplicates(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 40)
    env.set_faults(
        rate_429=0.04,
        rate_23008=0.04,
        rate_5xx=0.04,
        rate_slow=0.04,
        slow_seconds=0.05,
        rate_lost=0.04,
        # ... plus one of each kind for certain, wherever the seeded draws happen to fall.
        script=[
            {"method": m, "path": "/v4/", "kind": k}
            for m, k in (
                ("POST", "lost"),
                ("POST", "429"),
                ("POST", "23008"),
                ("POST", "503"),
                ("POST", "lost"),
                ("POST", "504"),
                ("POST", "slow"),
            )
        ],
    )
    codes = []
    for k in range(8):  # each rerun past the settle time of the unknown creates before it
        at = EMULATOR_NOW + timedelta(minutes=3 * k)
        env.set_now(at)
        codes.append(apply(env, tmp_path, now=at.isoformat()))
    assert ExitCode.OK in codes, codes
    faults = Counter(c.outcome for c in env.calls() if c.outcome.startswith("fault:"))
    assert {"fault:lost", "fault:429", "fault:23008", "fault:503"} <= set(faults), faults
    env.set_faults()
    at += timedelta(minutes=3)  # a last run confirms the names adopted after unknown outcomes
    env.set_now(at)
    assert apply(env, tmp_path, now=at.isoformat()) == ExitCode.OK
    assert_converged(env, tmp_path, {f"msg_{i:02d}" for i in range(40)}, now=at.isoformat())


# --- kill tests: SIGKILL a real apply process at varied points, then finish the job ---------


def _spawn_apply(emu: EmulatorHandle, root: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ENGAGELAB_APP_KEY": emu.app_key,
        "ENGAGELAB_MASTER_SECRET": emu.master_secret,
        "PYTHONPATH": str(REPO),
    }
    code = "from reconciler.cli.main import entry; entry()"
    argv = ["apply", "--root", str(root), "--base-url", emu.base_url, "--now", NOW]
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv, "--auto-approve", "--quiet", "--parallelism", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def slow_writes(env: EmulatorHandle) -> Iterator[EmulatorHandle]:
    env.set_faults(rate_slow=1.0, slow_seconds=0.03)  # every call takes a while: room to kill
    yield env


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1, 2, 5, 9, 14])
def test_kill_at_any_point_then_rerun_converges(
    slow_writes: EmulatorHandle, tmp_path: Path, kill_after: int, backend: Backend
) -> None:
    emu = slow_writes
    write_project(tmp_path, 12)
    backend.configure(tmp_path)
    proc = _spawn_apply(emu, tmp_path)
    deadline = time.monotonic() + 30
    while len(emu.calls()) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    emu.set_faults()
    # Past the settle time: a create killed in flight may have landed late, or never.
    later = (EMULATOR_NOW + timedelta(minutes=3)).isoformat()
    emu.set_now(datetime.fromisoformat(later))
    assert apply(emu, tmp_path, now=later) == ExitCode.OK
    # A name adopted after an unknown outcome is confirmed by the next run's listing.
    confirm = (EMULATOR_NOW + timedelta(minutes=4)).isoformat()
    emu.set_now(datetime.fromisoformat(confirm))
    assert apply(emu, tmp_path, now=confirm) == ExitCode.OK
    assert_converged(emu, tmp_path, {f"msg_{i:02d}" for i in range(12)}, now=confirm)
    posts = [c for c in emu.calls() if c.method == "POST" and c.path == "/v4/schedules"]
    assert sum(c.write_applied for c in posts) == 12  # never a second create of any name


def test_finishing_an_interrupted_replace_keeps_the_live_copy(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    """A record whose old copy is still live (superseded) loses only that copy."""
    from reconciler.state.model import ScheduleCreated, ScheduleForgotten

    write_project(tmp_path, 1)
    assert apply(env, tmp_path) == ExitCode.OK
    store = StateStore(tmp_path / "state" / "default.json")
    with store.lock("test"):
        state = store.load()
        live = state.schedules["msg_00"]
        assert live.schedule_id is not None and live.body is not None
        # Make an "old copy" on the remote and record it as superseded by the live one.
        old = env.request("POST", "/v4/schedules", {**live.body}).json()["schedule_id"]
        state = store.append(state, [ScheduleForgotten(name="msg_00")])
        for sid in (old, live.schedule_id):
            state = store.append(
                state,
                [
                    ScheduleCreated(
                        name="msg_00",
                        plan_id="camp",
                        schedule_id=sid,
                        body=live.body,
                        digest=live.digest or "",
                        trigger_kind="intelligent",
                        at=EMULATOR_NOW,
                    )
                ],
            )
        store.write(state)
    assert StateStore(store.path).load().schedules["msg_00"].superseded == (old,)
    mark = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.OK
    assert writes(env, mark) == [("DELETE", f"/v4/schedules/{old}")]
    assert_converged(env, tmp_path, {"msg_00"})


# --- findings of the safety review: each can fail if its guard is removed --------------------


def test_a_lost_state_never_sends_a_live_name_again(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 2)
    assert apply(env, tmp_path) == ExitCode.OK
    for leftover in (tmp_path / "state").iterdir():
        leftover.unlink()  # a lost or rolled-back state file
    mark = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.ERROR  # a person must act: import or delete
    assert [m for m, p in writes(env, mark) if p == "/v4/schedules"] == []
    assert env.names() == {"msg_00": 1, "msg_01": 1}
    assert (
        main(["import", "--root", str(tmp_path), "--base-url", env.base_url, "--match-names"]) == 0
    )
    assert_converged(env, tmp_path, {"msg_00", "msg_01"})


def test_a_rename_deletes_the_old_name_before_creating_the_new(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 1)
    assert apply(env, tmp_path) == ExitCode.OK
    spec = tmp_path / "specs" / "camp.yaml"
    spec.write_text(spec.read_text().replace("name: msg_", "name: promo_"), encoding="utf-8")
    mark = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.OK
    assert [m for m, _ in writes(env, mark)] == ["DELETE", "POST"]
    assert_converged(env, tmp_path, {"promo_00"})


def test_a_rename_whose_old_copy_cannot_be_deleted_creates_nothing(
    env: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.api.client import EngageLabClient
    from reconciler.errors import ApiError

    write_project(tmp_path, 1)
    assert apply(env, tmp_path) == ExitCode.OK
    spec = tmp_path / "specs" / "camp.yaml"
    spec.write_text(spec.read_text().replace("name: msg_", "name: promo_"), encoding="utf-8")

    async def refused(self: EngageLabClient, schedule_id: str) -> None:
        raise ApiError("DELETE", f"/v4/schedules/{schedule_id}", "refused", status=400, code=8100)

    monkeypatch.setattr(EngageLabClient, "delete_schedule", refused)
    mark = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.ERROR
    assert writes(env, mark) == []  # the old copy stays, and the new name is never created
    assert env.names() == {"msg_00": 1}


def test_an_adopted_task_of_another_trigger_kind_is_not_called_complete(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 1)
    env.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": "lost"}])
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY
    write_project(tmp_path, 1, trigger=SINGLE)
    mark = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY  # adopted, but not as reviewed
    assert writes(env, mark) == []
    assert apply(env, tmp_path) == ExitCode.OK  # now planned and applied as a replace
    assert [m for m, _ in writes(env, mark)] == ["DELETE", "POST"]
    assert_converged(env, tmp_path, {"msg_00"})


@pytest.mark.parametrize("lead", [timedelta(minutes=1), timedelta(hours=1)])
def test_a_saved_plan_made_with_a_clock_ahead_is_refused(
    env: EmulatorHandle, tmp_path: Path, lead: timedelta
) -> None:
    """No tolerance: even a minute ahead (the old 5-minute one let a fast runner's plan in)."""
    write_project(tmp_path, 1)
    plan_file = tmp_path / "plan.json"
    ahead = (EMULATOR_NOW + lead).isoformat()
    assert main(["plan", "--root", str(tmp_path), "--now", ahead, "--out", str(plan_file)]) == 0
    assert apply(env, tmp_path, str(plan_file)) == ExitCode.STALE_PLAN
    assert env.calls() == []


def test_a_listing_that_shifts_under_a_delete_is_read_again(
    env: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages are offsets: a delete during the listing hides an item from one pass."""
    import reconciler.api.client as client_module

    write_project(tmp_path, 51)
    assert apply(env, tmp_path) == ExitCode.OK
    write_project(tmp_path, 52)  # msg_51 is the 52nd schedule: on page 2
    env.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": "lost"}])
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY
    state = StateStore(tmp_path / "state" / "default.json").load()
    victim = state.schedules["msg_00"].schedule_id
    assert victim is not None
    original = client_module.EngageLabClient.list_schedules
    passes = 0

    async def shifting(self: client_module.EngageLabClient) -> list[dict[str, object]]:
        nonlocal passes
        passes += 1
        if passes == 1:
            env.server.delete_schedule(victim)  # a console user, between page 1 and page 2
            listed = await original(self)
            return [s for s in listed if s.get("name") != "msg_51"]  # what the shift hides
        return await original(self)

    monkeypatch.setattr(client_module.EngageLabClient, "list_schedules", shifting)
    apply(env, tmp_path)
    assert passes >= 3  # the two first passes disagreed, so it read again
    assert env.names(include_expired=True)["msg_51"] == 1


def test_a_partial_apply_reports_every_group_by_name(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 3)
    env.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": "lost"}])
    assert apply(env, tmp_path, "--parallelism", "1") == ExitCode.PARTIAL_APPLY
    err = capsys.readouterr().err
    assert "applied (3):" in err  # the push plan and two schedules: their state is true
    assert "outcome unknown (1):\n  schedule.msg_00 (create)" in err
    assert "looked up by name" in err


def test_an_edited_saved_plan_is_refused_before_any_call(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    import json

    write_project(tmp_path, 2)
    plan_file = tmp_path / "plan.json"
    assert main(["plan", "--root", str(tmp_path), "--now", NOW, "--out", str(plan_file)]) == 0
    saved = json.loads(plan_file.read_text(encoding="utf-8"))
    for change in saved["changes"]:
        if change["address"] == "schedule.msg_01":
            notification = change["after"]["push"]["body"]["notification"]
            notification["alert"] = "FORGED: verify your account at https://evil.example"
    plan_file.write_text(json.dumps(saved), encoding="utf-8")
    assert apply(env, tmp_path, str(plan_file)) == ExitCode.STALE_PLAN
    assert env.calls() == []


@pytest.mark.slow
def test_no_write_at_all_when_the_safety_listing_fails(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 1)
    env.set_faults(script=[{"method": "GET", "path": "/v4/schedules", "kind": "503"}] * 8)
    assert apply(env, tmp_path) == ExitCode.RETRIES_EXHAUSTED
    assert writes(env) == []  # not even the push plan, which could never be deleted
    assert not (tmp_path / "state" / "default.json").exists()


def test_wrong_credentials_exit_1_and_say_what_to_check(
    env: EmulatorHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_project(tmp_path, 1)
    monkeypatch.setenv("ENGAGELAB_MASTER_SECRET", "wrong-secret-value")
    assert apply(env, tmp_path) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "21004" in err and "wrong-secret-value" not in err
    assert writes(env) == []


def test_plan_detailed_exitcode_flags_a_plan_apply_would_refuse(tmp_path: Path) -> None:
    write_project(tmp_path, 1)
    argv = ["plan", "--root", str(tmp_path), "--detailed-exitcode"]
    assert main([*argv, "--now", NOW]) == ExitCode.CHANGES
    # 2025-12-10 09:00 first fires at 2025-12-09 19:00 UTC: one minute before, it is blocked.
    assert main([*argv, "--now", "2025-12-09T18:59:00+00:00"]) == ExitCode.BLOCKED


def test_output_to_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    write_project(tmp_path, 30)
    code = "from reconciler.cli.main import entry; entry()"
    argv = ["render", "--root", str(tmp_path), "--now", NOW, "--format", "json"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()  # like `| head -c 10`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=30) == 0, err
    assert "internal error" not in err


@pytest.mark.slow
def test_two_concurrent_applies_one_is_refused_and_nothing_is_corrupted(
    slow_writes: EmulatorHandle, tmp_path: Path, backend: Backend
) -> None:
    """Two applies of one state: exactly one proceeds. With PostgreSQL, from two working copies
    (two CI runners): the file store cannot share its lock there, the database does."""
    emu = slow_writes
    emu.set_faults(rate_slow=1.0, slow_seconds=0.25)  # the first is still busy when the second runs
    first_root, second_root = tmp_path, tmp_path
    write_project(first_root, 12)
    backend.configure(first_root)
    if backend.kind == "postgres":
        second_root = tmp_path / "second-runner"
        shutil.copytree(first_root, second_root, ignore=shutil.ignore_patterns("second-runner"))
    first = _spawn_apply(emu, first_root)
    deadline = time.monotonic() + 30
    while len(emu.calls()) < 2 and time.monotonic() < deadline:  # the first holds the lock
        time.sleep(0.005)
    calls = len(emu.calls())
    assert apply(emu, second_root) == ExitCode.LOCKED
    assert all(c.method == "GET" for c in emu.calls()[calls:] if c.path == "/v4/schedules")
    assert first.wait(timeout=60) == ExitCode.OK
    emu.set_faults()
    assert_converged(emu, second_root, {f"msg_{i:02d}" for i in range(12)})
    posts = [c for c in emu.calls() if c.method == "POST" and c.path == "/v4/schedules"]
    assert sum(c.write_applied for c in posts) == 12


# --- a saved plan file is evidence, not instructions: apply runs its own rebuild -----------


def _plan_file(root: Path, now: str = NOW) -> tuple[Path, dict[str, object]]:
    import json

    plan_file = root / "p.json"
    assert main(["plan", "--root", str(root), "--now", now, "--out", str(plan_file)]) == 0
    return plan_file, json.loads(plan_file.read_text(encoding="utf-8"))


def _save(plan_file: Path, data: dict[str, object]) -> None:
    import json

    plan_file.write_text(json.dumps(data), encoding="utf-8")


def test_a_forged_unsafe_flag_does_not_allow_a_mass_delete(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 14)
    assert apply(env, tmp_path) == ExitCode.OK
    write_project(tmp_path, 1)
    plan_file, data = _plan_file(tmp_path)
    data["unsafe"], data["unsafe_reason"] = False, None
    _save(plan_file, data)
    mark = len(env.calls())
    assert apply(env, tmp_path, str(plan_file)) == ExitCode.UNSAFE_PLAN
    assert writes(env, mark) == []


def test_forged_blockers_and_windows_do_not_open_the_send_gate(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 1, trigger=SINGLE)
    late = "2025-12-09T19:30:00+00:00"  # 09:00 on 2025-12-10 has begun in UTC+14
    env.set_now(datetime.fromisoformat(late))
    plan_file, data = _plan_file(tmp_path, late)
    assert data["blockers"]
    data["blockers"], data["expires_at"] = [], None
    for change in data["changes"]:  # type: ignore[attr-defined]
        if change["window"]:
            change["window"]["first"] = "2026-01-01T00:00:00Z"
    _save(plan_file, data)
    assert apply(env, tmp_path, str(plan_file), now=late) == ExitCode.BLOCKED
    assert writes(env) == []


def test_forged_drift_cannot_delete_a_schedule_of_another_team(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    from tests.support.emulator import sample_schedule

    write_project(tmp_path, 1)
    assert apply(env, tmp_path) == ExitCode.OK
    foreign = env.request("POST", "/v4/schedules", sample_schedule("other_team")).json()
    write_project(tmp_path, 2)
    plan_file, data = _plan_file(tmp_path)
    data["refreshed_at"] = data["created_at"]
    data["drift"] = [
        {
            "address": "schedule.msg_01",
            "kind": "created remotely",
            "detail": "",
            "schedule_id": foreign["schedule_id"],
            "remote": sample_schedule("msg_01"),
            "plan_id": "camp",
        }
    ]
    for change in data["changes"]:  # type: ignore[attr-defined]
        if change["address"] == "schedule.msg_01":
            change["action"], change["schedule_id"] = "replace", foreign["schedule_id"]
    _save(plan_file, data)
    mark = len(env.calls())
    assert apply(env, tmp_path, str(plan_file)) == ExitCode.STALE_PLAN
    assert writes(env, mark) == [] and "other_team" in env.names()


def test_a_second_machine_creating_the_same_name_meanwhile_never_leaves_two(
    env: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two state files (two machines) share one AppKey: the lock cannot see the other run."""
    import reconciler.api.client as client_module

    mine, theirs = tmp_path / "a", tmp_path / "b"
    write_project(mine, 1)
    write_project(theirs, 1)
    original = client_module.EngageLabClient.list_schedules
    passes = 0

    async def racing(self: client_module.EngageLabClient) -> list[dict[str, object]]:
        nonlocal passes
        passes += 1
        listed = await original(self)
        if passes == 2:  # the other machine applies between our safety listing and our create
            proc = _spawn_apply(env, theirs)
            assert proc.wait(timeout=60) == ExitCode.OK
        return listed

    monkeypatch.setattr(client_module.EngageLabClient, "list_schedules", racing)
    assert apply(env, mine) == ExitCode.ERROR  # reported: a person must reconcile the states
    assert env.names() == {"msg_00": 1}


def test_a_running_device_time_periodical_can_still_be_edited(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 1, trigger=daily())
    assert apply(env, tmp_path) == ExitCode.OK
    mid = "2025-12-20T15:00:00+00:00"  # some zone is always inside a daily occurrence
    env.set_now(datetime.fromisoformat(mid))
    write_project(tmp_path, 1, trigger=daily(), fr="Coucou")
    mark = len(env.calls())
    assert apply(env, tmp_path, now=mid) == ExitCode.OK
    assert [m for m, _ in writes(env, mark)] == ["PUT"]
