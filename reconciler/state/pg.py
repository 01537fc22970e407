"""The PostgreSQL state backend: one database, many states, an advisory lock each. Not pure.

The only home of psycopg (the `[postgres]` extra). Each state has a key (project, environment,
AppKey fingerprint); its rows are a head (`reconcile_states`: serial, lineage, the snapshot it is
built on), every snapshot ever written (`reconcile_snapshots`: the history), the journal since
the last snapshot (`reconcile_journal`) and the lock holder's info (`reconcile_locks`).

The guarantees are the file store's (reconciler.state.backend):
- an append is one transaction, committed (WAL-synced) before `append` returns;
- a compaction is one transaction: the new snapshot row, the head moved, the journal emptied;
  older snapshots stay;
- the lock is a session-level advisory lock on a connection held for the whole command; every
  write goes through that same connection and checks, inside its transaction, that the lock is
  still held. If the server restarts or the connection drops, the lock is gone and so is every
  later write: the run stops, and the rerun resumes from the committed journal.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from reconciler.errors import ConfigError, StateError, StateLockedError
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
from reconciler.state.lock import LockHolder, locked_message, wait_for
from reconciler.state.model import Event, State, apply_event

if TYPE_CHECKING:
    import psycopg

EXTRA = "engagelab-reconcile[postgres]"
SCHEMA_VERSION = 1
# One advisory lock id for schema migrations, distinct from every state's (those are hashes).
_MIGRATION_LOCK = 0x7265636F6E63  # "reconc"
_MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE reconcile_states (
        key text PRIMARY KEY,
        project text NOT NULL,
        environment text NOT NULL,
        app_key_fingerprint text NOT NULL,
        lineage text NOT NULL,
        serial bigint NOT NULL,
        snapshot_serial bigint NOT NULL,
        base_url text,
        moved_to jsonb,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE reconcile_snapshots (
        key text NOT NULL REFERENCES reconcile_states (key) ON DELETE CASCADE,
        serial bigint NOT NULL,
        lineage text NOT NULL,
        body bytea NOT NULL,  -- the snapshot JSON, zlib-compressed
        written_at timestamptz NOT NULL DEFAULT now(),
        run text NOT NULL DEFAULT '',
        PRIMARY KEY (key, serial)
    );
    ALTER TABLE reconcile_snapshots ALTER COLUMN body SET STORAGE EXTERNAL;
    CREATE TABLE reconcile_journal (
        key text NOT NULL REFERENCES reconcile_states (key) ON DELETE CASCADE,
        serial bigint NOT NULL,
        entry bytea NOT NULL,
        written_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (key, serial)
    );
    CREATE TABLE reconcile_locks (
        key text PRIMARY KEY,
        holder jsonb NOT NULL,
        backend_pid integer NOT NULL,
        since timestamptz NOT NULL DEFAULT now()
    );
    """,
)
assert len(_MIGRATIONS) == SCHEMA_VERSION
# Snapshots are compressed by us, not by TOAST (hence STORAGE EXTERNAL): 29 MB of JSON for
# 10,000 schedules become 1.2 MB, so a load fetches 25 times less, where fetching the raw bytes
# took 0.13 s (bench/bench_store.py). Level 1: 0.08 s to compress and 0.07 s to decompress
# those 29 MB, against 0.24 s and 0.03 s at zlib's default 6, which slowed apply's final write.
_ZLIB_LEVEL = 1


@dataclass(frozen=True, slots=True)
class PgLocation:
    """Which state in which database: the connection string (a secret) and the key's parts."""

    url: str
    url_env: str  # the variable it came from, for messages (the URL itself is never shown)
    project: str
    environment: str
    app_key_fingerprint: str

    @property
    def key(self) -> str:
        return f"{self.project}/{self.environment}/{self.app_key_fingerprint}"


@dataclass
class _Head:
    state: State
    serial: int  # the head's serial, as committed
    exists: bool


