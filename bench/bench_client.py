"""Benchmark: sustained schedule creates through the client against a rate-limited emulator.

Starts an emulator in a child process (loopback, server limit 200 req/s, raised schedule quota),
creates 2,000 schedules with the client limited to the same rate and N calls in flight, and
prints the achieved rate, its share of the limit, the 429s seen, and PASS/FAIL against >= 90 %.
Then it measures the limiter alone (no network). Bounded: about 15 s with the defaults.

    /tmp/venv/bin/python bench/bench_client.py [--count 2000] [--rate 200] [--in-flight 16]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr

from reconciler.api.client import ClientConfig, EngageLabClient
from reconciler.api.ratelimit import RateLimiter
from reconciler.emulator import Emulator, EmulatorConfig
from tests.support.emulator import sample_push, sample_schedule

APP_KEY = "bench-app-key"
SECRET = "bench-master-secret"  # a throwaway credential for the local emulator
NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
TARGET = 0.90


def body(name: str) -> dict[str, Any]:
    return sample_schedule(name, push=sample_push("bench"))


async def create_all(
    base_url: str, count: int, rate: float, in_flight: int
) -> tuple[float, list[float], int]:
    config = ClientConfig(
        base_url=base_url,
        app_key=APP_KEY,
        master_secret=SecretStr(SECRET),
        rate_limit=rate,
        max_connections=in_flight,
    )
    gate = asyncio.Semaphore(in_flight)
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            await client.create_schedule(body(f"bench_{i:05d}"))
            latencies.append(time.perf_counter() - started)

    async with EngageLabClient(config) as client:
        await client.upsert_plan("bench", "benchmark plan")
        calls_before = client.calls_made
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - started
        return elapsed, latencies, client.calls_made - calls_before


async def limiter_only(rate: float, count: int) -> float:
    limiter = RateLimiter(rate)
    await limiter.acquire()  # start with the burst spent so only the sustained rate is timed
    for _ in range(limiter.burst - 1):
        await limiter.acquire()
    started = time.perf_counter()
    await asyncio.gather(*(limiter.acquire() for _ in range(count)))
    return count / (time.perf_counter() - started)


def serve(settings: dict[str, Any], ready: Queue[str], stop: Event, report: Queue[Any]) -> None:
    """The emulator, in its own process: sharing our GIL would measure the emulator, not us."""
    server = Emulator(EmulatorConfig(**settings))
    ready.put(server.start())
    stop.wait()
    calls = server.calls()
    names = server.names()
    server.stop()
    throttled = sum(1 for c in calls if c.outcome == "ratelimited")
    report.put((throttled, sum(1 for n in names.values() if n), sum(n - 1 for n in names.values())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--limiter-count", type=int, default=1000)
    args = parser.parse_args(argv)

    settings = {
        "app_key": APP_KEY,
        "master_secret": SECRET,
        "now": NOW,
        "rate_limit": args.rate,
        "schedule_quota": args.count + 100,
    }
    spawn = multiprocessing.get_context("spawn")
    ready: Queue[str] = spawn.Queue()
    report: Queue[Any] = spawn.Queue()
    stop = spawn.Event()
    child = spawn.Process(target=serve, args=(settings, ready, stop, report), daemon=True)
    child.start()
    try:
        base_url = ready.get(timeout=30)
        cpu_before = time.process_time()
        elapsed, latencies, attempts = asyncio.run(
            create_all(base_url, args.count, args.rate, args.in_flight)
        )
        cpu = time.process_time() - cpu_before
        stop.set()
        throttled, created, duplicates = report.get(timeout=30)
    finally:
        stop.set()
        child.join(timeout=30)

    achieved = args.count / elapsed
    share = achieved / args.rate
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(
        f"schedule creates     {args.count} with {args.in_flight} in flight, limit {args.rate:g}/s"
    )
    print(f"elapsed              {elapsed:.2f} s")
    print(f"achieved             {achieved:.1f} req/s = {share:.1%} of the limit")
    print(f"attempts / 429s seen {attempts} / {throttled}")
    print(f"created / duplicates {created} / {duplicates}")
    p50 = statistics.median(latencies)
    print(f"call p50 / p95       {p50 * 1000:.1f} / {p95 * 1000:.1f} ms (limiter wait included)")
    print(f"client CPU           {cpu / args.count * 1000:.2f} ms per create")

    limiter_rate = asyncio.run(limiter_only(args.rate, args.limiter_count))
    print(
        f"limiter alone        {limiter_rate:.1f} acquisitions/s = "
        f"{limiter_rate / args.rate:.2%} of {args.rate:g}/s ({args.limiter_count} acquisitions)"
    )
    ok = share >= TARGET and created == args.count and duplicates == 0
    print(
        f"{'PASS' if ok else 'FAIL'}: sustained {share:.1%} of the limit (target >= {TARGET:.0%})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
