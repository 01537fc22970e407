"""What an adversarial review of the remote reads found (#13): each case fails without its fix.

Odd answers are made by wrapping the emulator's answer functions (reconciler/emulator/variants.py)
or its store, so everything still crosses real HTTP on loopback. The promises: no answer crashes
a command, nothing loops, and nothing is sent twice or forgotten while it is live.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import variants
from reconciler.emulator.store import _not_found
from reconciler.emulator.validate import ApiError as EmulatorError
from reconciler.errors import ExitCode
from tests.support.campaign import apply, project, run, writes
from tests.support.emulator import EmulatorHandle

Edit = Callable[[dict[str, Any]], None]


def ids(emu: EmulatorHandle) -> dict[str, str]:
    items = emu.request("GET", "/v4/schedules?page=1").json()["schedules"]
    return {i["name"]: i["schedule_id"] for i in items}


def answers_of(monkeypatch: pytest.MonkeyPatch, edit: Callable[[Any], Any]) -> None:
    """Every list item and GET answer passes through `edit` (what EngageLab would answer)."""
    item, schedule = variants.list_item, variants.schedule
    monkeypatch.setattr(variants, "list_item", lambda t, a: edit(item(t, a)))
    monkeypatch.setattr(variants, "schedule", lambda t, a: edit(schedule(t, a)))


def only(name: str, change: Edit) -> Callable[[Any], Any]:
    def edit(item: Any) -> Any:
        if isinstance(item, dict) and item.get("name") == name:
            item = copy.deepcopy(item)
            change(item)
        return item

    return edit


def setting(path: tuple[str, ...], value: Any) -> Edit:
    def change(item: dict[str, Any]) -> None:
        node: Any = item
        for key in path[:-1]:
            node = node[key]
        if value is KeyError:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value

    return change


SHAPES: dict[str, Edit] = {
    "trigger null": setting(("trigger",), None),
    "two trigger kinds": lambda i: i["trigger"].update({"single": {"time": "2025-12-10 09:00:00"}}),
    "push.body null": setting(("push", "body"), None),
    "push.body missing": setting(("push", "body"), KeyError),
    "options null": setting(("push", "body", "options"), None),
    "platform null": setting(("push", "body", "platform"), None),
    "no name": setting(("name",), KeyError),
    "enabled yes": setting(("enabled",), "yes"),
    "points huge": setting(("trigger", "periodical", "point"), ["9" * 400]),
    "points a dict": setting(("trigger", "periodical", "point"), {"a": 1}),
    "time without seconds": setting(("trigger", "periodical", "time"), "09:00"),
    "start in ISO form": setting(("trigger", "periodical", "start"), "2025-12-01T00:00:00Z"),
    "start null": setting(("trigger", "periodical", "start"), None),
    "custom_args a list": setting(("push", "custom_args"), [1, 2]),
    "custom_args bad JSON": setting(("push", "custom_args"), "{oops"),
    "push a list": setting(("push",), []),
    "trigger bad JSON": setting(("trigger",), "{"),
    "periodical null": setting(("trigger", "periodical"), None),
    "schedule_id a number": setting(("schedule_id",), 12345),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_no_answer_shape_crashes_a_command_or_sends_twice(
    shape: str,
    answering: Callable[..., EmulatorHandle],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = answering()
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK
    answers_of(monkeypatch, only("msg_00", SHAPES[shape]))
    run(emu, "plan", tmp_path, "--refresh", "--detailed-exitcode")
    run(emu, "refresh", tmp_path, "--auto-approve")
    run(emu, "plan", tmp_path, "--detailed-exitcode")
    apply(emu, tmp_path)
    run(emu, "stats", tmp_path, "--from", "2025-11-01", "--to", "2025-11-19")
    shutil.rmtree(tmp_path / "state")
    run(emu, "import", tmp_path, "--match-names")
    apply(emu, tmp_path)
    said = capsys.readouterr()
    assert "internal error" not in said.err + said.out
    assert set(emu.names().values()) == {1} and len(emu.names()) == 6  # never a second copy


def test_a_listed_task_whose_get_says_not_found_is_never_taken_for_gone(
    answering: Callable[..., EmulatorHandle],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It was dropped from the listing: refresh forgot it, and apply created it again."""
    emu = answering("summary-list")
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK
    store = emu.server._store
    real = store.get_schedule
    target = ids(emu)["msg_00"]

    def get(sid: str, now: Any) -> Any:
        if sid == target:
            raise _not_found(sid)
        return real(sid, now)

    monkeypatch.setattr(store, "get_schedule", get)
    assert run(emu, "plan", tmp_path, "--refresh", "--detailed-exitcode") == ExitCode.CHANGES
    said = capsys.readouterr().out
    assert "unreadable remotely" in said and "deleted remotely" not in said
    assert run(emu, "refresh", tmp_path, "--auto-approve") == ExitCode.OK
    assert apply(emu, tmp_path) == ExitCode.OK
    assert emu.names()["msg_00"] == 1


