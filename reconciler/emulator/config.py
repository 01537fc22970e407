"""Value types of the emulator: configuration (credentials, quotas, clock, faults), call records.

`FaultConfig.from_mapping` reads the JSON form posted to /_emulator/faults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.engagelab import PLAN_QUOTA, SCHEDULE_QUOTA_DEFAULT

# 408, 409 and 499 answer like a proxy would (text body, no API code); "late" answers 504 at once
# and commits the write `seconds` later, after the client has given up on it.
FAULT_KINDS = (
    "429",
    "23008",
    "408",
    "409",
    "499",
    "502",
    "503",
    "504",
    "5xx",
    "slow",
    "lost",
    "late",
)
GATEWAY_KINDS = ("408", "409", "499")  # answered with a text body and no API code

# Answer variants (issue #13): other shapes the evidence says EngageLab may answer. Each only
# changes what the emulator RETURNS, never what it stores. Empty = the documented shapes.
ANSWER_VARIANTS = (
    "upper-enums",  # [sdk] time_unit/point upper-case, as the SDKs send them
    "added-defaults",  # [ours] engagelab.SERVER_DEFAULTS filled in where the stored body lacks them
    "json-strings",  # [sdk] Java list item trigger/push typed Object, "non-standard format"
    "summary-list",  # [v3] list items {schedule_id, name, enabled} only; GET by id is full
    "not-found-400",  # [v3] a missing id answers 400/8100 "schedule request is not exist"
    "platform-string",  # [doc/sdk] a one-item platform list answered as a single string
)
ANSWERS_ALL = "sdk"  # every variant at once


def parse_answers(value: str | Iterable[str]) -> frozenset[str]:
    """A variant set from "sdk", a comma list, or names; ValueError on an unknown name."""
    names = value.split(",") if isinstance(value, str) else list(value)
    chosen: set[str] = set()
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name == ANSWERS_ALL:
            chosen.update(ANSWER_VARIANTS)
        elif name in ANSWER_VARIANTS:
            chosen.add(name)
        else:
            raise ValueError(
                f"unknown answer variant {name!r}; expected {ANSWERS_ALL!r} or {ANSWER_VARIANTS}"
            )
    return frozenset(chosen)


@dataclass(frozen=True, slots=True)
class ScriptedFault:
    """A one-shot fault for the next request whose method matches and path starts with `path`."""

    method: str
    path: str
    kind: str
    seconds: float = 0.5  # only for kinds "slow" (answer delay) and "late" (commit delay)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")

    def matches(self, method: str, path: str) -> bool:
        return self.method.upper() == method and path.startswith(self.path)


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Seeded random fault rates (each a probability per API request) plus a scripted queue."""

    rate_429: float = 0.0
    rate_23008: float = 0.0  # HTTP 400 with code 23008
    rate_5xx: float = 0.0  # 502, 503 or 504
    rate_slow: float = 0.0
    slow_seconds: float = 0.5
    rate_lost: float = 0.0  # mutations only: the write is applied, then the connection drops
    script: tuple[ScriptedFault, ...] = ()

    def __post_init__(self) -> None:
        rates = (self.rate_429, self.rate_23008, self.rate_5xx, self.rate_slow, self.rate_lost)
        if any(r < 0 for r in rates) or sum(rates) > 1:
            raise ValueError("fault rates must be >= 0 and add up to at most 1")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> FaultConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        values = dict(raw)
        values["script"] = tuple(
            item if isinstance(item, ScriptedFault) else ScriptedFault(**item)
            for item in raw.get("script", ())
        )
        return cls(**values)


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    app_key: str
    master_secret: str
    schedule_quota: int = SCHEDULE_QUOTA_DEFAULT
    plan_quota: int = PLAN_QUOTA
    rate_limit: float | None = None  # requests/s, server-side token bucket; None = unlimited
    seed: int = 0
    now: datetime | None = None  # pinned clock (aware); None = the real clock
    data_file: Path | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    answers: frozenset[str] = frozenset()  # ANSWER_VARIANTS in use; empty = documented shapes

    def __post_init__(self) -> None:
        unknown = set(self.answers) - set(ANSWER_VARIANTS)
        if unknown:
            raise ValueError(f"unknown answer variants {sorted(unknown)}; see ANSWER_VARIANTS")


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One API request as the emulator saw it. `status` 0 means no response was sent."""

    method: str
    path: str
    query: str
    status: int
    # ok, error, unauthorized, ratelimited, crash, fault:<kind> (one of FAULT_KINDS but "5xx").
    # "fault:late" is logged when answered, write_applied False until the write really lands.
    outcome: str
    write_applied: bool
    code: int | None = None
