"""Apply at the edges of time and identity, through the CLI against the emulator over loopback.

Each test proves its claim from the emulator's own call log and per-name counts. The cases are
those of the apply-safety review: a slow write that lands after the client gave up, a lost
post-create check, resuming onto a send in progress, a targeted rename, a second state file or a
wrong AppKey on one account, retries that eat the lead time, a clock that is off.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.errors import ExitCode
from reconciler.state.store import StateStore
from tests.support.campaign import NOW, apply, daily, write_project, writes
from tests.support.emulator import EMULATOR_NOW, EmulatorHandle

REPO = Path(__file__).resolve().parents[1]
SETTLE = timedelta(seconds=121)  # just past the default create settle time (120 s)


def _at(emu: EmulatorHandle, when: datetime) -> str:
    """Move the emulator's clock and return the --now value that matches it."""
    emu.set_now(when)
    return when.isoformat()


def _posts(emu: EmulatorHandle) -> int:
    return sum(1 for c in emu.calls() if c.method == "POST" and c.path == "/v4/schedules")


def _state(root: Path) -> StateStore:
    return StateStore(root / "state" / "default.json")


# --- 1. a slow create that the server commits after the client gave up ------------------------


@pytest.mark.slow
def test_a_create_committed_late_is_not_sent_again_before_the_settle_time(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    env.set_faults(
        script=[{"method": "POST", "path": "/v4/schedules", "kind": "late", "seconds": 1.0}]
    )
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY  # 504: outcome unknown
    assert env.names() == {}  # not landed yet
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY  # too early: nothing is sent
    assert "settle time" in capsys.readouterr().err
    assert _posts(env) == 1
    time.sleep(1.5)  # the slow write lands
    assert env.names() == {"msg_00": 1}
    later = _at(env, EMULATOR_NOW + SETTLE)
    assert apply(env, tmp_path, now=later) == ExitCode.OK  # found by name, adopted
    assert _posts(env) == 1 and env.names() == {"msg_00": 1}


@pytest.mark.slow
def test_a_late_copy_that_lands_after_the_re_create_is_deleted_by_the_next_apply(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    env.set_faults(
        script=[{"method": "POST", "path": "/v4/schedules", "kind": "late", "seconds": 2.0}]
    )
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY
    later = _at(env, EMULATOR_NOW + SETTLE)  # settle time passed, the write still in flight
    assert apply(env, tmp_path, now=later) == ExitCode.OK  # created again, uniqueness pending
    assert _state(tmp_path).load().schedules["msg_00"].uncertain
    time.sleep(2.5)
    assert env.names() == {"msg_00": 2}  # the late write landed: live twice
    capsys.readouterr()
    later = _at(env, EMULATOR_NOW + SETTLE + timedelta(seconds=10))
    assert main(["plan", "--root", str(tmp_path), "--now", later]) == 0
    assert "Uniqueness checks pending" in capsys.readouterr().out  # not "No changes"
    mark = len(env.calls())
    assert apply(env, tmp_path, now=later) == ExitCode.OK
    assert [m for m, _ in writes(env, mark)] == ["DELETE"]
    assert "second copy" in capsys.readouterr().err
    assert env.names() == {"msg_00": 1}
    mark = len(env.calls())
    later = _at(env, EMULATOR_NOW + SETTLE + timedelta(seconds=20))
    assert apply(env, tmp_path, now=later) == ExitCode.OK  # two listings agree: one copy
    assert writes(env, mark) == []
    assert _state(tmp_path).load().unverified() == []  # confirmed: the next run makes no call
    mark = len(env.calls())
    assert apply(env, tmp_path, now=later) == ExitCode.OK
    assert len(env.calls()) == mark


# --- 2. the post-create duplicate check is persisted ----------------------------------------


@pytest.mark.slow
def test_a_failed_post_create_check_stays_pending_until_a_later_apply_makes_it(
    env: EmulatorHandle,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import reconciler.api.client as client_module

    write_project(tmp_path, 2)
    original = client_module.EngageLabClient.list_schedules
    passes = 0

    async def third_fails(self: client_module.EngageLabClient) -> list[dict[str, object]]:
        nonlocal passes
        passes += 1
        if passes == 3:  # the post-create check: another machine's copy lands, listing fails
            env.request("POST", "/v4/schedules", _remote_copy(tmp_path, "msg_01"))
            env.set_faults(script=[{"method": "GET", "path": "/v4/schedules", "kind": "503"}] * 8)
        return await original(self)

    monkeypatch.setattr(client_module.EngageLabClient, "list_schedules", third_fails)
    assert apply(env, tmp_path) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "schedule.msg_" in err and "stays pending" in err
    assert {r.name for r in _state(tmp_path).load().unverified()} == {"msg_00", "msg_01"}
    monkeypatch.setattr(client_module.EngageLabClient, "list_schedules", original)
    env.set_faults()
    assert env.names() == {"msg_00": 1, "msg_01": 2}
    assert main(["plan", "--root", str(tmp_path), "--now", NOW, "--detailed-exitcode"]) == 2
    next_run = _at(env, EMULATOR_NOW + timedelta(seconds=10))
    assert apply(env, tmp_path, now=next_run) == ExitCode.ERROR  # the check: never two copies
    assert env.names() == {"msg_00": 1, "msg_01": 1}


def _remote_copy(root: Path, name: str) -> dict[str, object]:
    """The body another state file would send for `name`: this state's, another owner."""
    record = _state(root).load().schedules[name]  # lockless read, as `plan` does
    assert record.body is not None
    push = dict(record.body["push"])
    push["custom_args"] = {**push.get("custom_args", {}), "reconcile_state": "another-state"}
    return {**record.body, "push": push}


# --- 3. resuming onto something that has begun sending ----------------------------------------


def test_a_resumed_create_finding_a_copy_that_is_sending_records_it_and_makes_no_put(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    old = '{smart: {backup_time: "2025-12-10 09:00:00"}}'
    write_project(tmp_path, 1, trigger=old)
    env.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": "lost"}])
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY  # created, answer lost
    write_project(tmp_path, 1, trigger='{smart: {backup_time: "2025-12-20 09:00:00"}}')
    sending = _at(env, datetime.fromisoformat("2025-12-09T12:00:00+00:00"))  # 12-10 began at +14
    mark = len(env.calls())
    assert apply(env, tmp_path, now=sending) == ExitCode.OK
    assert writes(env, mark) == []  # no PUT onto a send in progress
    record = _state(tmp_path).load().schedules["msg_00"]
    assert record.body is not None
    assert record.body["trigger"]["intelligent"]["backup_time"] == "2025-12-10 09:00:00"


def test_an_interrupted_update_gates_on_the_live_version(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1, trigger='{smart: {backup_time: "2025-12-20 09:00:00"}}')
    assert apply(env, tmp_path) == ExitCode.OK
    write_project(tmp_path, 1, trigger='{smart: {backup_time: "2025-12-22 09:00:00"}}')
    env.set_faults(script=[{"method": "PUT", "path": "/v4/schedules/", "kind": "503"}] * 8)
    assert apply(env, tmp_path) != ExitCode.OK  # the update's outcome is unknown
    env.set_faults()
    record = _state(tmp_path).load().schedules["msg_00"]
    assert record.intent is not None and record.schedule_id is not None
    # Meanwhile someone moved the live task in the console to a time that has begun.
    env.server.edit_schedule(
        record.schedule_id, {"trigger": {"intelligent": {"backup_time": "2025-12-10 09:00:00"}}}
    )
    sending = _at(env, datetime.fromisoformat("2025-12-09T12:00:00+00:00"))
    mark = len(env.calls())
    assert apply(env, tmp_path, now=sending) == ExitCode.ERROR
    assert writes(env, mark) == []
    assert "version on EngageLab" in capsys.readouterr().err


# --- 4. --target on a rename ------------------------------------------------------------------


def test_a_targeted_rename_is_applied_whole(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 2)
    assert apply(env, tmp_path) == ExitCode.OK
    spec = tmp_path / "specs" / "camp.yaml"
    spec.write_text(spec.read_text().replace("name: msg_", "name: promo_"), encoding="utf-8")
    capsys.readouterr()
    assert (
        main(["plan", "--root", str(tmp_path), "--now", NOW, "--target", "schedule.promo_00"]) == 0
    )
    assert "included with --target schedule.promo_00" in capsys.readouterr().out
    mark = len(env.calls())
    assert apply(env, tmp_path, "--target", "schedule.promo_00") == ExitCode.OK
    assert [m for m, _ in writes(env, mark)] == ["DELETE", "POST"]
    assert env.names() == {"promo_00": 1, "msg_01": 1}  # never msg_00 and promo_00 together


# --- 5. a second state file on the same AppKey -----------------------------------------------


def test_a_second_state_on_the_same_appkey_sends_nothing_at_all(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "staging", tmp_path / "clone"
    for root in (first, second):
        write_project(root, 1)
        spec = root / "specs" / "camp.yaml"
        now_push = (
            '  - name: hello_now\n    vars: {n: "now"}\n    trigger: {smart: {backup_time: now}}\n'
        )
        spec.write_text(spec.read_text() + now_push, encoding="utf-8")
    assert apply(env, first) == ExitCode.OK
    assert env.names(include_expired=True) == {"msg_00": 1, "hello_now": 1}
    mark = len(env.calls())
    capsys.readouterr()
    assert apply(env, second) == ExitCode.ERROR
    assert writes(env, mark) == []  # not even the push plan: the "now" push is not sent again
    err = capsys.readouterr().err
    assert "another reconcile state" in err and "reconcile import" in err
    lineage = _state(first).load().lineage
    assert lineage in err


# --- 6. a state used against the wrong AppKey or data center ----------------------------------


def test_a_state_bound_to_one_appkey_is_refused_with_another(
    env: EmulatorHandle,
    tmp_path: Path,
    make_emulator: Callable[..., EmulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_project(tmp_path, 3)
    assert apply(env, tmp_path) == ExitCode.OK
    target = _state(tmp_path).load().target
    assert target is not None and env.app_key not in target.model_dump_json()
    other = make_emulator(app_key="another-app-key")
    monkeypatch.setenv("ENGAGELAB_APP_KEY", "another-app-key")
    write_project(tmp_path, 2)  # msg_02 leaves the specs: a delete
    capsys.readouterr()
    assert apply(other, tmp_path) == ExitCode.ERROR
    assert other.calls() == []
    assert "wrong --env" in capsys.readouterr().err


def test_a_state_pointed_at_an_empty_account_stops_before_a_silent_delete(
    env: EmulatorHandle,
    tmp_path: Path,
    make_emulator: Callable[..., EmulatorHandle],
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_project(tmp_path, 3)
    assert apply(env, tmp_path) == ExitCode.OK
    empty = make_emulator()  # same AppKey, another account's data (or data center)
    write_project(tmp_path, 2)
    capsys.readouterr()
    assert apply(empty, tmp_path) == ExitCode.ERROR
    assert writes(empty) == []
    assert "wrong AppKey or data center" in capsys.readouterr().err


def test_a_delete_answered_not_found_before_it_fired_is_a_warning(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 3)
    assert apply(env, tmp_path) == ExitCode.OK
    gone = _state(tmp_path).load().schedules["msg_02"].schedule_id
    assert gone is not None
    env.server.delete_schedule(gone)  # deleted in the console
    write_project(tmp_path, 2)
    capsys.readouterr()
    assert apply(env, tmp_path) == ExitCode.OK
    err = capsys.readouterr().err
    assert f"warning: schedule.msg_02: EngageLab did not find {gone}" in err


# --- 7. every write attempt is gated, retries included ----------------------------------------


def test_throttled_retries_stop_before_the_lead_time(
    env: EmulatorHandle,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconciler.api.retry import BackoffPolicy

    # Deterministic backoff: the full ceiling, 0.5 s then 1 s.
    monkeypatch.setattr(BackoffPolicy, "jitter", lambda self, i, draw: self.base * 2**i)
    write_project(tmp_path, 1, trigger='{single: {time: "2025-12-10 09:00:00", zone: site}}')
    fires = datetime.fromisoformat("2025-12-10T09:00:00+00:00")
    # An attempt may land up to 1 + 5 s (request + connect timeout) after it starts: the first
    # lands 1 s outside the 3-minute lead, the retry after 0.5 s still does, the next would not.
    close = _at(env, fires - timedelta(minutes=3, seconds=7))
    env.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": "429"}] * 2)
    assert apply(env, tmp_path, "--timeout", "1", now=close) == ExitCode.ERROR
    assert env.names() == {}  # the third attempt, which would land inside the lead, is not sent
    assert _posts(env) == 2
    assert "less than 3 minutes" in capsys.readouterr().err


# --- 8. backup_time "now" -------------------------------------------------------------------


NOW_SPEC = """\
plan: {id: camp, description: Test campaign}
checks: {min_gap: error}
defaults:
  template: hello
  platform: [android, ios]
  audience: {tag: [testers]}
  languages: [en, fr]
  default_language: en
messages:
  - name: msg_site
    vars: {n: "1"}
    trigger: {single: {time: "2025-11-20 13:30:00", zone: site}}
  - name: msg_now
    vars: {n: "2"}
    trigger: {smart: {backup_time: now}}
"""


def test_a_now_push_is_checked_at_the_instant_of_the_apply(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    (tmp_path / "specs" / "camp.yaml").write_text(NOW_SPEC, encoding="utf-8")
    plan_file = tmp_path / "plan.json"
    early = "2025-11-20T12:00:00+00:00"  # 90 minutes before msg_site: no min_gap finding
    assert main(["plan", "--root", str(tmp_path), "--now", early, "--out", str(plan_file)]) == 0
    late = _at(env, datetime.fromisoformat("2025-11-20T12:45:00+00:00"))  # 45 minutes before
    capsys.readouterr()
    assert apply(env, tmp_path, str(plan_file), now=late) == ExitCode.BLOCKED
    assert env.calls() == [] and "min_gap" in capsys.readouterr().err


def test_a_saved_plan_with_a_now_push_expires_after_an_hour(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 1, trigger='{smart: {backup_time: "now"}}')
    plan_file = tmp_path / "plan.json"
    assert main(["plan", "--root", str(tmp_path), "--now", NOW, "--out", str(plan_file)]) == 0
    later = _at(env, EMULATOR_NOW + timedelta(minutes=61))
    assert apply(env, tmp_path, str(plan_file), now=later) == ExitCode.EXPIRED_PLAN
    assert env.calls() == []


# --- 9. the clock ----------------------------------------------------------------------------


def test_no_write_when_the_api_clock_disagrees_with_ours(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    env.set_now(EMULATOR_NOW + timedelta(minutes=5))  # the API's Date header runs 5 min ahead
    assert apply(env, tmp_path) == ExitCode.ERROR
    assert writes(env) == []
    assert "clock" in capsys.readouterr().err


# --- 10. a periodical moved later on the same day ---------------------------------------------


def test_moving_a_running_daily_occurrence_later_is_blocked(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1, trigger=daily("09:00:00"))
    assert apply(env, tmp_path) == ExitCode.OK
    # 2025-12-20 00:00 UTC: 09:00 has passed at UTC+14 (since 19:00 UTC the day before), and
    # 15:00 has not; those zones would get the 20th's message twice.
    mid = _at(env, datetime.fromisoformat("2025-12-20T00:00:00+00:00"))
    write_project(tmp_path, 1, trigger=daily("15:00:00"))
    mark = len(env.calls())
    capsys.readouterr()
    assert apply(env, tmp_path, now=mid) == ExitCode.BLOCKED
    assert writes(env, mark) == []
    assert "twice" in capsys.readouterr().err


# --- 14. a journal that cannot be written ------------------------------------------------------


def test_a_full_disk_gives_the_real_cause_and_a_report_and_loses_nothing(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 6)
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))\n"
        "from reconciler.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["apply", "--root", str(tmp_path), "--base-url", env.base_url, "--now", NOW]
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv, "--auto-approve", "--quiet", "--parallelism", "1"],
        env={
            **os.environ,
            "ENGAGELAB_APP_KEY": env.app_key,
            "ENGAGELAB_MASTER_SECRET": env.master_secret,
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == ExitCode.ERROR, proc.stderr
    assert "internal error" not in proc.stderr and "ExceptionGroup" not in proc.stderr
    assert "could not write" in proc.stderr and "File too large" in proc.stderr
    assert "not attempted" in proc.stderr  # the per-change report
    live_before = env.names()
    assert apply(env, tmp_path) == ExitCode.OK  # nothing lost: the rerun finishes the job
    assert env.names() == {f"msg_{i:02d}": 1 for i in range(6)}
    assert set(live_before) <= set(env.names())


# --- from the adversarial review: interactions of the edges ----------------------------------


def _rename(root: Path) -> None:
    spec = root / "specs" / "camp.yaml"
    spec.write_text(spec.read_text().replace("name: msg_", "name: promo_"), encoding="utf-8")


@pytest.mark.slow
def test_a_rename_while_the_old_create_may_still_land_waits_for_the_settle_time(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 1)
    late = {"method": "POST", "path": "/v4/schedules", "kind": "late", "seconds": 1.5}
    env.set_faults(script=[late])
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY
    _rename(tmp_path)
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY  # the old name may still land
    assert _posts(env) == 1  # promo_00 is not created beside it
    assert "msg_00" in _state(tmp_path).load().schedules  # still recorded, looked at again
    time.sleep(2.0)
    assert env.names() == {"msg_00": 1}  # the late write landed
    later = _at(env, EMULATOR_NOW + SETTLE)
    assert apply(env, tmp_path, now=later) == ExitCode.OK
    assert env.names() == {"promo_00": 1}  # old copy found, deleted, then the new one created


def _live_trigger(emu: EmulatorHandle, name: str) -> dict[str, object]:
    (item,) = [s for s in emu.server.snapshot()["schedules"] if s["name"] == name]
    trigger: dict[str, object] = item["trigger"]
    return trigger


def test_an_update_over_a_rolled_back_state_gates_on_the_live_version(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1, trigger='{smart: {backup_time: "2025-12-20 09:00:00"}}')
    assert apply(env, tmp_path) == ExitCode.OK
    write_project(tmp_path, 1, trigger='{smart: {backup_time: "2025-12-10 09:00:00"}}')
    assert apply(env, tmp_path) == ExitCode.OK
    snapshot = tmp_path / "state" / "default.json"
    snapshot.write_bytes((tmp_path / "state" / "default.json.backup").read_bytes())  # rollback
    write_project(tmp_path, 1, trigger='{smart: {backup_time: "2025-12-22 09:00:00"}}')
    sending = _at(env, datetime.fromisoformat("2025-12-09T12:00:00+00:00"))  # 12-10 has begun
    mark = len(env.calls())
    capsys.readouterr()
    assert apply(env, tmp_path, now=sending) == ExitCode.ERROR
    assert writes(env, mark) == []  # no PUT onto the live version that is sending
    assert "another version than the state records" in capsys.readouterr().err


def test_a_daily_task_replaced_by_a_later_one_off_that_day_is_blocked(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    write_project(tmp_path, 1, trigger=daily())
    assert apply(env, tmp_path) == ExitCode.OK
    mid = _at(env, datetime.fromisoformat("2025-12-20T00:00:00+00:00"))
    write_project(tmp_path, 1, trigger='{single: {time: "2025-12-20 15:00:00", zone: device}}')
    mark = len(env.calls())
    assert apply(env, tmp_path, now=mid) == ExitCode.BLOCKED
    assert writes(env, mark) == []


def test_a_saved_plan_for_one_environment_is_refused_for_another(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    (tmp_path / "reconcile.toml").write_text(
        '[environments.staging]\nstate = "state/staging.json"\n\n'
        '[environments.production]\nstate = "state/production.json"\n',
        encoding="utf-8",
    )
    plan_file = tmp_path / "plan.json"
    argv = ["plan", "--root", str(tmp_path), "--now", NOW, "--env", "staging"]
    assert main([*argv, "--out", str(plan_file)]) == 0
    capsys.readouterr()
    assert apply(env, tmp_path, str(plan_file), "--env", "production") == ExitCode.STALE_PLAN
    assert env.calls() == []
    assert "made for environment staging" in capsys.readouterr().err
    assert apply(env, tmp_path, str(plan_file), "--env", "staging") == ExitCode.OK


@pytest.mark.slow
def test_an_update_committed_late_never_overwrites_a_newer_one(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    def backup(day: int) -> str:
        return f'{{smart: {{backup_time: "2025-12-{day} 09:00:00"}}}}'

    write_project(tmp_path, 1, trigger=backup(20))
    assert apply(env, tmp_path) == ExitCode.OK
    write_project(tmp_path, 1, trigger=backup(21))
    late = {"method": "PUT", "path": "/v4/schedules/", "kind": "late", "seconds": 1.5}
    env.set_faults(script=[late])
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY  # 504: unknown, never repeated
    write_project(tmp_path, 1, trigger=backup(22))
    mark = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY  # within the settle time: no PUT
    assert writes(env, mark) == []
    time.sleep(2.0)  # the first PUT lands late
    later = _at(env, EMULATOR_NOW + SETTLE)
    assert apply(env, tmp_path, now=later) == ExitCode.OK
    assert _live_trigger(env, "msg_00") == {"intelligent": {"backup_time": "2025-12-22 09:00:00"}}


def test_a_sent_now_push_does_not_stay_pending(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 1, trigger='{smart: {backup_time: "now"}}')
    assert apply(env, tmp_path) == ExitCode.OK
    later = _at(env, EMULATOR_NOW + timedelta(minutes=5))
    assert apply(env, tmp_path, now=later) == ExitCode.OK  # not listed once sent: confirmed
    assert _state(tmp_path).load().unverified() == []
    assert main(["plan", "--root", str(tmp_path), "--now", later, "--detailed-exitcode"]) == 0


# --- from the second review: replace and --target -----------------------------------------


def test_a_replace_after_an_ambiguous_update_judges_the_live_version(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1, trigger='{smart: {backup_time: "2025-12-20 09:00:00"}}')
    assert apply(env, tmp_path) == ExitCode.OK
    write_project(tmp_path, 1, trigger='{smart: {backup_time: "2025-12-10 09:00:00"}}')
    env.set_faults(script=[{"method": "PUT", "path": "/v4/schedules/", "kind": "lost"}])
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY  # the PUT landed, its answer lost
    env.set_faults()
    # A trigger kind change: a replace. At 12-09 12:00 UTC the live 12-10 version is sending.
    write_project(tmp_path, 1, trigger='{single: {time: "2025-12-22 09:00:00", zone: device}}')
    sending = _at(env, datetime.fromisoformat("2025-12-09T12:00:00+00:00"))
    mark = len(env.calls())
    capsys.readouterr()
    assert apply(env, tmp_path, now=sending) == ExitCode.ERROR
    assert writes(env, mark) == []  # neither deleted mid-send nor sent again as a one-off
    assert "another version than the state records" in capsys.readouterr().err


def test_targeting_the_new_name_of_an_unconfirmed_create_creates_nothing(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    env.set_faults(script=[{"method": "POST", "path": "/v4/schedules", "kind": "lost"}])
    assert apply(env, tmp_path) == ExitCode.PARTIAL_APPLY  # msg_00 live, only an intent
    env.set_faults()
    _rename(tmp_path)
    later = _at(env, EMULATOR_NOW + SETTLE)  # past the settle time too
    capsys.readouterr()
    assert (
        apply(env, tmp_path, "--target", "schedule.promo_00", now=later) == ExitCode.PARTIAL_APPLY
    )
    assert env.names() == {"msg_00": 1}  # never promo_00 beside it
    assert "left out of this run by --target" in capsys.readouterr().err
    assert apply(env, tmp_path, now=later) == ExitCode.OK  # the whole plan: adopted, deleted
    assert env.names() == {"promo_00": 1}
