"""reconcile.toml parsing (reconciler.config.toml) and how CLI options consult the environment."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from reconciler.cli import common
from reconciler.config.toml import CONFIG_FILE, Environment, parse_config, read_config
from reconciler.errors import ConfigError
from reconciler.settings import Settings

GOOD = """\
default_environment = "staging"

[environments.staging]
data_center = "usva"
app_key_env = "STAGING_KEY"
master_secret_env = "STAGING_SECRET"
site_time_zone = "Europe/Paris"
rate_limit = 50
schedule_quota = 2000
quiet_hours = { start = "22:00", end = "07:30" }
min_gap_minutes = 30
checks = { quiet_hours = "error", min_gap = "off" }

[environments."prod"]
base_url = "https://proxy.example.com/engagelab"
state = "state/live.json"
"""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(parents=[common.project_parent(), common.api_parent()])
    return parser


def args_for(root: Path, *argv: str) -> argparse.Namespace:
    return parser().parse_args(["--root", str(root), *argv])


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RECONCILE_ENV", raising=False)
    for name in ("ENGAGELAB_BASE_URL", "ENGAGELAB_DATA_CENTER", "ENGAGELAB_RATE_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / CONFIG_FILE).write_text(GOOD, encoding="utf-8")
    return tmp_path


def test_a_full_config_parses_into_environments() -> None:
    config = parse_config(GOOD)
    staging, prod = config.environments["staging"], config.environments["prod"]
    assert staging == Environment(
        name="staging",
        data_center="usva",
        app_key_env="STAGING_KEY",
        master_secret_env="STAGING_SECRET",
        site_time_zone="Europe/Paris",
        rate_limit=50.0,
        schedule_quota=2000,
        quiet_hours=("22:00", "07:30"),
        min_gap_minutes=30,
        checks=(("min_gap", "off"), ("quiet_hours", "error")),
    )
    assert staging.state_file == "state/staging.json"
    assert prod.state_file == "state/live.json"
    assert prod.app_key_env == "ENGAGELAB_APP_KEY"
    assert config.select(None) is staging
    assert config.select("prod") is prod
    assert config.select("default") is None  # the built-in environment


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    text = """\
colour = 1
[environments.staging]
data_center = "sgx"
master_secret = "hunter2-do-not-echo"
rate_limt = 5
rate_limit = 900
site_time_zone = "Mars/Olympus"
quiet_hours = { start = "25:00", end = "08:00" }
app_key_env = "MY KEY"

