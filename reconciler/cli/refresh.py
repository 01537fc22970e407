"""`reconcile refresh` (and `apply --refresh-only`): make the state what EngageLab holds. I/O edge.

Reads the remote (GETs only), shows the drift, asks for approval as apply does, then records the
events that accept the remote into the state, under the lock. Never writes to EngageLab.
"""

from __future__ import annotations

import argparse

from reconciler.cli import common
from reconciler.cli.workflows import refresh_only


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "refresh",
        parents=[common.project_parent(), common.api_parent()],
        help="accept what EngageLab holds into the state (drift), with no write to EngageLab",
        description="Read every schedule and push plan, show the drift, and record the remote "
        "as it is: edited bodies are recorded, deleted schedules forgotten, remote schedules "
        "with a spec-owned name adopted. Makes GET calls only. Asks for confirmation on a "
        "terminal; elsewhere needs --auto-approve. Same as `reconcile apply --refresh-only`.",
    )
    common.add_lock_timeout(parser)
    parser.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return refresh_only(args, "reconcile refresh")
