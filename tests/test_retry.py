"""The backoff policy and the server-hint parser: pure functions, exact numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.api.retry import BackoffPolicy, server_hint


def test_full_jitter_doubles_up_to_the_cap() -> None:
    policy = BackoffPolicy(base=0.5, cap=3.0)
    assert [policy.jitter(i, 1.0) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.jitter(3, 0.5) == 1.5
    assert policy.jitter(0, 0.0) == 0.0
    assert policy.jitter(10_000, 1.0) == 3.0  # no overflow


def test_next_delay_stops_at_max_attempts() -> None:
    policy = BackoffPolicy(max_attempts=3, base=1.0, cap=100.0)
    assert policy.next_delay(attempts=1, elapsed=0.0, draw=1.0, hint=None) == 1.0
    assert policy.next_delay(attempts=2, elapsed=1.0, draw=1.0, hint=None) == 2.0
    assert policy.next_delay(attempts=3, elapsed=3.0, draw=1.0, hint=None) is None


def test_next_delay_stops_before_passing_the_time_budget() -> None:
    policy = BackoffPolicy(max_attempts=100, max_total_seconds=5.0, base=1.0, cap=100.0)
    assert policy.next_delay(attempts=2, elapsed=2.9, draw=1.0, hint=None) == 2.0
    assert policy.next_delay(attempts=2, elapsed=3.1, draw=1.0, hint=None) is None


def test_server_hint_is_a_floor_never_undercut() -> None:
    policy = BackoffPolicy(base=0.5, cap=10.0, max_total_seconds=60.0)
    assert policy.next_delay(attempts=1, elapsed=0.0, draw=0.0, hint=4.0) == 4.0
    assert policy.next_delay(attempts=5, elapsed=0.0, draw=1.0, hint=1.0) == 8.0
    assert policy.next_delay(attempts=1, elapsed=0.0, draw=0.0, hint=61.0) is None


def test_policy_validates() -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        BackoffPolicy(base=-1)


NOW = datetime(2025, 11, 20, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "Thu, 20 Nov 2025 12:00:07 GMT"}, 7.0),
        ({"retry-after": "Thu, 20 Nov 2025 11:00:00 GMT"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"x-rate-limit-reset": "2"}, 2.0),
        ({"retry-after": "1", "x-rate-limit-reset": "5"}, 5.0),
        ({"retry-after": "9", "x-rate-limit-reset": "junk"}, 9.0),
        # JPush v3 sends the three quota headers on every answer: Reset is a wait only once
        # Remaining is 0 (a 503 with quota left must not wait for the quota window).
        ({"x-rate-limit-reset": "40", "x-rate-limit-remaining": "499"}, None),
        ({"x-rate-limit-reset": "40", "x-rate-limit-remaining": "0"}, 40.0),
        ({"retry-after": "1", "x-rate-limit-reset": "40", "x-rate-limit-remaining": "7"}, 1.0),
    ],
)
def test_server_hint(headers: dict[str, str], expected: float | None) -> None:
    assert server_hint(headers, now=NOW) == expected
