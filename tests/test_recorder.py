"""The group-commit recorder: durable before return, ordered, batched, failures surface."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from reconciler.state.model import Event, PlanUpserted, State, apply_event
from reconciler.state.recorder import Recorder

AT = datetime(2025, 12, 1, tzinfo=UTC)


def _event(i: int) -> PlanUpserted:
    return PlanUpserted(plan_id=f"p{i}", description="d", at=AT)


def test_record_returns_after_append_and_batches_concurrent_events() -> None:
    written: list[list[str]] = []
    gate = threading.Event()

    def append(state: State, events: Sequence[Event]) -> State:
        gate.wait(timeout=5)
        written.append([e.plan_id for e in events if isinstance(e, PlanUpserted)])
        for event in events:
            state = apply_event(state, event)
        return state

    async def scenario() -> Recorder:
        recorder = Recorder(State.new(), append)
        first = asyncio.create_task(recorder.record(_event(0)))
        await asyncio.sleep(0.01)  # the first write is now in flight, blocked on the gate
        rest = [asyncio.create_task(recorder.record(_event(i))) for i in range(1, 6)]
        await asyncio.sleep(0.01)
        assert not first.done()  # not durable yet, so not returned yet
        gate.set()
        await asyncio.gather(first, *rest)
        return recorder

    recorder = asyncio.run(scenario())
    assert written == [["p0"], ["p1", "p2", "p3", "p4", "p5"]]
    assert recorder.writes == 2
    assert recorder.state.serial == 6
    assert sorted(recorder.state.plans) == [f"p{i}" for i in range(6)]


def test_a_failed_write_fails_every_waiter() -> None:
    def append(state: State, events: Sequence[Event]) -> State:
        raise OSError("disk full")

    async def scenario() -> None:
        recorder = Recorder(State.new(), append)
        results = await asyncio.gather(
            recorder.record(_event(0)), recorder.record(_event(1)), return_exceptions=True
        )
        assert [type(r) for r in results] == [OSError, OSError]
        with pytest.raises(OSError, match="disk full"):  # and nothing after it either
            await recorder.record(_event(2))

    asyncio.run(scenario())
