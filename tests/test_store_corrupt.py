"""The state store refuses files it cannot trust, leaves them untouched, and recovers torn tails."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.state.model import State
from reconciler.state.store import StateStore
from tests.support.campaign import schedule_created


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    """A store with a compacted snapshot (serial 1) and three journal entries (serials 2-4)."""
    store = StateStore(tmp_path / "default.json")
    with store.lock("test"):
        state = store.append(store.load(), [schedule_created("a")])
        store.write(state)
        store.append(state, [schedule_created("b"), schedule_created("c"), schedule_created("d")])
    return store


def files(store: StateStore) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.path.parent.iterdir())}


def refused(store: StateStore, match: str) -> StateError:
    """Load must fail, and nothing (not even a locked writer) may change a byte afterwards."""
    before = files(store)
    with pytest.raises(StateError, match=match) as caught:
        StateStore(store.path).load()
    writer = StateStore(store.path)
    with writer.lock("test"):
        with pytest.raises(StateError):
            writer.load()
        with pytest.raises(RuntimeError):
            writer.write(State.new())  # no state was loaded: there is nothing it may write
    after = files(store)
    after.pop(store.path.name + ".lock", None)
    before.pop(store.path.name + ".lock", None)
    assert after == before
    return caught.value


def test_a_torn_last_line_is_ignored_reported_and_cut_before_the_next_append(
    store: StateStore,
) -> None:
    data = store.journal_path.read_bytes()
    store.journal_path.write_bytes(data[:-20])  # a crash in the middle of the last append
    loaded = StateStore(store.path)
    state = loaded.load()
    assert state.serial == 3
    assert sorted(state.schedules) == ["a", "b", "c"]
    assert loaded.recovered_torn_write
    assert any("interrupted write" in notice for notice in loaded.notices)
    with loaded.lock("test"):
        state = loaded.load()
        state = loaded.append(state, [schedule_created("e")])
    again = StateStore(store.path)
    assert again.load() == state
    assert not again.recovered_torn_write
    assert sorted(state.schedules) == ["a", "b", "c", "e"]


def test_a_complete_but_unparsable_last_line_counts_as_torn(store: StateStore) -> None:
    with store.journal_path.open("ab") as journal:
        journal.write(b'{"serial": 5, "lin\x00\x00\n')
    loaded = StateStore(store.path)
    assert loaded.load().serial == 4
    assert loaded.recovered_torn_write


def test_a_bad_line_in_the_middle_is_refused(store: StateStore) -> None:
    lines = store.journal_path.read_bytes().splitlines(keepends=True)
    lines[1] = b"{garbage\n"
    store.journal_path.write_bytes(b"".join(lines))
    error = refused(store, "default.journal:2: unreadable entry")
    assert "untouched" in str(error)


def test_a_gap_in_serials_is_refused(store: StateStore) -> None:
    lines = store.journal_path.read_bytes().splitlines(keepends=True)
    store.journal_path.write_bytes(lines[0] + lines[2])
    refused(store, "serial 4 follows 2: entries are missing")


def test_a_journal_of_another_lineage_is_refused(store: StateStore) -> None:
    data = store.journal_path.read_text()
    lineage = json.loads(store.path.read_text())["lineage"]
    store.journal_path.write_text(data.replace(lineage, "someone-else"))
    refused(store, "belongs to another state")


def test_a_journal_without_its_snapshot_is_refused(store: StateStore) -> None:
    store.path.unlink()
    refused(store, "default.journal exists but .*default.json does not")


def test_entries_the_snapshot_already_holds_are_skipped(store: StateStore) -> None:
    # A crash between the snapshot rename and the journal removal leaves such a journal.
    stale = store.journal_path.read_bytes()
    state = StateStore(store.path).load()
    with store.lock("test"):
        store.load()
        store.write(state)
    store.journal_path.write_bytes(stale)
    assert StateStore(store.path).load() == state


@pytest.mark.parametrize(
    ("cut", "match"),
    [
        (lambda raw: raw[: len(raw) // 2], "not valid JSON .*truncated or corrupt"),
        (lambda raw: b"", "not valid JSON"),
        (lambda raw: b"[1, 2]\n", "not a reconcile state file"),
        (lambda raw: raw.replace(b'"lineage"', b'"lineaje"'), "not a reconcile state file"),
    ],
)
def test_a_corrupt_snapshot_is_refused_and_left_byte_identical(
    store: StateStore, cut: Callable[[bytes], bytes], match: str
) -> None:
    store.path.write_bytes(cut(store.path.read_bytes()))
    error = refused(store, match)
    assert "git" in str(error)


def test_the_message_points_at_the_backup_when_there_is_one(store: StateStore) -> None:
    with store.lock("test"):
        store.write(store.load())
    store.path.write_bytes(b"{")
    assert "default.json.backup" in str(refused(store, "not valid JSON"))


def test_a_newer_version_is_refused_with_upgrade_advice(store: StateStore) -> None:
    data = json.loads(store.path.read_text())
    store.path.write_text(json.dumps({**data, "version": 2, "workspaces": {}}))
    refused(store, "written by a newer reconcile .*upgrade reconcile")


def test_a_newer_version_of_the_same_shape_is_refused_too(store: StateStore) -> None:
    data = json.loads(store.path.read_text())
    store.path.write_text(json.dumps({**data, "version": 7}))
    refused(store, "state version 7")


def test_a_failed_append_is_cut_back_and_stops_all_later_writes(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.journal_path.read_bytes()

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with store.lock("test"):
        state = store.load()
        monkeypatch.setattr(os, "fsync", no_space)
        with pytest.raises(StateError, match="No space left"):
            store.append(state, [schedule_created("e")])
        monkeypatch.undo()
        with pytest.raises(StateError, match="nothing more can be recorded"):
            store.append(state, [schedule_created("f")])
    assert store.journal_path.read_bytes() == before
