"""Maps an API request (method, path, query, body bytes) onto the store and builds the reply.

Pure apart from mutating the store it is given; the caller holds the store lock. No sockets here.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler import engagelab as api
from reconciler.emulator import variants
from reconciler.emulator.stats import plan_detail
from reconciler.emulator.store import Store
from reconciler.emulator.validate import ApiError

PLAN_PREFIX = "/v4/push_plan"
SCHEDULES = "/v4/schedules"
PLAN_DETAIL = "/v4/status/plan/detail"
PLAN_PAGE_SIZE_DEFAULT = 20  # [ours] when page_size is not given
MUTATIONS = frozenset({"POST", "PUT", "DELETE"})

# Codes and statuses of issue #13: the API facts live in engagelab.py, with their sources.
CODE_WRONG_METHOD = api.CODE_WRONG_METHOD
CODE_JP3_RATE_LIMITED = api.CODE_JP3_RATE_LIMITED
STATUS_BY_CODE = api.STATUS_BY_CODE
# The methods each path answers; any other gets 405 with CODE_WRONG_METHOD.
_METHODS = {
    PLAN_PREFIX: frozenset({"POST"}),
    PLAN_PREFIX + "/list": frozenset({"GET"}),
    SCHEDULES: frozenset({"GET", "POST"}),
    PLAN_DETAIL: frozenset({"GET"}),
}
_SCHEDULE_METHODS = frozenset({"GET", "PUT", "DELETE"})
_PLAN_ID_METHODS = frozenset({"DELETE"})  # the SDKs' undocumented plan delete (refused below)


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
    """The wrapped envelope {"error": {"code", "message"}} on every endpoint: [doc] the Push Plan
    API page's failed response is {"error": {"code": 27303, "message": "Empty plan id"}}
    (engagelab.com/docs/app-push/rest-api/push-plan-api); the skill's error table says failed
    responses "typically look like" {"error": {...}}. (The bare {"code","message"} the SDKs also
    parse is left to the client tests.)"""
    return Reply(status, dump({"error": {"code": code, "message": message}}), code=code)


def allowed_methods(path: str) -> frozenset[str] | None:
    """The methods `path` answers, or None when no endpoint lives there (a 404)."""
    if path in _METHODS:
        return _METHODS[path]
    for prefix, methods in (
        (SCHEDULES + "/", _SCHEDULE_METHODS),
        (PLAN_PREFIX + "/", _PLAN_ID_METHODS),
    ):
        rest = path[len(prefix) :]
        if path.startswith(prefix) and rest and "/" not in rest:
            return methods
    return None


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
    store: Store,
    method: str,
    path: str,
    query: Mapping[str, str],
    raw: bytes,
    now: datetime,
    answers: Collection[str] = frozenset(),
) -> Reply:
    """Answer one API request; `answers` are the config.ANSWER_VARIANTS in use."""
    try:
        return _dispatch(store, method, path, query, raw, now, answers)
    except ApiError as error:
        status, code = STATUS_BY_CODE.get(error.code, error.status), error.code
        if "not-found-400" in answers and code == api.CODE_NOT_FOUND:
            # [v3] JPush v3's schedule error table lists 8100/400 for "update target task;
            # Delete target task; schedule request is not exist" (Schedule API v3).
            status, code = 400, api.CODE_MAYBE_NOT_FOUND
        return error_reply(path, status, code, error.message)


def _dispatch(
    store: Store,
    method: str,
    path: str,
    query: Mapping[str, str],
    raw: bytes,
    now: datetime,
    answers: Collection[str],
) -> Reply:
    methods = allowed_methods(path)
    if methods is not None and method not in methods:
        raise ApiError(CODE_WRONG_METHOD, f"{path} does not support {method}", status=405)
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
            listed = store.list_schedules(_int(query, "page", 1), now)
            listed["schedules"] = [variants.list_item(s, answers) for s in listed["schedules"]]
            return Reply(200, dump(listed))
    elif path.startswith(SCHEDULES + "/") and "/" not in path[len(SCHEDULES) + 1 :]:
        schedule_id = path[len(SCHEDULES) + 1 :]
        if method == "GET":
            found = store.get_schedule(schedule_id, now)
            return Reply(200, dump([variants.schedule(s, answers) for s in found]))
        if method == "PUT":
            updated = store.update_schedule(schedule_id, _body(raw), now)
            return Reply(200, dump(variants.schedule(updated, answers)), applied=True)
        if method == "DELETE":
            store.delete_schedule(schedule_id, now)
            # [sdk] Python SDK engagelab/client.py: "Some successful mutation APIs return the
            # literal text `success` even though their Content-Type is application/json"; its
            # schedule.delete() ignores the body. (JPush v3 answers 200, application/json and an
            # empty body.) A client must read both.
            return Reply(200, b"success", applied=True)
    elif path == PLAN_DETAIL and method == "GET":
        return Reply(200, dump(plan_detail(query, store.plans.keys())))
    raise ApiError(api.CODE_BAD_VALUE, f"no such endpoint: {method} {path}", status=404)
