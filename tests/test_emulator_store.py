"""The emulator's domain store without HTTP: ids, the default quota, console edits, snapshots."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reconciler import engagelab as api
from reconciler.emulator.persist import restore, snapshot
from reconciler.emulator.store import Store
from reconciler.emulator.validate import ApiError
from tests.support.emulator import EMULATOR_NOW, sample_schedule


def _store(seed: int = 0, quota: int = api.SCHEDULE_QUOTA_DEFAULT) -> Store:
    return Store(plan_quota=api.PLAN_QUOTA, schedule_quota=quota, seed=seed)


def test_ids_are_deterministic_per_seed_and_distinct() -> None:
    def ids(seed: int) -> list[str]:
        store = _store(seed)
        return [
            store.create_schedule(sample_schedule(f"s{i}"), EMULATOR_NOW)["schedule_id"]
            for i in range(3)
        ]

    assert ids(1) == ids(1)
    assert ids(1) != ids(2)
    assert len(set(ids(1))) == 3


def test_default_schedule_quota_is_1000() -> None:
    store = _store()
    for i in range(api.SCHEDULE_QUOTA_DEFAULT):
        store.create_schedule(sample_schedule(f"s{i}"), EMULATOR_NOW)
    with pytest.raises(ApiError) as refused:
        store.create_schedule(sample_schedule("one_more"), EMULATOR_NOW)
    assert refused.value.code == api.CODE_QUOTA


def test_console_edit_of_trigger_moves_expiry() -> None:
    store = _store()
    sid = store.create_schedule(sample_schedule(), EMULATOR_NOW)["schedule_id"]
    store.edit(sid, {"trigger": {"single": {"time": "2025-11-21 12:00:00"}}}, EMULATOR_NOW)
    assert store.names(EMULATOR_NOW + timedelta(hours=23)) == {"promo_01": 1}
    assert store.names(EMULATOR_NOW + timedelta(days=1)) == {}
    with pytest.raises(KeyError):
        store.edit(sid, {"colour": "red"}, EMULATOR_NOW)


def test_snapshot_round_trips() -> None:
    store = _store(seed=3)
    store.upsert_plan({"plan_id": "promo", "plan_description": "d"}, EMULATOR_NOW)
    store.create_schedule(sample_schedule(), EMULATOR_NOW)
    copy = _store(seed=3)
    restore(copy, snapshot(store))
    assert snapshot(copy) == snapshot(store)
    with pytest.raises(ValueError, match="format"):
        restore(copy, {**snapshot(store), "format_version": 99})
