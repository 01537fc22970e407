"""Answer variants (issue #13, 8): other shapes EngageLab may answer; nothing stored changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from reconciler import engagelab as api
from reconciler.cli.emulator import build_config
from reconciler.emulator import ANSWER_VARIANTS, EmulatorConfig, parse_answers
from reconciler.errors import ConfigError
from tests.support.emulator import EmulatorHandle, sample_push, sample_schedule

WEEKLY = {
    "periodical": {
        "start": "2025-12-01 00:00:00",
        "end": "2026-01-31 00:00:00",
        "time": "09:00:00",
        "time_unit": "week",
        "point": ["mon", "FRI"],
    }
}


def _one_platform_push() -> dict[str, Any]:
    push = sample_push()
    push["body"]["platform"] = ["android"]
    push["custom_args"] = {"task": "reminder_01"}
    return push


def _setup(emulator: EmulatorHandle) -> tuple[str, dict[str, Any]]:
    body = sample_schedule("weekly", trigger=WEEKLY, push=_one_platform_push())
    answer = emulator.request("POST", "/v4/schedules", body)
    assert answer.status == 200, answer.body
    return str(answer.json()["schedule_id"]), body


def _get(emulator: EmulatorHandle, sid: str) -> dict[str, Any]:
    got: dict[str, Any] = emulator.request("GET", f"/v4/schedules/{sid}").json()[0]
    return got


def _listed(emulator: EmulatorHandle) -> dict[str, Any]:
    item: dict[str, Any] = emulator.request("GET", "/v4/schedules").json()["schedules"][0]
    return item


def test_variant_names_and_sdk(make_emulator: Callable[..., EmulatorHandle]) -> None:
    assert ANSWER_VARIANTS == (
        "upper-enums",
        "added-defaults",
        "json-strings",
        "summary-list",
        "not-found-400",
        "platform-string",
    )
    assert parse_answers("sdk") == frozenset(ANSWER_VARIANTS)
    assert parse_answers("upper-enums, summary-list") == {"upper-enums", "summary-list"}
    assert parse_answers("") == frozenset()
    with pytest.raises(ValueError, match="unknown answer variant"):
        parse_answers("upper")
    with pytest.raises(ValueError, match="unknown answer variants"):
        EmulatorConfig(app_key="k", master_secret="s", answers=frozenset({"nope"}))
    assert make_emulator(answers={"sdk"}).server.answers == frozenset(ANSWER_VARIANTS)


def test_documented_shapes_by_default(emulator: EmulatorHandle) -> None:
    sid, body = _setup(emulator)
    assert _get(emulator, sid) == {"schedule_id": sid, **body}
    assert _listed(emulator) == {"schedule_id": sid, **body}


def test_upper_enums(make_emulator: Callable[..., EmulatorHandle]) -> None:
    emulator = make_emulator(answers={"upper-enums"})
    sid, body = _setup(emulator)
    for got in (_get(emulator, sid), _listed(emulator)):
        per = got["trigger"]["periodical"]
        assert (per["time_unit"], per["point"]) == ("WEEK", ["MON", "FRI"])
        assert got["push"] == body["push"]


def test_added_defaults(make_emulator: Callable[..., EmulatorHandle]) -> None:
    emulator = make_emulator(answers={"added-defaults"})
    sid, body = _setup(emulator)
    for got in (_get(emulator, sid), _listed(emulator)):
        per = got["trigger"]["periodical"]
        assert per["zone_type"] == api.ZONE_SITE  # ("trigger", "*", "zone_type")
        assert per["frequency"] == 1
        assert per["time_unit"] == "week"  # as sent
        options = got["push"]["body"]["options"]  # ("push", "body", "options", ...)
        assert options["time_to_live"] == 86400
        sent = body["push"]["body"]["options"]
        assert {k: options[k] for k in sent} == sent  # what was sent is never overwritten


def test_added_defaults_never_add_a_trigger_kind(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    emulator = make_emulator(answers={"added-defaults"})
    sid = emulator.request("POST", "/v4/schedules", sample_schedule()).json()["schedule_id"]
    trigger = _get(emulator, sid)["trigger"]
    assert trigger == {"intelligent": {"backup_time": "2025-12-28 09:00:00", "zone_type": 1}}


def test_json_strings(make_emulator: Callable[..., EmulatorHandle]) -> None:
    emulator = make_emulator(answers={"json-strings"})
    sid, body = _setup(emulator)
    item = _listed(emulator)
    assert isinstance(item["trigger"], str) and json.loads(item["trigger"]) == WEEKLY
    push = json.loads(item["push"])
    assert json.loads(push.pop("custom_args")) == body["push"]["custom_args"]
    assert push == {k: v for k, v in body["push"].items() if k != "custom_args"}
    assert _get(emulator, sid) == {"schedule_id": sid, **body}  # GET by id stays typed


def test_summary_list(make_emulator: Callable[..., EmulatorHandle]) -> None:
    emulator = make_emulator(answers={"summary-list", "json-strings"})  # summaries win
    sid, body = _setup(emulator)
    assert _listed(emulator) == {"schedule_id": sid, "name": "weekly", "enabled": True}
    assert _get(emulator, sid) == {"schedule_id": sid, **body}


def test_not_found_400(make_emulator: Callable[..., EmulatorHandle]) -> None:
    emulator = make_emulator(answers={"not-found-400"})
    for method, payload in (("GET", None), ("PUT", {"enabled": False}), ("DELETE", None)):
        answer = emulator.request(method, "/v4/schedules/no-such-id", payload)
        assert (answer.status, answer.json()["error"]["code"]) == (400, 8100)


def test_platform_string(make_emulator: Callable[..., EmulatorHandle]) -> None:
    emulator = make_emulator(answers={"platform-string"})
    sid, _ = _setup(emulator)
    assert _get(emulator, sid)["push"]["body"]["platform"] == "android"
    assert _listed(emulator)["push"]["body"]["platform"] == "android"
    put = emulator.request("PUT", f"/v4/schedules/{sid}", {"name": "renamed"}).json()
    assert put["push"]["body"]["platform"] == "android"
    two = sample_push()  # ["android", "ios"]: more than one stays a list
    emulator.request("PUT", f"/v4/schedules/{sid}", {"push": two})
    assert _get(emulator, sid)["push"]["body"]["platform"] == ["android", "ios"]


def test_variants_change_answers_never_the_store(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    emulator = make_emulator(answers={"sdk"})
    sid, body = _setup(emulator)
    _get(emulator, sid)
    _listed(emulator)
    (stored,) = emulator.server.snapshot()["schedules"]
    assert {k: stored[k] for k in ("name", "enabled", "trigger", "push")} == body
    emulator.set_answers()  # back to the documented shapes, at runtime
    assert _get(emulator, sid) == {"schedule_id": sid, **body}


def test_answers_are_settable_through_the_control_surface(emulator: EmulatorHandle) -> None:
    _setup(emulator)
    assert emulator.request("GET", "/_emulator/answers").json() == {"answers": []}
    set_sdk = emulator.request("POST", "/_emulator/answers", {"answers": "sdk"})
    assert set_sdk.json() == {"answers": sorted(ANSWER_VARIANTS)}
    assert set(_listed(emulator)) == {"schedule_id", "name", "enabled"}
    chosen = emulator.request("POST", "/_emulator/answers", {"answers": ["upper-enums"]})
    assert chosen.json() == {"answers": ["upper-enums"]}
    bad = emulator.request("POST", "/_emulator/answers", {"answers": ["nope"]})
    assert bad.status == 400
    emulator.request("POST", "/_emulator/reset")
    assert emulator.request("GET", "/_emulator/answers").json() == {"answers": []}


def test_cli_option(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from reconciler.cli.emulator import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    monkeypatch.delenv("ENGAGELAB_APP_KEY", raising=False)
    monkeypatch.delenv("ENGAGELAB_MASTER_SECRET", raising=False)
    config, _ = build_config(parser.parse_args(["emulator", "--answers", "sdk"]))
    assert config.answers == frozenset(ANSWER_VARIANTS)
    config, _ = build_config(
        parser.parse_args(["emulator", "--answers", "json-strings,not-found-400"])
    )
    assert config.answers == {"json-strings", "not-found-400"}
    config, _ = build_config(parser.parse_args(["emulator"]))
    assert config.answers == frozenset()
    with pytest.raises(ConfigError, match="--answers"):
        build_config(parser.parse_args(["emulator", "--answers", "bogus"]))
