"""The token bucket on a fake clock (exact), plus one short real-time accuracy check."""

from __future__ import annotations

import asyncio
import bisect
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.api.ratelimit import RateLimiter, default_burst


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def _acquire_times(limiter: RateLimiter, fake: FakeTime, n: int) -> list[float]:
    times = []
    for _ in range(n):
        await limiter.acquire()
        times.append(fake.now)
    return times


def test_sustained_rate_is_exact_after_the_burst() -> None:
    fake = FakeTime()
    limiter = RateLimiter(100, burst=5, clock=fake, sleep=fake.sleep)
    times = asyncio.run(_acquire_times(limiter, fake, 1005))
    assert times[:5] == [0.0] * 5  # the burst goes at once
    # 1000 more at 10 ms each
    assert times[-1] == pytest.approx(10.0)
    assert limiter.acquired == 1005


def test_no_window_exceeds_burst_plus_rate() -> None:
    fake = FakeTime()
    limiter = RateLimiter(200, clock=fake, sleep=fake.sleep)
    times = asyncio.run(_acquire_times(limiter, fake, 2000))
    burst = default_burst(200)
    for i, start in enumerate(times):
        in_window = bisect.bisect_left(times, start + 1.0) - i
        assert in_window <= burst + 200


def test_concurrent_callers_share_one_budget() -> None:
    fake = FakeTime()
    limiter = RateLimiter(50, burst=1, clock=fake, sleep=fake.sleep)
    waits: list[float] = []

    async def main() -> None:
        # The fake clock does not advance between reservations: each one waits one slot more.
        for _ in range(10):
            waits.append(limiter.reserve())

    asyncio.run(main())
    assert waits == pytest.approx([i / 50 for i in range(10)])


def test_idle_time_refills_at_most_the_burst() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10, burst=3, clock=fake, sleep=fake.sleep)
    asyncio.run(_acquire_times(limiter, fake, 3))
    fake.now += 100.0  # a long idle spell
    waits = [limiter.reserve() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.1)


def test_hold_off_pauses_every_caller() -> None:
    fake = FakeTime()
    limiter = RateLimiter(100, burst=10, clock=fake, sleep=fake.sleep)
    limiter.hold_off(2.0)
    assert limiter.reserve() == pytest.approx(2.0)
    assert limiter.reserve() == pytest.approx(2.01)
    limiter.hold_off(0.0)  # no-op
    assert limiter.reserve() == pytest.approx(2.02)


def test_default_burst_is_small() -> None:
    assert default_burst(500) == 50
    assert default_burst(5) == 1
    assert default_burst(0.5) == 1


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (10, 0)])
def test_bad_arguments(rate: float, burst: int | None) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst=burst)


def test_repr() -> None:
    assert repr(RateLimiter(200)) == "RateLimiter(rate=200, burst=20)"


def test_real_clock_holds_the_rate() -> None:
    rate, n = 400.0, 240
    limiter = RateLimiter(rate, burst=1)

    async def main() -> float:
        start = time.monotonic()
        await asyncio.gather(*(limiter.acquire() for _ in range(n)))
        return time.monotonic() - start

    elapsed = asyncio.run(main())
    achieved = (n - 1) / elapsed
    assert achieved <= rate * 1.01  # never above: slots come from the schedule, not wake-ups
    assert achieved >= rate * 0.85  # and not far below, even on a busy machine


@settings(max_examples=150, deadline=None)
@given(
    rate=st.sampled_from([10.0, 50.0, 200.0]),
    burst=st.integers(min_value=1, max_value=10),
    events=st.lists(
        st.tuples(st.floats(min_value=0, max_value=0.5), st.integers(min_value=0, max_value=30)),
        max_size=40,
    ),
)
def test_no_one_second_window_ever_exceeds_burst_plus_rate(
    rate: float, burst: int, events: list[tuple[float, int]]
) -> None:
    fake = FakeTime()
    limiter = RateLimiter(rate, burst=burst, clock=fake, sleep=fake.sleep)
    used: list[float] = []
    for advance, callers in events:
        fake.now += advance
        used.extend(fake.now + limiter.reserve() for _ in range(callers))
    used.sort()
    for i, start in enumerate(used):
        in_window = bisect.bisect_left(used, start + 1.0 - 1e-9) - i
        assert in_window <= burst + rate
