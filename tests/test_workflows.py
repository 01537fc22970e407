"""The CI workflow files: valid YAML, the promised structure, and only commands that exist.

Checked for both the scaffold's copies (what `reconcile init` writes) and this repository's own
examples, which must stay identical to them but for the environment list and the install source.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli.main import build_parser
from reconciler.scaffold import scaffold
from tests.plugins.emulator import EMULATOR_NOW, EmulatorHandle

REPO = Path(__file__).resolve().parents[1]
GITHUB = (".github/workflows/reconcile-plan.yml", ".github/workflows/reconcile-apply.yml")
GITLAB = ".gitlab-ci.yml"
ALL = (*GITHUB, GITLAB)
ENVS = ("STAGING", "PRODUCTION")  # the scaffold's environments, as its credential prefixes
PER_REPO = ("RECONCILE_ENVS:", "RECONCILE_INSTALL:")  # the only lines allowed to differ


def sources() -> Iterator[tuple[str, str, str]]:
    files = scaffold(date(2030, 1, 1))
    for rel in ALL:
        yield "scaffold", rel, files[rel]
        yield "repo", rel, (REPO / rel).read_text(encoding="utf-8")


def load(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def shell_of(rel: str, data: dict[str, Any]) -> list[str]:
    """Every shell script the file runs (GitHub `run:`, GitLab script lists), heredocs removed."""
    scripts: list[str] = []
    if rel in GITHUB:
        for job in data["jobs"].values():
            scripts += [step["run"] for step in job["steps"] if "run" in step]
    else:
        for value in [data.get("default", {}), *data.values()]:
            if isinstance(value, dict):
                for key in ("before_script", "script", "after_script"):
                    scripts += value.get(key, [])
    bad = [s for s in scripts if not isinstance(s, str)]
    assert not bad, f"{rel}: a script line parsed as {bad[0]!r}: quote it or use a | block"
    return [re.sub(r"<<'(\w+)'\n.*?\n\s*\1\n", "\n", s, flags=re.S) for s in scripts]


def invocations(script: str) -> Iterator[list[str]]:
    """The words of each `reconcile COMMAND ...` call, up to the next shell operator."""
    joined = script.replace("\\\n", " ")
    for match in re.finditer(r"(?<![\w-])reconcile\s+([a-z][a-z_]*)(?=\s|$)([^\n;&|>]*)", joined):
        yield [match.group(1), *shlex.split(match.group(2))]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize(("origin", "rel", "text"), list(sources()), ids=lambda v: str(v)[:40])
def test_every_reconcile_call_names_a_command_and_options_that_exist(
    origin: str, rel: str, text: str
) -> None:
    commands = subcommands()
    calls = [call for script in shell_of(rel, load(text)) for call in invocations(script)]
    assert calls, f"{origin} {rel} calls no reconcile command"
    for name, *words in calls:
        assert name in commands, f"{rel}: `reconcile {name}` is not a command"
        known = commands[name]._option_string_actions
        for word in words:
            if word.startswith("--"):
                option = word.split("=", 1)[0]
                assert option in known, f"{rel}: `reconcile {name}` has no option {option}"
    used = {name for name, *_ in calls}
    assert used >= ({"validate", "plan"} if "plan" in rel else {"apply", "plan"})


def test_repository_copies_match_the_scaffold_but_for_env_and_install() -> None:
    files = scaffold(date(2030, 1, 1))
    for rel in ALL:
        ours = (REPO / rel).read_text(encoding="utf-8").splitlines()
        theirs = files[rel].splitlines()
        assert len(ours) == len(theirs), rel
        for mine, scaffolded in zip(ours, theirs, strict=True):
            if mine != scaffolded:
                assert mine.strip().startswith(PER_REPO), f"{rel}: {mine!r} != {scaffolded!r}"
        data = load("\n".join(ours))
        values = data["env"] if "env" in data else data["variables"]
        assert values["RECONCILE_ENVS"] == "default"  # this repository has no reconcile.toml
        assert values["RECONCILE_INSTALL"] == "."


def test_github_pull_request_plan_is_commented_in_place_and_saved() -> None:
    data = load(scaffold(date(2030, 1, 1))[GITHUB[0]])
    assert set(data["on"]) == {"pull_request"}
    assert data["permissions"]["pull-requests"] == "write"
    steps = data["jobs"]["plan"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "--comments-dir" in runs and "--out" in runs and "--format markdown" in runs
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["name"] == "reconcile-plan-${{ github.event.pull_request.head.sha }}"
    comment = next(s for s in steps if s.get("uses", "").startswith("actions/github-script"))
    script = comment["with"]["script"]
    assert "<!-- reconcile-plan:" in script and "updateComment" in script
    assert "deleteComment" in script  # a shorter plan leaves no stale part behind


def test_github_apply_never_overlaps_and_always_keeps_the_state() -> None:
    data = load(scaffold(date(2030, 1, 1))[GITHUB[1]])
    assert data["on"]["push"]["branches"] == ["main"]
    assert data["concurrency"] == {"group": "reconcile-apply", "cancel-in-progress": False}
    job = data["jobs"]["apply"]
    assert job["if"] == "vars.RECONCILE_APPLY == 'true'"
    checkout = job["steps"][0]
    assert checkout["with"]["ref"] == "${{ github.ref }}"  # not the stale triggering commit
    commit = next(s for s in job["steps"] if s.get("name") == "Commit the state")
    assert commit["if"] == "always()"
    assert "git add -A state/" in commit["run"] and "[skip ci]" in commit["run"]
    apply = next(s for s in job["steps"] if s.get("name") == "Apply")
    assert 'reconcile apply "reviewed/$env.json"' in apply["run"]
    for name, value in apply["env"].items():  # credentials only from secrets
        assert value == f"${{{{ secrets.{name} }}}}"


def test_gitlab_applies_one_at_a_time_and_keeps_the_state() -> None:
    data = load(scaffold(date(2030, 1, 1))[GITLAB])
    plan, apply = data["reconcile-plan"], data["reconcile-apply"]
    assert plan["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert plan["artifacts"]["paths"] == ["plan/"]
    assert apply["resource_group"] == "reconcile-apply"
    assert "$CI_DEFAULT_BRANCH" in apply["rules"][0]["if"]
    assert "git add -A state/" in apply["after_script"][0]
    assert apply["artifacts"]["when"] == "always"


def test_github_steps_plan_then_apply_the_reviewed_plans_against_the_emulator(
    make_emulator: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    """The plan job's and the apply job's own shell steps, run as written, one emulator per env."""
    files = scaffold(EMULATOR_NOW.date())
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    staging, production = make_emulator(), make_emulator()
    config = (tmp_path / "reconcile.toml").read_text(encoding="utf-8")
    for url in (staging.base_url, production.base_url):  # each environment at its own emulator
        config = config.replace('data_center = "sgp"', f'base_url = "{url}"', 1)
    (tmp_path / "reconcile.toml").write_text(config, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGELAB_", "RECONCILE_"))}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "RECONCILE_NOW": EMULATOR_NOW.isoformat(),  # the emulators' pinned clock
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        **{f"{p}_ENGAGELAB_APP_KEY": staging.app_key for p in ("STAGING", "PRODUCTION")},
        **{
            f"{p}_ENGAGELAB_MASTER_SECRET": staging.master_secret for p in ("STAGING", "PRODUCTION")
        },
    }

    def run_steps(rel: str, job: str, names: tuple[str, ...]) -> str:
        said = ""
        data = load(files[rel])
        env.update({k: str(v) for k, v in data["env"].items()})
        for step in data["jobs"][job]["steps"]:
            if step.get("name") in names:
                done = subprocess.run(
                    ["bash", "-e", "-c", step["run"]],
                    env=env,
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert done.returncode == 0, f"{step['name']}:\n{done.stdout}\n{done.stderr}"
                said += done.stdout
        return said

    run_steps(GITHUB[0], "plan", ("Validate", "Plan"))
    assert (tmp_path / "plan" / "production" / "comment-1.md").exists()
    (tmp_path / "plan").rename(tmp_path / "reviewed")  # what "Fetch the reviewed plans" does
    said = run_steps(GITHUB[1], "apply", ("Apply",))
    assert "no fresh reviewed plan" not in said and said.count("Apply complete: 4 applied") == 2
    for emu in (staging, production):
        assert emu.names() == {"welcome_day_1": 1, "welcome_day_2": 1, "welcome_offer": 1}
    before = len(staging.calls()) + len(production.calls())
    said = run_steps(GITHUB[1], "apply", ("Apply",))  # the same plans again: stale, so replanned
    assert said.count("no fresh reviewed plan (exit 3)") == 2
    assert len(staging.calls()) + len(production.calls()) == before  # nothing left to do
