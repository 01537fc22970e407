"""The HTTP request handler: parse, authenticate, rate-limit, inject faults, log, serialise.

Does network I/O. No API rule lives here (see store.py / validate.py); credentials are never
logged nor echoed. The control surface under /_emulator/ bypasses auth, faults, limits and log.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from reconciler import engagelab as api
from reconciler.emulator.config import GATEWAY_KINDS, CallRecord, FaultConfig, parse_answers
from reconciler.emulator.routes import (
    CODE_JP3_RATE_LIMITED,
    MUTATIONS,
    Reply,
    dump,
    error_reply,
)

if TYPE_CHECKING:
    from reconciler.emulator.server import Emulator

INSPECT_PREFIX = "/_emulator/"
MAX_REQUEST_BYTES = 1 << 20  # far above the 4000-byte push limit; stops runaway uploads


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops SYNs when a client opens many connections at once; the
    # kernel then retries after a full second, which looks like a slow server.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, conn: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            (self._open.add if is_open else self._open.discard)(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (killed, timed out) is normal here: stay quiet."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._open_lock:
            for conn in self._open:
                with contextlib.suppress(OSError):  # already closed by the peer
                    conn.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "EngageLabEmulator/1"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after a minute
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    emulator: Emulator
    server: Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):  # the peer went away; nothing left to flush
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the call log is the record, and it never holds headers."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header from the emulator's own clock (tests pin it), as EngageLab's
        servers send theirs: the client compares it with the local clock before writing."""
        if timestamp is None:
            timestamp = self.emulator.now().timestamp()
        return email.utils.formatdate(timestamp, usegmt=True)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:  # no endpoint answers PATCH: 405 / 21001 where a path exists
        self._serve()

    def _send(self, reply: Reply, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = MAX_REQUEST_BYTES + 1  # unreadable: refuse it like an oversized one
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        split = urlsplit(self.path)
        path, method = split.path, self.command
        raw = self._read_body()
        if raw is None:
            self._send(error_reply(path, 413, api.CODE_BAD_VALUE, "request too large"))
            return
        if path.startswith(INSPECT_PREFIX):
            self._send(_inspect(self.emulator, method, path, split.query, raw))
            return
        emu = self.emulator

        def done(reply: Reply, outcome: str, headers: Mapping[str, str] | None = None) -> None:
            # Logged before answering, so a client that has its answer also sees it in calls().
            emu.record(
                CallRecord(
                    method, path, split.query, reply.status, outcome, reply.applied, reply.code
                )
            )
            self._send(reply, {**emu.window.count(), **(headers or {})})

        if emu.bucket is not None and (wait := emu.bucket.take()) > 0:
            # [v3] 429 with code 2002 "Rate limit exceeded" (routes.CODE_JP3_RATE_LIMITED).
            reply = error_reply(path, 429, CODE_JP3_RATE_LIMITED, "Rate limit exceeded")
            seconds = str(max(1, math.ceil(wait)))
            done(reply, "ratelimited", {"Retry-After": seconds, "X-Rate-Limit-Reset": seconds})
            return
        if not emu.authorized(self.headers.get("Authorization")):
            reply = error_reply(path, 401, api.CODE_AUTH_FAILED, "authentication failed")
            done(reply, "unauthorized")
            return
        mutation = method in MUTATIONS
        fault = emu.faults.draw(method, path, mutation)
        if fault is not None and fault.kind == "late":
            # 504 at once; the write lands `seconds` later, after the client gave up on it.
            reply = _fault_reply(path, "504")
            record = CallRecord(
                method, path, split.query, reply.status, "fault:late", False, reply.code
            )
            emu.commit_later(fault.seconds, record, dict(parse_qsl(split.query)), raw)
            self._send(reply, emu.window.count())
            return
        if fault is not None and fault.kind not in ("slow", "lost"):
            done(_fault_reply(path, fault.kind), f"fault:{fault.kind}")
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
        try:
            reply = emu.call(method, path, dict(parse_qsl(split.query)), raw)
        except Exception as error:  # an emulator bug: answer 500 (not retryable) so it shows
            message = f"emulator bug: {type(error).__name__}"
            done(error_reply(path, 500, api.CODE_INTERNAL, message), "crash")
            return
        if fault is not None and fault.kind == "lost":
            # The write is made; the client only sees the connection drop with no answer.
            self.close_connection = True
            emu.record(CallRecord(method, path, split.query, 0, "fault:lost", reply.applied))
            return
        outcome = "fault:slow" if fault is not None else ("ok" if reply.status == 200 else "error")
        done(reply, outcome)


_GATEWAY_TEXT = {"408": "Request Timeout", "409": "Conflict", "499": "Client Closed Request"}


def _fault_reply(path: str, kind: str) -> Reply:
    if kind == "429":
        return error_reply(path, 429, api.CODE_RATE_LIMITED, "too many requests")
    if kind == "23008":
        return error_reply(path, 400, api.CODE_RATE_LIMITED, "request frequency exceeded")
    if kind in GATEWAY_KINDS:
        # As a proxy answers: a text page, no API code, so the client decides on the status.
        text = f"<html><body><h1>{kind} {_GATEWAY_TEXT[kind]}</h1></body></html>"
        return Reply(int(kind), text.encode(), content_type="text/html")
    return error_reply(path, int(kind), api.CODE_INTERNAL, "server error, try again")


def _inspect(emu: Emulator, method: str, path: str, query: str, raw: bytes) -> Reply:
    """The control surface: no auth, not logged, never faulted nor rate-limited."""
    name = path[len(INSPECT_PREFIX) :].rstrip("/")
    try:
        body: Any = json.loads(raw) if raw.strip() else {}
        if (method, name) == ("GET", "calls"):
            return Reply(200, dump({"calls": [asdict(c) for c in emu.calls()]}))
        if (method, name) == ("GET", "names"):
            every = dict(parse_qsl(query)).get("include_expired") in ("1", "true")
            return Reply(200, dump({"names": emu.names(include_expired=every)}))
        if (method, name) == ("POST", "reset"):
            emu.reset()
            return Reply(200, dump({"ok": True}))
        if (method, name) == ("POST", "faults"):
            emu.set_faults(FaultConfig.from_mapping(body))
            return Reply(200, dump({"ok": True}))
        if name == "answers" and method in ("GET", "POST"):
            # {"answers": "sdk"} or {"answers": ["upper-enums", ...]}; [] = documented shapes.
            if method == "POST":
                emu.set_answers(parse_answers(body.get("answers", ())))
            return Reply(200, dump({"answers": sorted(emu.answers)}))
        if name == "clock" and method in ("GET", "POST"):
            if method == "POST":
                emu.set_now(datetime.fromisoformat(body["now"]) if body.get("now") else None)
            return Reply(200, dump({"now": emu.now().isoformat()}))
        if (method, name) == ("GET", "state"):
            return Reply(200, dump(emu.snapshot()))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        return Reply(400, dump({"error": str(error)}))
    return Reply(404, dump({"error": f"no such control endpoint: {method} {path}"}))
