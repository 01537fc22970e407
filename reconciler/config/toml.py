"""The project config file, `reconcile.toml`: named environments (staging, production, ...). Pure.

`parse_config(text, source)` turns TOML text into a frozen Config, reporting every problem at once
with `file:line` where the key can be found. Secrets are never read from here: an environment
names the variables that hold its credentials. `read_config(root)` is the only I/O.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconciler import engagelab as api
from reconciler.errors import ConfigError
from reconciler.settings import CHECK_IDS, CHECK_LEVELS, SMART_WINDOWS

CONFIG_FILE = "reconcile.toml"
ENV_ENVIRONMENT = "RECONCILE_ENV"  # default of --env
BUILTIN = "default"  # the environment used with no config: state/default.json, ENGAGELAB_*
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
_VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_CLOCK_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z")
_SECRET_KEYS = frozenset({"app_key", "master_secret", "secret", "password", "token"})
_TOP_KEYS = ("default_environment", "environments")
_ENV_KEYS = (
    "data_center",
    "base_url",
    "app_key_env",
    "master_secret_env",
    "state",
    "site_time_zone",
    "rate_limit",
    "schedule_quota",
    "quiet_hours",
    "min_gap_minutes",
    "checks",
    "create_settle_seconds",
    "max_clock_skew_seconds",
    "immediate_plan_minutes",
    "smart_window",
)


@dataclass(frozen=True, slots=True)
class Environment:
    """One deployment target. Unset values fall back to command-line defaults and ENGAGELAB_*."""

    name: str
    data_center: str | None = None
    base_url: str | None = None
    app_key_env: str = api.ENV_APP_KEY
    master_secret_env: str = api.ENV_MASTER_SECRET
    state: str = ""  # relative to the project root; "" = state/<name>.json
    # state = { url_env = "...", project = "..." }: the state is in PostgreSQL, reached through
    # the connection string in that variable, under the key (project, environment, AppKey).
    state_url_env: str | None = None
    state_project: str | None = None
    site_time_zone: str | None = None
    rate_limit: float | None = None
    schedule_quota: int | None = None
    quiet_hours: tuple[str, str] | None = None  # (start, end), local "HH:MM", may wrap midnight
    min_gap_minutes: int | None = None
    checks: tuple[tuple[str, str], ...] | None = None  # (check id, level), sorted
    create_settle_seconds: float | None = None
    max_clock_skew_seconds: float | None = None
    immediate_plan_minutes: int | None = None
    smart_window: str | None = None

    @property
    def state_file(self) -> str:
        return self.state or f"state/{self.name}.json"


@dataclass(frozen=True, slots=True)
class Config:
    source: str
    environments: Mapping[str, Environment] = field(default_factory=dict)
    default_environment: str | None = None

    def select(self, name: str | None) -> Environment | None:
        """The environment to use: `name`, else the default; None = the built-in one.

        The built-in environment is called "default" (state/default.json, ENGAGELAB_* variables)
        unless the file defines one by that name.
        """
        chosen = name or self.default_environment or BUILTIN
        if chosen == BUILTIN and chosen not in self.environments:
            return None
        found = self.environments.get(chosen)
        if found is None:
            raise ConfigError(unknown_environment(chosen, self.source, list(self.environments)))
        return found


def unknown_environment(name: str, source: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = ", ".join(sorted(known)) or "none"
    return f"no environment {name!r} in {source} ({hint}defined: {listed})"


def read_config(root: Path) -> Config | None:
    """`<root>/reconcile.toml`, parsed; None when the project has no config file."""
    path = root / CONFIG_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = CONFIG_FILE) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    problems = _Problems(text, source)
    for key in raw:
        if key not in _TOP_KEYS:
            problems.unknown((), key, _TOP_KEYS)
    tables = raw.get("environments", {})
    environments: dict[str, Environment] = {}
    if not isinstance(tables, dict):
        problems.add((), "environments", "must be a table of [environments.NAME] tables")
        tables = {}
    for name, table in tables.items():
        env = _environment(name, table, problems)
        if env is not None:
            environments[name] = env
    default = raw.get("default_environment")
    if default is not None and not isinstance(default, str):
        problems.add((), "default_environment", "must be a string naming an environment")
        default = None
    if isinstance(default, str) and default not in tables and default != BUILTIN:
        problems.add((), "default_environment", unknown_environment(default, source, [*tables]))
    problems.raise_any()
    return Config(source, environments, default)


def _environment(name: str, table: Any, problems: _Problems) -> Environment | None:
    where = ("environments", name)
    if not _NAME_RE.match(name):
        problems.add(where, "", f"environment name {name!r}: use letters, digits, - and _")
    if not isinstance(table, dict):
        problems.add(("environments",), name, "must be a table: [environments.NAME]")
        return None
    for key in table:
        if key.lower() in _SECRET_KEYS:
            problems.add(
                where,
                key,
                "secrets never go in files; name the variable that holds it instead "
                f'({"app_key_env" if "key" in key else "master_secret_env"} = "...")',
            )
        elif key not in _ENV_KEYS:
            problems.unknown(where, key, _ENV_KEYS)
    values: dict[str, Any] = {}
    string: tuple[type, ...] = (str,)
    integer: tuple[type, ...] = (int,)
    number: tuple[type, ...] = (int, float)
    for key, kinds in (
        ("data_center", string),
        ("base_url", string),
        ("app_key_env", string),
        ("master_secret_env", string),
        ("site_time_zone", string),
        ("rate_limit", number),
        ("schedule_quota", integer),
        ("min_gap_minutes", integer),
        ("create_settle_seconds", number),
        ("max_clock_skew_seconds", number),
        ("immediate_plan_minutes", integer),
        ("smart_window", string),
    ):
        value: Any = table.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kinds):
            noun = {string: "a string", integer: "an integer"}.get(kinds, "a number")
            problems.add(where, key, f"must be {noun}, not {type(value).__name__}")
            continue
        problem = _check(key, value)
        if problem:
            problems.add(where, key, problem)
        else:
            floats = ("rate_limit", "create_settle_seconds", "max_clock_skew_seconds")
            values[key] = float(cast(float, value)) if key in floats else value
    if "data_center" in values and "base_url" in values:
        problems.add(where, "base_url", "give either data_center or base_url, not both")
    state = table.get("state")
    if isinstance(state, dict):
        values.update(_state_table(state, where, problems))
    elif state is not None and not isinstance(state, str):
        problems.add(where, "state", STATE_FORMS)
    elif isinstance(state, str):
        problem = _check("state", state)
        if problem:
            problems.add(where, "state", problem)
        else:
            values["state"] = state
    hours = table.get("quiet_hours")
    if hours is not None:
        quiet = _quiet_hours(hours)
        if quiet is None:
            example = 'quiet_hours = { start = "21:00", end = "08:00" }'
            problems.add(where, "quiet_hours", f"use {example} (local HH:MM)")
        values["quiet_hours"] = quiet
    checks = table.get("checks")
    if checks is not None:
        values["checks"] = _checks(checks, where, problems)
    return Environment(name=name, **values)


STATE_KEYS = ("url_env", "project")
STATE_FORMS = (
    'use state = "state/NAME.json" (a file in the project), or '
    'state = { url_env = "RECONCILE_STATE_URL", project = "NAME" } (PostgreSQL)'
)
_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")


def _state_table(
    raw: dict[str, Any], where: tuple[str, ...], problems: _Problems
) -> dict[str, str]:
    """`state = { url_env = ..., project = ... }`: both required; the URL itself never here."""
    found: dict[str, str] = {}
    for key in raw:
        if key in ("url", "dsn", "connection_string", "password"):
            problems.add(
                where,
                "state",
                f"{key}: connection strings are secrets and never go in files; name the "
                'variable that holds it: url_env = "RECONCILE_STATE_URL"',
            )
        elif key not in STATE_KEYS:
            close = difflib.get_close_matches(key, STATE_KEYS, n=1)
            hint = (
                f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(STATE_KEYS)}"
            )
            problems.add(where, "state", f"unknown key {key!r}; {hint}")
    url_env, project = raw.get("url_env"), raw.get("project")
    if not isinstance(url_env, str) or not _VARIABLE_RE.match(url_env):
        problems.add(
            where,
            "state",
            "url_env must name the environment variable holding the PostgreSQL connection "
            'string, e.g. url_env = "RECONCILE_STATE_URL" (a value that is not a variable name '
            "is not shown, in case it is the secret)",
        )
    else:
        found["state_url_env"] = url_env
    if not isinstance(project, str) or not _PROJECT_RE.match(project):
        problems.add(
            where,
            "state",
            'project = "NAME" is required with url_env: it keys the state in the database, so '
            "every clone and runner of this repository must share it (letters, digits, . _ -)",
        )
    else:
        found["state_project"] = project
    return found


def _checks(
    raw: Any, where: tuple[str, ...], problems: _Problems
) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(raw, dict):
        problems.add(where, "checks", 'use checks = { quiet_hours = "error", min_gap = "off" }')
        return None
    good: list[tuple[str, str]] = []
    for check, level in raw.items():
        if check not in CHECK_IDS:
            problems.add(where, "checks", f"unknown check {check!r}; one of {', '.join(CHECK_IDS)}")
        elif level not in CHECK_LEVELS:
            levels = ", ".join(CHECK_LEVELS)
            problems.add(where, "checks", f"{check}: level {level!r} is not one of {levels}")
        else:
            good.append((check, level))
    return tuple(sorted(good))


def _check(key: str, value: Any) -> str | None:
    if key == "data_center" and value.strip().lower() not in api.DATA_CENTERS:
        # Only a short plain token is repeated: anything else may be a pasted secret.
        shown = api.echo_token(value) or "(not shown: it is not a short name)"
        return f"unknown data center {shown}; choose one of: {', '.join(api.DATA_CENTERS)}"
    if key == "base_url":
        try:
            parts = urlsplit(value)
            hostname = parts.hostname
            credentials = parts.username is not None or parts.password is not None
        except ValueError:
            return "is not a valid URL (not shown, in case it holds a secret)"
        if credentials:
            return "must not carry credentials (user:password@); name variables instead"
        if parts.scheme not in ("http", "https") or not hostname:
            # Never the path, query or userinfo: a token may hide there (api.shown_url).
            shown = api.shown_url(value) or "the URL (not shown, in case it holds a secret)"
            return f"{shown} is not an http(s) URL with a host"
    if key.endswith("_env") and not _VARIABLE_RE.match(value):
        # Not echoed: what was pasted here instead of a variable name may be the secret itself.
        return (
            "is not an environment variable name (the value is not shown, in case it is a "
            "secret); name the variable, e.g. PRODUCTION_ENGAGELAB_MASTER_SECRET"
        )
    if key == "state" and not value.endswith(".json"):
        return f"{value!r}: a state file name ends in .json"
    if key == "state" and (
        PurePosixPath(value).is_absolute() or ".." in PurePosixPath(value).parts
    ):
        return f"{value!r}: the state file must be a path inside the project, e.g. state/prod.json"
    if key == "site_time_zone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            return f"{value!r} is not an IANA time zone; use e.g. Europe/Paris"
    if key == "rate_limit" and not 0 < value <= api.RATE_LIMIT_PER_SECOND:
        return f"{value} is out of range: above 0, at most {api.RATE_LIMIT_PER_SECOND} requests/s"
    if key in ("schedule_quota", "min_gap_minutes") and value < (1 if key[0] == "s" else 0):
        return f"{value} is out of range"
    if key in ("create_settle_seconds", "max_clock_skew_seconds", "immediate_plan_minutes") and (
        value < (0 if key == "create_settle_seconds" else 1)
    ):
        return f"{value} is out of range"
    if key == "smart_window" and value not in SMART_WINDOWS:
        return f"{value!r}: use one of {', '.join(SMART_WINDOWS)}"
    return None


def _quiet_hours(raw: Any) -> tuple[str, str] | None:
    if not isinstance(raw, dict) or set(raw) != {"start", "end"}:
        return None
    start, end = raw["start"], raw["end"]
    if not all(isinstance(v, str) and _CLOCK_RE.match(v) for v in (start, end)):
        return None
    return (start, end)


class _Problems:
    """Every problem of one file, each with the line of its key when a simple scan finds it."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.found: list[tuple[int, str]] = []

    def add(self, table: tuple[str, ...], key: str, message: str) -> None:
        line = self._line(table, key)
        where = f"{self.source}:{line}" if line else self.source
        dotted = ".".join([*table, key] if key else table)
        self.found.append((line, f"{where}: {dotted}: {message}"))

    def unknown(self, table: tuple[str, ...], key: str, known: tuple[str, ...]) -> None:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        self.add(table, key, f"unknown key; {hint}")

    def raise_any(self) -> None:
        if self.found:
            self.found.sort(key=lambda item: item[0])
            raise ConfigError("\n".join(message for _, message in self.found))

    def _line(self, table: tuple[str, ...], key: str) -> int:
        """1-based line of `key` under the `[table]` header (0 when not found that simply)."""
        header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(_quoted, table)) + r"\s*\]")
        inside = not table
        for number, line in enumerate(self.lines, start=1):
            if re.match(r"^\s*\[", line):
                if table and not key and header.match(line):
                    return number
                inside = bool(table) and bool(header.match(line))
            elif inside and key and re.match(rf"^\s*{_quoted(key)}\s*=", line):
                return number
        return 0


def _quoted(name: str) -> str:
    escaped = re.escape(name)
    return f"(?:{escaped}|\"{escaped}\"|'{escaped}')"
