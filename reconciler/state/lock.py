"""The exclusive, non-blocking lock on one state file: `fcntl.flock` on `<state>.lock`. Not pure.

The kernel drops a flock when its holder exits, however it exits, so a dead holder never blocks.
The holder info written inside (pid, host, command, start) only names the holder in messages.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import socket
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.errors import StateError, StateLockedError


class LockHolder(BaseModel):
    """Who holds a state's lock: shown to whoever finds it taken. Never a secret."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    pid: int
    hostname: str
    command: str
    started_at: datetime
    user: str = ""
    ci_run_url: str = ""  # the CI job holding it, when one does

    @classmethod
    def me(cls, command: str, now: datetime | None = None) -> LockHolder:
        return cls(
            pid=os.getpid(),
            hostname=socket.gethostname(),
            command=command,
            started_at=now or datetime.now(UTC),
            user=_user(os.environ),
            ci_run_url=ci_run_url(os.environ),
        )

    def describe(self) -> str:
        since = self.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        who = f", user {self.user}" if self.user else ""
        run = f", CI run {self.ci_run_url}" if self.ci_run_url else ""
        return f"pid {self.pid} on host {self.hostname} ({self.command}, since {since}{who}{run})"


def ci_run_url(environ: Mapping[str, str]) -> str:
    """The CI job this process runs in: GitHub Actions' run page or GitLab's job URL."""
    server, repository, run = (
        environ.get(name, "")
        for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    if server and repository and run:
        return f"{server}/{repository}/actions/runs/{run}"
    return environ.get("CI_JOB_URL", "")


def _user(environ: Mapping[str, str]) -> str:
    for name in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        if environ.get(name):
            return environ[name]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (some containers)
        return ""


def wait_for(take: Callable[[], bool], timeout: float, busy: Callable[[], Exception]) -> None:
    """Call `take` until it returns True, for up to `timeout` seconds; then raise `busy()`.

    The polling interval grows from 50 ms to 1 s, so a short wait is short and a long one cheap.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = 0.05
    while not take():
        left = deadline - time.monotonic()
        if left <= 0:
            raise busy()
        time.sleep(min(pause, left))
        pause = min(pause * 2, 1.0)


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

    def acquire(
        self, command: str, now: datetime | None = None, *, timeout: float = 0.0
    ) -> LockHolder | None:
        """Take the lock, waiting up to `timeout` seconds, or raise StateLockedError; return the
        info a dead holder left, if any."""
        if self._fd is not None:
            raise StateLockedError(f"{self.subject} is already locked by this process")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            wait_for(lambda: self._flock(fd), timeout, lambda: self._busy(fd, timeout=timeout))
        except BaseException:
            os.close(fd)
            raise
        stale = _read_holder(fd)
        holder = LockHolder.me(command, now)
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
            if not self._flock(fd):
                raise self._busy(fd, unlock_hint=True)
            stale = _read_holder(fd)
            os.ftruncate(fd, 0)
            return stale
        finally:
            os.close(fd)

    def _busy(self, fd: int, *, unlock_hint: bool = False, timeout: float = 0.0) -> Exception:
        holder = _read_holder(fd)
        who = holder.describe() if holder else f"another process (no holder info in {self.path})"
        return StateLockedError(locked_message(self.subject, who, unlock_hint, timeout))

    def _flock(self, fd: int) -> bool:
        """Try once; False while another process holds it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as error:
            raise StateError(
                f"cannot lock {self.subject} ({self.path}: {error.strerror}); the filesystem "
                "must support flock: keep state/ on a local disk"
            ) from None


def locked_message(subject: str, who: str, unlock_hint: bool, timeout: float) -> str:
    if unlock_hint:
        tail = "; that process is alive, so it was not unlocked: wait for it to finish"
    elif timeout > 0:
        tail = f"; waited {timeout:g} s (--lock-timeout). Wait for it to finish, or wait longer"
    else:
        tail = "; wait for it to finish, or pass --lock-timeout to wait for it"
    return f"{subject} is locked by {who}{tail}"


def _read_holder(fd: int) -> LockHolder | None:
    """The info in the lock file; None when empty or unreadable (a holder mid-write)."""
    raw = os.pread(fd, 4096, 0).strip()
    if not raw:
        return None
    try:
        return LockHolder.model_validate_json(raw)
    except ValidationError:
        return None
