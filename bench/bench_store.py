"""Bench the state store: load of 10,000 schedules (~1.5 KB bodies), append latency, compaction.

Run: python bench/bench_store.py [--schedules N] [--appends N]. Writes only under a temp dir.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from reconciler.canonical import canonical_json, digest
from reconciler.state.model import (
    Intent,
    IntentRecorded,
    PlanRecord,
    ScheduleCreated,
    ScheduleRecord,
    State,
)
from reconciler.state.store import StateStore

AT = datetime(2025, 12, 1, 9, tzinfo=UTC)


def body(i: int) -> dict[str, object]:
    copy = {lang: {"title": f"Offre {i} {lang}", "alert": "Soldes ! " * 20} for lang in "fr es de"}
    return {
        "name": f"promo_{i:05d}",
        "plan_id": "promo",
        "trigger": {"intelligent": {"backup_time": "2025-12-28 09:00:00"}},
        "push": {
            "platform": ["android", "ios"],
            "audience": {"tag": ["shoppers", "vip"]},
            "notification": {"alert": "Year-end sale is on! " * 6, "extras": {"promo": "ye"}},
            "options": {"time_to_live": 86400, "multi_language": copy},
        },
    }


def big_state(base: State, n: int) -> State:
    schedules = {}
    for i in range(n):
        b = body(i)
        schedules[b["name"]] = ScheduleRecord(
            name=str(b["name"]),
            plan_id="promo",
            schedule_id=f"sid{i}",
            body=b,
            digest=digest(b),
            trigger_kind="intelligent",
            applied_at=AT,
        )
    plans = {"promo": PlanRecord(plan_id="promo", description="Year-end", applied_at=AT)}
    return base.model_copy(update={"serial": 1, "plans": plans, "schedules": schedules})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--appends", type=int, default=200)
    args = parser.parse_args()
    print(f"body size: {len(canonical_json(body(0)))} bytes (canonical JSON)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "default.json"
        store = StateStore(path)
        with store.lock("bench"):
            state = big_state(store.load(), args.schedules)
            started = time.perf_counter()
            store.write(state)
            took = time.perf_counter() - started
        print(f"write (snapshot, {args.schedules} schedules): {took:.3f} s")
        print(f"snapshot size: {path.stat().st_size / 1e6:.1f} MB")
        loads = []
        for _ in range(3):
            started = time.perf_counter()
            loaded = StateStore(path).load()
            loads.append(time.perf_counter() - started)
        assert loaded == state
        print(f"load: best {min(loads):.3f} s, worst {max(loads):.3f} s (3 runs)")
        latencies = []
        with store.lock("bench"):
            current = store.load()
            for i in range(args.appends):
                intent = Intent(action="create", digest="sha256:x", started_at=AT)
                event = IntentRecorded(name=f"new_{i}", plan_id="promo", intent=intent)
                started = time.perf_counter()
                current = store.append(current, [event])
                latencies.append(time.perf_counter() - started)
            grouped = [
                ScheduleCreated(
                    name=f"new_{i}",
                    plan_id="promo",
                    schedule_id=f"n{i}",
                    body=body(i),
                    digest="sha256:x",
                    trigger_kind="intelligent",
                    at=AT,
                )
                for i in range(50)
            ]
            started = time.perf_counter()
            current = store.append(current, grouped)
            group = time.perf_counter() - started
            started = time.perf_counter()
            store.load()
            replay = time.perf_counter() - started
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(
            f"append 1 event: median {statistics.median(latencies) * 1e3:.2f} ms, "
            f"p99 {p99 * 1e3:.2f} ms ({args.appends} appends)"
        )
        print(f"append 50 events (group commit): {group * 1e3:.2f} ms")
        print(f"load with {args.appends + 50} journal entries to replay: {replay:.3f} s")


if __name__ == "__main__":
    main()
