"""The emulator: a threaded HTTP/1.1 server on loopback around one locked store. Network I/O.

`Emulator` is the Python API used by tests and benchmarks; handler.py speaks HTTP for it.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import math
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from reconciler.emulator import persist
from reconciler.emulator.config import CallRecord, EmulatorConfig, FaultConfig, parse_answers
from reconciler.emulator.faults import FaultInjector, RateWindow, TokenBucket
from reconciler.emulator.handler import Handler, Server
from reconciler.emulator.routes import Reply, handle
from reconciler.emulator.store import Store

RATE_QUOTA_DEFAULT = 500  # [doc] requests per second per AppKey (create-push-api page)


class Emulator:
    """A local EngageLab-compatible API. Use as a context manager, or start() / stop()."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        token = base64.b64encode(f"{config.app_key}:{config.master_secret}".encode()).decode()
        self._expected_auth = f"Basic {token}".encode()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._late: set[threading.Timer] = set()  # "late" writes not landed yet; under _lock
        self._stopped = False
        self._init_state()
        if config.data_file is not None:
            persist.load(self._store, config.data_file)

    _now: datetime | None

    def _init_state(self) -> None:
        config = self.config
        self._store = Store(
            plan_quota=config.plan_quota, schedule_quota=config.schedule_quota, seed=config.seed
        )
        self.set_now(config.now)
        self._calls: list[CallRecord] = []
        self.faults = FaultInjector(config.faults, config.seed)
        self.bucket = TokenBucket(config.rate_limit) if config.rate_limit else None
        self.answers: frozenset[str] = config.answers
        quota = math.ceil(config.rate_limit) if config.rate_limit else RATE_QUOTA_DEFAULT
        self.window = RateWindow(quota)

    # --- lifecycle ----------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen and serve in a daemon thread; return the base URL."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopped = False
        handler = type("BoundHandler", (Handler,), {"emulator": self})
        self._server = Server((host, port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        server, self._server = self._server, None
        with self._lock:
            self._stopped = True  # a "late" write still arriving is not scheduled any more
            pending = self._cancel_late()
        self._join(pending)  # no write lands after stop()
        if server is None:
            return
        server.shutdown()
        server.close_connections()  # idle keep-alive connections would block server_close
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Emulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- control and inspection ---------------------------------------------------------
    def now(self) -> datetime:
        pinned = self._now
        return pinned if pinned is not None else datetime.now(UTC)

    def set_now(self, now: datetime | None) -> None:
        if now is not None and now.tzinfo is None:
            raise ValueError("the emulator clock needs an aware datetime")
        self._now = now

    def set_faults(self, faults: FaultConfig) -> None:
        self.faults.configure(faults)

    def set_answers(self, answers: frozenset[str]) -> None:
        """Switch the answer variants (config.ANSWER_VARIANTS) at runtime; reset() restores."""
        self.answers = parse_answers(answers)

    def calls(self) -> list[CallRecord]:
        with self._lock:
            return list(self._calls)

    def names(self, *, include_expired: bool = False) -> dict[str, int]:
        with self._lock:
            return self._store.names(self.now(), include_expired=include_expired)

    def reset(self) -> None:
        """Back to the configured start: empty account, no calls, configured faults and clock."""
        with self._lock:
            pending = self._cancel_late()
            self._init_state()
            self._save()
        self._join(pending)

    def edit_schedule(self, schedule_id: str, patch: Mapping[str, Any]) -> None:
        """Simulate a console edit (no API validation); KeyError if the id is unknown."""
        with self._lock:
            self._store.edit(schedule_id, patch, self.now())
            self._save()

    def delete_schedule(self, schedule_id: str) -> None:
        """Simulate a console deletion; KeyError if the id is unknown."""
        with self._lock:
            del self._store.schedules[schedule_id]
            self._save()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return persist.snapshot(self._store)

    # --- used by the handler ------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        return header is not None and hmac.compare_digest(header.encode(), self._expected_auth)

    def call(self, method: str, path: str, query: Mapping[str, str], raw: bytes) -> Reply:
        with self._lock:
            reply = handle(self._store, method, path, query, raw, self.now(), self.answers)
            if reply.applied:
                self._save()
            return reply

    def record(self, record: CallRecord) -> None:
        with self._lock:
            self._calls.append(record)

    def commit_later(
        self, seconds: float, record: CallRecord, query: Mapping[str, str], raw: bytes
    ) -> None:
        """Log `record` now (the fault:late answer) and make its write `seconds` later, under
        the lock, unless stop() or reset() comes first; the log entry then says if it landed."""
        with self._lock:
            self._calls.append(record)
            if self._stopped:
                return
            index = len(self._calls) - 1
            timer = threading.Timer(seconds, lambda: self._land(timer, index, record, query, raw))
            timer.daemon = True
            self._late.add(timer)
            timer.start()

    def _land(
        self,
        timer: threading.Timer,
        index: int,
        record: CallRecord,
        query: Mapping[str, str],
        raw: bytes,
    ) -> None:
        with self._lock:
            if timer not in self._late:
                return  # cancelled by stop() or reset() while waiting for the lock
            self._late.discard(timer)
            try:
                reply = handle(
                    self._store, record.method, record.path, query, raw, self.now(), self.answers
                )
            except Exception:  # an emulator bug: the write did not land
                return
            if reply.applied:
                self._save()
                self._calls[index] = dataclasses.replace(record, write_applied=True)

    def _cancel_late(self) -> set[threading.Timer]:
        """Cancel every pending "late" write; the caller holds the lock, then calls _join."""
        pending, self._late = self._late, set()
        for timer in pending:
            timer.cancel()
        return pending

    @staticmethod
    def _join(pending: set[threading.Timer]) -> None:
        current = threading.current_thread()
        for timer in pending:
            if timer is not current:
                timer.join(timeout=5)  # one waiting for the lock sees it is cancelled, returns

    def _save(self) -> None:
        if self.config.data_file is not None:
            persist.save(self._store, self.config.data_file)
