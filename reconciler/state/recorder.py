"""Durable, ordered recording of state events during an apply (group commit). Not pure: writes.

Concurrent apply tasks each `await recorder.record(...)`; events queued while a journal write is in
flight are written together by the next one (one fsync for many events). `record` returns only
once its events are durable, which is what lets an intent be trusted after a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from reconciler.state.model import Event, State

AppendFn = Callable[[State, Sequence[Event]], State]


class Recorder:
    def __init__(self, state: State, append: AppendFn) -> None:
        self._state = state
        self._append = append
        self._queue: list[tuple[Event, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self.writes = 0

    @property
    def state(self) -> State:
        return self._state

    @property
    def healthy(self) -> bool:
        """False after a failed write: what is on disk past the last good write is unknown."""
        return self._failure is None

    async def record(self, *events: Event) -> None:
        """Return when `events` are on disk, in order, after every event recorded before them."""
        if self._failure is not None:
            # After a failed write the journal's tail is unknown: nothing more may be recorded,
            # so no further call can be announced and made.
            raise self._failure
        loop = asyncio.get_running_loop()
        futures = []
        for event in events:
            future: asyncio.Future[None] = loop.create_future()
            self._queue.append((event, future))
            futures.append(future)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await asyncio.gather(*futures)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            events = [event for event, _ in batch]
            try:
                # The fsync runs in a thread so in-flight API calls keep moving meanwhile.
                self._state = await asyncio.to_thread(self._append, self._state, events)
                self.writes += 1
            except Exception as error:
                self._failure = error
                for _, future in [*batch, *self._queue]:
                    if not future.done():
                        future.set_exception(error)
                self._queue = []
                return
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
