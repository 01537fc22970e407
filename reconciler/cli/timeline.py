"""`reconcile timeline [NAME] [--format text|markdown|json]`: every message on a UTC time axis.

Markdown is a Mermaid gantt chart (GitHub and GitLab draw it in comments); messages on which a
send-time or copy check fired are marked (`crit` in the chart, `!` in text).
"""

from __future__ import annotations

import argparse
import fnmatch

from reconciler.checks import timeline
from reconciler.checks.findings import run_checks
from reconciler.cli.common import err, out, project_parent
from reconciler.cli.workflows import load_or_report
from reconciler.errors import ConfigError, ExitCode
from reconciler.views import timeline as timeline_views


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "timeline",
        parents=[project_parent()],
        help="show when every message really reaches people, on a UTC time axis",
        description="Validate, then show every message of every campaign on a UTC time axis: "
        "device-local sends span the world's real time zones, site-time sends are instants, "
        "periodical sends show their next occurrences. Markdown is a Mermaid gantt chart.",
    )
    parser.add_argument("name", nargs="?", help="a plan id; shell-style wildcards allowed")
    parser.add_argument(
        "--format",
        choices=timeline_views.FORMATS,
        default="text",
        help="text for terminals (default); markdown (Mermaid) for pull requests; json",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args)
    if loaded is None:
        return int(ExitCode.ERROR)
    desired, settings, now = loaded
    campaigns = sorted(desired.plans)
    if args.name is not None:
        campaigns = [p for p in campaigns if fnmatch.fnmatchcase(p, args.name)]
        if not campaigns:
            raise ConfigError(f"no plan id matches {args.name!r}; `reconcile timeline` lists all")
    flags: dict[str, set[str]] = {}
    for result in run_checks(desired, settings, now):
        flags.setdefault(result.address, set()).add(result.check)
        if args.format == "text":
            err(f"{result.level}: {result}")
    entries = timeline.build_timeline(desired, settings, now, campaigns=set(campaigns), flags=flags)
    out(timeline_views.render(entries, now, args.format))
    return int(ExitCode.OK)
