"""`reconcile init`: the scaffold, then validate, plan and apply it against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from reconciler import DIST_NAME
from reconciler.cli.init import installed_source
from reconciler.cli.main import main
from reconciler.config.toml import read_config
from reconciler.errors import ExitCode
from reconciler.scaffold import pinned_install, render, scaffold
from tests.support.emulator import EMULATOR_NOW, EmulatorHandle

NOW = EMULATOR_NOW.isoformat()
EXPECTED = {
    ".ci/reconcile-ci.sh",
    ".github/workflows/reconcile-apply.yml",
    ".github/workflows/reconcile-comment.yml",
    ".github/workflows/reconcile-plan.yml",
    ".gitignore",
    ".gitlab-ci.yml",
    "README.md",
    "reconcile.toml",
    "specs/welcome.yaml",
    "state/.gitkeep",
    "templates/welcome/en.yaml",
    "templates/welcome/fr.yaml",
    "templates/welcome_offer/en.yaml",
    "templates/welcome_offer/fr.yaml",
}


@pytest.fixture
def creds(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    for prefix in ("", "STAGING_"):
        monkeypatch.setenv(f"{prefix}ENGAGELAB_APP_KEY", emulator.app_key)
        monkeypatch.setenv(f"{prefix}ENGAGELAB_MASTER_SECRET", emulator.master_secret)
    for name in ("RECONCILE_NOW", "RECONCILE_ENV", "ENGAGELAB_BASE_URL", "ENGAGELAB_DATA_CENTER"):
        monkeypatch.delenv(name, raising=False)
    return emulator


def test_the_scaffold_has_every_file_and_dates_relative_to_today() -> None:
    today = date(2031, 2, 27)
    files = scaffold(today)
    assert set(files) == EXPECTED
    assert not [rel for rel, text in files.items() if "@@" in text]
    assert f'"{today + timedelta(days=14)}"' in files["specs/welcome.yaml"]
    assert 'RECONCILE_INSTALL: "engagelab-reconcile==0.1.0"' in files[".gitlab-ci.yml"]
    with pytest.raises(ValueError, match="@@NOPE@@"):
        render("@@NOPE@@", today)


def test_init_then_validate_plan_apply_against_the_emulator(
    creds: EmulatorHandle,
    make_emulator: Callable[..., EmulatorHandle],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "campaigns"
    assert main(["init", str(root), "--now", NOW]) == ExitCode.OK
    assert {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} == EXPECTED
    config = read_config(root)
    assert config is not None and set(config.environments) == {"staging", "production"}
    base = ["--root", str(root), "--now", NOW]
    assert main(["validate", *base]) == ExitCode.OK
    assert "3 schedule(s), 2 language(s); 0 warnings" in capsys.readouterr().out
    assert main(["plan", *base, "--detailed-exitcode"]) == ExitCode.CHANGES
    assert main(["plan", *base, "--env", "production"]) == ExitCode.OK  # no account needed
    apply = ["apply", *base, "--base-url", creds.base_url, "--auto-approve", "--quiet"]
    assert main(apply) == ExitCode.OK
    assert set(creds.names()) == {"welcome_day_1", "welcome_day_2", "welcome_offer"}
    assert (root / "state" / "default.json").exists()
    assert main(["plan", *base, "--detailed-exitcode"]) == ExitCode.OK  # converged
    # The same specs on "staging": its own app (AppKey), state file and credential variables.
    # Applying it to the app that already holds these names is refused, never a second send.
    assert main([*apply, "--env", "staging"]) == ExitCode.ERROR
    assert set(creds.names().values()) == {1}
    for wrong_app in (root / "state").glob("staging.*"):
        wrong_app.unlink()  # that state belongs to the wrong app: start staging afresh
    staging = make_emulator()
    staging_apply = ["apply", *base, "--base-url", staging.base_url, "--auto-approve", "--quiet"]
    assert main([*staging_apply, "--env", "staging"]) == ExitCode.OK
    assert (root / "state" / "staging.json").exists()
    assert set(staging.names()) == {"welcome_day_1", "welcome_day_2", "welcome_offer"}
    capsys.readouterr()


def test_init_keeps_existing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "README.md").write_text("ours\n", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == ExitCode.OK
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "ours\n"
    assert "kept  README.md" in capsys.readouterr().err
    assert main(["init", str(tmp_path)]) == ExitCode.OK
    assert "0 file(s) written, 14 kept" in capsys.readouterr().out


def test_init_refuses_a_file_as_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    assert main(["init", str(target)]) == ExitCode.ERROR
    assert "is not a folder" in capsys.readouterr().err


COMMIT = "0123456789abcdef0123456789abcdef01234567"
WHEEL_HASH = "ab" * 32


@pytest.mark.parametrize(
    "spec",
    [
        f"{DIST_NAME}==0.1.0",
        f"{DIST_NAME}==1.2.3rc1",
        f"{DIST_NAME} @ git+https://github.com/acme/reconcile@{COMMIT}",
        f"{DIST_NAME} @ https://files.example/engagelab_reconcile-0.1.0-py3-none-any.whl"
        f"#sha256={WHEEL_HASH}",
    ],
)
def test_a_pinned_install_of_our_own_name_is_accepted(spec: str, tmp_path: Path) -> None:
    assert pinned_install(spec) == spec
    assert main(["init", str(tmp_path), "--install", spec]) == ExitCode.OK
    for rel in (".gitlab-ci.yml", ".github/workflows/reconcile-apply.yml"):
        assert f'RECONCILE_INSTALL: "{spec}"' in (tmp_path / rel).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "spec",
    [
        "reconcile==0.1.0",  # somebody else's project on PyPI
        "reconciler==0.1.0",
        DIST_NAME,  # whatever is newest
        f"{DIST_NAME}>=0.1.0",
        f"{DIST_NAME}==0.1.*",
        f"{DIST_NAME} @ git+https://github.com/acme/reconcile@v0.1.0",  # a tag can move
        f"{DIST_NAME} @ git+https://github.com/acme/reconcile@main",
        f"{DIST_NAME} @ git+http://github.com/acme/reconcile@{COMMIT}",  # not https
        f"{DIST_NAME} @ https://files.example/engagelab_reconcile-0.1.0-py3-none-any.whl",
        f"{DIST_NAME}==0.1.0 --index-url https://evil.example/simple",
    ],
)
def test_an_unpinned_or_foreign_install_is_refused_and_nothing_is_written(
    spec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "campaigns"
    assert main(["init", str(root), "--install", spec]) == ExitCode.ERROR
    assert "is not pinned" in capsys.readouterr().err
    assert not root.exists()


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        (None, f"{DIST_NAME}==0.1.0"),  # from an index
        (
            '{"url": "https://github.com/acme/reconcile", "vcs_info": {"vcs": "git", '
            f'"commit_id": "{COMMIT}", "requested_revision": "v0.1.0"}}}}',
            f"{DIST_NAME} @ git+https://github.com/acme/reconcile@{COMMIT}",
        ),
        (
            '{"url": "https://files.example/r.whl", "archive_info": {"hashes": '
            f'{{"sha256": "{WHEEL_HASH}"}}}}}}',
            f"{DIST_NAME} @ https://files.example/r.whl#sha256={WHEEL_HASH}",
        ),
        ('{"url": "file:///home/me/reconcile", "dir_info": {"editable": true}}', None),
        ('{"url": "https://github.com/acme/reconcile", "vcs_info": {"vcs": "hg"}}', None),
        ("not json", None),
    ],
)
def test_init_pins_ci_to_where_this_reconcile_came_from(
    direct_url: str | None,
    expected: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PEP 610: pip records where a distribution came from in direct_url.json."""
    info = tmp_path / "engagelab_reconcile-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.4\nName: {DIST_NAME}\nVersion: 0.1.0\n", "utf-8"
    )
    if direct_url is not None:
        (info / "direct_url.json").write_text(direct_url, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert installed_source() == (expected or f"{DIST_NAME}==0.1.0")
