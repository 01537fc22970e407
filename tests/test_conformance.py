"""EngageLab's documented request and answer shapes (tests/conformance/*.json) against the
emulator and the client's read path.

Each file is one shape, `{"source", "note", "kind", "endpoint", "body"}`, taken from EngageLab's
docs, its official SDKs, JPush v3 or the Smart Push best-practice note (shared/reference/); the
file's `note` says what is uncertain. Answer files may add `status` (the HTTP status, default
200) and `raw_text: true` (the body is sent as that text, not JSON-encoded, with a JSON content
type); `"body": null` is an empty answer.

- A `request` is sent to the emulator over real HTTP and must be accepted (HTTP 200). The plan a
  push names in `options.plan_id` is created first; a PUT is applied to a schedule created from
  request_schedule_single. Dates are left as the source has them, except a trigger time that is
  in the past or more than a year after the emulator's pinned clock (EMULATOR_NOW, 2025-11-20
  12:00 UTC): only that date moves, to 30 days after EMULATOR_NOW, keeping the time of day.
- An `answer` is served by an httpx.MockTransport to the real EngageLabClient (the emulator
  serves only its own shapes), then read the way the commands read it: schedules through the
  client (remote_shape.normalise), statistics through stats.merge_answers + build_report,
  plans through list_plans, errors through the client's error parsing.

A case that fails today is marked xfail(strict=True) with the reason in KNOWN_FAILURES.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from reconciler.api.client import ClientConfig, EngageLabClient
from reconciler.api.ratelimit import RateLimiter
from reconciler.errors import ApiError
from reconciler.remote.shape import UNREADABLE, normalise
from reconciler.remote.stats import PLATFORM_GROUPS, build_report, merge_answers
from tests.support.emulator import EMULATOR_NOW, EmulatorHandle

FOLDER = Path(__file__).parent / "conformance"
FIELDS = {"source", "note", "kind", "endpoint", "body"}
OPTIONAL = {"status", "raw_text"}
STAMP = "%Y-%m-%d %H:%M:%S"

# file stem -> why it fails today (production code is not changed by these tests).
KNOWN_FAILURES: dict[str, str] = {}  # shape name -> why it fails today (none now)


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    source: str
    note: str
    kind: str
    method: str
    path: str  # the endpoint's path, "{schedule_id}" kept
    query: dict[str, str]
    body: Any
    status: int
    raw_text: bool

    @classmethod
    def load(cls, path: Path) -> Shape:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict), path.name
        keys = set(data)
        assert FIELDS <= keys <= FIELDS | OPTIONAL, f"{path.name}: keys {sorted(keys)}"
        assert data["kind"] in ("request", "answer"), path.name
        assert isinstance(data["source"], str) and data["source"].strip(), path.name
        assert isinstance(data["note"], str) and data["note"].strip(), path.name
        method, _, target = str(data["endpoint"]).partition(" ")
        assert method in ("GET", "POST", "PUT", "DELETE") and target.startswith("/v4/"), path.name
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        return cls(
            name=path.stem,
            source=data["source"],
            note=data["note"],
            kind=data["kind"],
            method=method,
            path=parts.path,
            query=query,
            body=data["body"],
            status=int(data.get("status", 200)),
            raw_text=bool(data.get("raw_text", False)),
        )


def shapes(kind: str) -> list[Shape]:
    found = [Shape.load(p) for p in sorted(FOLDER.glob("*.json"))]
    return [s for s in found if s.kind == kind]


def cases(kind: str) -> Iterator[Any]:
    for shape in shapes(kind):
        marks = []
        if shape.name in KNOWN_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[shape.name]))
        yield pytest.param(shape, id=shape.name, marks=marks)


def by_name(name: str) -> Shape:
    return Shape.load(FOLDER / f"{name}.json")


def test_the_folder_holds_both_kinds_and_every_known_failure_names_a_file() -> None:
    assert shapes("request") and shapes("answer")
    names = {p.stem for p in FOLDER.glob("*.json")}
    assert set(KNOWN_FAILURES) <= names


# --- requests: the emulator accepts them ---------------------------------------------------------


def _fit(stamp: str) -> str:
    """`stamp` if it lies in (EMULATOR_NOW, EMULATOR_NOW + 1 year]; else 30 days after
    EMULATOR_NOW at the same time of day. Only dates that must be in the future move."""
    when = datetime.strptime(stamp, STAMP).replace(tzinfo=EMULATOR_NOW.tzinfo)
    if EMULATOR_NOW < when <= EMULATOR_NOW + timedelta(days=365):
        return stamp
    day = (EMULATOR_NOW + timedelta(days=30)).date()
    return datetime.combine(day, when.time()).strftime(STAMP)


def fitted(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a schedule body with the future-only trigger times fitted (see _fit)."""
    out = json.loads(json.dumps(body))
    trigger = out.get("trigger")
    if isinstance(trigger, dict):
        single = trigger.get("single")
        if isinstance(single, dict) and isinstance(single.get("time"), str):
            single["time"] = _fit(single["time"])
        smart = trigger.get("intelligent")
        backup = smart.get("backup_time") if isinstance(smart, dict) else None
        if isinstance(smart, dict) and isinstance(backup, str) and backup != "now":
            smart["backup_time"] = _fit(backup)
    return out  # type: ignore[no-any-return]


