"""The state survives a writer killed (SIGKILL) at random moments: never corrupt, never behind."""

from __future__ import annotations

import multiprocessing
import random
import signal
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection

from reconciler.state.model import Event, ScheduleCreated, ScheduleForgotten, State, apply_event
from reconciler.state.store import StateStore
from tests.support.postgres import Backend, open_store, spec_of

AT = datetime(2025, 12, 1, 9, tzinfo=UTC)
KILLS = 40
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload([__name__, "reconciler.state.store", "reconciler.state.pg"])


def event_for(serial: int) -> Event:
    """The event that brings the state to `serial`: every version is known in advance."""
    name = f"s{serial % 7}"
    # Sizes vary; a few big entries make a kill inside a journal write (a torn tail) likely.
    pad = 2_000_000 if serial % 13 == 0 else serial * 37 % 20_000
    if serial % 5 == 0:
        return ScheduleForgotten(name=name)
    return ScheduleCreated(
        name=name,
        plan_id="p",
        schedule_id=f"id{serial}",
        body={"n": serial, "pad": "x" * pad},
        digest="sha256:x",
        trigger_kind="intelligent",
        at=AT,
    )


def version(lineage: str, serial: int) -> State:
    state = State(lineage=lineage)
    for n in range(1, serial + 1):
        state = apply_event(state, event_for(n))
    return state


def writer(spec: str, progress: Connection, seed: int) -> None:
    """Append and compact forever; report each acknowledged serial on the `progress` pipe."""
    rng = random.Random(seed)
    store = open_store(spec)
    with store.lock("crash test writer"):
        state = store.load()
        while True:
            events = [event_for(state.serial + i) for i in range(1, rng.randint(1, 3) + 1)]
            if rng.random() < 0.2:
                for event in events:
                    state = apply_event(state, event)
                store.write(state)
            else:
                state = store.append(state, events)
            progress.send(state.serial)


def run_and_kill(spec: str, seed: int, delay: float) -> int:
    """Run a writer, SIGKILL it `delay` s after its first write; return the last serial it acked.

    The forkserver (one clean, single-threaded process, modules preloaded) makes each writer cheap
    to start without forking pytest itself, whose other threads could deadlock a forked child.
    """
    read_end, write_end = CONTEXT.Pipe(duplex=False)
    process = CONTEXT.Process(target=writer, args=(spec, write_end, seed), daemon=True)
    process.start()
    write_end.close()
    # Waiting for a first write keeps the test meaningful on a loaded machine.
    assert read_end.poll(timeout=60), "the writer made no write: see its traceback"
    acknowledged: int = read_end.recv()
    time.sleep(delay)
    process.kill()
    process.join(timeout=60)
    assert process.exitcode == -signal.SIGKILL, "the writer stopped by itself: see its traceback"
    while read_end.poll():
        try:
            acknowledged = read_end.recv()
        except (EOFError, OSError):  # the last message may be cut short by the kill
            break
    read_end.close()
    return acknowledged


def test_a_killed_writer_leaves_a_valid_state_holding_everything_it_acknowledged(
    backend: Backend,
) -> None:
    path = backend.root / "state" / "default.json"
    rng = random.Random(4)
    kills = KILLS if backend.kind == "file" else KILLS // 2  # each PostgreSQL kill costs more
    for attempt in range(kills):
        acknowledged = run_and_kill(spec_of(backend), seed=attempt, delay=rng.uniform(0.0, 0.05))
        store = backend.store()
        state = store.load()
        assert state == version(state.lineage, state.serial)
        assert state.serial >= acknowledged
        backup = path.with_name("default.json.backup")
        if backup.exists():
            kept = StateStore(backup).load()
            assert kept == version(kept.lineage, kept.serial)
        for entry in store.history():  # every kept snapshot is a whole, earlier state
            assert store.load_serial(entry.serial) == version(state.lineage, entry.serial)
    assert state.serial >= kills  # each writer's first write was acknowledged, so it is there
