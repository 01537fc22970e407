"""`reconcile stats`: push-plan funnels (targets -> clicks) with rates and splits. I/O edge.

By default every push plan in the specs over the last 7 full days. Long ranges and many plans are
split into the requests the API allows (reconciler.remote.stats) and merged before display.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date, datetime, timedelta

from reconciler import engagelab as api
from reconciler.cli import common
from reconciler.cli.workflows import fetch
from reconciler.errors import ConfigError, ExitCode
from reconciler.remote.stats import default_range
from reconciler.views.stats import FORMATS, render


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "stats",
        parents=[common.project_parent(), common.api_parent()],
        help="push-plan statistics: targets, sent, delivered, impressions, clicks, and rates",
        description="Funnel per push plan, split by message type, platform and vendor channel. "
        "Default: every plan in the specs, the last 7 days ending yesterday.",
    )
    parser.add_argument(
        "--plan", action="extend", nargs="+", metavar="ID", help="plan ids (default: the specs')"
    )
    parser.add_argument("--from", dest="start", metavar="DATE", help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", metavar="DATE", help="last day, YYYY-MM-DD")
    parser.add_argument("--format", choices=FORMATS, default="table", help="table (default)")
    parser.set_defaults(func=run)


def parse_day(text: str, option: str) -> date:
    try:
        parsed = datetime.strptime(text, api.STATS_DATE_FORMAT).date()
    except ValueError:
        parsed = None
    if parsed is None or parsed.isoformat() != text:
        raise ConfigError(f"{option} {text!r} is not a date; use YYYY-MM-DD")
    return parsed


def date_range(start: str | None, end: str | None, now: datetime) -> tuple[date, date]:
    """--from/--to; a missing --to is yesterday, a missing --from is 7 days up to --to."""
    last = parse_day(end, "--to") if end is not None else default_range(now.date())[1]
    first = parse_day(start, "--from") if start is not None else last - timedelta(days=6)
    if last < first:
        raise ConfigError(f"--to {last} is before --from {first}")
    return first, last


def run(args: argparse.Namespace) -> int:
    project = common.Project(args)
    start, end = date_range(args.start, args.end, project.now)
    if args.plan:
        plan_ids = list(dict.fromkeys(args.plan))
    else:
        plan_ids = sorted(project.desired.plans)
        if not plan_ids:
            raise ConfigError("the specs declare no push plan; name plans with --plan ID")
    report = asyncio.run(fetch(project.client_config, plan_ids, start, end))
    common.out(render(report, args.format))
    return int(ExitCode.OK)
