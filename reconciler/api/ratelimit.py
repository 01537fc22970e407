"""Client-side rate limiter: an async token bucket shared by every concurrent call (GCRA form).

Pure logic; the clock and the sleep are injected, so tests run on a fake clock in microseconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def default_burst(rate: float) -> int:
    """A small burst (a tenth of a second of traffic, at least 1) so the sustained rate holds."""
    return max(1, int(rate / 10))


class RateLimiter:
    """At most `rate` acquisitions per second over any window, after an initial `burst`.

    Each `acquire` reserves the next free slot at once (no await between reading and writing
    the schedule), so concurrent callers are served in arrival order without an asyncio lock,
    and one limiter can be shared by several clients. A slot reserved by a caller that is then
    cancelled stays spent: that errs on the side of sending less, never more.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.rate = float(rate)
        self.burst = default_burst(rate) if burst is None else burst
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, not {self.burst}")
        self._interval = 1.0 / self.rate
        self._tolerance = (self.burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        # Theoretical arrival time of the next slot; a thread lock because a limiter may be
        # shared by clients running on different threads' event loops.
        self._tat = -float("inf")
        self._lock = threading.Lock()
        self.acquired = 0

    def reserve(self) -> float:
        """Take the next slot; return how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            start = max(self._tat, now)
            self._tat = start + self._interval
            self.acquired += 1
            return max(0.0, start - self._tolerance - now)

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await self._sleep(wait)

    def hold_off(self, seconds: float) -> None:
        """Give no slot for `seconds` from now: the server said the AppKey is throttled.

        Every caller sharing this limiter then waits, instead of each one hammering on alone.
        """
        if seconds <= 0:
            return
        with self._lock:
            self._tat = max(self._tat, self._clock() + seconds + self._tolerance)

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate:g}, burst={self.burst})"