def _plan_of(body: Any) -> str | None:
    try:
        plan = body["push"]["body"]["options"]["plan_id"]
    except (KeyError, TypeError):
        return None
    return plan if isinstance(plan, str) else None


@pytest.mark.parametrize("shape", list(cases("request")))
def test_request_shape_is_accepted_by_the_emulator(shape: Shape, emulator: EmulatorHandle) -> None:
    assert isinstance(shape.body, dict)
    body = fitted(shape.body) if shape.path == "/v4/schedules" else shape.body
    plan = _plan_of(body)
    if plan is not None:
        made = emulator.request("POST", "/v4/push_plan", {"plan_id": plan, "plan_description": "p"})
        assert made.status == 200, made.body
    path = shape.path
    if "{schedule_id}" in path:
        base = fitted(by_name("request_schedule_single").body)
        created = emulator.request("POST", "/v4/schedules", base)
        assert created.status == 200, created.body
        path = path.replace("{schedule_id}", str(created.json()["schedule_id"]))
    answer = emulator.request(shape.method, path, body)
    assert answer.status == 200, answer.body
    data = answer.json()
    if shape.method == "PUT":
        got = data[0] if isinstance(data, list) else data
        for key, value in body.items():
            assert got[key] == value, key  # the fields sent are the fields now held
    elif shape.path == "/v4/schedules":
        assert data["schedule_id"] and data["name"] == body["name"]
    else:
        assert data["plan_id"] == body["plan_id"]


# --- answers: the client reads them --------------------------------------------------------------


class Server:
    """Serves one answer shape at its endpoint (GET by id of a summary list item: the array GET
    shape with the list item's own fields). Anything else is a 404: the case fails loudly."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.requests: list[httpx.Request] = []
        pattern = re.escape(shape.path).replace(re.escape("{schedule_id}"), "[^/]+")
        self._path = re.compile(pattern + "/?")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        shape, path = self.shape, request.url.path
        if request.method == shape.method and self._path.fullmatch(path):
            return self._answer(shape.status, shape.body, raw=shape.raw_text)
        by_id = re.fullmatch(r"/v4/schedules/([^/]+)", path)
        if request.method == "GET" and by_id and shape.path == "/v4/schedules":
            item = dict(by_name("answer_schedule_get_array").body[0])
            listed = [i for i in shape.body["schedules"] if i["schedule_id"] == by_id.group(1)]
            item.update(listed[0] if listed else {"schedule_id": by_id.group(1)})
            return self._answer(200, [item])
        return self._answer(404, {"error": {"code": 404, "message": f"no route {path}"}})

    @staticmethod
    def _answer(status: int, body: Any, *, raw: bool = False) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if raw:
            return httpx.Response(status, content=str(body).encode(), headers=headers)
        if body is None:
            return httpx.Response(status, content=b"", headers=headers)
        return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


async def _no_sleep(_: float) -> None:
    return None


def run(shape: Shape, action: Callable[[EngageLabClient], Awaitable[Any]]) -> Any:
    config = ClientConfig(
        base_url="http://127.0.0.1:9",
        app_key="conformance-key",
        master_secret=SecretStr("conformance-secret"),
        max_attempts=1,
    )
    client = EngageLabClient(
        config,
        transport=httpx.MockTransport(Server(shape)),
        limiter=RateLimiter(1e6),
        sleep=_no_sleep,
    )

    async def main() -> Any:
        async with client:
            return await action(client)

    return asyncio.run(main())


def call_for(shape: Shape) -> Callable[[EngageLabClient], Awaitable[Any]]:
    """The client call that reads this endpoint."""
    route = (shape.method, shape.path)
    if route == ("POST", "/v4/schedules"):
        body = fitted(by_name("request_schedule_single").body)
        return lambda c: c.create_schedule(body)
    if route == ("PUT", "/v4/schedules/{schedule_id}"):
        return lambda c: c.update_schedule("sched_001", {"name": "updated_push"})
    if route == ("GET", "/v4/schedules"):
        return lambda c: c.list_schedules()
    if route == ("GET", "/v4/schedules/{schedule_id}"):
        return lambda c: c.get_schedule("sched_001")
    if route == ("DELETE", "/v4/schedules/{schedule_id}"):
        return lambda c: c.delete_schedule("sched_001")
    if route == ("GET", "/v4/push_plan/list"):
        return lambda c: c.list_plans()
    if route == ("POST", "/v4/push_plan"):
        return lambda c: c.upsert_plan("promo_year_end_2025", "Year-end sale")
    if route == ("GET", "/v4/status/plan/detail"):
        ids = shape.query["plan_ids"].split(",")
        start = date.fromisoformat(shape.query["start_date"])
        end = date.fromisoformat(shape.query["end_date"])
        return lambda c: c.plan_detail(ids, start, end)
    raise AssertionError(f"{shape.name}: no client call reads {shape.method} {shape.path}")


def _error_of(shape: Shape) -> tuple[int, int] | None:
    """(status, code) when the shape is an error answer."""
    if shape.status == 200:
        return None
    body = shape.body
    inner = body.get("error", body) if isinstance(body, dict) else {}
    return shape.status, int(inner["code"])


def _channel_figures(entry: Any) -> set[str]:
    """Each "<platform>/<channel>" the entry gives a non-zero figure for, in any message
    type's sub_android/sub_ios/sub_hmos."""
    found: set[str] = set()
    sub = entry.get("sub") if isinstance(entry, dict) else None
    for part in (sub or {}).values():
        for group, platform in PLATFORM_GROUPS.items():
            for channel, figures in (part.get(group) or {}).items():
                if any(isinstance(v, int) and v for v in figures.values()):
                    found.add(f"{platform}/{channel}")
    return found


