"""`reconcile stats` and `plan --with-stats` against the emulator over real HTTP: figures over a
range longer than one API window, for more plans than one request takes, match the emulator's
synthetic figures exactly (every split included)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from reconciler import engagelab as api
from reconciler.emulator.stats import plan_figures
from reconciler.errors import ExitCode
from reconciler.remote.stats import normalize
from tests.support.campaign import apply, run, write_project
from tests.support.emulator import EmulatorHandle

PLANS = [f"camp_{i:02d}" for i in range(22)]  # more than STATS_MAX_PLAN_IDS
START, END = date(2025, 9, 1), date(2025, 11, 15)  # 76 days: 3 windows


def make_plans(emu: EmulatorHandle, plan_ids: list[str]) -> None:
    for plan_id in plan_ids:
        body = {"plan_id": plan_id, "plan_description": plan_id}
        assert emu.request("POST", "/v4/push_plan", body).status == 200


def detail_calls(emu: EmulatorHandle) -> list[dict[str, list[str]]]:
    return [parse_qs(c.query) for c in emu.calls() if c.path == api.PATH_PLAN_DETAIL]


def funnel(entry: dict[str, Any]) -> list[int]:
    return [entry[k] for k in api.STATS_FUNNEL]


def stats(emu: EmulatorHandle, root: Path, *extra: str) -> int:
    return run(emu, "stats", root, *extra)


def test_stats_json_matches_the_emulator_across_windows_and_batches(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_plans(env, PLANS)
    dates = ["--from", START.isoformat(), "--to", END.isoformat()]
    capsys.readouterr()
    assert stats(env, tmp_path, "--plan", *PLANS, "nope", *dates, "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    calls = detail_calls(env)
    assert len(calls) == 3 * 2  # 3 windows x 2 batches of plan ids
    assert max(len(c["plan_ids"][0].split(",")) for c in calls) == api.STATS_MAX_PLAN_IDS
    spans = {(c["start_date"][0], c["end_date"][0]) for c in calls}
    assert spans == {
        ("2025-09-01", "2025-10-01"),
        ("2025-10-02", "2025-11-01"),
        ("2025-11-02", "2025-11-15"),
    }
    assert [p["plan_id"] for p in doc["plans"]] == PLANS
    assert doc["missing"] == ["nope"]
    for plan in doc["plans"]:
        want = plan_figures(plan["plan_id"], START, END)
        assert funnel(plan["total"]) == funnel(want)
        sub = normalize(want["sub"])  # singular target/click inside sub.<type> [doc]
        for kind in api.STATS_MESSAGE_TYPES:
            assert funnel(plan["by_type"][kind]) == funnel(sub[kind])
        # The vendor split sits inside each message type: a channel is its sum over the types.
        for group, platform in (("sub_android", "android"), ("sub_ios", "ios")):
            for channel in api.STATS_CHANNELS[group]:
                parts = [funnel(sub[kind][group][channel]) for kind in api.STATS_MESSAGE_TYPES]
                summed = [sum(x) for x in zip(*parts, strict=True)]
                assert funnel(plan["by_channel"][f"{platform}/{channel}"]) == summed
            channels = [
                funnel(plan["by_channel"][f"{platform}/{c}"]) for c in api.STATS_CHANNELS[group]
            ]
            assert funnel(plan["by_platform"][platform]) == [
                sum(x) for x in zip(*channels, strict=True)
            ]
        assert plan["unplaced"] == [] and plan["absent"] == []
        total = want["delivered"] / want["sent"]
        assert plan["total"]["delivery_rate"] == pytest.approx(total)


def test_stats_table_and_csv_for_several_plans(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = PLANS[:3]
    make_plans(env, chosen)
    dates = ["--from", START.isoformat(), "--to", END.isoformat()]
    capsys.readouterr()
    assert stats(env, tmp_path, "--plan", *chosen, *dates) == ExitCode.OK
    table = capsys.readouterr().out
    assert "2025-09-01 .. 2025-11-15 (76 days)" in table
    for plan_id in chosen:
        want = plan_figures(plan_id, START, END)
        line = next(x for x in table.splitlines() if x.startswith(plan_id) and " all " in x)
        cells = line.split()
        assert cells[2:7] == [f"{v:,}" for v in funnel(want)]
        assert cells[7] == f"{want['delivered'] / want['sent'] * 100:.1f}%"
        assert cells[8] == f"{want['clicks'] / want['delivered'] * 100:.1f}%"
    assert stats(env, tmp_path, "--plan", *chosen, *dates, "--format", "csv") == ExitCode.OK
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    totals = {r["plan_id"]: int(r["clicks"]) for r in rows if r["split"] == "total"}
    assert totals == {p: plan_figures(p, START, END)["clicks"] for p in chosen}


def test_stats_defaults_to_the_specs_plans_and_the_last_seven_days(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    assert apply(env, tmp_path) == ExitCode.OK  # creates push plan "camp"
    capsys.readouterr()
    assert stats(env, tmp_path, "--format", "json") == ExitCode.OK
    doc = json.loads(capsys.readouterr().out)
    end = date(2025, 11, 19)  # yesterday of the pinned 2025-11-20
    assert (doc["start"], doc["end"]) == ((end - timedelta(days=6)).isoformat(), end.isoformat())
    assert funnel(doc["plans"][0]["total"]) == funnel(plan_figures("camp", end - timedelta(6), end))
    assert stats(env, tmp_path, "--from", "2025-11-10", "--to", "2025-11-01") == ExitCode.ERROR
    assert stats(env, tmp_path, "--from", "2025/11/01") == ExitCode.ERROR


def test_plan_with_stats_adds_the_affected_plans_figures(
    env: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    assert apply(env, tmp_path) == ExitCode.OK
    write_project(tmp_path, 2)  # a change in plan "camp"
    capsys.readouterr()
    assert run(env, "plan", tmp_path, "--with-stats", "--format", "markdown") == ExitCode.OK
    text = capsys.readouterr().out
    end = date(2025, 11, 19)
    want = plan_figures("camp", end - timedelta(days=6), end)
    assert "Recent figures of the affected push plans, 2025-11-13 .. 2025-11-19" in text
    assert f"| `camp` | {want['targets']:,} | {want['sent']:,} |" in text
    assert run(env, "plan", tmp_path, "--with-stats", "--format", "json") == ExitCode.ERROR
    mark = len(env.calls())
    assert run(env, "plan", tmp_path) == ExitCode.OK
    assert len(env.calls()) == mark  # a plain plan still makes no call
