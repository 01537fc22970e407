"""Hostile or careless inputs from pull requests: paths, names, sizes, and what reaches CI logs."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from reconciler.errors import Problem, SpecError
from reconciler.settings import Settings
from reconciler.spec.loader import Sources, build_desired, load_desired
from reconciler.spec.model import MAX_SERIES_VALUES
from reconciler.views.plan import _md

NOW = datetime.fromisoformat("2025-11-20T12:00:00+00:00")
TEMPLATE = {"templates/t/en.yaml": b"title: Hi\nalert: Hello {{ n }}\n"}
SPEC = """plan: {id: %s}
defaults: {platform: all, audience: all, languages: [en], template: t}
messages:
  - name: %s
    trigger: {smart: {backup_time: "2025-12-10 09:00:00"}}
    series: %s
"""


def build(plan_id: str = "demo", name: str = "m_{n}", series: str = "[{n: 1}]") -> None:
    spec = (SPEC % (plan_id, name, series)).encode()
    build_desired(Sources({"specs/demo.yaml": spec}, TEMPLATE), Settings(), NOW)


def test_a_trailing_newline_does_not_pass_the_id_and_name_rules() -> None:
    build()  # the well-formed spec is fine
    with pytest.raises(SpecError, match=r"plan\.id"):
        build(plan_id='"evil\\n"')
    with pytest.raises(SpecError, match="name"):
        build(name='"pwn_{n}\\n"')


def test_a_series_is_capped() -> None:
    values = "[" + ", ".join(f"{{n: {i}}}" for i in range(MAX_SERIES_VALUES + 1)) + "]"
    with pytest.raises(SpecError, match=f"more than {MAX_SERIES_VALUES}"):
        build(series=values)


def test_a_symlinked_templates_folder_cannot_read_outside_the_project(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "t"
    outside.mkdir(parents=True)
    (outside / "en.yaml").write_text("title: SECRET\nalert: OUTSIDE\n", encoding="utf-8")
    root = tmp_path / "project"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "demo.yaml").write_text(SPEC % ("demo", "m_{n}", "[{n: 1}]"), "utf-8")
    os.symlink(tmp_path / "outside", root / "templates")
    with pytest.raises(SpecError, match="links outside the project"):
        load_desired(root, Settings(), NOW)


def test_control_characters_in_diagnostics_cannot_start_a_ci_log_line() -> None:
    text = str(Problem("specs/a.yaml", 1, 2, "plan.k\n::error::injected", "unknown key"))
    assert "\n" not in text and "\\x0a::error::injected" in text


def test_copy_in_a_pr_comment_cannot_ping_anyone() -> None:
    shown = _md("Hi @octocat and @org/security see #1")
    assert "@octocat" not in shown and "@org/security" not in shown
    assert "\\#1" in shown
