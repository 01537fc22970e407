"""`reconcile render [NAME] [--lang L] [--format text|json]`: preview copy and exact API bodies.

Text shows, per schedule, when it fires, who gets it and what each language reads, then the exact
request bodies; JSON carries the same, byte-stable (sorted keys) for machines and golden files.
"""

from __future__ import annotations

import argparse

from reconciler.cli.common import out, project_parent
from reconciler.cli.workflows import load_or_report
from reconciler.errors import ConfigError, ExitCode
from reconciler.views.preview import FORMATS, select, to_json, to_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "render",
        parents=[project_parent()],
        help="preview the text every language receives and the exact API bodies",
        description="Validate, then show each schedule's trigger, audience and copy per language, "
        "and the exact POST /v4/push_plan and POST /v4/schedules bodies.",
    )
    parser.add_argument(
        "name", nargs="?", help="a schedule name or plan id; shell-style wildcards allowed"
    )
    parser.add_argument("--lang", help="show only this language's copy")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text for people (default); json for machines: byte-stable, keys sorted",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args)
    if loaded is None:
        return int(ExitCode.ERROR)
    desired, settings, now = loaded
    schedules = select(desired, args.name)
    lang: str | None = args.lang
    if lang is not None and not any(lang in s.copy for s in schedules):
        known = sorted({code for s in schedules for code in s.copy})
        raise ConfigError(f"--lang {lang}: no selected schedule has that language; has {known}")
    plan_ids = sorted({s.plan_id for s in schedules})
    if args.format == "json":
        for line in to_json(desired, schedules, plan_ids, lang):
            out(line)
    else:
        out(to_text(desired, schedules, plan_ids, lang, settings, now))
    return int(ExitCode.OK)
