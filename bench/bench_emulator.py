"""Benchmark: requests/s the emulator alone serves on loopback, with keep-alive connections.

Starts `reconcile emulator --port 0` as a subprocess (so client and server do not share a GIL),
drives it with N threads each holding one http.client connection for a bounded number of
requests, prints the figures and PASS/FAIL against 1,000 simple requests/s.
Usage: python bench/bench_emulator.py [--connections 4] [--requests 4000]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

TARGET = 1000.0
KEY, SECRET = "bench-key", "bench-secret"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()}


def start_server() -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "ENGAGELAB_APP_KEY": KEY, "ENGAGELAB_MASTER_SECRET": SECRET}
    args = ["--port", "0", "--now", "2025-11-20T12:00:00+00:00", "--schedule-quota", "1000000"]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from reconciler.cli.main import entry; entry()", "emulator", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    return proc, int(banner.rsplit(":", 1)[1])


def schedule(i: int) -> bytes:
    return json.dumps(
        {
            "name": f"bench_{i}",
            "enabled": True,
            "trigger": {"intelligent": {"backup_time": "2025-12-28 09:00:00"}},
            "push": {
                "to": {"tag": ["shoppers"]},
                "body": {"platform": "all", "notification": {"alert": "hi"}},
            },
        }
    ).encode()


Request = Callable[[int], tuple[str, str, bytes | None]]


def run(port: int, connections: int, total: int, make: Request) -> tuple[float, int, list[float]]:
    """(requests per second, non-200 answers, per-request latencies in seconds)."""
    per_thread = total // connections
    failures = [0] * connections
    latencies: list[list[float]] = [[] for _ in range(connections)]
    barrier = threading.Barrier(connections + 1)

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            barrier.wait()
            for n in range(per_thread):
                method, path, body = make(slot * per_thread + n)
                started = time.perf_counter()
                conn.request(method, path, body=body, headers=AUTH)
                answer = conn.getresponse()
                answer.read()
                latencies[slot].append(time.perf_counter() - started)
                failures[slot] += answer.status != 200
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    flat = sorted(x for row in latencies for x in row)
    return per_thread * connections / elapsed, sum(failures), flat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    proc, port = start_server()
    try:
        cases: list[tuple[str, Request]] = [
            ("GET /v4/push_plan/list", lambda i: ("GET", "/v4/push_plan/list", None)),
            ("POST /v4/schedules", lambda i: ("POST", "/v4/schedules", schedule(i))),
            ("GET /v4/schedules?page=1", lambda i: ("GET", "/v4/schedules?page=1", None)),
        ]
        simple = 0.0
        for label, make in cases:
            rate, failed, lat = run(port, args.connections, args.requests, make)
            p50, p99 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000
            print(
                f"{label:28s} {rate:8.0f} req/s  p50 {p50:5.2f} ms  p99 {p99:5.2f} ms  "
                f"non-200: {failed}  ({args.requests} requests, {args.connections} connections)"
            )
            simple = simple or rate
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    verdict = "PASS" if simple >= TARGET else "FAIL"
    print(f"{verdict}: simple requests {simple:.0f}/s against a target of {TARGET:.0f}/s")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
