"""Test support, not tests: a small generated campaign project and CLI helpers for apply tests.

Shared by the apply, refresh and store tests and by bench/bench_kill.py: the project, the CLI
helpers, a daily periodical trigger and a minimal ScheduleCreated event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reconciler.cli.main import main
from reconciler.state.model import ScheduleCreated
from reconciler.state.store import StateStore
from tests.support.emulator import EMULATOR_NOW, EmulatorHandle

NOW = EMULATOR_NOW.isoformat()
SPEC = """\
plan: {{id: {plan_id}, description: Test campaign}}
defaults:
  template: hello
  platform: [android, ios]
  audience: {{tag: [testers]}}
  languages: [en, fr]
  default_language: en
messages:
  - name: msg_{{n}}
    trigger: {trigger}
    series:
{series}
"""
SMART = '{smart: {backup_time: "2025-12-{day} 09:00:00"}}'
SINGLE = '{single: {time: "2025-12-{day} 09:00:00", zone: device}}'


def daily(at: str = "09:00:00") -> str:
    """A device-time daily periodical trigger, December 2025 to February 2026, in spec form."""
    return (
        '{periodical: {start: "2025-12-01 00:00:00", end: "2026-02-28 23:59:59", '
        f'time: "{at}", unit: day, zone: device}}}}'
    )


def schedule_created(name: str) -> ScheduleCreated:
    """A minimal ScheduleCreated event, for store tests that only need some records."""
    return ScheduleCreated(
        name=name,
        plan_id="p",
        schedule_id=f"id-{name}",
        body={"name": name},
        digest="sha256:x",
        trigger_kind="intelligent",
        at=datetime(2025, 12, 1, 9, tzinfo=UTC),
    )


def write_project(
    root: Path, count: int, *, plan_id: str = "camp", trigger: str = SMART, fr: str = "Salut"
) -> None:
    """`count` Smart Push messages msg_00.. in plan `plan_id`, with en and fr copy."""
    series = "\n".join(f'      - {{n: "{i:02d}", day: "{10 + i % 15:02d}"}}' for i in range(count))
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "specs" / f"{plan_id}.yaml").write_text(
        SPEC.format(plan_id=plan_id, trigger=trigger, series=series), encoding="utf-8"
    )
    templates = root / "templates" / "hello"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "en.yaml").write_text('title: Hello\nalert: "Hi {{ n }}"\n', encoding="utf-8")
    (templates / "fr.yaml").write_text(f'title: Bonjour\nalert: "{fr} {{{{ n }}}}"\n', "utf-8")


def run(emu: EmulatorHandle, command: str, root: Path, *extra: str, now: str = NOW) -> int:
    """`reconcile <command>` in-process against the emulator, the clock pinned."""
    argv = [command, "--root", str(root), "--base-url", emu.base_url, "--now", now]
    return main([*argv, *extra])


def apply(emu: EmulatorHandle, root: Path, *extra: str, now: str = NOW) -> int:
    return run(emu, "apply", root, "--auto-approve", "--quiet", *extra, now=now)


def writes(emu: EmulatorHandle, since: int = 0) -> list[tuple[str, str]]:
    """The write calls the emulator received (method, path), from call number `since`."""
    return [(c.method, c.path) for c in emu.calls()[since:] if c.method != "GET"]


WEEKLY = (
    '{periodical: {start: "2025-12-01 00:00:00", end: "2026-02-28 23:59:59", '
    'time: "09:00:00", unit: week, points: [MON, FRI], zone: device}}'
)


def project(root: Path, count: int = 3, fr: str = "Salut") -> None:
    """Weekly periodicals (time_unit and point) plus Smart Push messages, in two plans."""
    write_project(root, count, plan_id="weekly", trigger=WEEKLY, fr=fr)
    weekly = root / "specs" / "weekly.yaml"  # one platform: a one-item list
    weekly.write_text(weekly.read_text(encoding="utf-8").replace("[android, ios]", "[android]"))
    write_project(root, count, plan_id="smart", fr=fr)
    smart = root / "specs" / "smart.yaml"
    smart.write_text(smart.read_text(encoding="utf-8").replace("msg_{n}", "smart_{n}"), "utf-8")


def ids(root: Path) -> dict[str, str | None]:
    state = StateStore(root / "state" / "default.json").load()
    return {name: rec.schedule_id for name, rec in state.schedules.items()}
