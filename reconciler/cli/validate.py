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


VALIDATE_CHECKS_UP_TO = 2000  # schedules; above, only error-level checks run (a 2 s budget)


def _send_time_checks(
    desired: DesiredState, settings: Settings, now: datetime
) -> tuple[list[CheckResult], bool]:
    """The send-time check results validate shows, and whether every check ran.

    `plan` runs them for whatever a change touches; here they cover the whole project when it
    is small enough, and otherwise only when a spec or the environment raised one to "error".
    """
    levels = [*dict(settings.check_levels).values()]
    levels += [level for checks in desired.check_levels.values() for level in checks.values()]
    if len(desired.schedules) <= VALIDATE_CHECKS_UP_TO:
        return run_checks(desired, settings, now), True
    if "error" in levels:
        return [r for r in run_checks(desired, settings, now) if r.level == "error"], False
    return [], False


Loaded = tuple[DesiredState, Settings, datetime]


def load_or_report(args: argparse.Namespace) -> Loaded | None:
    """The project's desired state, settings and clock, its warnings printed; or None once
    every problem has been printed (the caller exits 1)."""
    settings = resolve_settings(args)
    now = resolve_now(args)
    try:
        desired = load_desired(args.root, settings, now)
    except SpecError as error:
        report(error)
        return None
    for warning in desired.warnings:
        err(str(warning))
    return desired, settings, now


def report(error: SpecError) -> int:
    """Print every problem (errors and warnings, sorted) and a count; the exit code to use."""
    for problem in error.problems:
        err(str(problem))
    errors = sum(not p.warning for p in error.problems)
    err(f"{errors} error{'s' if errors != 1 else ''} in specs; nothing was planned or sent.")
    return int(ExitCode.ERROR)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args)
    if loaded is None:
        return int(ExitCode.ERROR)
    desired, settings, now = loaded
    results, complete = _send_time_checks(desired, settings, now)
    for result in results:
        source = desired.schedules.get(result.address.removeprefix("schedule."))
        where = f"{source.source}: " if source is not None else ""
        err(f"{where}{result.level}: {result}")
    failed = [r for r in results if r.level == "error"]
    if not complete:
        err(
            f"note: send-time checks run here up to {VALIDATE_CHECKS_UP_TO} schedules; "
            "`reconcile plan` runs them for everything a change touches."
        )
    if failed:
        err(f"{len(failed)} send-time check(s) set to error; nothing was planned or sent.")
        return int(ExitCode.ERROR)
    schedules = desired.schedules.values()
    languages = {lang for s in schedules for lang in s.copy}
    warned = len(desired.warnings) + len(results)
    noun = "warning" if warned == 1 else "warnings"
    out(
        f"valid: {len(desired.plans)} plan(s) of {settings.plan_quota}, "
        f"{len(desired.schedules)} schedule(s), {len(languages)} language(s); "
        f"{warned} {noun}"
    )
    return int(ExitCode.OK)
