"""The one home of resource addresses: "plan.<plan_id>" and "schedule.<name>". Pure.

Plans, diffs, saved plans, the state, drift and `--target` all name a resource by its address.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["plan", "schedule"]


def plan_address(plan_id: str) -> str:
    return f"plan.{plan_id}"


def schedule_address(name: str) -> str:
    return f"schedule.{name}"


def split_address(address: str) -> tuple[str, str]:
    """("plan" | "schedule", the id or name); a name may itself hold dots."""
    kind, _, name = address.partition(".")
    return kind, name
