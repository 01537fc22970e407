"""The state store: snapshot `state/<env>.json` + event journal `<env>.journal`, locked. Not pure.

Snapshots are replaced atomically (temp, fsync, rename, fsync dir), keeping `<name>.backup`; an
`append` is one write + fsync of JSON lines. A file it cannot trust is refused, never rewritten.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from reconciler.atomicfile import fsync_dir, write_all, write_synced
from reconciler.errors import StateError
from reconciler.state.backend import (
    BackendKind,
    HistoryEntry,
    Moved,
    moved_message,
    refuse_adopt,
)
from reconciler.state.codec import (
    Entry,
    dump_entry,
    dump_state,
    entries_for,
    parse_snapshot,
    replay,
)
from reconciler.state.lock import FileLock, LockHolder
from reconciler.state.model import Event, State

TORN_WRITE_NOTICE = (
    "{journal} ended with an interrupted write (a crash during a previous run); that last, "
    "incomplete entry was ignored: it had not been acknowledged, so nothing was sent on its account"
)


@dataclass
class _Disk:
    """What this store last read or wrote; a write is refused if the files moved since."""

    state: State
    snapshot: tuple[int, int, int] | None  # (inode, size, mtime_ns); None: no snapshot yet
    snapshot_serial: int
    journal_size: int  # bytes on disk, a torn tail included
    journal_end: int  # bytes of complete entries; a torn tail is cut off before the next append


class StateStore:
    """All reads and writes of one state file.

    Readers may `load()` without the lock (plan, show). Writers take `lock(command)` for the whole
    command, then `load()`, then `append(...)` per recorded outcome and `write(...)` at the end.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        stem = path.name.removesuffix(".json")
        self.journal_path = path.with_name(stem + ".journal")
        self.backup_path = path.with_name(path.name + ".backup")
        self.moved_path = path.with_name(stem + ".moved")
        self._tmp_path = path.with_name(path.name + ".tmp")
        self.kind: BackendKind = "file"
        self.name = str(path)
        self.journal_name = str(self.journal_path)
        self._lock = FileLock(path.with_name(path.name + ".lock"), str(path))
        self._disk: _Disk | None = None
        self._broken: str | None = None
        self.recovered_torn_write = False
        self.previous_holder: LockHolder | None = None
        self.notices: list[str] = []  # for the CLI to show: torn write recovered, stale lock

    def exists(self) -> bool:
        return self.path.exists()

    @contextmanager
    def lock(self, command: str, *, timeout: float = 0.0) -> Iterator[None]:
        """Hold the exclusive lock for the block; StateLockedError names a live holder.

        A holder that died (even by SIGKILL) released its flock with its process, so it never
        blocks; the info it left is reported in `previous_holder` / `notices`. `unlock()` (the
        `reconcile state unlock` command) only clears such info; it cannot take a live lock.
        """
        stale = self._lock.acquire(command, timeout=timeout)
        self.previous_holder = stale
        if stale is not None:
            self.notices.append(
                f"the previous holder of the lock, {stale.describe()}, did not finish"
            )
        try:
            yield
        finally:
            self._lock.release()

    def unlock(self) -> LockHolder | None:
        """`state unlock`: clear lock info a gone holder left; StateLockedError if it is live."""
        return self._lock.clear_stale()

    def load(self) -> State:
        """The recorded state: the snapshot plus the journal replayed. Missing file: a new state."""
        moved = self._moved()
        if moved is not None:
            raise StateError(moved_message(self.name, moved))
        return self._load()

    def _load(self) -> State:
        snapshot, journal, fingerprint = self._read_files()
        if snapshot is None:
            if journal:
                raise StateError(
                    f"{self.journal_path} exists but {self.path} does not; restore {self.path} "
                    f"from {self.backup_path} or from git, then run the command again"
                )
            state = State.new()
            self._disk = _Disk(state, None, 0, 0, 0)
            self.recovered_torn_write = False
            return state
        base = self._parse_snapshot(snapshot)
        state, end = self._replay(base, journal)
        self._disk = _Disk(state, fingerprint, base.serial, len(journal), end)
        self.recovered_torn_write = end < len(journal)
        if self.recovered_torn_write:
            self.notices.append(TORN_WRITE_NOTICE.format(journal=self.journal_path))
        return state

    def append(self, state: State, events: Sequence[Event]) -> State:
        """Record `events` durably (one write, one fsync) and return the state after them.

        `state` must be the one last loaded or returned. Needs the lock.
        """
        disk = self._writable(state)
        if state.serial != disk.state.serial:
            raise RuntimeError("append() needs the state last loaded or returned")
        if not events:
            return state
        new, entries = entries_for(state, events)
        data = b"".join(dump_entry(entry) + b"\n" for entry in entries)
        if disk.snapshot is None:
            self._write_snapshot(state, disk)  # fixes the lineage on disk before any entry
        self._append_bytes(disk, data)
        disk.state = new
        return new

    def write(self, state: State, *, run: str = "") -> None:
        """Replace the snapshot atomically and drop the journal (whose entries it now holds).

        For compaction at the end of apply (`state` as last returned) and for callers that
        replace the whole state (a higher serial). Needs the lock.
        """
        disk = self._writable(state)
        older = state.serial < disk.state.serial
        if older or (state.serial == disk.state.serial and state != disk.state):
            # A saved plan is checked against the serial: a change must never keep it.
            raise RuntimeError("write() of a changed state needs a higher serial")
        self._write_snapshot(state, disk)

    compact = write

    def kept_previous(self) -> str:
        return str(self.backup_path)

    # --- history and migration ---------------------------------------------------------------

    def history(self) -> list[HistoryEntry]:
        """The current snapshot and the one before it (`.backup`); git holds the earlier ones."""
        kept = []
        for path, current in ((self.path, True), (self.backup_path, False)):
            try:
                stat = path.stat()
                state = parse_snapshot(path.read_bytes(), str(path), self._remedy())
            except FileNotFoundError:
                continue
            written = datetime.fromtimestamp(stat.st_mtime, UTC)
            entry = HistoryEntry(
                serial=state.serial,
                lineage=state.lineage,
                written_at=written,
                run="",
                current=current,
            )
            kept.append(entry)
        return kept

    def load_serial(self, serial: int) -> State:
        state = self.load()
        if state.serial == serial and self.exists():
            return state
        for path in (self.path, self.backup_path):
            try:
                kept = parse_snapshot(path.read_bytes(), str(path), self._remedy())
            except FileNotFoundError:
                continue
            if kept.serial == serial:
                return kept
        have = ", ".join(str(entry.serial) for entry in self.history()) or "none"
        raise StateError(
            f"serial {serial} is not kept in {self.path} (the file backend keeps the current "
            f"snapshot and the one before it, in {self.backup_path}: serials {have}). Earlier "
            f"versions are in git: `git log -p -- {self.path}`"
        )

    def replace_unreadable(self, kept: State, *, run: str = "") -> State:
        raise StateError(
            f"{self.path} cannot be read, and the file backend does not write over it: restore "
            f"it from {self.backup_path} or from git (`git log -p -- {self.path}`), then run "
            "the command again"
        )

    def export(self) -> tuple[State | None, list[Entry]]:
        self._load()  # refuses a corrupt or newer state, or a broken journal, as load() does
        snapshot, journal, _ = self._read_files()
        if snapshot is None:
            return None, []
        base = self._parse_snapshot(snapshot)
        complete = journal.rfind(b"\n") + 1
        entries = [Entry.model_validate_json(line) for line in journal[:complete].splitlines()]
        return base, [entry for entry in entries if entry.serial > base.serial]

    def adopt(self, snapshot: State, entries: Sequence[Entry], *, run: str = "") -> None:
        if not self._lock.held:
            raise RuntimeError("state writes need the lock: use `with store.lock(command):`")
        mine = self._load() if self.exists() else None
        last = entries[-1].serial if entries else snapshot.serial
        refused = refuse_adopt(self.name, mine, snapshot, last)
        if refused is not None:
            raise StateError(refused)
        disk = self._disk
        assert disk is not None or mine is None
        if disk is None:
            disk = self._disk = _Disk(snapshot, None, 0, 0, 0)
        self._write_snapshot(snapshot, disk)
        if entries:
            self._append_bytes(disk, b"".join(dump_entry(entry) + b"\n" for entry in entries))
        # Last: until the mark is gone, a copy cut short by a crash is refused, not used.
        self.moved_path.unlink(missing_ok=True)
        fsync_dir(self.path.parent)

    def mark_moved(self, moved: Moved) -> None:
        if not self._lock.held:
            raise RuntimeError("state writes need the lock: use `with store.lock(command):`")
        tmp = self.moved_path.with_name(self.moved_path.name + ".tmp")
        write_synced(tmp, moved.model_dump_json(indent=2).encode() + b"\n")
        tmp.replace(self.moved_path)
        fsync_dir(self.path.parent)

    def _moved(self) -> Moved | None:
        try:
            raw = self.moved_path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return Moved.model_validate_json(raw)
        except ValidationError:
            raise StateError(
                f"{self.moved_path} marks {self.path} as moved elsewhere but cannot be read; "
                "find where the state went (reconcile.toml's history in git) before removing it"
            ) from None

    # --- reading ---------------------------------------------------------------------------

    def _read_files(self) -> tuple[bytes | None, bytes, tuple[int, int, int] | None]:
        # A lockless reader can race a compaction (new snapshot, journal restarted): re-read when
        # the snapshot changed underneath, so such a reader never sees a false gap.
        for _ in range(5):
            try:
                with self.path.open("rb") as file:
                    before = _fingerprint(os.fstat(file.fileno()))
                    snapshot: bytes | None = file.read()
            except FileNotFoundError:
                before, snapshot = None, None
            try:
                journal = self.journal_path.read_bytes()
            except FileNotFoundError:
                journal = b""
            try:
                after: tuple[int, int, int] | None = _fingerprint(self.path.stat())
            except FileNotFoundError:
                after = None
            if after == before:
                break
        return snapshot, journal, before

    def _parse_snapshot(self, data: bytes) -> State:
        return parse_snapshot(data, str(self.path), self._remedy())

    def _replay(self, state: State, data: bytes) -> tuple[State, int]:
        """Apply the journal entries after the snapshot; return the state and the complete bytes."""
        complete = data.rfind(b"\n") + 1  # bytes after the last newline: a torn, unacked write
        lines = data[:complete].split(b"\n")[:-1]
        state, whole = replay(
            state, lines, self._bad_journal, torn_tail_possible=complete == len(data)
        )
        return state, sum(len(line) + 1 for line in lines[:whole])

    def _remedy(self) -> str:
        source = f"from {self.backup_path} or " if self.backup_path.exists() else ""
        return (
            f"It was left untouched. Restore it {source}from git (`git checkout -- {self.path}`), "
            "then run the command again."
        )

    def _bad_journal(self, line: int, why: str) -> StateError:
        return StateError(
            f"{self.journal_path}:{line}: {why}. The journal and {self.path} were left untouched; "
            f"restore both from git, or {self.path} from {self.backup_path} and move the journal "
            "aside, then run `reconcile refresh`."
        )

    # --- writing ---------------------------------------------------------------------------

    def _writable(self, state: State) -> _Disk:
        if not self._lock.held:
            raise RuntimeError("state writes need the lock: use `with store.lock(command):`")
        if self._broken is not None:
            raise StateError(self._broken)
        disk = self._disk
        if disk is None or state.lineage != disk.state.lineage:
            raise RuntimeError("write the state this store loaded, after load()")
        try:
            now: tuple[int, int, int] | None = _fingerprint(self.path.stat())
        except FileNotFoundError:
            now = None
        try:
            journal_size = self.journal_path.stat().st_size
        except FileNotFoundError:
            journal_size = 0
        if now != disk.snapshot or journal_size != disk.journal_size:
            raise StateError(
                f"{self.path} changed since it was read (another process wrote it); "
                "run the command again"
            )
        return disk

    def _append_bytes(self, disk: _Disk, data: bytes) -> None:
        created = not self.journal_path.exists()
        fd = os.open(
            self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        try:
            if disk.journal_end < disk.journal_size:
                os.ftruncate(fd, disk.journal_end)  # drop a torn tail before writing after it
            write_all(fd, data)
            os.fsync(fd)
            if created:
                fsync_dir(self.path.parent)
        except OSError as error:
            # The tail is now unknown: cut back to the last acknowledged entry if possible, and
            # record nothing more in this run (the caller must not make the call it announced).
            self._broken = (
                f"could not write {self.journal_path} ({error.strerror}); nothing more can be "
                "recorded in this run. Free space or fix the disk, then run the command again"
            )
            with suppress(OSError):
                os.ftruncate(fd, disk.journal_end)
            raise StateError(self._broken) from error
        finally:
            os.close(fd)
        disk.journal_end += len(data)
        disk.journal_size = disk.journal_end

    def _write_snapshot(self, state: State, disk: _Disk) -> None:
        data = dump_state(state)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_synced(self._tmp_path, data)
            if disk.snapshot is not None:
                self._keep_backup(state, disk)
            self._tmp_path.replace(self.path)
            fsync_dir(self.path.parent)
        except OSError as error:
            self._tmp_path.unlink(missing_ok=True)
            raise StateError(
                f"could not write {self.path} ({error.strerror}); the previous state is intact. "
                "Free space or fix the disk, then run the command again"
            ) from error
        # Replay skips entries the snapshot holds, so losing this unlink to a crash is harmless.
        self.journal_path.unlink(missing_ok=True)
        disk.state = state
        disk.snapshot = _fingerprint(self.path.stat())
        disk.snapshot_serial = state.serial
        disk.journal_size = disk.journal_end = 0

    def _keep_backup(self, state: State, disk: _Disk) -> None:
        """Make `<name>.backup` a complete, older state, restorable on its own.

        A compaction (`state` is the recorded state: the snapshot plus the journal, also entries
        an interrupted earlier run left) keeps the snapshot file exactly as it was on disk; a
        write that replaces the recorded state with a later one keeps that recorded state.
        """
        tmp = self.backup_path.with_name(self.backup_path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        if state.serial == disk.state.serial or disk.state.serial == disk.snapshot_serial:
            try:
                os.link(self.path, tmp)  # snapshots are never modified in place: sharing is safe
            except OSError:
                write_synced(tmp, self.path.read_bytes())
        else:
            write_synced(tmp, dump_state(disk.state))  # the journal's entries belong in it too
        tmp.replace(self.backup_path)


def _fingerprint(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)
