"""A spec's top-level `checks:` sets its campaign's check levels; `reconcile timeline` shows all."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.errors import SpecError
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredState
from reconciler.spec.loader import Sources, build_desired

NOW = datetime.fromisoformat("2025-12-01T09:00:00+00:00")
CASE = Path(__file__).parent / "cases" / "send_time_checks"
SPEC = """plan: {id: demo}
%s
defaults: {platform: all, audience: all, languages: [en], template: t}
messages:
  - name: late
    trigger: {smart: {backup_time: "2025-12-10 23:30:00"}}
"""
TEMPLATES = {"templates/t/en.yaml": b"title: Hi\nalert: Hello\n"}


def load(checks: str) -> DesiredState:
    return build_desired(
        Sources({"specs/demo.yaml": (SPEC % checks).encode()}, TEMPLATES), Settings(), NOW
    )


def test_spec_checks_are_carried_per_campaign() -> None:
    state = load("checks: {quiet_hours: error, min_gap: 'off'}")
    assert state.check_levels == {"demo": {"quiet_hours": "error", "min_gap": "off"}}
    assert load("").check_levels == {}


@pytest.mark.parametrize("bad", ["checks: {quiet_hour: error}", "checks: {min_gap: loud}"])
def test_unknown_check_or_level_is_a_spec_error(bad: str) -> None:
    with pytest.raises(SpecError) as caught:
        load(bad)
    assert any("checks" in p.path for p in caught.value.problems)


def test_timeline_command_draws_every_campaign(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["timeline", "--root", str(CASE), "--now", NOW.isoformat(), "--format", "markdown"]
    assert main(argv) == 0
    chart = capsys.readouterr().out
    assert "    section checks_demo" in chart and "    section quiet_off" in chart
    assert "    site_morning :crit, milestone, t4, 2025-12-12 09:00, 0m" in chart


def test_timeline_command_text_reports_findings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["timeline", "--root", str(CASE), "--now", NOW.isoformat(), "quiet_*"]) == 0
    captured = capsys.readouterr()
    assert "quiet_off" in captured.out and "checks_demo" not in captured.out
    assert "warning: quiet_hours: schedule.late_night" in captured.err


def test_validate_fails_on_a_check_raised_to_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "templates" / "t").mkdir(parents=True)
    (tmp_path / "templates" / "t" / "en.yaml").write_bytes(TEMPLATES["templates/t/en.yaml"])
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "demo.yaml"
    argv = ["validate", "--root", str(tmp_path), "--now", NOW.isoformat()]
    spec.write_text(SPEC % "", encoding="utf-8")
    assert main(argv) == 0  # 23:30 local is in quiet hours, but only a warning
    spec.write_text(SPEC % "checks: {quiet_hours: error}", encoding="utf-8")
    assert main(argv) == 1
    assert "specs/demo.yaml:5:5: error: quiet_hours: schedule.late" in capsys.readouterr().err
