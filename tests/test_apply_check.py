"""`reconcile apply --check PLAN_FILE`, and what CI refuses to apply (a targeted saved plan).

CI decides from `--check` whether a merged pull request's reviewed plan can be applied as it is
or must be planned again and approved; the exit codes are the ones `apply` itself would give.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.errors import ExitCode
from tests.support.campaign import NOW, apply, run, write_project, writes
from tests.support.emulator import EmulatorHandle


def saved(emu: EmulatorHandle, root: Path, *extra: str) -> Path:
    out = root / "plan.json"
    assert run(emu, "plan", root, "--out", str(out), *extra) == ExitCode.OK
    return out


def check(root: Path, plan: Path, now: str = NOW) -> int:
    """`apply --check` with no credentials and no API address at all."""
    return main(["apply", "--check", str(plan), "--root", str(root), "--now", now])


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENGAGELAB_APP_KEY", "ENGAGELAB_MASTER_SECRET", "ENGAGELAB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_a_fresh_plan_checks_ok_with_no_call_and_no_credentials(
    env: EmulatorHandle, tmp_path: Path, no_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 2)
    plan = saved(env, tmp_path)
    before = len(env.calls())
    assert check(tmp_path, plan) == ExitCode.OK
    assert "apply would make 3 call(s)" in capsys.readouterr().out
    assert len(env.calls()) == before


def test_a_stale_an_expired_and_an_edited_plan_check_as_apply_would_refuse_them(
    env: EmulatorHandle, tmp_path: Path, no_credentials: None
) -> None:
    write_project(tmp_path, 2)
    plan = saved(env, tmp_path)
    assert check(tmp_path, plan, now="2025-12-10T08:58:00+00:00") == ExitCode.EXPIRED_PLAN
    edited = tmp_path / "edited.json"
    edited.write_text(plan.read_text(encoding="utf-8").replace("Hi 00", "Buy 00"), "utf-8")
    assert check(tmp_path, edited) == ExitCode.STALE_PLAN
    write_project(tmp_path, 2, fr="Coucou")  # the specs moved on
    assert check(tmp_path, plan) == ExitCode.STALE_PLAN


def test_a_plan_made_stale_by_an_apply_checks_stale(env: EmulatorHandle, tmp_path: Path) -> None:
    write_project(tmp_path, 2)
    plan = saved(env, tmp_path)
    assert apply(env, tmp_path) == ExitCode.OK  # another merge's apply: the state moved
    assert check(tmp_path, plan) == ExitCode.STALE_PLAN


def test_ci_refuses_a_targeted_saved_plan_before_any_call(
    env: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_path, 2)
    plan = saved(env, tmp_path, "--target", "schedule.msg_00")
    monkeypatch.setenv("CI", "true")
    assert check(tmp_path, plan) == ExitCode.UNSAFE_PLAN
    mark = len(env.calls())
    assert apply(env, tmp_path, str(plan)) == ExitCode.UNSAFE_PLAN
    assert writes(env, mark) == [] and env.names() == {}
    monkeypatch.delenv("CI")  # by hand, outside CI, the same file applies
    assert apply(env, tmp_path, str(plan)) == ExitCode.OK
    assert env.names() == {"msg_00": 1}
