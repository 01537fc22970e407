"""Options and helpers shared by the CLI commands: root, environment, clock, settings, output.

Precedence, for every value: a command-line flag, else the environment selected with --env (or
$RECONCILE_ENV) in reconcile.toml, else ENGAGELAB_* variables, else the built-in default. With no
reconcile.toml and no --env, commands behave as they always did (state/default.json, ENGAGELAB_*).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconciler import engagelab as api
from reconciler.config.toml import BUILTIN, ENV_ENVIRONMENT, Config, Environment, read_config
from reconciler.errors import ConfigError
from reconciler.settings import Settings
from reconciler.state.backend import Store
from reconciler.state.lock import LockHolder
from reconciler.state.model import State, Target, target_mismatch
from reconciler.state.store import StateStore

if TYPE_CHECKING:
    from reconciler.api.client import ClientConfig
    from reconciler.spec.desired import DesiredState

NOW_ENV = "RECONCILE_NOW"
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def _add_env_option(parent: argparse.ArgumentParser) -> None:
    # Both parents offer --env; "resolve" lets a command use both without an argparse conflict.
    group = parent.add_argument_group("environment", conflict_handler="resolve")
    group.add_argument(
        "--env",
        metavar="NAME",
        default=os.environ.get(ENV_ENVIRONMENT) or None,
        help=f"environment from reconcile.toml (default: ${ENV_ENVIRONMENT}, else the file's "
        "default_environment, else none: state/default.json and ENGAGELAB_* variables)",
    )


def project_parent() -> argparse.ArgumentParser:
    """Options every project-reading command takes (used as an argparse parent)."""
    parent = argparse.ArgumentParser(add_help=False)
    _add_env_option(parent)
    group = parent.add_argument_group("project")
    group.add_argument(
        "--root",
        type=Path,
        default=Path(),
        help="campaign repository root holding specs/, templates/, state/ (default: .)",
    )
    group.add_argument(
        "--state",
        type=Path,
        default=None,
        help="state file (default: the environment's, else <root>/state/default.json)",
    )
    group.add_argument(
        "--now",
        default=os.environ.get(NOW_ENV),
        help=f"pin the clock, ISO 8601 with offset (default: ${NOW_ENV} or the real time)",
    )
    group.add_argument(
        "--schedule-quota",
        type=int,
        default=None,
        help="live schedules allowed on the AppKey (default 1000; EngageLab raises it for some)",
    )
    group.add_argument(
        "--site-time-zone",
        default=None,
        help="IANA zone of the EngageLab console, for single sends in site time (default UTC)",
    )
    group.add_argument("--debug", action="store_true", help="show tracebacks")
    return parent


def api_parent() -> argparse.ArgumentParser:
    """Options of commands that call EngageLab. Credentials come from the environment only."""
    parent = argparse.ArgumentParser(add_help=False)
    _add_env_option(parent)
    group = parent.add_argument_group("EngageLab connection (credentials: environment only)")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--data-center",
        default=None,
        help="sgp (default), usva, defra, hk, jpn or bra; or $ENGAGELAB_DATA_CENTER",
    )
    where.add_argument(
        "--base-url",
        default=None,
        help="explicit API base URL, e.g. the emulator's http://127.0.0.1:8787; "
        "or $ENGAGELAB_BASE_URL",
    )
    group.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="requests/s this run may use (default 500, the AppKey's whole budget)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"request timeout in seconds (default 10; or ${api.ENV_TIMEOUT})",
    )
    return parent


def client_config(args: argparse.Namespace) -> ClientConfig:
    """Connection settings for commands that call EngageLab; credentials from the environment."""
    from reconciler.api.client import ClientConfig

    env = environment(args)
    data_center = getattr(args, "data_center", None)
    base_url = getattr(args, "base_url", None)
    rate_limit = getattr(args, "rate_limit", None)
    timeout = getattr(args, "timeout", None)
    if env is None:
        return ClientConfig.from_env(
            data_center=data_center, base_url=base_url, rate_limit=rate_limit, timeout=timeout
        )
    if not data_center and not base_url:  # a flag replaces the environment's target entirely
        data_center, base_url = env.data_center, env.base_url
    return ClientConfig.from_env(
        data_center=data_center,
        base_url=base_url,
        rate_limit=rate_limit if rate_limit is not None else env.rate_limit,
        timeout=timeout,
        environ=credentials_environ(env, os.environ),
    )


def credentials_environ(env: Environment, environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with the environment's named credential variables under the ENGAGELAB_* names.

    Errors name the variable, never a value.
    """
    mapped = dict(environ)
    for target, source, what in (
        (api.ENV_APP_KEY, env.app_key_env, "app key"),
        (api.ENV_MASTER_SECRET, env.master_secret_env, "master secret"),
    ):
        if not environ.get(source, "").strip():
            raise ConfigError(
                f"{source} is not set: environment {env.name!r} reads its {what} from it; "
                "export it in the environment (never in a file)"
            )
        mapped[target] = environ[source]
    return mapped


