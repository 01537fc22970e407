"""Per-environment settings the pure core needs (quotas, site time zone, thresholds). Pure value.

reconciler.config.toml reads them from reconcile.toml; with no config, these defaults make the
bundled examples work with no account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal
from zoneinfo import ZoneInfo

from reconciler.engagelab import (
    CREATE_SETTLE_SECONDS,
    IMMEDIATE_PLAN_MINUTES,
    MAX_CLOCK_SKEW_SECONDS,
    PLAN_QUOTA,
    SCHEDULE_QUOTA_DEFAULT,
    SMART_WINDOW,
)

# Send-time and copy checks (reconciler.checks.findings), by stable id; a spec's `checks:` and the
# environment's check_levels set each one to a level.
CHECK_IDS: Final = (
    "backup_passed",
    "quiet_hours",
    "min_gap",
    "placeholder_copy",
    "empty_title",
    "copy_length",
)
CheckLevel = Literal["warning", "error", "off"]
CHECK_LEVELS: Final = ("warning", "error", "off")
# When a Smart Push may reach users with activity history (see engagelab.SMART_WINDOW [ours]).
SMART_WINDOWS: Final = ("local_day", "backup_time")


@dataclass(frozen=True, slots=True)
class Settings:
    schedule_quota: int = SCHEDULE_QUOTA_DEFAULT
    plan_quota: int = PLAN_QUOTA
    site_time_zone: str = "UTC"  # [ours] the console's zone is unknown until configured
    delete_threshold_count: int = 10  # more deletes than this make a plan unsafe
    delete_threshold_ratio: float = 0.30  # ... or more than this share of recorded schedules
    # Send-time checks. Local wall-clock quiet hours, "HH:MM", may wrap midnight.
    quiet_hours_start: str = "21:00"
    quiet_hours_end: str = "08:00"
    min_gap_minutes: int = 60  # two pushes to overlapping audiences closer than this: fatigue
    # check name -> "warning" | "error" | "off"; a check not listed is a warning.
    check_levels: tuple[tuple[str, str], ...] = ()
    # Apply-time safety (docs/state.md): how long a write whose outcome is unknown may still land,
    # how far the API's clock may be from ours, how long a saved plan with a "now" create lives.
    create_settle_seconds: float = CREATE_SETTLE_SECONDS
    max_clock_skew_seconds: float = MAX_CLOCK_SKEW_SECONDS
    immediate_plan_minutes: int = IMMEDIATE_PLAN_MINUTES
    smart_window: str = SMART_WINDOW
    environment: str = ""  # the reconcile.toml environment ("" with no config)

    def check_level(self, check: str) -> str:
        """The environment's level for `check`: "warning" unless check_levels says otherwise."""
        return dict(self.check_levels).get(check, "warning")

    @property
    def site_zone(self) -> ZoneInfo:
        return ZoneInfo(self.site_time_zone)

    @property
    def smart_day(self) -> bool:
        """Whether the whole local day of a backup_time counts as possibly sending."""
        return self.smart_window == "local_day"
