"""The bytes of a state, shared by every backend: snapshot JSON and journal entries. Pure.

A snapshot is the `State` as sorted, indented JSON; a journal entry is one event with the serial
and lineage the state has once it is applied. `parse_snapshot` refuses what it cannot trust (a
corrupt or newer-version state); `replay` applies entries after a snapshot, stopping at a torn
last entry and refusing a gap, a foreign lineage or an unknown name.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pydantic_core
from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.errors import StateError
from reconciler.state.model import STATE_VERSION, Event, State, apply_event


class Entry(BaseModel):
    """One journal entry: the event and the serial the state has once it is applied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    serial: int
    lineage: str
    event: Event


def entries_for(state: State, events: Sequence[Event]) -> tuple[State, list[Entry]]:
    """The state after `events`, and the journal entries that record them."""
    new = state
    entries = []
    for event in events:
        new = apply_event(new, event)
        entries.append(Entry(serial=new.serial, lineage=new.lineage, event=event))
    return new, entries


def dump_entry(entry: Entry) -> bytes:
    return entry.model_dump_json().encode()


def dump_state(state: State) -> bytes:
    """The snapshot bytes: sorted keys, indent 2, UTF-8, trailing newline (diffs well in git)."""
    with gc_paused():
        return pydantic_core.to_json(_sorted(state.model_dump(mode="json")), indent=2) + b"\n"


def parse_snapshot(data: bytes, name: str, remedy: str) -> State:
    """The state in `data`, or a StateError naming `name` and saying what to do (`remedy`)."""
    try:
        with gc_paused(keep=True):
            state = State.model_validate_json(data)
    except ValidationError as error:
        version = _peek_version(data)
        if isinstance(version, int) and version > STATE_VERSION:
            raise newer_state(name, version) from None
        first = error.errors()[0]
        if first["type"] == "json_invalid":
            what = f"is not valid JSON ({first['msg']}): it is truncated or corrupt"
        else:
            where = ".".join(str(p) for p in first["loc"]) or "top level"
            what = f"is not a reconcile state file ({where}: {first['msg']})"
        raise StateError(f"{name} {what}. {remedy}") from None
    if state.version > STATE_VERSION:
        raise newer_state(name, state.version)
    if state.version < 1:
        raise StateError(f"{name} has an unknown state version {state.version}. {remedy}")
    return state


def newer_state(name: str, version: int) -> StateError:
    return StateError(
        f"{name} was written by a newer reconcile (state version {version}; this one reads "
        f"version {STATE_VERSION}); upgrade reconcile. It was left untouched."
    )


BadEntry = Callable[[int, str], StateError]  # (entry number, why) -> the error to raise


def replay(
    state: State, lines: Sequence[bytes], bad: BadEntry, *, torn_tail_possible: bool
) -> tuple[State, int]:
    """Apply the entries after the snapshot; return the state and how many entries were whole.

    `lines` are the entries in order. With `torn_tail_possible` (a file journal, which a crash
    can leave half-written), an unreadable last entry is dropped as never acknowledged.
    """
    base_serial = state.serial
    for number, line in enumerate(lines, start=1):
        try:
            entry = Entry.model_validate_json(line)
        except ValidationError as error:
            first = error.errors()[0]
            if torn_tail_possible and number == len(lines) and first["type"] == "json_invalid":
                return state, number - 1
            raise bad(number, f"unreadable entry ({first['msg']})") from None
        if entry.lineage != state.lineage:
            raise bad(
                number,
                f"it belongs to another state (lineage {entry.lineage}, the snapshot has "
                f"{state.lineage})",
            )
        if entry.serial <= base_serial:
            continue  # already in the snapshot: a compaction was cut short before the cleanup
        if entry.serial != state.serial + 1:
            raise bad(number, f"serial {entry.serial} follows {state.serial}: entries are missing")
        try:
            state = apply_event(state, entry.event)
        except KeyError as error:
            raise bad(number, f"it names unknown {error}") from None
    return state, len(lines)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _peek_version(data: bytes) -> object:
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    return parsed.get("version") if isinstance(parsed, dict) else None


@contextmanager
def gc_paused(*, keep: bool = False) -> Iterator[None]:
    """No cyclic-GC passes while building millions of acyclic objects (about half the time).

    With `keep`, the new objects go straight to the oldest generation (freeze + unfreeze), so the
    first collection afterwards does not walk them all again (~0.08 s more for 10k schedules).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if keep:
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()
