"""The exclusive, non-blocking lock on one state file: `fcntl.flock` on `<state>.lock`. Not pure.

The kernel drops a flock when its holder exits, however it exits, so a dead holder never blocks.
The holder info written inside (pid, host, command, start) only names the holder in messages.
"""

from __future__ import annotations

import fcntl
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.errors import StateError, StateLockedError


class LockHolder(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    pid: int
    hostname: str
    command: str
    started_at: datetime

    def describe(self) -> str:
        since = self.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"pid {self.pid} on host {self.hostname} ({self.command}, since {since})"


class FileLock:
    """One lock file. Not reentrant: a second `acquire` in the same process reports it as busy.

    The lock file is never deleted: unlinking a flock'ed file lets a waiter lock the old inode
    while a newcomer locks a new one, and both would think they hold the lock.
    """

    def __init__(self, path: Path, subject: str) -> None:
        self.path = path
        self.subject = subject  # the state file, as the user named it
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, command: str, now: datetime | None = None) -> LockHolder | None:
        """Take the lock or raise StateLockedError; return the info a dead holder left, if any."""
        if self._fd is not None:
            raise StateLockedError(f"{self.subject} is already locked by this process")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._flock(fd)
        except BaseException:
            os.close(fd)
            raise
        stale = _read_holder(fd)
        holder = LockHolder(
            pid=os.getpid(),
            hostname=socket.gethostname(),
            command=command,
            started_at=now or datetime.now(UTC),
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.model_dump_json().encode() + b"\n", 0)
        self._fd = fd
        return stale

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # an empty lock file means "released cleanly"
        finally:
            os.close(fd)  # closing drops the flock

    def clear_stale(self) -> LockHolder | None:
        """`state unlock`: refuse while a live process holds the flock; else clear the info.

        Returns the holder the info named (None if there was none). Useful where the info
        outlived its holder, or on filesystems where flock is not shared between hosts.
        """
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        try:
            self._flock(fd, unlock_hint=True)
            stale = _read_holder(fd)
            os.ftruncate(fd, 0)
            return stale
        finally:
            os.close(fd)

    def _flock(self, fd: int, *, unlock_hint: bool = False) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            who = (
                holder.describe() if holder else f"another process (no holder info in {self.path})"
            )
            tail = (
                "; that process is alive, so it was not unlocked: wait for it to finish"
                if unlock_hint
                else "; wait for it to finish"
            )
            raise StateLockedError(f"{self.subject} is locked by {who}{tail}") from None
        except OSError as error:
            raise StateError(
                f"cannot lock {self.subject} ({self.path}: {error.strerror}); the filesystem "
                "must support flock: keep state/ on a local disk"
            ) from None


def _read_holder(fd: int) -> LockHolder | None:
    """The info in the lock file; None when empty or unreadable (a holder mid-write)."""
    raw = os.pread(fd, 4096, 0).strip()
    if not raw:
        return None
    try:
        return LockHolder.model_validate_json(raw)
    except ValidationError:
        return None
