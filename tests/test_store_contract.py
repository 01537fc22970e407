"""The state store's contract, held by both backends: the file store and PostgreSQL.

Every test here runs twice (`backend` is parametrised): the same calls, the same promises. The
PostgreSQL runs use a real server (tests/support/postgres.py), never a stand-in.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.errors import ExitCode, StateError, StateLockedError
from reconciler.state.backend import Moved
from reconciler.state.model import STATE_VERSION, State
from tests.support.campaign import schedule_created
from tests.support.postgres import HOLDER, Backend, spec_of

ROOT = Path(__file__).resolve().parent.parent
AT = datetime(2025, 12, 1, 9, tzinfo=UTC)


def test_a_missing_state_is_new_and_nothing_is_written(backend: Backend) -> None:
    store = backend.store()
    state = store.load()
    assert state.serial == 0 and not state.schedules
    assert not store.exists()
    with store.lock("test"):
        store.load()
    assert not store.exists()  # a lock alone writes no state


def test_appended_events_are_durable_in_order_and_raise_the_serial(backend: Backend) -> None:
    store = backend.store()
    with store.lock("test"):
        state = store.append(store.load(), [schedule_created("a"), schedule_created("b")])
        state = store.append(state, [schedule_created("c")])
        # Durable before the block ends: another reader sees them while the lock is held.
        assert backend.store().load() == state
    again = backend.store().load()
    assert again == state
    assert again.serial == 3
    assert sorted(again.schedules) == ["a", "b", "c"]


def test_a_compaction_keeps_the_previous_snapshot(backend: Backend) -> None:
    store = backend.store()
    with store.lock("test"):
        first = store.append(store.load(), [schedule_created("a")])
        store.write(first, run="first")
        second = store.append(first, [schedule_created("b")])
        store.write(second, run="second")
    assert backend.store().load() == second
    kept = {entry.serial: entry for entry in backend.store().history()}
    assert {1, 2} <= set(kept)
    assert kept[2].current and not kept[1].current
    assert backend.store().load_serial(1) == first
    assert backend.store().load_serial(2) == second
    with pytest.raises(StateError, match="serial 7 is not kept"):
        backend.store().load_serial(7)


def test_a_changed_state_needs_a_higher_serial(backend: Backend) -> None:
    store = backend.store()
    with store.lock("test"):
        state = store.append(store.load(), [schedule_created("a")])
        changed = state.model_copy(update={"schedules": {}})
        with pytest.raises(RuntimeError, match="higher serial"):
            store.write(changed)
    assert backend.store().load() == state


def test_writes_need_the_lock_and_the_loaded_state(backend: Backend) -> None:
    store = backend.store()
    state = store.load()
    with pytest.raises(RuntimeError, match="lock"):
        store.append(state, [schedule_created("a")])
    with store.lock("test"):
        with pytest.raises(RuntimeError):
            store.append(State.new(), [schedule_created("a")])  # another lineage
        store.append(store.load(), [schedule_created("a")])


def test_a_write_after_another_writer_wrote_is_refused(backend: Backend) -> None:
    mine, theirs = backend.store(), backend.store()
    with mine.lock("test"):
        state = mine.append(mine.load(), [schedule_created("a")])
        mine.write(state)
    mine_state = mine.load()
    with theirs.lock("test"):
        theirs.append(theirs.load(), [schedule_created("b")])
    with mine.lock("test"), pytest.raises(StateError, match="changed since it was read"):
        mine.append(mine_state, [schedule_created("c")])
    assert sorted(backend.store().load().schedules) == ["a", "b"]


@pytest.fixture
def holder(backend: Backend) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock (`reconcile apply`) until its stdin closes or it dies."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, spec_of(backend), "reconcile apply"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "locked\n"
    yield proc
    proc.kill()
    proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None and not stream.closed:
            stream.close()


def test_a_live_holder_blocks_and_is_named(backend: Backend, holder: subprocess.Popen[str]) -> None:
    store = backend.store()
    with pytest.raises(StateLockedError) as caught, store.lock("reconcile plan"):
        pass
    message = str(caught.value)
    assert f"locked by pid {holder.pid}" in message
    assert "(reconcile apply, since " in message
    assert caught.value.exit_code == ExitCode.LOCKED
    with pytest.raises(StateLockedError, match="alive, so it was not unlocked"):
        store.unlock()


def test_the_lock_timeout_waits_for_the_holder(
    backend: Backend, holder: subprocess.Popen[str]
) -> None:
    store = backend.store()
    started = time.monotonic()
    with pytest.raises(StateLockedError, match=r"waited 0\.3 s"), store.lock("t", timeout=0.3):
        pass
    assert time.monotonic() - started >= 0.3
    assert holder.stdin is not None
    threading.Timer(0.3, holder.stdin.close).start()  # the holder finishes meanwhile
    with store.lock("reconcile apply", timeout=30):
        assert store.previous_holder is None  # it released cleanly: no stale info


def test_a_killed_holder_never_blocks_and_is_reported(
    backend: Backend, holder: subprocess.Popen[str]
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    store = backend.store()
    with store.lock("reconcile apply", timeout=10):  # the server may take a moment to notice
        assert store.previous_holder is not None
        assert store.previous_holder.pid == holder.pid
        assert any(f"pid {holder.pid}" in notice for notice in store.notices)
    assert backend.store().unlock() is None  # released cleanly this time


def test_unlock_clears_what_a_killed_holder_left(
    backend: Backend, holder: subprocess.Popen[str]
) -> None:
    holder.kill()
    holder.wait(timeout=10)
    store = backend.store()
    deadline = time.monotonic() + 10
    while True:
        try:
            cleared = store.unlock()
            break
        except StateLockedError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert cleared is not None and cleared.pid == holder.pid
    assert store.unlock() is None


def _corrupt(backend: Backend, data: bytes) -> None:
    """Replace the current snapshot's bytes behind the store's back."""
    if backend.kind == "file":
        (backend.root / "state" / "default.json").write_bytes(data)
        return
    import zlib

    import psycopg

    with psycopg.connect(backend.url, autocommit=True) as conn:  # stored compressed: see pg.py
        conn.execute(
            "UPDATE reconcile_snapshots s SET body = %s FROM reconcile_states h "
            "WHERE s.key = h.key AND s.serial = h.snapshot_serial AND h.project = %s",
            (zlib.compress(data), backend.project),
        )


def _stored(backend: Backend) -> object:
    """Everything the backend holds for the test's state, to prove nothing changed."""
    if backend.kind == "file":
        folder = backend.root / "state"
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix != ".lock"}
    import psycopg

    with psycopg.connect(backend.url, autocommit=True) as conn:
        return [
            conn.execute(query, (backend.project,)).fetchall()
            for query in (
                "SELECT * FROM reconcile_states WHERE project = %s",
                "SELECT s.* FROM reconcile_snapshots s JOIN reconcile_states h USING (key) "
                "WHERE h.project = %s ORDER BY serial",
                "SELECT j.key, j.serial, j.entry FROM reconcile_journal j "
                "JOIN reconcile_states h USING (key) WHERE h.project = %s ORDER BY serial",
            )
        ]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b'{"version": 1, "lineage": "x", "seri', "not valid JSON"),
        (b"[]", "not a reconcile state file"),
        (b'{"version": %d, "lineage": "x"}' % (STATE_VERSION + 1), "newer reconcile"),
    ],
)
def test_a_corrupt_or_newer_state_is_refused_and_never_overwritten(
    backend: Backend, data: bytes, match: str
) -> None:
    store = backend.store()
    with store.lock("test"):
        state = store.append(store.load(), [schedule_created("a")])
        store.write(state)
        store.append(state, [schedule_created("b")])
    _corrupt(backend, data)
    before = _stored(backend)
    with pytest.raises(StateError, match=match):
        backend.store().load()
    writer = backend.store()
    with writer.lock("test"):
        with pytest.raises(StateError, match=match):
            writer.load()
        with pytest.raises(RuntimeError):
            writer.write(State.new())  # nothing was loaded: there is nothing it may write
    assert _stored(backend) == before


