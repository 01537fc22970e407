"""EngageLab's API: the client (the only httpx user), retries, rate limit, the reads."""
