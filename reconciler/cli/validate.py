"""`reconcile validate`: load every spec and template, report all problems at once, exit 0 or 1."""

from __future__ import annotations

import argparse

from reconciler.cli.common import err, out, project_parent, resolve_now, resolve_settings
from reconciler.desired import load_desired
from reconciler.errors import ExitCode, SpecError


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


def report(error: SpecError) -> int:
    """Print every problem (errors and warnings, sorted) and a count; the exit code to use."""
    for problem in error.problems:
        err(str(problem))
    errors = sum(not p.warning for p in error.problems)
    err(f"{errors} error{'s' if errors != 1 else ''} in specs; nothing was planned or sent.")
    return int(ExitCode.ERROR)


def run(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    try:
        desired = load_desired(args.root, settings, resolve_now(args))
    except SpecError as error:
        return report(error)
    for warning in desired.warnings:
        err(str(warning))
    schedules = desired.schedules.values()
    languages = {lang for s in schedules for lang in s.copy}
    noun = "warning" if len(desired.warnings) == 1 else "warnings"
    out(
        f"valid: {len(desired.plans)} plan(s) of {settings.plan_quota}, "
        f"{len(desired.schedules)} schedule(s), {len(languages)} language(s); "
        f"{len(desired.warnings)} {noun}"
    )
    return int(ExitCode.OK)
