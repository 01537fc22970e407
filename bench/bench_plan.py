"""Benchmark: `reconcile plan` as a whole CLI process on the generated corpus (100 plans x 100
schedules x 5 languages), against a state recording all of it: no change, then 1 % changed.

Run: /tmp/venv/bin/python bench/bench_plan.py [--plans N --per-plan N --languages N --runs N]
Targets on the 2-core reference machine: <= 2.5 s with no change, <= 3 s with 1 % changed,
<= 400 MB peak RSS. Prints the figures and PASS/FAIL; exits 1 on a FAIL.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from corpus import CORPUS_NOW, CORPUS_SCHEDULE_QUOTA, generate
from measure import run_once

from reconciler.plan.planner import Action, build_plan
from reconciler.settings import Settings
from reconciler.spec.loader import load_desired
from reconciler.state.codec import dump_state
from reconciler.state.model import PlanRecord, ScheduleRecord, State

RECONCILE = Path(sys.executable).with_name("reconcile")
TARGETS = {"no change": 2.5, "1% changed": 3.0}
RSS_TARGET_MB = 400.0


def record_everything(root: Path, settings: Settings) -> State:
    """The state a perfect apply of the whole corpus would leave (built directly: fast)."""
    desired = load_desired(root, settings, CORPUS_NOW)
    plan = build_plan(desired, State.new(), CORPUS_NOW, settings)
    at = CORPUS_NOW
    plans = {
        c.plan_id: PlanRecord(
            plan_id=c.plan_id, description=(c.after or {})["plan_description"], applied_at=at
        )
        for c in plan.changes
        if c.kind == "plan" and c.action is Action.CREATE
    }
    schedules = {}
    for n, c in enumerate(plan.changes):
        if c.kind == "schedule" and c.action is Action.CREATE and c.after is not None:
            name = c.after["name"]
            schedules[name] = ScheduleRecord(
                name=name,
                plan_id=c.plan_id,
                schedule_id=f"bench-{n:06d}",
                body=c.after,
                digest=c.digest_after,
                trigger_kind=next(iter(c.after["trigger"])),
                applied_at=at,
            )
    return State(lineage="bench", serial=1, plans=plans, schedules=schedules)


def change_one_percent(root: Path) -> int:
    """Edit one spec file's copy variables: every message of that plan (1/plans) changes."""
    spec = sorted((root / "specs").glob("*.yaml"))[0]
    text = spec.read_text(encoding="utf-8")
    edited = text.replace('product: "Product ', 'product: "Produkt ')
    spec.write_text(edited, encoding="utf-8")
    return text.count('product: "Product ')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plans", type=int, default=100)
    parser.add_argument("--per-plan", type=int, default=100)
    parser.add_argument("--languages", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(schedule_quota=CORPUS_SCHEDULE_QUOTA)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, args.plans, args.per_plan, args.languages)
        state_file = root / "state" / "default.json"
        state_file.parent.mkdir()
        state = record_everything(root, settings)
        state_file.write_bytes(dump_state(state))
        print(
            f"corpus: {args.plans} plans x {args.per_plan} schedules x {args.languages} languages;"
            f" state: {len(state.schedules)} schedules, {state_file.stat().st_size / 1e6:.1f} MB"
        )
        argv = [
            str(RECONCILE),
            "plan",
            "--root",
            str(root),
            "--now",
            CORPUS_NOW.isoformat(),
            "--schedule-quota",
            str(CORPUS_SCHEDULE_QUOTA),
            "--detailed-exitcode",
        ]
        for label, expected_code in (("no change", 0), ("1% changed", 2)):
            if label == "1% changed":
                print(f"edited {change_one_percent(root)} messages' copy in one spec file")
            results = [run_once(argv) for _ in range(args.runs)]
            codes = {code for _, _, code, _ in results}
            best = min(wall for wall, _, _, _ in results)
            rss = max(mb for _, mb, _, _ in results)
            ok = codes == {expected_code} and best <= TARGETS[label] and rss <= RSS_TARGET_MB
            failed |= not ok
            walls = ", ".join(f"{w:.2f}" for w, _, _, _ in results)
            print(
                f"plan, {label:<10}: best {best:.2f} s of {args.runs} "
                f"(all: {walls}), peak RSS {rss:.0f} MiB, "
                f"exit {sorted(codes)} -> {'PASS' if ok else 'FAIL'} "
                f"(targets <= {TARGETS[label]} s, <= {RSS_TARGET_MB:.0f} MB, exit {expected_code})"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