def environment(args: argparse.Namespace) -> Environment | None:
    """The environment selected by --env (or $RECONCILE_ENV, or the config's default); cached."""
    cached: tuple[Environment | None] | None = getattr(args, "_environment", None)
    if cached is not None:
        return cached[0]
    root: Path = getattr(args, "root", None) or Path()
    name: str | None = getattr(args, "env", None) or None
    config: Config | None = read_config(root)
    if config is None:
        if name not in (None, BUILTIN):
            raise ConfigError(
                f"--env {name}: there is no reconcile.toml in {root.resolve()}; "
                "environments are defined there (`reconcile init` writes one)"
            )
        chosen = None
    else:
        chosen = config.select(name)
    args._environment = (chosen,)
    return chosen


def is_loopback_url(url: str) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def state_path(args: argparse.Namespace) -> Path:
    explicit: Path | None = getattr(args, "state", None)
    root: Path = getattr(args, "root", None) or Path()
    if explicit is not None:
        return explicit
    env = environment(args)
    return root / (env.state_file if env is not None else "state/default.json")


def open_store(args: argparse.Namespace) -> Store:
    """The state this command works on: `--state FILE`, else the environment's backend."""
    env = environment(args)
    if getattr(args, "state", None) is None and env is not None and env.state_url_env:
        return postgres_store(env, os.environ)
    return StateStore(state_path(args))


def postgres_store(env: Environment, environ: Mapping[str, str]) -> Store:
    """The environment's PostgreSQL state. The connection string and the AppKey come from the
    environment; errors name the variables, never a value."""
    from reconciler.state.pg import PgLocation, PgStateStore  # psycopg: only when configured

    assert env.state_url_env is not None and env.state_project is not None
    url = environ.get(env.state_url_env, "").strip()
    if not url:
        raise ConfigError(
            f"{env.state_url_env} is not set: environment {env.name!r} keeps its state in "
            "PostgreSQL (reconcile.toml: state = { url_env = ... }); export the connection "
            "string in it, e.g. postgresql://reconcile@db.internal:5432/reconcile"
        )
    app_key = environ.get(env.app_key_env, "").strip()
    if not app_key:
        raise ConfigError(
            f"{env.app_key_env} is not set: a PostgreSQL state is keyed by the AppKey's "
            "fingerprint (project, environment, AppKey), so even a dry run needs it"
        )
    location = PgLocation(
        url=url,
        url_env=env.state_url_env,
        project=env.state_project,
        environment=env.name,
        app_key_fingerprint=api.app_key_fingerprint(app_key),
    )
    return PgStateStore(location)


def add_lock_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-timeout",
        metavar="DURATION",
        type=parse_duration,
        default=0.0,
        help="wait up to DURATION (e.g. 30s, 5m) for the state lock held by another run, "
        "instead of exiting 5 at once (default 0)",
    )


def parse_duration(text: str) -> float:
    """ "30", "30s", "5m", "1h", "1m30s": seconds. For argparse (ArgumentTypeError)."""
    import re

    raw = text.strip().lower()
    match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", raw)
    if not raw or match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; use seconds or e.g. 30s, 5m, 1h, 1m30s"
        )
    hours, minutes, secs = (float(part) if part else 0.0 for part in match.groups())
    return hours * 3600 + minutes * 60 + secs


def lock_timeout(args: argparse.Namespace) -> float:
    value: float = getattr(args, "lock_timeout", 0.0) or 0.0
    return value


def run_description(command: str) -> str:
    """Who wrote a snapshot, for `state history`: the command, user, host and CI run."""
    me = LockHolder.me(command)
    parts = [command, f"on {me.hostname}"]
    if me.user:
        parts.insert(1, f"by {me.user}")
    if me.ci_run_url:
        parts.append(f"({me.ci_run_url})")
    return " ".join(parts)


