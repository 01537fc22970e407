"""`reconcile plan` and `reconcile show` through the CLI: goldens, exit codes, saved plans,
and byte-identical output across hash seeds (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.errors import ExitCode

CASES = Path(__file__).parent / "cases"


def plan_argv(case: str, *extra: str) -> list[str]:
    folder = CASES / case
    now = (folder / "now.txt").read_text(encoding="utf-8").strip()
    argv = ["plan", "--root", str(folder), "--state", str(folder / "state.json"), "--now", now]
    settings = folder / "settings.json"
    if settings.exists():
        for key, value in json.loads(settings.read_text(encoding="utf-8")).items():
            assert key == "schedule_quota", f"{key} has no command-line option"
            argv += ["--schedule-quota", str(value)]
    return [*argv, *extra]


@pytest.mark.parametrize(
    ("fmt", "golden_name"), [("text", "plan.txt"), ("markdown", "plan.md"), ("json", "plan.json")]
)
def test_plan_prints_the_golden_view(
    fmt: str, golden_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(plan_argv("language_edited", "--format", fmt)) == ExitCode.OK
    expected = (CASES / "language_edited" / golden_name).read_text(encoding="utf-8")
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("language_edited", ExitCode.CHANGES),
        ("no_change", ExitCode.OK),
        ("sent_edited", ExitCode.OK),
    ],
)
def test_detailed_exitcode(case: str, code: ExitCode, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(plan_argv(case, "--detailed-exitcode")) == code
    capsys.readouterr()


def test_saved_plan_shows_exactly_as_planned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    assert main(plan_argv("rename", "--out", str(out))) == ExitCode.OK
    planned = capsys.readouterr()
    assert f"Saved this plan to {out}" in planned.err
    assert out.read_text(encoding="utf-8") == (CASES / "rename" / "plan.json").read_text(
        encoding="utf-8"
    )
    assert main(["show", str(out)]) == ExitCode.OK
    assert capsys.readouterr().out == planned.out
    assert main(["show", str(out), "--format", "json"]) == ExitCode.OK
    assert capsys.readouterr().out == out.read_text(encoding="utf-8")


def test_show_refuses_a_file_that_is_not_a_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "state.json"
    bogus.write_text('{"version": 1, "lineage": "x"}', encoding="utf-8")
    assert main(["show", str(bogus)]) == ExitCode.ERROR
    assert "is not a reconcile plan" in capsys.readouterr().err


def test_target_restricts_and_an_unknown_target_is_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(plan_argv("fresh_create", "--target", "schedule.promo_year_end_last_call")) == 0
    out = capsys.readouterr().out
    assert "schedule.promo_year_end_last_call (create)" in out
    assert "plan.promo_year_end_2025 (create)" in out  # the plan it needs
    assert "reminder_01" not in out
    assert main(plan_argv("fresh_create", "--target", "schedule.nope")) == ExitCode.ERROR
    assert "schedule.nope" in capsys.readouterr().err


def test_comments_dir_writes_every_comment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "comments"
    target.mkdir()
    (target / "comment-9.md").write_text("old", encoding="utf-8")
    assert main(plan_argv("mass_deletion", "--comments-dir", str(target))) == ExitCode.OK
    capsys.readouterr()
    assert sorted(p.name for p in target.iterdir()) == ["comment-1.md"]
    assert (target / "comment-1.md").read_text(encoding="utf-8") == (
        CASES / "mass_deletion" / "plan.md"
    ).read_text(encoding="utf-8")


def test_output_is_byte_identical_across_hash_seeds() -> None:
    outputs = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        env.pop("RECONCILE_NOW", None)
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from reconciler.cli.main import entry; entry()",
                *plan_argv("plan_removed", "--format", "json"),
            ],
            capture_output=True,
            env=env,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0] == (CASES / "plan_removed" / "plan.json").read_bytes()
