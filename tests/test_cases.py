"""Golden scenarios: tests/cases/<scenario>/ holds specs, templates, recorded state and `now`;
the expected plan.txt, plan.md and plan.json sit beside them (`pytest --update-goldens`).

A `before/` folder holds the specs as last applied: state.json is derived from it (planned and
"applied" with fixed ids) and kept as a golden too, so the recorded bodies always match what the
loader builds today. `expect.json` states the actions by hand, so a golden can never just agree
with itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from reconciler.plan.planner import Action, Plan, build_plan
from reconciler.settings import Settings
from reconciler.spec.loader import load_desired
from reconciler.state.codec import dump_state
from reconciler.state.model import Event, PlanUpserted, ScheduleCreated, State, apply_event
from reconciler.state.store import StateStore
from reconciler.views.plan import to_json, to_markdown, to_text
from tests.conftest import Golden

CASES_DIR = Path(__file__).parent / "cases"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir() and p.name[0] not in "._")
CASE_LINEAGE = "00000000-0000-4000-8000-0000000ca5e5"


def read_now(folder: Path) -> datetime:
    """The case's pinned clock; a case without one is an error, never skipped."""
    clock = folder / "now.txt"
    assert clock.is_file(), f"{folder.name}: no now.txt (the pinned clock of the case)"
    return datetime.fromisoformat(clock.read_text(encoding="utf-8").strip())


def case_settings(case: Path) -> Settings:
    path = case / "settings.json"
    if not path.exists():
        return Settings()
    return Settings(**json.loads(path.read_text(encoding="utf-8")))


def applied_state(plan: Plan, at: datetime, lineage: str = CASE_LINEAGE) -> State:
    """The state after a perfect apply of `plan`'s creates, with deterministic remote ids."""
    state = State(lineage=lineage)
    for n, change in enumerate(plan.changes, start=1):
        event: Event
        if change.action is not Action.CREATE or change.after is None:
            continue
        if change.kind == "plan":
            event = PlanUpserted(
                plan_id=change.plan_id, description=change.after["plan_description"], at=at
            )
        else:
            event = ScheduleCreated(
                name=change.after["name"],
                plan_id=change.plan_id,
                schedule_id=f"sched-{n:04d}",
                body=change.after,
                digest=change.digest_after or "",
                trigger_kind=next(iter(change.after["trigger"])),
                at=at,
            )
        state = apply_event(state, event)
    return state


def case_state(case: Path, settings: Settings, golden: Golden) -> tuple[State, Path]:
    path = case / "state.json"
    before = case / "before"
    if before.is_dir():
        at = read_now(before)
        plan = build_plan(load_desired(before, settings, at), State.new(), at, settings)
        golden(path, dump_state(applied_state(plan, at)).decode("utf-8"))
    return StateStore(path).load(), path


def case_plan(case: Path, golden: Golden) -> Plan:
    settings = case_settings(case)
    now = read_now(case)
    state, _ = case_state(case, settings, golden)
    return build_plan(load_desired(case, settings, now), state, now, settings)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_scenario(case: Path, golden: Golden) -> None:
    plan = case_plan(case, golden)
    expect = json.loads((case / "expect.json").read_text(encoding="utf-8"))
    acted = {c.address: c.action.value for c in plan.changes}
    assert acted == expect["actions"]
    for address, paths in expect.get("diff_paths", {}).items():
        assert [
            d.path for d in next(c for c in plan.changes if c.address == address).diffs
        ] == paths
    assert [b.address for b in plan.blockers] == expect.get("blockers", [])
    assert plan.unsafe is expect.get("unsafe", False)
    assert len(plan.warnings) == expect.get("warnings", 0)
    golden(case / "plan.txt", to_text(plan))
    golden(case / "plan.md", to_markdown(plan))
    golden(case / "plan.json", to_json(plan))


def test_every_scenario_the_issue_names_is_present() -> None:
    names = {c.name for c in CASES}
    assert {
        "fresh_create",
        "no_change",
        "language_edited",
        "backup_time_moved",
        "trigger_kind_changed",
        "schedule_removed",
        "plan_removed",
        "sent_edited",
        "rename",
        "quota_exceeded",
        "mass_deletion",
    } <= names
