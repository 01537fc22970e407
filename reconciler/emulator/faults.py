"""Fault injection (seeded random rates plus a scripted one-shot queue) and the server rate limit.

Stateful but free of HTTP: the server asks `draw()` once per API request and acts on the answer.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass

from reconciler.emulator.config import FaultConfig


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str  # one of config.FAULT_KINDS but "5xx"
    seconds: float = 0.0


class FaultInjector:
    def __init__(self, config: FaultConfig, seed: int) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        """Replace the rates and the script; the random sequence restarts from the seed."""
        with self._lock:
            self._config = config
            self._script = list(config.script)
            self._rng = random.Random(self._seed)

    def draw(self, method: str, path: str, mutation: bool) -> Fault | None:
        with self._lock:
            for index, scripted in enumerate(self._script):
                if scripted.matches(method, path) and (scripted.kind != "lost" or mutation):
                    del self._script[index]
                    return self._resolve(scripted.kind, scripted.seconds)
            config = self._config
            point = self._rng.random()
            for kind, rate in (
                ("429", config.rate_429),
                ("23008", config.rate_23008),
                ("5xx", config.rate_5xx),
                ("slow", config.rate_slow),
                ("lost", config.rate_lost),
            ):
                if point < rate:
                    if kind == "lost" and not mutation:
                        return None  # a lost response only means something after a write
                    return self._resolve(kind, config.slow_seconds)
                point -= rate
            return None

    def _resolve(self, kind: str, seconds: float) -> Fault:
        if kind == "5xx":
            kind = self._rng.choice(("502", "503", "504"))
        return Fault(kind, seconds if kind in ("slow", "late") else 0.0)


class TokenBucket:
    """`rate` requests per second with a burst of one second's worth."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0.0 when the request may pass, else the seconds until a token is free."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self._rate


class RateWindow:
    """The JP3 rate-limit headers: a fixed one-second window of `quota` requests.

    [v3] "All HTTP API response headers carry X-Rate-Limit-Quota (calls per time window for the
    AppKey), X-Rate-Limit-Remaining (calls left in the window), X-Rate-Limit-Reset (seconds until
    the window resets)" (JPush REST API overview, "频率限制"). EngageLab v4 documents none; its
    quota is 500 requests/s per AppKey [doc: create-push-api "Request Rate Limits"]. [ours] the
    window is one second and Reset is whole seconds, rounded down (so 0 within a window; an
    answer over the limit sets it to its Retry-After instead).
    """

    def __init__(self, quota: int) -> None:
        self.quota = quota
        self._start = time.monotonic()
        self._count = 0
        self._lock = threading.Lock()

    def count(self) -> dict[str, str]:
        """Count one answer; the headers it carries."""
        with self._lock:
            now = time.monotonic()
            if now - self._start >= 1.0:
                self._start, self._count = now, 0
            self._count += 1
            remaining = max(0, self.quota - self._count)
            reset = max(0, math.floor(self._start + 1.0 - now))
        return {
            "X-Rate-Limit-Quota": str(self.quota),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": str(reset),
        }
