"""The desired state: what the specs say EngageLab should hold, as exact API bodies. Pure values.

Built by reconciler.spec.loader from specs and templates; read by the planner, `render`, and the
send-time checks. Bodies are plain JSON-compatible mappings and must never be mutated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.addresses import plan_address, schedule_address
from reconciler.errors import Problem
from reconciler.schedule_body import TriggerKind


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a resource was declared, for messages: `file:line:col` (1-based)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class DesiredPlan:
    plan_id: str
    description: str
    source: SourceRef

    @property
    def address(self) -> str:
        return plan_address(self.plan_id)

    def body(self) -> dict[str, str]:
        """The exact `POST /v4/push_plan` body."""
        return {"plan_id": self.plan_id, "plan_description": self.description}


@dataclass(frozen=True, slots=True)
class DesiredSchedule:
    name: str
    plan_id: str
    body: Mapping[str, Any]  # the exact POST /v4/schedules body: name, enabled, trigger, push
    digest: str  # reconciler.canonical.digest(body)
    trigger_kind: TriggerKind
    copy: Mapping[str, Mapping[str, str]]  # language -> field ("title", "alert", ...) -> text
    default_language: str
    template: str
    source: SourceRef

    @property
    def address(self) -> str:
        return schedule_address(self.name)

    @property
    def trigger(self) -> Mapping[str, Any]:
        trigger: Mapping[str, Any] = self.body["trigger"]
        return trigger


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Every plan and schedule the specs declare, keyed and sorted by id/name."""

    plans: Mapping[str, DesiredPlan]
    schedules: Mapping[str, DesiredSchedule]
    inputs_digest: str  # digest over every spec and template file read; a moved input = stale plan
    warnings: tuple[Problem, ...] = field(default=())
    # Per campaign (plan id): send-time check id -> "warning" | "error" | "off", from `checks:`.
    check_levels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
