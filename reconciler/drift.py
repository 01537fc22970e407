"""Drift: differences between the recorded state and what EngageLab holds now. Pure values.

Computed by comparing a fresh read of the remote (plans, every schedule page) with the state;
shown as its own section in every plan view. The expected life of a task is not drift: a
one-off task that fired and expired is reported as sent, not as deleted.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler.diff import FieldDiff


class DriftKind(StrEnum):
    EDITED = "edited remotely"
    DELETED = "deleted remotely"
    CREATED = "created remotely"  # a live remote schedule whose name the specs own, not in state
    SENT = "sent and expired"  # not drift: the expected end of a one-off task


class DriftItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    kind: DriftKind
    detail: str
    schedule_id: str | None = None
    remote: dict[str, Any] | None = None  # the remote body, for refresh to adopt
    diffs: tuple[FieldDiff, ...] = ()

    @property
    def is_drift(self) -> bool:
        return self.kind is not DriftKind.SENT
