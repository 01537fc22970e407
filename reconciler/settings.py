"""Per-environment settings the pure core needs (quotas, site time zone, thresholds). Pure value.

Environments from a config file come later; with no config, these defaults make the bundled
examples work with no account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal
from zoneinfo import ZoneInfo

from reconciler.engagelab import PLAN_QUOTA, SCHEDULE_QUOTA_DEFAULT

# Send-time and copy checks (reconciler.checks), by stable id; a spec's `checks:` and the
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


@dataclass(frozen=True, slots=True)
class Settings:
    schedule_quota: int = SCHEDULE_QUOTA_DEFAULT
    plan_quota: int = PLAN_QUOTA
    site_time_zone: str = "UTC"  # [ours] the console's zone is unknown until configured
    delete_threshold_count: int = 10  # more deletes than this make a plan unsafe
    delete_threshold_ratio: float = 0.30  # ... or more than this share of recorded schedules
    # Send-time checks (issue 7). Local wall-clock quiet hours, "HH:MM", may wrap midnight.
    quiet_hours_start: str = "21:00"
    quiet_hours_end: str = "08:00"
    min_gap_minutes: int = 60  # two pushes to overlapping audiences closer than this: fatigue
    # check name -> "warning" | "error" | "off"; a check not listed is a warning.
    check_levels: tuple[tuple[str, str], ...] = ()

    def check_level(self, check: str) -> str:
        """The environment's level for `check`: "warning" unless check_levels says otherwise."""
        return dict(self.check_levels).get(check, "warning")

    @property
    def site_zone(self) -> ZoneInfo:
        return ZoneInfo(self.site_time_zone)