def test_a_moved_state_is_refused_for_reading_and_writing(backend: Backend) -> None:
    store = backend.store()
    with store.lock("test"):
        state = store.append(store.load(), [schedule_created("a")])
        store.write(state)
        moved = Moved(to="file elsewhere.json", at=AT, lineage=state.lineage, serial=1)
        store.mark_moved(moved)
    with pytest.raises(StateError, match=r"was moved to file elsewhere\.json"):
        backend.store().load()
    writer = backend.store()
    with writer.lock("test"), pytest.raises(StateError, match="was moved"):
        writer.load()


def test_a_copy_keeps_every_record_and_refuses_another_lineage(
    backend: Backend, tmp_path: Path
) -> None:
    store = backend.store()
    with store.lock("test"):
        state = store.append(store.load(), [schedule_created("a"), schedule_created("b")])
        store.write(state)
        state = store.append(state, [schedule_created("c")])  # a journal entry after it
    snapshot, entries = store.export()
    assert snapshot is not None and len(entries) == 1
    other = Backend("file", tmp_path / "copy")
    target = other.store()
    with target.lock("test"):
        target.adopt(snapshot, entries)
    assert other.store().load() == state
    stranger = Backend("file", tmp_path / "stranger")
    theirs = stranger.store()
    with theirs.lock("test"):
        theirs.append(theirs.load(), [schedule_created("z")])
        with pytest.raises(StateError, match="already holds another state"):
            theirs.adopt(snapshot, entries)
    # And back into this backend, over its own older copy of the same lineage: accepted.
    with store.lock("test"):
        store.adopt(snapshot, entries)
    assert backend.store().load() == state
