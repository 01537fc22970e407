"""Backoff policy for API retries: full jitter, server hints honoured, attempts and time capped.

Pure: the random draw, the clock readings and the wall time are passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    max_attempts: int = 6
    max_total_seconds: float = 60.0
    base: float = 0.5
    cap: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.max_total_seconds < 0 or self.base < 0 or self.cap < 0:
            raise ValueError("backoff times must not be negative")

    def jitter(self, retry_index: int, draw: float) -> float:
        """Full jitter: a uniform draw in [0, min(cap, base * 2**retry_index)).

        `retry_index` is 0 before the first retry. Full jitter spreads concurrent callers that
        failed together, so they do not come back together (AWS architecture blog, 2015).
        """
        ceiling = min(self.cap, self.base * math.pow(2, min(retry_index, 62)))
        return draw * ceiling

    def next_delay(
        self, *, attempts: int, elapsed: float, draw: float, hint: float | None
    ) -> float | None:
        """Seconds to sleep before attempt `attempts + 1`, or None to stop retrying.

        `attempts` made so far, `elapsed` seconds since the first one started, `hint` what the
        server asked for (Retry-After / X-Rate-Limit-Reset), never undercut.
        """
        if attempts >= self.max_attempts:
            return None
        delay = self.jitter(attempts - 1, draw)
        if hint is not None:
            delay = max(delay, hint)
        if elapsed + delay > self.max_total_seconds:
            return None
        return delay


def server_hint(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """The wait the server asked for, in seconds, from Retry-After or X-Rate-Limit-Reset.

    Retry-After is delta-seconds or an HTTP date (RFC 9110). X-Rate-Limit-Reset is read as
    seconds until the quota resets, as JPush v3 sent it [v3]. The larger wins; junk is ignored.
    Header lookup is case-insensitive only if `headers` is (httpx.Headers is).
    """
    found: list[float] = []
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        found.extend(_parse_retry_after(retry_after, now or datetime.now(UTC)))
    reset = headers.get("x-rate-limit-reset")
    remaining = headers.get("x-rate-limit-remaining")
    # [v3] Reset is when the quota refills: a wait only once Remaining says it is used up (JPush
    # v3 sends all three headers on every answer, also a 503 with quota left).
    spent = remaining is None or _parse_seconds(remaining) == [0.0]
    if reset is not None and spent:
        found.extend(_parse_seconds(reset))
    return max(found) if found else None


def _parse_seconds(text: str) -> list[float]:
    try:
        value = float(text.strip())
    except ValueError:
        return []
    if not math.isfinite(value):
        return []
    return [max(0.0, value)]


def _parse_retry_after(text: str, now: datetime) -> list[float]:
    seconds = _parse_seconds(text)
    if seconds:
        return seconds
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return []
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return [max(0.0, (when - now).total_seconds())]
