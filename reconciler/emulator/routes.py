"""Maps an API request (method, path, query, body bytes) onto the store and builds the reply.

Pure apart from mutating the store it is given; the caller holds the store lock. No sockets here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler import engagelab as api
from reconciler.emulator.stats import plan_detail
from reconciler.emulator.store import Store
from reconciler.emulator.validate import ApiError

PLAN_PREFIX = "/v4/push_plan"
SCHEDULES = "/v4/schedules"
PLAN_PAGE_SIZE_DEFAULT = 20  # [ours] when page_size is not given
MUTATIONS = frozenset({"POST", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    code: int | None = None  # the API error code, when the reply is an error
    applied: bool = False  # a write reached the store


def dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_reply(path: str, status: int, code: int, message: str) -> Reply:
    """[ours] Plan endpoints answer the bare {"code","message"} envelope, the others the wrapped
    {"error": {...}} one, so that clients are exercised on both documented shapes."""
    error = {"code": code, "message": message}
    body = error if path.startswith(PLAN_PREFIX) else {"error": error}
    return Reply(status, dump(body), code=code)


def _int(query: Mapping[str, str], key: str, default: int) -> int:
    try:
        return int(query.get(key, default))
    except ValueError:
        raise ApiError(api.CODE_BAD_VALUE, f"{key} must be an integer") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's parser would accept NaN and Infinity


def _body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(api.CODE_BAD_VALUE, "the request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ApiError(api.CODE_BAD_VALUE, "the request body must be a JSON object")
    return parsed


def handle(
    store: Store, method: str, path: str, query: Mapping[str, str], raw: bytes, now: datetime
) -> Reply:
    try:
        return _dispatch(store, method, path, query, raw, now)
    except ApiError as error:
        return error_reply(path, error.status, error.code, error.message)


def _dispatch(
    store: Store, method: str, path: str, query: Mapping[str, str], raw: bytes, now: datetime
) -> Reply:
    if path == PLAN_PREFIX and method == "POST":
        return Reply(200, dump(store.upsert_plan(_body(raw), now)), applied=True)
    if path == PLAN_PREFIX + "/list" and method == "GET":
        page = _int(query, "page_index", 1)
        size = _int(query, "page_size", PLAN_PAGE_SIZE_DEFAULT)
        return Reply(200, dump(store.list_plans(page, size, query.get("search_description", ""))))
    if path.startswith(PLAN_PREFIX + "/") and method == "DELETE":
        raise ApiError(api.CODE_BAD_VALUE, "push plans cannot be deleted")  # [doc]
    if path == SCHEDULES:
        if method == "POST":
            return Reply(200, dump(store.create_schedule(_body(raw), now)), applied=True)
        if method == "GET":
            return Reply(200, dump(store.list_schedules(_int(query, "page", 1), now)))
    elif path.startswith(SCHEDULES + "/") and "/" not in path[len(SCHEDULES) + 1 :]:
        schedule_id = path[len(SCHEDULES) + 1 :]
        if method == "GET":
            return Reply(200, dump(store.get_schedule(schedule_id, now)))
        if method == "PUT":
            updated = store.update_schedule(schedule_id, _body(raw), now)
            return Reply(200, dump(updated), applied=True)
        if method == "DELETE":
            store.delete_schedule(schedule_id, now)
            return Reply(200, b"success", content_type="text/plain", applied=True)  # [sdk]
    elif path == "/v4/status/plan/detail" and method == "GET":
        return Reply(200, dump(plan_detail(query, store.plans.keys())))
    raise ApiError(api.CODE_BAD_VALUE, f"no such endpoint: {method} {path}", status=404)
