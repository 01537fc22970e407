"""The state store: snapshot + journal round trips, serials, backups, and the file format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import StateError
from reconciler.state.model import (
    Event,
    Intent,
    IntentRecorded,
    PlanUpserted,
    ScheduleCreated,
    ScheduleForgotten,
    State,
    apply_event,
)
from reconciler.state.store import StateStore

AT = datetime(2025, 12, 1, 9, tzinfo=UTC)


def created(name: str, n: int = 0) -> ScheduleCreated:
    return ScheduleCreated(
        name=name,
        plan_id="p",
        schedule_id=f"id-{name}-{n}",
        body={"name": name, "z": n, "a": {"y": "é", "b": [1, 2]}},
        digest="sha256:x",
        trigger_kind="intelligent",
        at=AT,
    )


def replay(state: State, events: list[Event]) -> State:
    for event in events:
        state = apply_event(state, event)
    return state


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "default.json"


def test_a_missing_state_is_new_and_nothing_is_written(path: Path) -> None:
    store = StateStore(path)
    state = store.load()
    assert state.serial == 0
    assert not state.schedules
    assert not store.exists()
    assert not path.parent.exists()
    assert StateStore(path).load().lineage != state.lineage  # a fresh lineage each time


def test_appended_events_survive_a_reload_and_raise_the_serial(path: Path) -> None:
    store = StateStore(path)
    events: list[Event] = [PlanUpserted(plan_id="p", description="d", at=AT), created("a")]
    with store.lock("test"):
        state = store.load()
        after = store.append(state, events)
        after = store.append(after, [created("b")])
    assert after.serial == 3
    assert after == replay(state, [*events, created("b")])
    again = StateStore(path).load()
    assert again == after
    assert again.lineage == state.lineage  # fixed by the first write, never changed
    lines = store.journal_path.read_text().splitlines()
    assert [json.loads(line)["serial"] for line in lines] == [1, 2, 3]
    assert json.loads(path.read_text())["serial"] == 0  # the snapshot waits for compaction


def test_write_compacts_into_a_sorted_indented_snapshot(path: Path) -> None:
    store = StateStore(path)
    with store.lock("test"):
        state = store.append(store.load(), [created("b"), created("a")])
        store.write(state)
    assert not store.journal_path.exists()
    raw = path.read_text(encoding="utf-8")
    expected = json.dumps(json.loads(raw), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert raw == expected
    assert '"y": "é"' in raw  # readable in a git diff, not \u-escaped
    assert StateStore(path).load() == state


def test_the_backup_is_the_complete_previous_state(path: Path) -> None:
    store = StateStore(path)
    with store.lock("test"):
        first = store.append(store.load(), [created("a")])
        store.write(first)
        second = store.append(first, [created("b")])  # in the journal only
        third = apply_event(second, ScheduleForgotten(name="a"))
        store.write(third)
    assert StateStore(path.with_name("default.json.backup")).load() == second
    assert StateStore(path).load() == third
    with store.lock("test"):
        store.load()
        store.write(apply_event(third, created("c")))  # journal empty: the backup is a link
    assert StateStore(path.with_name("default.json.backup")).load() == third


def test_write_refuses_a_changed_state_without_a_higher_serial(path: Path) -> None:
    store = StateStore(path)
    with store.lock("test"):
        state = store.append(store.load(), [created("a")])
        store.write(state)  # same state: a compaction
        sneaky = state.model_copy(update={"schedules": {}})
        with pytest.raises(RuntimeError, match="higher serial"):
            store.write(sneaky)
    assert StateStore(path).load() == state


def test_writes_need_the_lock_and_the_current_state(path: Path) -> None:
    store = StateStore(path)
    state = store.load()
    with pytest.raises(RuntimeError, match="lock"):
        store.append(state, [created("a")])
    with pytest.raises(RuntimeError, match="lock"):
        store.write(state)
    with store.lock("test"):
        store.append(state, [created("a")])
        with pytest.raises(RuntimeError, match="last loaded"):
            store.append(state, [created("b")])  # stale: would lose the first event
        with pytest.raises(RuntimeError, match="after load"):
            store.append(State.new(), [created("b")])


def test_a_write_after_another_process_wrote_is_refused(path: Path) -> None:
    mine, theirs = StateStore(path), StateStore(path)
    with mine.lock("test"):
        state = mine.append(mine.load(), [created("a")])
    with theirs.lock("test"):
        theirs.append(theirs.load(), [created("b")])
    with mine.lock("test"), pytest.raises(StateError, match="changed since it was read"):
        mine.append(state, [created("c")])
    assert sorted(StateStore(path).load().schedules) == ["a", "b"]


def test_an_empty_append_writes_nothing(path: Path) -> None:
    store = StateStore(path)
    with store.lock("test"):
        state = store.load()
        assert store.append(state, []) is state
    assert not path.exists()


def _all_keys(value: Any, skip: str = "body") -> set[str]:
    keys: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            keys.add(key)
            if key != skip:
                keys |= _all_keys(item, skip)
    elif isinstance(value, list):
        for item in value:
            keys |= _all_keys(item, skip)
    return keys


def test_the_snapshot_holds_only_known_keys_so_no_secret_can_enter(path: Path) -> None:
    store = StateStore(path)
    intent = Intent(action="update", digest="sha256:y", started_at=AT, fires_from=AT)
    events: list[Event] = [
        PlanUpserted(plan_id="p", description="d", at=AT),
        created("a"),
        IntentRecorded(name="a", plan_id="p", intent=intent),
    ]
    with store.lock("test"):
        store.write(replay(store.load(), events))
    data = json.loads(path.read_text())
    schedules = data.pop("schedules")
    plans = data.pop("plans")
    assert set(data) == {"version", "lineage", "serial", "target"}  # target: a fingerprint
    assert set(plans) == {"p"}
    assert _all_keys(plans["p"]) == {"plan_id", "description", "applied_at", "retired_at"}
    record = schedules["a"]
    assert _all_keys(record) == {
        "name",
        "plan_id",
        "schedule_id",
        "body",
        "digest",
        "trigger_kind",
        "applied_at",
        "intent",
        "superseded",
        "verify_after",
        "uncertain",
        "action",
        "started_at",
        "fires_from",
        "immediate",
    }
    with pytest.raises(ValueError, match="app_key"):
        State.model_validate({**json.loads(path.read_text()), "app_key": "k"})


def test_a_lockless_reader_racing_a_compaction_rereads_instead_of_seeing_a_gap(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, reader = StateStore(path), StateStore(path)
    read_bytes = Path.read_bytes
    with writer.lock("reconcile apply"):
        state = writer.append(writer.load(), [created("a")])
        raced: list[State] = []

        def racing(self: Path) -> bytes:
            if self == reader.journal_path and not raced:
                # Between the reader's snapshot read and its journal read, the writer compacts
                # and appends again: the journal now starts past the snapshot the reader holds.
                writer.write(state)
                raced.append(writer.append(state, [created("b")]))
            return read_bytes(self)

        monkeypatch.setattr(Path, "read_bytes", racing)
        assert reader.load() == raced[0]