def resolve_now(args: argparse.Namespace) -> datetime:
    raw: str | None = getattr(args, "now", None)
    if not raw:
        return datetime.now(UTC)
    try:
        pinned = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(
            f"--now {raw!r} is not an ISO 8601 time; use e.g. 2025-12-01T09:00:00+00:00"
        ) from None
    if pinned.tzinfo is None:
        raise ConfigError(f"--now {raw!r} has no UTC offset; add one, e.g. {raw}+00:00")
    return pinned.astimezone(UTC)


def resolve_settings(args: argparse.Namespace) -> Settings:
    settings = environment_settings(environment(args))
    quota = getattr(args, "schedule_quota", None)
    zone = getattr(args, "site_time_zone", None)
    if quota is not None:
        if quota < 1:
            raise ConfigError(f"--schedule-quota must be a positive number, not {quota}")
        settings = dataclasses.replace(settings, schedule_quota=quota)
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"--site-time-zone {zone!r} is not an IANA time zone; use e.g. Europe/Paris"
            ) from None
        settings = dataclasses.replace(settings, site_time_zone=zone)
    return settings


def environment_settings(env: Environment | None) -> Settings:
    """The defaults, with what the environment sets (validated by reconciler.config.toml)."""
    settings = Settings()
    if env is None:
        return settings
    settings = dataclasses.replace(settings, environment=env.name)
    if env.schedule_quota is not None:
        settings = dataclasses.replace(settings, schedule_quota=env.schedule_quota)
    if env.site_time_zone is not None:
        settings = dataclasses.replace(settings, site_time_zone=env.site_time_zone)
    if env.quiet_hours is not None:
        start, end = env.quiet_hours
        settings = dataclasses.replace(settings, quiet_hours_start=start, quiet_hours_end=end)
    if env.min_gap_minutes is not None:
        settings = dataclasses.replace(settings, min_gap_minutes=env.min_gap_minutes)
    if env.checks is not None:
        settings = dataclasses.replace(settings, check_levels=env.checks)
    for name in (
        "create_settle_seconds",
        "max_clock_skew_seconds",
        "immediate_plan_minutes",
        "smart_window",
    ):
        value = getattr(env, name)
        if value is not None:
            settings = dataclasses.replace(settings, **{name: value})
    return settings


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


def color_enabled(stream: object = None) -> bool:
    target = stream if stream is not None else sys.stdout
    isatty = getattr(target, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ


def target_of(config: ClientConfig) -> Target:
    """What a state is bound to: the API and a fingerprint of the AppKey, never the key."""
    return Target(base_url=config.base_url, app_key_fingerprint=config.app_key_fingerprint)


def in_ci() -> bool:
    """True under a CI service: GitHub Actions and GitLab CI both set CI=true."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def check_target(state: State, config: ClientConfig, path: Path | str) -> None:
    """Refuse to use a state against another API or AppKey than the one it was applied to."""
    mismatch = target_mismatch(state, target_of(config))
    if mismatch is not None:
        raise ConfigError(f"{path}: {mismatch}")


def confirm(question: str, *, off_terminal: str, cancelled: str) -> None:
    """Ask on a terminal; only "yes" goes on. Off a terminal, or on any other answer, stop with
    a ConfigError: `off_terminal` says how to proceed (--auto-approve), `cancelled` what stays."""
    if not sys.stdin.isatty():
        raise ConfigError(off_terminal)
    out(f"\n{question} Only 'yes' is accepted.")
    if input("  Enter a value: ").strip() != "yes":
        raise ConfigError(cancelled)


def load_state(store: Store) -> State:
    """The store's state, its notices (a recovered journal, a restored backup) said once."""
    state = store.load()
    for notice in store.notices:
        err(f"note: {notice}")
    store.notices.clear()
    return state


class Project:
    """What a command works on, built once from its arguments: the settings, the clock, the
    state store, the specs and the API connection, each read on first use and kept."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root: Path = getattr(args, "root", None) or Path()

    @functools.cached_property
    def settings(self) -> Settings:
        return resolve_settings(self.args)

    @functools.cached_property
    def now(self) -> datetime:
        return resolve_now(self.args)

    @functools.cached_property
    def store(self) -> Store:
        return open_store(self.args)

    @functools.cached_property
    def desired(self) -> DesiredState:
        from reconciler.spec.loader import load_desired  # yaml and jinja2, only when needed

        return load_desired(self.root, self.settings, self.now)

    @functools.cached_property
    def client_config(self) -> ClientConfig:
        return client_config(self.args)
