"""`reconcile show FILE`: render a saved plan as text, markdown or JSON. Reads one file."""

from __future__ import annotations

import argparse
from pathlib import Path

from reconciler.cli import common
from reconciler.cli.workflows import add_format, render
from reconciler.errors import ExitCode
from reconciler.plan.saved import load_plan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "show",
        help="show a plan saved with `reconcile plan --out FILE`",
        description="Render a saved plan, exactly as it would be applied.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the saved plan (JSON)")
    add_format(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    common.out(render(load_plan(args.file), args.format))
    return int(ExitCode.OK)
