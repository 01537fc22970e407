"""`<env>.json.backup` is the previous snapshot: never the one just written."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.errors import ExitCode
from reconciler.state.store import StateStore
from tests.support.campaign import apply, schedule_created, write_project
from tests.support.emulator import EmulatorHandle


def test_a_compaction_keeps_the_snapshot_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "state" / "default.json"
    backup = path.with_name("default.json.backup")
    store = StateStore(path)
    with store.lock("test"):
        first = store.append(store.load(), [schedule_created("a")])
        store.write(first)
        previous = path.read_bytes()
        store.write(
            store.append(first, [schedule_created("b"), schedule_created("c")])
        )  # apply's compaction
    assert backup.read_bytes() == previous
    assert StateStore(backup).load() == first
    assert json.loads(path.read_bytes())["serial"] == 3


def test_after_an_interrupted_run_the_backup_is_the_older_complete_snapshot(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "default.json"
    store = StateStore(path)
    with store.lock("test"):
        first = store.append(store.load(), [schedule_created("a")])
        store.write(first)
        store.append(first, [schedule_created("b")])  # then the run dies: left in the journal
    previous = path.read_bytes()
    store = StateStore(path)
    with store.lock("test"):
        resumed = store.load()
        assert resumed.serial == 2
        store.write(store.append(resumed, [schedule_created("c")]))
    backup = path.with_name("default.json.backup")
    assert backup.read_bytes() == previous  # a file that was on disk, restorable on its own
    assert StateStore(backup).load() == first


def test_backup_after_two_applies_is_the_snapshot_before_the_second(
    env: EmulatorHandle, tmp_path: Path
) -> None:
    path = tmp_path / "state" / "default.json"
    write_project(tmp_path, 2)
    assert apply(env, tmp_path) == ExitCode.OK
    before = path.read_bytes()
    write_project(tmp_path, 2, fr="Coucou")
    assert apply(env, tmp_path) == ExitCode.OK
    backup = path.with_name("default.json.backup").read_bytes()
    assert backup == before
    old, new = StateStore(path.with_name("default.json.backup")).load(), StateStore(path).load()
    assert old.lineage == new.lineage
    assert old.serial < new.serial
