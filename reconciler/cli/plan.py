"""`reconcile plan`: load specs and state, build the plan, show it, optionally save it. I/O edge."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

from reconciler.cli import common
from reconciler.desired import load_desired
from reconciler.errors import ExitCode
from reconciler.plan import Plan, build_plan
from reconciler.savedplan import save_plan
from reconciler.store import StateStore
from reconciler.views import to_json, to_markdown, to_markdown_comments, to_text

FORMATS = ("text", "markdown", "json")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "plan",
        parents=[common.project_parent()],
        help="show what apply would change on EngageLab, and why",
        description="Diff the specs against the recorded state. Makes no API call. "
        "Exit 0 when done (or, with --detailed-exitcode, 0 = no changes, 2 = changes).",
    )
    parser.add_argument("--out", type=Path, help="save the plan to FILE for `reconcile apply FILE`")
    add_format(parser)
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when there are changes to apply, 0 when there are none",
    )
    parser.add_argument(
        "--target",
        action="extend",
        nargs="+",
        metavar="ADDRESS",
        help="plan only these addresses (plan.<id>, schedule.<name>) and the plans they need",
    )
    parser.add_argument(
        "--comments-dir",
        type=Path,
        help="also write the markdown view split into pull-request comments DIR/comment-N.md",
    )
    parser.set_defaults(func=run)


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="text (default), markdown or json"
    )


def render(plan: Plan, fmt: str) -> str:
    if fmt == "json":
        return to_json(plan)
    if fmt == "markdown":
        return to_markdown(plan)
    return to_text(plan, color=common.color_enabled())


def write_comments(plan: Plan, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("comment-*.md"):
        stale.unlink()  # a shorter plan must not leave an old comment behind
    paths = []
    for i, comment in enumerate(to_markdown_comments(plan), start=1):
        path = directory / f"comment-{i}.md"
        path.write_text(comment, encoding="utf-8")
        paths.append(path)
    return paths


def run(args: argparse.Namespace) -> int:
    settings = common.resolve_settings(args)
    now = common.resolve_now(args)
    desired = load_desired(args.root, settings, now)
    store = StateStore(common.state_path(args))
    state = store.load()
    for notice in store.notices:
        common.err(f"note: {notice}")
    # Specs and state are millions of long-lived objects: without this, every collection while
    # planning rescans them all (measured: 0.45 s -> 0.18 s of planning at 10,000 schedules).
    gc.freeze()
    plan = build_plan(desired, state, now, settings, targets=args.target)
    if args.out is not None:
        save_plan(plan, args.out)
    common.out(render(plan, args.format))
    if args.comments_dir is not None:
        written = write_comments(plan, args.comments_dir)
        common.err(f"Wrote {len(written)} pull-request comment(s) to {args.comments_dir}.")
    if args.out is not None:
        common.err(
            f"Saved this plan to {args.out}; apply exactly it with: reconcile apply {args.out}"
        )
    if args.detailed_exitcode and plan.has_changes:
        return int(ExitCode.CHANGES)
    return int(ExitCode.OK)