def check_schedules(shape: Shape, items: list[dict[str, Any]]) -> None:
    raw = shape.body["schedules"]
    assert [i["schedule_id"] for i in items] == [r["schedule_id"] for r in raw]
    for item, sent in zip(items, raw, strict=True):
        assert UNREADABLE not in item, item[UNREADABLE]
        assert item["name"] == sent["name"]
        assert "trigger" in item and "push" in item  # a summary was read again by id
        if "trigger" in sent:
            direct = normalise(sent)
            assert UNREADABLE not in direct, direct[UNREADABLE]
            assert item["trigger"] == direct["trigger"]
            assert item["push"] == direct["push"]


def check_statistics(shape: Shape, raw: dict[str, Any]) -> None:
    ids = shape.query["plan_ids"].split(",")
    start = date.fromisoformat(shape.query["start_date"])
    end = date.fromisoformat(shape.query["end_date"])
    report = build_report(ids, start, end, merge_answers([raw]))
    assert report.missing == tuple(i for i in ids if i not in shape.body)
    assert report.plans, "no plan read"
    for plan in report.plans:
        entry = shape.body[plan.plan_id]
        assert plan.unplaced == (), plan.unplaced
        channels = _channel_figures(entry)
        assert channels, "the fixture gives no channel figures"
        for key in sorted(channels):
            assert not plan.by_channel[key].empty, f"channel {key} shows 0"
            assert not plan.by_platform[key.split("/")[0]].empty, f"platform of {key} shows 0"
        totals = [entry.get(k) for k in ("targets", "sent", "delivered", "impressions", "clicks")]
        if any(totals):
            assert not plan.total.empty


@pytest.mark.parametrize("shape", list(cases("answer")))
def test_answer_shape_passes_the_clients_read_path(shape: Shape) -> None:
    action = call_for(shape)
    error = _error_of(shape)
    if error is not None:
        with pytest.raises(ApiError) as caught:
            run(shape, action)
        assert (caught.value.status, caught.value.code) == error, str(caught.value)
        return
    got = run(shape, action)
    route = (shape.method, shape.path)
    if route == ("POST", "/v4/schedules"):
        assert got == shape.body["schedule_id"]
    elif route == ("PUT", "/v4/schedules/{schedule_id}"):
        assert got["name"] == shape.body["name"]
    elif route == ("GET", "/v4/schedules"):
        check_schedules(shape, got)
    elif route == ("GET", "/v4/schedules/{schedule_id}"):
        sent = shape.body[0] if isinstance(shape.body, list) else shape.body
        assert got is not None
        assert UNREADABLE not in got, got[UNREADABLE]
        assert (got["schedule_id"], got["name"]) == (sent["schedule_id"], sent["name"])
        assert got["trigger"] == sent["trigger"]
        assert got["push"]["to"] == sent["push"]["to"]
    elif route == ("DELETE", "/v4/schedules/{schedule_id}"):
        assert got is None
    elif route == ("GET", "/v4/push_plan/list"):
        sent = shape.body["push_plan_info"]
        assert [p.plan_id for p in got] == [s.get("plan_id", s.get("push_id")) for s in sent]
        for plan, item in zip(got, sent, strict=True):
            assert plan.description == item.get("plan_description", "")
            assert plan.count == item.get("count")
            assert (plan.create_time is None) == ("create_time" not in item)
            assert (plan.last_used_time is None) == ("last_used_time" not in item)
    elif route == ("POST", "/v4/push_plan"):
        assert got is None
    else:
        check_statistics(shape, got)
