"""The bundled example campaigns: golden render output, determinism, exact body shape, I/O edges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler import engagelab as api
from reconciler.canonical import digest
from reconciler.cli.main import main
from reconciler.errors import ConfigError, SpecError
from reconciler.settings import Settings
from reconciler.spec.loader import load_desired, read_sources
from tests.conftest import Golden

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "render"
# Each campaign at a moment when all its sends are ahead and within the one-year horizon.
CAMPAIGNS = {
    "promo_year_end_2025": datetime(2025, 11, 20, 12, tzinfo=UTC),
    "social_reengagement_2027": datetime(2026, 11, 29, 12, tzinfo=UTC),
}
SPEC_FILES = {
    "promo_year_end_2025": "specs/promo_year_end_2025.yaml",
    "social_reengagement_2027": "specs/reengagement_social_2027.yaml",
}


def campaign_root(plan_id: str, target: Path) -> Path:
    """A project holding one campaign: no single `now` has both examples ahead and in range."""
    _copy_tree(ROOT, target)
    for spec in (target / "specs").glob("*.yaml"):
        if spec.relative_to(target).as_posix() != SPEC_FILES[plan_id]:
            spec.unlink()
    return target


def render_json(root: Path, plan_id: str, now: datetime, capsys: pytest.CaptureFixture[str]) -> str:
    argv = ["render", plan_id, "--format", "json", "--root", str(root), "--now", now.isoformat()]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.mark.parametrize("plan_id", sorted(CAMPAIGNS))
def test_render_json_matches_golden(
    plan_id: str, golden: Golden, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = render_json(campaign_root(plan_id, tmp_path), plan_id, CAMPAIGNS[plan_id], capsys)
    document = json.loads(output)
    assert {s["plan_id"] for s in document["schedules"]} == {plan_id}
    # Goldens are pretty-printed so a reviewer can read a diff; byte stability of the CLI's own
    # layout is checked across processes below.
    pretty = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    golden(GOLDEN / f"{plan_id}.json", pretty)


def test_render_text_matches_golden(golden: Golden, capsys: pytest.CaptureFixture[str]) -> None:
    now = CAMPAIGNS["social_reengagement_2027"].isoformat()
    code = main(["render", "social_new_feature_*", "--root", str(ROOT), "--now", now])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    golden(GOLDEN / "social_new_feature.txt", captured.out)


def test_same_inputs_give_byte_identical_output_across_processes() -> None:
    now = CAMPAIGNS["social_reengagement_2027"].isoformat()
    outputs = set()
    for seed in ("1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from reconciler.cli.main import entry; entry()",
                "render",
                "--format",
                "json",
                "--root",
                str(ROOT),
                "--now",
                now,
            ],
            capture_output=True,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_examples_follow_the_documented_body_shape() -> None:
    desired = load_desired(ROOT, _settings(), CAMPAIGNS["social_reengagement_2027"])
    assert set(desired.plans) == set(CAMPAIGNS)
    for schedule in desired.schedules.values():
        body = schedule.body
        push = body["push"]
        assert set(body) == {"name", "enabled", "trigger", "push"}
        assert schedule.digest == digest(body)
        assert push["from"] == api.PUSH_FROM
        assert push["request_id"] == api.request_id_for(schedule.name)
        assert push["custom_args"][api.MANAGED_BY_KEY] == api.MANAGED_BY_VALUE
        assert push["body"]["options"]["plan_id"] == schedule.plan_id
        assert api.body_size(push) <= api.BODY_MAX_BYTES
        others = sorted(set(schedule.copy) - {schedule.default_language})
        multi = push["body"]["options"].get("multi_language", {})
        assert sorted(multi) == others
        default_copy = schedule.copy[schedule.default_language]
        assert push["body"]["notification"]["alert"] == default_copy["alert"]
        assert "null" not in json.dumps(body)


def test_promo_year_end_matches_engagelabs_example(tmp_path: Path) -> None:
    root = campaign_root("promo_year_end_2025", tmp_path)
    desired = load_desired(root, _settings(), CAMPAIGNS["promo_year_end_2025"])
    assert not desired.warnings
    plan = desired.plans["promo_year_end_2025"]
    assert plan.body() == {
        "plan_id": "promo_year_end_2025",
        "plan_description": "Year-end sale push plan",
    }
    reminders = [s for s in desired.schedules if s.startswith("promo_year_end_reminder_")]
    assert reminders == [f"promo_year_end_reminder_0{i}" for i in range(1, 6)]
    second = desired.schedules["promo_year_end_reminder_02"].body
    assert second["trigger"] == {"intelligent": {"backup_time": "2025-12-28 09:00:00"}}
    options = second["push"]["body"]["options"]
    assert options["time_to_live"] == 86400
    assert second["push"]["body"]["notification"]["android"]["extras"] == {"promo": "year_end_sale"}
    assert "-30%" in desired.schedules["promo_year_end_reminder_02"].copy["en"]["alert"]


def test_past_examples_are_warnings_today() -> None:
    today = datetime(2026, 11, 29, 12, tzinfo=UTC)
    desired = load_desired(ROOT, _settings(), today)
    warned = {w.file for w in desired.warnings}
    assert warned == {"specs/promo_year_end_2025.yaml"}
    assert all(w.warning and "passed" in w.message for w in desired.warnings)


def test_inputs_digest_moves_with_used_inputs_only(tmp_path: Path) -> None:
    _copy_tree(ROOT, tmp_path)
    now = CAMPAIGNS["social_reengagement_2027"]
    first = load_desired(tmp_path, _settings(), now).inputs_digest
    (tmp_path / "templates" / "unused").mkdir()
    (tmp_path / "templates" / "unused" / "en.yaml").write_text("alert: x\n")
    assert load_desired(tmp_path, _settings(), now).inputs_digest == first
    fr = tmp_path / "templates" / "flash_sale" / "fr.yaml"
    fr.write_text(fr.read_text() + "# edited\n")
    assert load_desired(tmp_path, _settings(), now).inputs_digest != first


def test_links_out_of_the_tree_are_refused(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "templates" / "t").mkdir(parents=True)
    secret = tmp_path / "secret.yaml"
    secret.write_text("alert: secret\n")
    (tmp_path / "templates" / "t" / "en.yaml").symlink_to(secret)
    sources = read_sources(tmp_path)
    assert "templates/t/en.yaml" not in sources.templates
    assert [i.message for i in sources.issues] == ["links outside the project"]


def test_no_specs_folder_is_an_error_not_an_empty_project(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a folder"):
        load_desired(tmp_path, _settings(), CAMPAIGNS["promo_year_end_2025"])
    (tmp_path / "specs").mkdir()
    desired = load_desired(tmp_path, _settings(), CAMPAIGNS["promo_year_end_2025"])
    assert not desired.plans and not desired.schedules


def test_errors_in_examples_would_be_reported(tmp_path: Path) -> None:
    campaign_root("promo_year_end_2025", tmp_path)
    spec = tmp_path / "specs" / "promo_year_end_2025.yaml"
    spec.write_text(
        spec.read_text().replace("time_to_live: 86400", "time_to_live: 86400\n  lang: [en]")
    )
    with pytest.raises(SpecError) as caught:
        load_desired(tmp_path, _settings(), CAMPAIGNS["promo_year_end_2025"])
    assert [str(p).split(": ")[0] for p in caught.value.problems] == [
        "specs/promo_year_end_2025.yaml:14:3"
    ]


def _settings() -> Settings:
    return Settings()


def _copy_tree(source: Path, target: Path) -> None:
    for folder in ("specs", "templates"):
        for path in (source / folder).rglob("*.yaml"):
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(path.read_bytes())