@pytest.mark.parametrize("answers", [(), ("not-found-400",), ("not-found-400", "summary-list")])
def test_a_task_deleted_in_the_console_is_recorded_and_sent_again_once(
    answers: tuple[str, ...], answering: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    """With 400/8100 for a missing id, `plan --refresh` used to fail on every run."""
    emu = answering(*answers)
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK
    assert emu.request("DELETE", f"/v4/schedules/{ids(emu)['msg_00']}").status == 200
    assert run(emu, "plan", tmp_path, "--refresh", "--detailed-exitcode") == ExitCode.CHANGES
    assert run(emu, "refresh", tmp_path, "--auto-approve") == ExitCode.OK
    assert apply(emu, tmp_path) == ExitCode.OK
    assert emu.names()["msg_00"] == 1
    assert run(emu, "plan", tmp_path, "--refresh", "--detailed-exitcode") == ExitCode.OK


@pytest.mark.parametrize("get_not_found", [False, True])
def test_a_delete_refused_with_8100_while_the_task_lives_is_not_called_done(
    get_not_found: bool,
    answering: Callable[..., EmulatorHandle],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = answering("summary-list")
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK
    store = emu.server._store
    target = ids(emu)["msg_02"]
    real_delete, real_get = store.delete_schedule, store.get_schedule

    def delete(sid: str, now: Any) -> Any:
        if sid == target:
            raise EmulatorError(8100, "task is being executed, cannot delete")
        return real_delete(sid, now)

    def get(sid: str, now: Any) -> Any:
        if sid == target:
            raise _not_found(sid)
        return real_get(sid, now)

    monkeypatch.setattr(store, "delete_schedule", delete)
    if get_not_found:
        monkeypatch.setattr(store, "get_schedule", get)
    project(tmp_path, count=2)
    assert apply(emu, tmp_path, "--allow-destroy") != ExitCode.OK
    assert target in store.schedules  # still live, so still recorded:
    assert run(emu, "plan", tmp_path, "--detailed-exitcode") == ExitCode.CHANGES


def converges(emu: EmulatorHandle, root: Path) -> None:
    """Apply what `plan --refresh` shows twice: the second time there must be nothing."""
    plan = root / "refresh-plan.json"
    for round_ in range(2):
        run(emu, "plan", root, "--refresh", "--out", str(plan))
        mark = len(emu.calls())
        run(emu, "apply", root, str(plan), "--auto-approve", "--quiet")
        if round_:
            assert writes(emu, mark) == []
    assert run(emu, "plan", root, "--refresh", "--detailed-exitcode") == ExitCode.OK


def test_a_server_default_other_than_ours_does_not_loop(
    answering: Callable[..., EmulatorHandle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JPush v3: apns_production left out means production (true); the SDKs say false."""
    emu = answering()
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK

    def fill(item: Any) -> Any:
        item = copy.deepcopy(item)
        options = item.get("push", {}).get("body", {}).get("options")
        if isinstance(options, dict):
            options.setdefault("apns_production", True)
        return item

    answers_of(monkeypatch, fill)
    converges(emu, tmp_path)


@pytest.mark.parametrize(
    "edit",
    [
        setting(("push", "request_id"), KeyError),
        setting(("push", "custom_args", "managed_by"), KeyError),
    ],
    ids=["request_id not echoed", "managed_by not echoed"],
)
def test_fields_a_server_does_not_echo_do_not_loop(
    edit: Edit,
    answering: Callable[..., EmulatorHandle],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = answering()
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK

    def strip(item: Any) -> Any:
        item = copy.deepcopy(item)
        if isinstance(item, dict) and isinstance(item.get("push"), dict):
            edit(item)
        return item

    answers_of(monkeypatch, strip)
    converges(emu, tmp_path)


def test_numbers_as_strings_do_not_loop(
    answering: Callable[..., EmulatorHandle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = answering()
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK

    def strings(item: Any) -> Any:
        item = copy.deepcopy(item)
        for inner in (item.get("trigger") or {}).values():
            for key in ("zone_type", "frequency"):
                if isinstance(inner, dict) and key in inner:
                    inner[key] = str(inner[key])
        return item

    answers_of(monkeypatch, strings)
    converges(emu, tmp_path)


def stored(emu: EmulatorHandle, sid: str) -> dict[str, Any]:
    return copy.deepcopy(emu.server._store.schedules[sid].as_api())


def test_a_field_added_in_the_console_to_who_gets_it_is_drift_and_is_put_back(
    answering: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emu = answering()
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK
    sid = ids(emu)["smart_00"]
    push = stored(emu, sid)["push"]
    push["to"]["registration_id"] = ["someone-else"]
    emu.server.edit_schedule(sid, {"push": push})
    assert run(emu, "plan", tmp_path, "--refresh", "--detailed-exitcode") == ExitCode.CHANGES
    spec = tmp_path / "specs" / "smart.yaml"  # then a change of the time alone
    spec.write_text(spec.read_text(encoding="utf-8").replace("09:00:00", "10:00:00"), "utf-8")
    assert apply(emu, tmp_path) == ExitCode.OK
    assert "registration_id" not in stored(emu, sid)["push"]["to"]  # push was sent whole
    assert run(emu, "plan", tmp_path, "--refresh", "--detailed-exitcode") == ExitCode.OK


def test_an_update_of_a_task_whose_answer_cannot_be_read_sends_the_whole_body(
    answering: Callable[..., EmulatorHandle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rolled-back state and an unreadable live answer: a trigger-only PUT would leave the
    newer copy live while the state records the older one."""
    emu = answering()
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK
    shutil.copy(tmp_path / "state" / "default.json", tmp_path / "v1.json")
    project(tmp_path, fr="Coucou")
    assert apply(emu, tmp_path) == ExitCode.OK
    shutil.copy(tmp_path / "v1.json", tmp_path / "state" / "default.json")  # rolled back
    project(tmp_path, fr="Salut")
    spec = tmp_path / "specs" / "smart.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("09:00:00", "10:00:00"), "utf-8")
    answers_of(monkeypatch, only("smart_00", setting(("push", "custom_args"), "{oops")))
    apply(emu, tmp_path)
    live = json.dumps(stored(emu, ids(emu)["smart_00"])["push"], ensure_ascii=False)
    assert "Coucou" not in live and "Salut" in live


def test_a_live_task_without_a_name_stops_creates_after_a_lost_state(
    answering: Callable[..., EmulatorHandle],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = answering()
    project(tmp_path)
    assert apply(emu, tmp_path) == ExitCode.OK
    answers_of(monkeypatch, only("msg_00", setting(("name",), KeyError)))
    shutil.rmtree(tmp_path / "state")
    run(emu, "import", tmp_path, "--match-names")
    assert apply(emu, tmp_path) != ExitCode.OK
    assert emu.names()["msg_00"] == 1
