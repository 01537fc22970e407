"""Bench the state store: load of 10,000 schedules (~1.5 KB bodies), append latency, compaction.

Run: python bench/bench_store.py [--schedules N] [--appends N] [--backend file|postgres|both].
Writes only under a temp dir; `postgres` starts a throwaway server from Debian's binaries
(tests/support/postgres.py), on loopback. Target (issue #15): a 10,000-schedule load <= 0.3 s
on either backend.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.canonical import canonical_json, digest
from reconciler.state.backend import Store
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


def bench(
    open_store: Callable[[], Store], args: argparse.Namespace, size: Callable[[], str]
) -> float:
    """Run the measurements on one backend; return the best load time."""
    store = open_store()
    with store.lock("bench"):
        state = big_state(store.load(), args.schedules)
        started = time.perf_counter()
        store.write(state)
        took = time.perf_counter() - started
    print(f"  write (snapshot, {args.schedules} schedules): {took:.3f} s")
    print(f"  snapshot size: {size()}")
    loads = []
    for _ in range(5):
        started = time.perf_counter()
        loaded = open_store().load()
        loads.append(time.perf_counter() - started)
    assert loaded == state
    print(f"  load: best {min(loads):.3f} s, median {statistics.median(loads):.3f} s (5 runs)")
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
        started = time.perf_counter()
        store.write(current)
        compact = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"  append 1 event: median {statistics.median(latencies) * 1e3:.2f} ms, "
        f"p99 {p99 * 1e3:.2f} ms ({args.appends} appends)"
    )
    print(f"  append 50 events (group commit): {group * 1e3:.2f} ms")
    print(f"  load with {args.appends + 50} journal entries to replay: {replay:.3f} s")
    print(f"  compaction (snapshot written, journal dropped): {compact:.3f} s")
    return min(loads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument("--backend", choices=["file", "postgres", "both"], default="both")
    args = parser.parse_args()
    print(f"body size: {len(canonical_json(body(0)))} bytes (canonical JSON)")
    best: dict[str, float] = {}
    if args.backend in ("file", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "default.json"
            print("file backend:")
            best["file"] = bench(
                lambda: StateStore(path), args, lambda: f"{path.stat().st_size / 1e6:.1f} MB"
            )
    if args.backend in ("postgres", "both"):
        from reconciler.state.pg import PgLocation, PgStateStore
        from tests.support.postgres import PostgresServer

        server = PostgresServer().start()
        try:
            location = PgLocation(
                url=server.new_database(),
                url_env="BENCH",
                project=f"bench-{uuid.uuid4().hex[:8]}",
                environment="default",
                app_key_fingerprint="sha256:bench",
            )
            print("postgres backend (a local server on loopback):")
            best["postgres"] = bench(
                lambda: PgStateStore(location), args, lambda: _pg_size(location.url)
            )
        finally:
            server.stop()
    ok = all(value <= 0.3 for value in best.values())
    if len(best) == 2:
        print(f"load, postgres / file: {best['postgres'] / best['file']:.2f}")
    print("PASS" if ok else "FAIL", "(load <= 0.3 s)")
    return 0 if ok else 1


def _pg_size(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size('reconcile_snapshots'), "
            "(SELECT length(body) FROM reconcile_snapshots ORDER BY serial DESC LIMIT 1)"
        ).fetchone()
    assert row is not None
    return (
        f"{row[1] / 1e6:.2f} MB stored (zlib-compressed JSON), table {row[0] / 1e6:.1f} MB on disk"
    )


if __name__ == "__main__":
    raise SystemExit(main())