[environments.both]
data_center = "sgp"
base_url = "https://x.example.com"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "reconcile.toml")
    lines = str(caught.value).splitlines()
    assert lines == [
        "reconcile.toml:1: colour: unknown key; known keys: default_environment, environments",
        "reconcile.toml:3: environments.staging.data_center: unknown data center 'sgx'; "
        "choose one of: sgp, usva, defra, hk, jpn, bra",
        "reconcile.toml:4: environments.staging.master_secret: secrets never go in files; name "
        'the variable that holds it instead (master_secret_env = "...")',
        "reconcile.toml:5: environments.staging.rate_limt: unknown key; did you mean 'rate_limit'?",
        "reconcile.toml:6: environments.staging.rate_limit: 900 is out of range: above 0, "
        "at most 500 requests/s",
        "reconcile.toml:7: environments.staging.site_time_zone: 'Mars/Olympus' is not an IANA "
        "time zone; use e.g. Europe/Paris",
        "reconcile.toml:8: environments.staging.quiet_hours: use quiet_hours = "
        '{ start = "21:00", end = "08:00" } (local HH:MM)',
        "reconcile.toml:9: environments.staging.app_key_env: is not an environment variable "
        "name (the value is not shown, in case it is a secret); name the variable, e.g. "
        "PRODUCTION_ENGAGELAB_MASTER_SECRET",
        "reconcile.toml:13: environments.both.base_url: give either data_center or base_url, "
        "not both",
    ]
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[environments.a\n", "reconcile.toml: not valid TOML"),
        ("environments = 3\n", "environments: must be a table"),
        ('default_environment = "prd"\n[environments.prod]\n', "did you mean 'prod'?"),
        ("[environments.a]\nrate_limit = true\n", "rate_limit: must be a number, not bool"),
        ("[environments.a]\nstate = 'state/a.yaml'\n", "a state file name ends in .json"),
        ("[environments.a]\nbase_url = 'ftp://x'\n", "is not an http(s) URL"),
        ("[environments.a]\nschedule_quota = 0\n", "schedule_quota: 0 is out of range"),
        ("[environments.a]\nchecks = { quiet = 'off' }\n", "unknown check 'quiet'"),
        ("[environments.a]\nchecks = { min_gap = 'loud' }\n", "level 'loud' is not one of"),
    ],
)
def test_bad_configs_are_refused_with_a_reason(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse_config(text, "reconcile.toml")


def test_unknown_environment_suggests_the_close_one(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"no environment 'stagin'.*did you mean 'staging'"):
        common.state_path(args_for(project, "--env", "stagin"))


def test_no_config_keeps_the_old_behaviour(tmp_path: Path) -> None:
    assert read_config(tmp_path) is None
    args = args_for(tmp_path)
    assert common.state_path(args) == tmp_path / "state" / "default.json"
    assert common.resolve_settings(args) == Settings()
    assert common.state_path(args_for(tmp_path, "--env", "default")).name == "default.json"
    with pytest.raises(ConfigError, match=r"--env staging: there is no reconcile\.toml"):
        common.state_path(args_for(tmp_path, "--env", "staging"))


def test_the_environment_sets_state_and_settings_and_flags_win(project: Path) -> None:
    args = args_for(project)  # default_environment = staging
    assert common.state_path(args) == project / "state" / "staging.json"
    settings = common.resolve_settings(args)
    assert (settings.site_time_zone, settings.schedule_quota) == ("Europe/Paris", 2000)
    assert (settings.quiet_hours_start, settings.quiet_hours_end) == ("22:00", "07:30")
    assert settings.min_gap_minutes == 30
    assert settings.check_level("quiet_hours") == "error"
    assert settings.check_level("copy_length") == "warning"
    assert common.state_path(args_for(project, "--env", "prod")) == project / "state/live.json"
    flags = args_for(project, "--state", "x.json", "--site-time-zone", "UTC")
    assert common.state_path(flags) == Path("x.json")
    assert common.resolve_settings(flags).site_time_zone == "UTC"
    assert common.resolve_settings(flags).schedule_quota == 2000


def test_reconcile_env_variable_selects_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILE_ENV", "prod")
    assert common.state_path(args_for(project)) == project / "state/live.json"
    assert common.state_path(args_for(project, "--env", "staging")).name == "staging.json"


def test_credentials_come_from_the_variables_the_environment_names(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGAGELAB_APP_KEY", "default-key")
    monkeypatch.setenv("ENGAGELAB_MASTER_SECRET", "default-secret")
    monkeypatch.setenv("STAGING_KEY", "staging-key")
    monkeypatch.delenv("STAGING_SECRET", raising=False)
    with pytest.raises(ConfigError) as caught:
        common.client_config(args_for(project))
    assert str(caught.value).startswith("STAGING_SECRET is not set: environment 'staging'")
    assert "staging-key" not in str(caught.value)
    monkeypatch.setenv("STAGING_SECRET", "staging-secret-DO-NOT-LEAK")
    config = common.client_config(args_for(project))
    assert config.app_key == "staging-key"
    assert config.master_secret.get_secret_value() == "staging-secret-DO-NOT-LEAK"
    assert config.base_url == "https://pushapi-usva.engagelab.com"
    assert config.rate_limit == 50
    assert "DO-NOT-LEAK" not in repr(config)


def test_connection_flags_replace_the_environment_target(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGING_KEY", "k")
    monkeypatch.setenv("STAGING_SECRET", "s")
    monkeypatch.setenv("ENGAGELAB_BASE_URL", "http://127.0.0.1:9")  # ambient: config wins
    assert common.client_config(args_for(project)).base_url.endswith("usva.engagelab.com")
    flagged = args_for(project, "--base-url", "http://127.0.0.1:8787", "--rate-limit", "5")
    config = common.client_config(flagged)
    assert (config.base_url, config.rate_limit) == ("http://127.0.0.1:8787", 5)


def test_env_is_offered_once_by_commands_using_both_parents() -> None:
    help_text = parser().format_help()
    assert help_text.count("--env NAME") == 2  # usage line and one option entry


@pytest.mark.parametrize("state", ["/etc/evil.json", "../outside.json", "state/../../x.json"])
def test_a_state_file_outside_the_project_is_refused(state: str) -> None:
    text = f'[environments.prod]\ndata_center = "sgp"\nstate = "{state}"\n'
    with pytest.raises(ConfigError, match="inside the project"):
        parse_config(text, "reconcile.toml")


def test_a_pasted_secret_is_never_echoed() -> None:
    text = '[environments.prod]\ndata_center = "sgp"\nmaster_secret_env = "s3cr3t value!"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "reconcile.toml")
    assert "s3cr3t" not in str(caught.value)
