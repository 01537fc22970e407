"""`reconcile validate`: load every spec and template, report all problems at once, exit 0 or 1."""

from __future__ import annotations

import argparse
from datetime import datetime

from reconciler.checks import CheckResult, run_checks
from reconciler.cli.common import err, out, project_parent, resolve_now, resolve_settings
from reconciler.desired import load_desired
from reconciler.errors import ExitCode, SpecError
from reconciler.resources import DesiredState
from reconciler.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "validate",
        parents=[project_parent()],
        help="check specs and templates; every problem with file:line:col",
        description="Load specs/*.yaml and templates/<name>/<lang>.yaml, render every language "
        "and build every API body. Prints every problem at once; exit 0 when valid, 1 otherwise. "
        "Send times already passed are warnings.",
    )
    parser.set_defaults(func=run)


def _error_level_checks(
    desired: DesiredState, settings: Settings, now: datetime
) -> list[CheckResult]:
    """Send-time checks a spec or the environment raised to "error" (the warnings are left to
    `plan`, which shows them for what a change touches; running them all here costs time)."""
    levels = [*dict(settings.check_levels).values()]
    levels += [level for checks in desired.check_levels.values() for level in checks.values()]
    if "error" not in levels:
        return []
    return [r for r in run_checks(desired, settings, now) if r.level == "error"]


def report(error: SpecError) -> int:
    """Print every problem (errors and warnings, sorted) and a count; the exit code to use."""
    for problem in error.problems:
        err(str(problem))
    errors = sum(not p.warning for p in error.problems)
    err(f"{errors} error{'s' if errors != 1 else ''} in specs; nothing was planned or sent.")
    return int(ExitCode.ERROR)


def run(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    now = resolve_now(args)
    try:
        desired = load_desired(args.root, settings, now)
    except SpecError as error:
        return report(error)
    for warning in desired.warnings:
        err(str(warning))
    failed = _error_level_checks(desired, settings, now)
    if failed:
        for result in failed:
            err(f"error: {result}")
        err(f"{len(failed)} send-time check(s) set to error; `reconcile plan` shows them all.")
        return int(ExitCode.ERROR)
    schedules = desired.schedules.values()
    languages = {lang for s in schedules for lang in s.copy}
    noun = "warning" if len(desired.warnings) == 1 else "warnings"
    out(
        f"valid: {len(desired.plans)} plan(s) of {settings.plan_quota}, "
        f"{len(desired.schedules)} schedule(s), {len(languages)} language(s); "
        f"{len(desired.warnings)} {noun}"
    )
    return int(ExitCode.OK)
