"""Benchmark: `reconcile validate` and `reconcile render --format json` as whole CLI processes
on the generated corpus (100 plans x 100 schedules x 5 languages). Prints wall time and peak RSS.

Run: /tmp/venv/bin/python bench/bench_load.py [--plans N --per-plan N --languages N --runs N]
Target on the 2-core reference machine: <= 2 s wall and <= 300 MB peak RSS per process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import CORPUS_NOW, CORPUS_SCHEDULE_QUOTA, generate
from measure import run_once

RECONCILE = Path(sys.executable).with_name("reconcile")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plans", type=int, default=100)
    parser.add_argument("--per-plan", type=int, default=100)
    parser.add_argument("--languages", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, args.plans, args.per_plan, args.languages)
        size = sum(f.stat().st_size for f in root.rglob("*.yaml"))
        print(
            f"corpus: {args.plans} plans x {args.per_plan} schedules x {args.languages} languages"
            f" = {args.plans * args.per_plan} schedules, {size / 1e6:.1f} MB of YAML"
        )
        common = [
            "--root",
            str(root),
            "--now",
            CORPUS_NOW.isoformat(),
            "--schedule-quota",
            str(CORPUS_SCHEDULE_QUOTA),
        ]
        commands = {
            "validate": [str(RECONCILE), "validate", *common],
            "render --format json": [str(RECONCILE), "render", "--format", "json", *common],
        }
        for label, argv in commands.items():
            results = [run_once(argv) for _ in range(args.runs)]
            codes = {r[2] for r in results}
            best = min(r[0] for r in results)
            rss = max(r[1] for r in results)
            cpu = min(r[3] for r in results)
            verdict = "ok" if best <= 2.0 and rss <= 300 and codes == {0} else "OVER TARGET"
            print(
                f"{label:<22} wall best {best:.2f} s (runs: "
                f"{', '.join(f'{r[0]:.2f}' for r in results)}), CPU best {cpu:.2f} s, "
                f"peak RSS {rss:.0f} MiB, exit {sorted(codes)}  [{verdict}]"
            )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (wall figures need an idle machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
