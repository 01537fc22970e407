"""The state lock between processes: a live holder is named, a dead one never blocks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.errors import ExitCode, StateLockedError
from reconciler.state.lock import FileLock
from reconciler.state.store import StateStore

ROOT = Path(__file__).resolve().parent.parent
HOLDER = """
import sys
from pathlib import Path
from reconciler.state.store import StateStore
store = StateStore(Path(sys.argv[1]))
with store.lock("reconcile apply"):
    print("locked", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "default.json"


@pytest.fixture
def holder(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock until its stdin closes (or it is killed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "locked\n"
    yield proc
    proc.kill()
    proc.communicate(timeout=10)


def test_a_live_holder_is_named_and_blocks(path: Path, holder: subprocess.Popen[str]) -> None:
    store = StateStore(path)
    with pytest.raises(StateLockedError) as caught, store.lock("reconcile plan"):
        pass
    message = str(caught.value)
    assert f"is locked by pid {holder.pid} on host {socket.gethostname()}" in message
    assert "(reconcile apply, since " in message
    assert "wait for it to finish" in message
    assert caught.value.exit_code == ExitCode.LOCKED
    with pytest.raises(StateLockedError, match="alive, so it was not unlocked"):
        store.unlock()


def test_a_killed_holder_never_blocks_and_is_reported(
    path: Path, holder: subprocess.Popen[str]
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    store = StateStore(path)
    with store.lock("reconcile apply"):
        assert store.previous_holder is not None
        assert store.previous_holder.pid == holder.pid
        assert any(f"pid {holder.pid}" in notice for notice in store.notices)


def test_unlock_clears_what_a_killed_holder_left(path: Path, holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait(timeout=10)
    store = StateStore(path)
    cleared = store.unlock()
    assert cleared is not None
    assert cleared.pid == holder.pid
    assert cleared.command == "reconcile apply"
    assert store.unlock() is None  # cleared: nothing left to report
    with store.lock("reconcile apply"):
        assert store.previous_holder is None


def test_a_clean_release_leaves_no_holder_behind(path: Path) -> None:
    store = StateStore(path)
    with store.lock("reconcile apply"):
        assert path.with_name("default.json.lock").read_text()  # the info names us meanwhile
    assert path.with_name("default.json.lock").read_text() == ""
    with store.lock("reconcile apply"):
        assert store.previous_holder is None
    assert store.unlock() is None


def test_unlock_without_a_lock_file_creates_nothing(path: Path) -> None:
    assert StateStore(path).unlock() is None
    assert not path.parent.exists()


def test_the_lock_is_not_reentrant(path: Path) -> None:
    store = StateStore(path)
    with store.lock("one"), pytest.raises(StateLockedError), store.lock("two"):
        pass
    other = FileLock(path.with_name("default.json.lock"), "state/default.json")
    with store.lock("one"), pytest.raises(StateLockedError, match=f"pid {os.getpid()}"):
        other.acquire("two")  # a second open file in one process is a second holder


def test_the_holder_is_described_with_its_start_time(path: Path) -> None:
    lock = FileLock(path.with_name("default.json.lock"), "state/default.json")
    lock.acquire("reconcile apply", now=datetime(2025, 12, 1, 9, tzinfo=UTC))
    try:
        other = FileLock(path.with_name("default.json.lock"), "state/default.json")
        with pytest.raises(StateLockedError, match="since 2025-12-01 09:00:00 UTC"):
            other.acquire("reconcile plan")
    finally:
        lock.release()
