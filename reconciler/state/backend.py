"""What every state backend promises: one interface, the same guarantees. Pure (types only).

Two backends implement it: the file store (reconciler.state.store: `state/<env>.json` and its
journal, flock'ed) and PostgreSQL (reconciler.state.pg: rows, an advisory lock). The guarantees,
held by both and tested by the same contract tests (tests/test_store_contract.py):

- an `append` returns only once its events are durable (fsync, or a committed transaction);
- a snapshot `write` is atomic and keeps the previous snapshot;
- a state that cannot be trusted (corrupt, a newer version, moved away) is refused, and nothing
  is ever written over it;
- writes need the lock, held for the whole command, and released if the process dies;
- a write is refused when the state changed since this store read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from reconciler.state.codec import Entry
from reconciler.state.lock import LockHolder
from reconciler.state.model import Event, State

BackendKind = Literal["file", "postgres"]


class HistoryEntry(BaseModel):
    """One kept snapshot: its serial, when and by what run it was written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    serial: int
    lineage: str
    written_at: datetime | None
    run: str  # the command, host and CI run that wrote it ("" when not known)
    current: bool  # the snapshot the state is built on now


class Moved(BaseModel):
    """The mark `state migrate` leaves on its source: where the state went, and when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: str
    at: datetime
    lineage: str
    serial: int


class Store(Protocol):
    kind: BackendKind
    name: str  # how messages name this state: a path, or the database key
    journal_name: str  # where the outcomes of the current run are recorded
    notices: list[str]  # for the CLI to show: torn write recovered, stale lock
    previous_holder: LockHolder | None

    def exists(self) -> bool: ...

    def lock(self, command: str, *, timeout: float = 0.0) -> AbstractContextManager[None]: ...

    def unlock(self) -> LockHolder | None: ...

    def load(self) -> State: ...

    def append(self, state: State, events: Sequence[Event]) -> State: ...

    def write(self, state: State, *, run: str = "") -> None: ...

    def kept_previous(self) -> str:
        """Where the state before the last write is kept, for messages."""
        ...

    def history(self) -> list[HistoryEntry]: ...

    def load_serial(self, serial: int) -> State:
        """A kept snapshot, by serial (StateError naming what is kept when it is not)."""
        ...

    def replace_unreadable(self, kept: State, *, run: str = "") -> State:
        """Make a kept snapshot current again (as a new serial) over a current state that
        cannot be read; needs the lock. Returns the state written."""
        ...

    def export(self) -> tuple[State | None, list[Entry]]:
        """The snapshot and the journal entries after it, as stored (for `state migrate`)."""
        ...

    def adopt(self, snapshot: State, entries: Sequence[Entry], *, run: str = "") -> None:
        """Become a copy of another store's snapshot and journal; needs the lock. Refused when
        this store holds another lineage, or a later serial of the same one."""
        ...

    def mark_moved(self, moved: Moved) -> None:
        """Refuse every later use of this copy, naming where the state went; needs the lock."""
        ...


def refuse_adopt(name: str, mine: State | None, snapshot: State, last_serial: int) -> str | None:
    """Why a store holding `mine` must not adopt another copy ending at `last_serial`."""
    if mine is None or (mine.serial == 0 and not mine.schedules and not mine.plans):
        return None
    if mine.lineage != snapshot.lineage:
        return (
            f"{name} already holds another state (lineage {mine.lineage}, serial {mine.serial}; "
            f"the source is lineage {snapshot.lineage}): nothing was copied. Choose an empty "
            "target, or remove that state first if it is really unused"
        )
    if mine.serial > last_serial:
        return (
            f"{name} holds a later serial of this state ({mine.serial}) than the source "
            f"({last_serial}): nothing was copied; the target is the one to keep"
        )
    return None


def moved_message(name: str, moved: Moved) -> str:
    return (
        f"{name} was moved to {moved.to} on {moved.at:%Y-%m-%d %H:%M} UTC (serial "
        f"{moved.serial}) by `reconcile state migrate`; it is kept only as a record and was "
        "left untouched. Point the environment at the new backend in reconcile.toml, or move "
        "it back with `reconcile state migrate --to ...` from there"
    )
