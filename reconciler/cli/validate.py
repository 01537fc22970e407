"""`reconcile validate`: load every spec and template, report all problems at once, exit 0 or 1."""

from __future__ import annotations

import argparse
from datetime import datetime

from reconciler.checks.findings import CheckResult, run_checks
from reconciler.cli.common import err, out, project_parent
from reconciler.cli.workflows import load_or_report
from reconciler.errors import ExitCode
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredState


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
