"""The remote-name bookkeeping of one apply: listing, lookup by name, owner markers. Not pure: I/O.

Schedule creation has no idempotency key, so every decision that could send a push twice (create,
resume, adopt, verify) asks this one object what is live under a name. It lists every page until
two passes agree (offset pages shift under concurrent deletes) and remembers the ids this run
deleted, which a listing taken earlier still shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.api.client import EngageLabClient
from reconciler.errors import ReconcileError
from reconciler.remote.drift import body_of, unreadable
from reconciler.state.model import ScheduleRecord

LISTING_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Listing:
    """Every live schedule by name, as one read saw it."""

    by_name: Mapping[str, tuple[Mapping[str, Any], ...]]
    ids: frozenset[str]
    by_id: Mapping[str, Mapping[str, Any]]
    agreed: bool  # two passes gave the same ids
    taken_at: datetime  # when the read began: only writes before this can show in it
    nameless: tuple[Mapping[str, Any], ...] = ()  # live, but the answer gives no name


@dataclass
class RemoteNames:
    client: EngageLabClient
    clock: Callable[[], datetime]
    listing: Listing | None = None
    gone: set[str] = field(default_factory=set)  # remote ids this run deleted
    problem: str = "the remote schedules were not listed"

    async def load(self, *, passes: int = 2) -> Listing:
        """List every page; with `passes` 2, until two passes agree. ApiError propagates."""
        previous: frozenset[str] | None = None
        for _ in range(LISTING_ATTEMPTS):
            taken_at = self.clock()
            items = await self.client.list_schedules()
            by_id = {str(s.get("schedule_id")): s for s in items}
            ids = frozenset(by_id)
            if passes < 2 or ids == previous:
                by_name: dict[str, list[Mapping[str, Any]]] = {}
                nameless = []
                for item in items:
                    name = item.get("name")
                    if isinstance(name, str) and name:
                        by_name.setdefault(name, []).append(item)
                    else:
                        nameless.append(item)
                listing = Listing(
                    by_name={k: tuple(v) for k, v in by_name.items()},
                    ids=ids,
                    by_id=by_id,
                    agreed=passes >= 2,
                    taken_at=taken_at,
                    nameless=tuple(nameless),
                )
                if self.listing is None or passes >= 2:
                    self.listing = listing
                return listing
            previous = ids
        raise ReconcileError(
            "the remote schedule list kept changing while it was read (another tool is "
            "writing to this AppKey); nothing was sent. Apply again when it is quiet"
        )

    def unknown_copies(
        self, name: str, record: ScheduleRecord | None, listing: Listing | None = None
    ) -> list[Mapping[str, Any]] | None:
        """Live copies named `name` that `record` does not account for; None: no listing."""
        listing = listing or self.listing
        if listing is None:
            return None
        known = set(self.gone)
        if record is not None:
            known |= {record.schedule_id or "", *record.superseded}
        return [s for s in listing.by_name.get(name, ()) if str(s.get("schedule_id")) not in known]

    def listed_unreadable(self, schedule_id: str) -> bool:
        """EngageLab lists `schedule_id`, but its answer for it is no body we can read."""
        item = None if self.listing is None else self.listing.by_id.get(schedule_id)
        return item is not None and unreadable(item) is not None

    def live_body(
        self, schedule_id: str, like: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The body EngageLab lists for `schedule_id`, without the owner marker, compared as
        `like` (drift.body_of); None when the listing did not show it, or shows no body."""
        if self.listing is None:
            return None
        item = self.listing.by_id.get(schedule_id)
        if item is None or unreadable(item) is not None:
            return None
        return body_of(item, like)
