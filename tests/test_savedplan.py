"""Saved plans: byte-exact round trip, refusal of non-plans, and the stale/expired checks."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.errors import ExpiredPlanError, StalePlanError
from reconciler.plan.planner import Plan, build_plan
from reconciler.plan.saved import PlanFileError, check_fresh, load_plan, save_plan
from reconciler.state.model import State
from reconciler.views.plan import to_json
from tests.support.plans import NOW, desired, sched, state


def made() -> tuple[Plan, State, str]:
    st = state(serial=41)
    d = desired([sched("a")])
    return build_plan(d, st, NOW), st, d.inputs_digest


def test_saved_plan_round_trips_byte_for_byte(tmp_path: Path) -> None:
    plan, _, _ = made()
    path = tmp_path / "out" / "plan.json"
    save_plan(plan, path)
    assert path.read_text(encoding="utf-8") == to_json(plan)
    assert load_plan(path) == plan
    assert [p.name for p in path.parent.iterdir()] == ["plan.json"]  # no temp file left


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"lineage": "x", "serial": 3}', "no format_version"),
        ("[1, 2]", "no format_version"),
        ('{"format_version": 2}', "format_version 2"),
        ('{"format_version": 1, "changes": []}', "not a valid reconcile plan"),
    ],
)
def test_load_refuses_what_is_not_a_plan(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PlanFileError, match=message):
        load_plan(path)


def test_load_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="no such plan file"):
        load_plan(tmp_path / "nope.json")


def test_a_state_file_is_not_taken_for_a_plan(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state().model_dump(mode="json")), encoding="utf-8")
    with pytest.raises(PlanFileError, match="not a reconcile plan"):
        load_plan(path)


def test_fresh_plan_passes() -> None:
    plan, st, inputs = made()
    check_fresh(plan, st, inputs, NOW + timedelta(hours=1))


def test_state_serial_moved_is_stale_and_says_from_what_to_what() -> None:
    plan, st, inputs = made()
    with pytest.raises(StalePlanError, match="from serial 41 to 42"):
        check_fresh(plan, st.model_copy(update={"serial": 42}), inputs, NOW)


def test_replaced_state_is_stale() -> None:
    plan, st, inputs = made()
    with pytest.raises(StalePlanError, match="state was replaced"):
        check_fresh(plan, st.model_copy(update={"lineage": "other"}), inputs, NOW)


def test_changed_specs_are_stale_together_with_the_state() -> None:
    plan, st, _ = made()
    with pytest.raises(StalePlanError, match=r"serial 41 to 40.*specs or templates changed"):
        check_fresh(plan, st.model_copy(update={"serial": 40}), "sha256:other", NOW)


def test_expired_at_three_minutes_before_the_first_send() -> None:
    plan, st, inputs = made()
    assert plan.expires_at is not None
    check_fresh(plan, st, inputs, plan.expires_at - timedelta(seconds=1))
    with pytest.raises(ExpiredPlanError, match="expired on 2025-12-27 09:57 UTC"):
        check_fresh(plan, st, inputs, plan.expires_at)


def test_a_plan_made_before_any_state_checks_only_that_none_appeared() -> None:
    d = desired([sched("a")])
    plan = build_plan(d, State.new(), NOW)
    assert plan.state_lineage == ""
    check_fresh(plan, State.new(), d.inputs_digest, NOW)  # a new load mints a new lineage
    with pytest.raises(StalePlanError, match="from serial 0 to 1"):
        check_fresh(plan, State.new().model_copy(update={"serial": 1}), d.inputs_digest, NOW)