def lock_id(key: str) -> int:
    """The advisory lock id of a state: 64 bits of sha256, signed as PostgreSQL's bigint is."""
    digest = hashlib.sha256(b"reconcile-state:" + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def migrate(url: str, url_env: str) -> tuple[int, int]:
    """Bring the database's schema up to date; return (version before, version now)."""
    _require_driver(url_env)
    import psycopg

    with _connect(url, url_env) as conn:
        try:
            return _migrate(conn, url_env)
        except psycopg.Error as error:
            raise StateError(
                f"could not migrate the state database (${url_env}): {_reason(error, url)}; "
                "nothing was changed"
            ) from None


class PgStateStore:
    """One state in a PostgreSQL database (see the module docstring)."""

    def __init__(self, location: PgLocation) -> None:
        self.location = location
        self.kind: BackendKind = "postgres"
        self.name = f"postgresql state {location.key} (${location.url_env})"
        self.journal_name = f"the journal of {self.name}"
        self.notices: list[str] = []
        self.previous_holder: LockHolder | None = None
        self._lock_id = lock_id(location.key)
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False
        self._backend_pid: int | None = None
        self._head: _Head | None = None
        self._broken: str | None = None

    # --- connection and lock ----------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._broken is not None:
            raise StateError(self._broken)
        if self._conn is None or self._conn.closed:
            if self._held:  # the session that held the lock is gone, and the lock with it
                raise StateError(self._lost())
            conn = _connect(self.location.url, self.location.url_env)
            try:
                _migrate(conn, self.location.url_env)
            except BaseException as error:
                conn.close()
                import psycopg

                if isinstance(error, psycopg.Error):
                    reason = _reason(error, self.location.url)
                    raise StateError(
                        f"could not prepare the state database (${self.location.url_env}) for "
                        f"{self.name} ({reason}); nothing was changed. Run the command again, or "
                        "`reconcile state init-backend` with a role that may create tables"
                    ) from None
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def exists(self) -> bool:
        with self._query() as conn:
            row = conn.execute(
                "SELECT 1 FROM reconcile_states WHERE key = %s", (self.location.key,)
            ).fetchone()
        return row is not None

    @contextmanager
    def lock(self, command: str, *, timeout: float = 0.0) -> Iterator[None]:
        """Hold the state's advisory lock for the block; StateLockedError names a live holder.

        A session-level lock: if this process dies, its connection closes and the server
        releases the lock. Holder info a dead holder left is reported in `notices`.
        """
        if self._held:
            raise StateLockedError(f"{self.name} is already locked by this process")
        with self._errors("lock"), _closed_on_error(self):
            conn = self._connection()
            if self._session_holds(conn):
                # pg_try_advisory_lock would succeed again on a session another client shares
                # (a pooler in transaction mode): that is someone else's lock, not ours.
                raise StateLockedError(
                    f"{self.name} is locked on this very database session by another client: "
                    "is the connection string a pooler in transaction mode (pgbouncer, port "
                    "6543)? Use a direct connection or session pooling"
                )

            def take() -> bool:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_id,)).fetchone()
                return bool(row and row[0])

            wait_for(take, timeout, lambda: self._busy(conn, timeout=timeout))
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()
            self._backend_pid = pid[0] if pid else None
            stale = self._holder(conn)
            holder = LockHolder.me(command)
            conn.execute(
                "INSERT INTO reconcile_locks (key, holder, backend_pid) "
                "VALUES (%s, %s, pg_backend_pid()) ON CONFLICT (key) DO UPDATE "
                "SET holder = EXCLUDED.holder, backend_pid = EXCLUDED.backend_pid, since = now()",
                (self.location.key, holder.model_dump_json()),
            )
            self._held = True
        self.previous_holder = stale
        if stale is not None:
            self.notices.append(
                f"the previous holder of the lock, {stale.describe()}, did not finish"
            )
        try:
            yield
        finally:
            self._held = False
            self._release(conn)
            self.close()

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        _require_driver(self.location.url_env)
        import psycopg

        try:
            conn.execute("DELETE FROM reconcile_locks WHERE key = %s", (self.location.key,))
            conn.execute("SELECT pg_advisory_unlock(%s)", (self._lock_id,))
        except psycopg.Error:
            # The session is gone, and its lock with it; what it left is reported as stale.
            self.close()

    def unlock(self) -> LockHolder | None:
        """`state unlock`: clear the info a gone holder left; StateLockedError while it lives."""
        with self._query() as conn:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_id,)).fetchone()
            if not (row and row[0]):
                raise self._busy(conn, unlock_hint=True)
            try:
                stale = self._holder(conn)
                conn.execute("DELETE FROM reconcile_locks WHERE key = %s", (self.location.key,))
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (self._lock_id,))
        return stale

    def _holder(self, conn: psycopg.Connection[Any]) -> LockHolder | None:
        row = conn.execute(
            "SELECT holder FROM reconcile_locks WHERE key = %s", (self.location.key,)
        ).fetchone()
        if row is None:
            return None
        return LockHolder.model_validate(row[0])

    def _busy(
        self, conn: psycopg.Connection[Any], *, unlock_hint: bool = False, timeout: float = 0.0
    ) -> Exception:
        holder = self._holder(conn)
        who = holder.describe() if holder else "another process (it left no holder info)"
        row = conn.execute(
            "SELECT backend_pid FROM reconcile_locks WHERE key = %s", (self.location.key,)
        ).fetchone()
        if row is not None:
            who += (
                f", on database session {row[0]} (if that runner's machine is gone, the server "
                f"drops the session within a minute; a DBA can end it at once with "
                f"SELECT pg_terminate_backend({row[0]}))"
            )
        return StateLockedError(locked_message(self.name, who, unlock_hint, timeout))

    # --- reading ----------------------------------------------------------------------------

    def load(self) -> State:
        """The recorded state: the current snapshot plus the journal. No row: a new state."""
        head = self._read(allow_moved=False)
        self._head = head
        return head.state

    def _read(self, *, allow_moved: bool) -> _Head:
        key = self.location.key
        with self._query() as conn, conn.transaction():
            row = conn.execute(
                "SELECT lineage, serial, snapshot_serial, moved_to FROM reconcile_states "
                "WHERE key = %s",
                (key,),
            ).fetchone()
            if row is None:
                return _Head(State.new(), 0, exists=False)
            lineage, serial, snapshot_serial, moved = row
            if moved is not None and not allow_moved:
                raise StateError(moved_message(self.name, Moved.model_validate(moved)))
            body = conn.execute(
                "SELECT body FROM reconcile_snapshots WHERE key = %s AND serial = %s",
                (key, snapshot_serial),
                binary=True,
            ).fetchone()
            lines = [
                bytes(line)
                for (line,) in conn.execute(
                    "SELECT entry FROM reconcile_journal WHERE key = %s AND serial > %s "
                    "ORDER BY serial",
                    (key, snapshot_serial),
                    binary=True,
                )
            ]
        if body is None:
            raise StateError(
                f"{self.name} has no snapshot at serial {snapshot_serial}, which its head names; "
                f"it was left untouched. {self._remedy()}"
            )
        state = self._parse(body[0], self.name)
        if state.lineage != lineage or state.serial != snapshot_serial:
            raise StateError(
                f"{self.name}: the snapshot (lineage {state.lineage}, serial {state.serial}) is "
                f"not the one its head names (lineage {lineage}, serial {snapshot_serial}); it "
                f"was left untouched. {self._remedy()}"
            )
        state, _ = replay(state, lines, self._bad_journal, torn_tail_possible=False)
        if state.serial != serial:
            raise self._bad_journal(
                len(lines), f"the entries end at serial {state.serial}, the head says {serial}"
            )
        bound = state.target
        if bound is not None and bound.app_key_fingerprint != self.location.app_key_fingerprint:
            raise StateError(
                f"{self.name} holds a state bound to AppKey {bound.app_key_fingerprint}, not "
                f"{self.location.app_key_fingerprint}, which its key names; it was left "
                "untouched. Someone copied rows by hand: restore them, then run the command again"
            )
        return _Head(state, serial, exists=True)

    def history(self) -> list[HistoryEntry]:
        with self._query() as conn, conn.transaction():
            head = conn.execute(
                "SELECT snapshot_serial FROM reconcile_states WHERE key = %s",
                (self.location.key,),
            ).fetchone()
            rows = conn.execute(
                "SELECT serial, lineage, written_at, run FROM reconcile_snapshots "
                "WHERE key = %s ORDER BY serial",
                (self.location.key,),
            ).fetchall()
        current = head[0] if head else None
        return [
            HistoryEntry(
                serial=serial,
                lineage=lineage,
                written_at=written_at.astimezone(UTC),
                run=run,
                current=serial == current,
            )
            for serial, lineage, written_at, run in rows
        ]

    def load_serial(self, serial: int) -> State:
        """A kept snapshot, read on its own: the current state may be unreadable (that is when
        an earlier serial is wanted)."""
        with self._query() as conn, conn.transaction():
            row = conn.execute(
                "SELECT body FROM reconcile_snapshots WHERE key = %s AND serial = %s",
                (self.location.key, serial),
                binary=True,
            ).fetchone()
            head = conn.execute(
                "SELECT serial FROM reconcile_states WHERE key = %s", (self.location.key,)
            ).fetchone()
        if row is not None:
            return self._parse(row[0], f"{self.name} serial {serial}")
        if head is not None and head[0] == serial:
            return self.load()  # the current state, journal included
        have = ", ".join(str(entry.serial) for entry in self.history()) or "none"
        current = f", and the current state, serial {head[0]}" if head else ""
        raise StateError(
            f"serial {serial} is not kept in {self.name} (kept: {have}{current}); "
            "`reconcile state history` lists them"
        )

    def replace_unreadable(self, kept: State, *, run: str = "") -> State:
        """`state restore --force`: make `kept` current again, as a new serial, when the current
        state cannot be read (so load() cannot give the state to write over). Needs the lock."""
        if not self._held:
            raise RuntimeError("state writes need the lock: use `with store.lock(command):`")
        self._check_bound(kept)
        with self._write("restore a snapshot") as conn, conn.transaction():
            self._check_lock(conn)
            row = conn.execute(
                "SELECT serial, lineage FROM reconcile_states WHERE key = %s FOR UPDATE",
                (self.location.key,),
            ).fetchone()
            if row is None or row[1] != kept.lineage:
                raise StateError(
                    f"serial {kept.serial} is not of the state {self.name} holds; nothing was "
                    "written"
                )
            restored = kept.model_copy(update={"serial": row[0] + 1})
            self._put_snapshot(conn, restored, run)
        self._head = _Head(restored, restored.serial, exists=True)
        return restored

    def export(self) -> tuple[State | None, list[Entry]]:
        self._read(allow_moved=False)  # refuses what load() refuses
        key = self.location.key
        with self._query() as conn, conn.transaction():
            row = conn.execute(
                "SELECT snapshot_serial FROM reconcile_states WHERE key = %s", (key,)
            ).fetchone()
            if row is None:
                return None, []
            body = conn.execute(
                "SELECT body FROM reconcile_snapshots WHERE key = %s AND serial = %s",
                (key, row[0]),
                binary=True,
            ).fetchone()
            lines = conn.execute(
                "SELECT entry FROM reconcile_journal WHERE key = %s AND serial > %s "
                "ORDER BY serial",
                (key, row[0]),
                binary=True,
            ).fetchall()
        assert body is not None  # _read checked it, in a transaction of its own, under the lock
        snapshot = self._parse(body[0], self.name)
        return snapshot, [Entry.model_validate_json(bytes(line)) for (line,) in lines]

    # --- writing ----------------------------------------------------------------------------

    def append(self, state: State, events: Sequence[Event]) -> State:
        """Record `events` in one committed transaction and return the state after them."""
        head = self._writable(state)
        if state.serial != head.state.serial:
            raise RuntimeError("append() needs the state last loaded or returned")
        if not events:
            return state
        new, entries = entries_for(state, events)
        self._check_bound(new)
        key = self.location.key
        with self._write("record an outcome") as conn:
            if not head.exists:
                with conn.transaction():
                    self._check_head(conn, head)
                    self._insert_head(conn, state, run="")
                head = _Head(state, state.serial, exists=True)
            # Pipelined: the check, the inserts and the update go out together and come back
            # with the commit, one round trip. A failed check raises before the commit, so
            # the transaction, inserts included, is rolled back.
            with conn.pipeline(), conn.transaction():
                self._check_head(conn, head)
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO reconcile_journal (key, serial, entry) VALUES (%s, %s, %s)",
                        [(key, entry.serial, dump_entry(entry)) for entry in entries],
                    )
                conn.execute(
                    "UPDATE reconcile_states SET serial = %s, updated_at = now() WHERE key = %s",
                    (new.serial, key),
                )
        self._head = _Head(new, new.serial, exists=True)
        return new

    def write(self, state: State, *, run: str = "") -> None:
        """A new snapshot (the previous ones stay, as history) and an empty journal."""
        head = self._writable(state)
        older = state.serial < head.state.serial
        if older or (state.serial == head.state.serial and state != head.state):
            raise RuntimeError("write() of a changed state needs a higher serial")
        self._check_bound(state)
        with self._write("write a snapshot") as conn, conn.transaction():
            self._check_head(conn, head)
            if not head.exists:
                self._insert_head(conn, state, run=run)
            else:
                self._put_snapshot(conn, state, run)
        self._head = _Head(state, state.serial, exists=True)

    compact = write

    def kept_previous(self) -> str:
        return f"the history of {self.name} (`reconcile state history`)"

    def adopt(self, snapshot: State, entries: Sequence[Entry], *, run: str = "") -> None:
        if not self._held:
            raise RuntimeError("state writes need the lock: use `with store.lock(command):`")
        final = snapshot
        for entry in entries:
            final = apply_event(final, entry.event)
        self._check_bound(final)
        mine = self._read(allow_moved=True)
        last = entries[-1].serial if entries else snapshot.serial
        refused = refuse_adopt(self.name, mine.state if mine.exists else None, snapshot, last)
        if refused is not None:
            raise StateError(refused)
        key = self.location.key
        with self._write("copy the state") as conn, conn.transaction():
            self._check_head(conn, mine)
            if not mine.exists:
                self._insert_head(conn, snapshot, run=run)
            else:
                self._put_snapshot(conn, snapshot, run)
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO reconcile_journal (key, serial, entry) VALUES (%s, %s, %s)",
                    [(key, entry.serial, dump_entry(entry)) for entry in entries],
                )
            conn.execute(
                "UPDATE reconcile_states SET serial = %s, moved_to = NULL WHERE key = %s",
                (last, key),
            )
        self._head = None  # load() again to use it

    def mark_moved(self, moved: Moved) -> None:
        if not self._held:
            raise RuntimeError("state writes need the lock: use `with store.lock(command):`")
        with self._write("mark the state as moved") as conn, conn.transaction():
            self._check_lock(conn)
            conn.execute(
                "UPDATE reconcile_states SET moved_to = %s WHERE key = %s",
                (moved.model_dump_json(), self.location.key),
            )

    def _check_bound(self, state: State) -> None:
        """Nothing is written under this key for a state applied with another AppKey."""
        bound = state.target
        if bound is not None and bound.app_key_fingerprint != self.location.app_key_fingerprint:
            raise StateError(
                f"this state was applied with AppKey {bound.app_key_fingerprint}, but "
                f"{self.name} is keyed by AppKey {self.location.app_key_fingerprint} (the one "
                "in the environment now): wrong credentials for this environment? Nothing was "
                "written"
            )

    def _writable(self, state: State) -> _Head:
        if not self._held:
            raise RuntimeError("state writes need the lock: use `with store.lock(command):`")
        if self._broken is not None:
            raise StateError(self._broken)
        head = self._head
        if head is None or state.lineage != head.state.lineage:
            raise RuntimeError("write the state this store loaded, after load()")
        return head

    def _session_holds(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether the server session behind `conn` holds this state's advisory lock."""
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = pg_backend_pid() AND objsubid = 1 "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            (self._lock_id,),
        ).fetchone()
        return bool(row and row[0])

    def _check_lock(self, conn: psycopg.Connection[Any]) -> None:
        """The lock is still held, by the very server session that took it."""
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        self._verify_lock(row[0] if row else None, self._session_holds(conn))

    def _verify_lock(self, pid: int | None, holds: bool) -> None:
        if pid != self._backend_pid:
            raise StateError(
                f"{self._lost()} (this write reached another database session than the one "
                "holding the lock: a pooler in transaction mode? Use a direct connection or "
                "session pooling)"
            )
        if not holds:
            raise StateError(self._lost())

    def _check_head(self, conn: psycopg.Connection[Any], head: _Head) -> None:
        """Inside the write's transaction: the lock is still held by the very server session
        that took it, and the head is unchanged (row-locked until the commit). One statement:
        a journal write is one round trip plus its commit."""
        row = conn.execute(
            "SELECT pg_backend_pid(), EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted AND pid = pg_backend_pid() AND objsubid = 1 "
            "AND ((classid::bigint << 32) | objid::bigint) = %s), h.serial, h.lineage "
            "FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT serial, lineage FROM "
            "reconcile_states WHERE key = %s FOR UPDATE) AS h ON true",
            (self._lock_id, self.location.key),
        ).fetchone()
        assert row is not None
        pid, holds, serial, lineage = row
        self._verify_lock(pid, holds)
        now = None if serial is None else (serial, lineage)
        expected = (head.serial, head.state.lineage) if head.exists else None
        if now != expected:
            raise StateError(
                f"{self.name} changed since it was read (another process wrote it); "
                "run the command again"
            )

    def _insert_head(self, conn: psycopg.Connection[Any], state: State, *, run: str) -> None:
        where = self.location
        conn.execute(
            "INSERT INTO reconcile_states (key, project, environment, app_key_fingerprint, "
            "lineage, serial, snapshot_serial, base_url) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                where.key,
                where.project,
                where.environment,
                where.app_key_fingerprint,
                state.lineage,
                state.serial,
                state.serial,
                state.target.base_url if state.target else None,
            ),
        )
        self._insert_snapshot(conn, state, run)

    def _put_snapshot(self, conn: psycopg.Connection[Any], state: State, run: str) -> None:
        self._insert_snapshot(conn, state, run)
        key = self.location.key
        conn.execute(
            "UPDATE reconcile_states SET lineage = %s, serial = %s, snapshot_serial = %s, "
            "base_url = %s, updated_at = now() WHERE key = %s",
            (
                state.lineage,
                state.serial,
                state.serial,
                state.target.base_url if state.target else None,
                key,
            ),
        )
        conn.execute("DELETE FROM reconcile_journal WHERE key = %s", (key,))

    def _insert_snapshot(self, conn: psycopg.Connection[Any], state: State, run: str) -> None:
        """Add a snapshot to the history. A kept row is never rewritten: one already there at
        this serial must hold this very state (a compaction with nothing new, a copy moved back)."""
        body = zlib.compress(dump_state(state), _ZLIB_LEVEL)
        inserted = conn.execute(
            "INSERT INTO reconcile_snapshots (key, serial, lineage, body, run) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key, serial) DO NOTHING",
            (self.location.key, state.serial, state.lineage, body, run),
        ).rowcount
        if inserted:
            return
        row = conn.execute(
            "SELECT body FROM reconcile_snapshots WHERE key = %s AND serial = %s",
            (self.location.key, state.serial),
            binary=True,
        ).fetchone()
        if row is None or bytes(row[0]) != body:
            raise StateError(
                f"{self.name} already keeps another snapshot at serial {state.serial}; history "
                "is never rewritten, so nothing was written"
            )

    # --- errors -----------------------------------------------------------------------------

    @contextmanager
    def _query(self) -> Iterator[psycopg.Connection[Any]]:
        """The lock's connection while it is held; else one for this read only (no connection
        outlives a lockless read)."""
        with self._errors("read"):
            if self._held:
                yield self._connection()
                return
            conn = self._connection()
            try:
                yield conn
            finally:
                self.close()

    @contextmanager
    def _write(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """A write; any failure leaves its outcome unknown, so nothing more is recorded."""
        _require_driver(self.location.url_env)
        import psycopg

        conn = self._connection()
        try:
            yield conn
        except StateError as error:
            self._broken = str(error)
            raise
        except psycopg.Error as error:
            self._broken = (
                f"could not {what} in {self.name} ({_reason(error, self.location.url)}); "
                "nothing more can be recorded in this run. Check the database, then run the "
                "command again: it resumes from what was committed"
            )
            self.close()
            raise StateError(self._broken) from None

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        _require_driver(self.location.url_env)
        import psycopg

        try:
            yield
        except psycopg.Error as error:
            self.close()
            raise StateError(
                f"could not {what} {self.name} ({_reason(error, self.location.url)}); "
                "check the database and the connection string, then run the command again"
            ) from None

    def _lost(self) -> str:
        return (
            f"the connection to {self.name} was lost, and the lock with it (a server restart?); "
            "nothing more can be recorded in this run. Run the command again: it resumes from "
            "what was committed"
        )

    def _parse(self, stored: bytes, name: str) -> State:
        """A snapshot row's body: zlib-compressed snapshot JSON."""
        try:
            data = zlib.decompress(stored)
        except zlib.error as error:
            raise StateError(
                f"{name} is not a valid compressed snapshot ({error}): it is truncated or "
                f"corrupt. It was left untouched. {self._remedy()}"
            ) from None
        return parse_snapshot(data, name, self._remedy())

    def _remedy(self) -> str:
        return (
            "Restore an earlier serial (`reconcile state history`, then `reconcile state "
            "restore --serial N --force`), then run the command again."
        )

    def _bad_journal(self, line: int, why: str) -> StateError:
        return StateError(
            f"{self.journal_name}, entry {line}: {why}. It was left untouched; restore an "
            "earlier serial (`reconcile state restore --serial N`), then run `reconcile refresh`."
        )


@contextmanager
def _closed_on_error(store: PgStateStore) -> Iterator[None]:
    try:
        yield
    except BaseException:
        store.close()
        raise


def _require_driver(url_env: str) -> None:
    """psycopg must be importable; else a clear error naming the extra that installs it."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"the state is in PostgreSQL (${url_env}), which needs psycopg: pip install '{EXTRA}'"
        ) from None


def _connect(url: str, url_env: str) -> psycopg.Connection[Any]:
    _require_driver(url_env)
    import psycopg

    try:
        conn = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=10,
            application_name="reconcile",
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
    except psycopg.Error as error:
        raise StateError(
            f"cannot connect to the PostgreSQL state database (${url_env}): "
            f"{_reason(error, url)}. Check that the server is up and ${url_env} is right"
        ) from None
    except ValueError:
        raise ConfigError(
            f"${url_env} is not a PostgreSQL connection string (its value is not shown); use "
            "postgresql://USER@HOST:PORT/DATABASE, the password in PGPASSWORD or ~/.pgpass"
        ) from None
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        _configure_session(conn, url_env)
    except BaseException:
        conn.close()
        raise
    return conn


# Per session, whatever the database or role sets. synchronous_commit: a commit returns only once
# its WAL is on disk (off, an acknowledged intent could vanish in a server crash and the call it
# announced be made twice). The server-side keepalives and connection check notice a runner
# whose host died within a minute, so its lock does not outlive it by the kernel's two hours; no
# idle timeout may drop a session that holds the lock while the run waits on EngageLab.
_SESSION_SETTINGS: tuple[tuple[str, str], ...] = (
    ("synchronous_commit", "on"),
    ("idle_session_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("tcp_keepalives_idle", "10"),
    ("tcp_keepalives_interval", "5"),
    ("tcp_keepalives_count", "3"),
    ("client_connection_check_interval", "10000"),
)
_REQUIRED_SETTINGS = frozenset({"synchronous_commit"})


def _configure_session(conn: psycopg.Connection[Any], url_env: str) -> None:
    import psycopg

    for name, value in _SESSION_SETTINGS:
        try:
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        except psycopg.errors.UndefinedObject:  # an older server without it
            if name in _REQUIRED_SETTINGS:
                raise
    row = conn.execute("SELECT current_setting('fsync')").fetchone()
    if row is not None and row[0] != "on":
        raise StateError(
            f"the state database (${url_env}) runs with fsync = off: a commit there is not "
            "durable, so a recorded intent could vanish in a crash and its push be sent twice. "
            "Use a server with fsync = on"
        )


def _migrate(conn: psycopg.Connection[Any], url_env: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT version FROM reconcile_schema"
        if _has_schema_table(conn)
        else "SELECT NULL::integer WHERE false"
    ).fetchone()
    before = row[0] if row else 0
    if before == SCHEMA_VERSION:
        return before, before
    # The lock is taken before the transaction starts: its snapshot must be taken after the
    # wait, or a waiter would not see the schema the first one created, and create it again.
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        return _migrate_locked(conn, url_env, before)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


def _migrate_locked(conn: psycopg.Connection[Any], url_env: str, before: int) -> tuple[int, int]:
    with conn.transaction():
        conn.execute("CREATE TABLE IF NOT EXISTS reconcile_schema (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM reconcile_schema").fetchone()
        current = row[0] if row else 0
        if current > SCHEMA_VERSION:
            raise StateError(
                f"the state database (${url_env}) has reconcile schema version {current}, newer "
                f"than this reconcile knows ({SCHEMA_VERSION}); upgrade reconcile. Nothing was "
                "changed"
            )
        for sql in _MIGRATIONS[current:]:
            conn.execute(sql.encode())  # our own constant DDL
        if row is None:
            conn.execute("INSERT INTO reconcile_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
        else:
            conn.execute("UPDATE reconcile_schema SET version = %s", (SCHEMA_VERSION,))
    return before, SCHEMA_VERSION


def _has_schema_table(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('reconcile_schema') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _reason(error: Exception, url: str) -> str:
    """The server's or libpq's first line, with nothing of the connection string in it."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    for secret in _secrets_of(url):
        text = text.replace(secret, "***")
    return text


def _secrets_of(url: str) -> list[str]:
    """The connection string, the password of its user-info (up to the last @ before the host:
    a password may hold an unencoded @) and each piece of that, and a key=value password."""
    found = [url]
    match = re.search(r"://([^/?#]*)@", url)
    if match:
        password = match.group(1).partition(":")[2]  # the user name is not a secret
        found += [password, *password.split("@")]
    match = re.search(r"password\s*=\s*(\S+)", url)
    if match:
        found.append(match.group(1).strip("'\""))
    return sorted({secret for secret in found if len(secret) >= 3}, key=len, reverse=True)
