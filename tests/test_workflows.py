"""The CI workflow files: their structure, their privileges, and only commands that exist.

Checked for both the scaffold's copies (what `reconcile init` writes) and this repository's own,
which must stay identical to them but for the environment list and the install source. What the
jobs do is in `.ci/reconcile-ci.sh`; tests/test_ci_script.py runs it against real git
repositories and the emulator.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli.main import build_parser
from reconciler.scaffold import scaffold

REPO = Path(__file__).resolve().parents[1]
PLAN, COMMENT, APPLY = (
    ".github/workflows/reconcile-plan.yml",
    ".github/workflows/reconcile-comment.yml",
    ".github/workflows/reconcile-apply.yml",
)
GITHUB = (PLAN, COMMENT, APPLY)
GITLAB = ".gitlab-ci.yml"
SCRIPT = ".ci/reconcile-ci.sh"
ALL = (*GITHUB, GITLAB, SCRIPT)
PER_REPO = ("RECONCILE_ENVS:", "RECONCILE_INSTALL:")  # the only lines allowed to differ
# The first major of each action that runs on Node 24 (GitHub's Node 20 deprecation).
NODE24 = {
    "actions/checkout": 5,
    "actions/setup-python": 6,
    "actions/upload-artifact": 6,
    "actions/download-artifact": 7,
    "actions/github-script": 8,
}


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


def workflow(rel: str) -> dict[str, Any]:
    return load(scaffold(date(2030, 1, 1))[rel])


def shell_of(rel: str, text: str) -> list[str]:
    """Every shell script the file runs (GitHub `run:`, GitLab script lists), heredocs removed."""
    if rel == SCRIPT:
        scripts = [text]
    elif rel in GITHUB:
        data = load(text)
        scripts = [s["run"] for job in data["jobs"].values() for s in job["steps"] if "run" in s]
    else:
        data = load(text)
        scripts = []
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
    for match in re.finditer(r"(?<![\w./-])reconcile\s+([a-z][a-z_]*)(?=\s|$)([^\n;&|>]*)", joined):
        yield [match.group(1), *shlex.split(match.group(2))]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def steps(rel: str, job: str) -> list[dict[str, Any]]:
    return list(workflow(rel)["jobs"][job]["steps"])


@pytest.mark.parametrize(("origin", "rel", "text"), list(sources()), ids=lambda v: str(v)[:40])
def test_every_reconcile_call_names_a_command_and_options_that_exist(
    origin: str, rel: str, text: str
) -> None:
    commands = subcommands()
    calls = [call for script in shell_of(rel, text) for call in invocations(script)]
    if rel != SCRIPT:
        assert not calls, f"{rel}: call reconcile through {SCRIPT}, one place for both CIs"
        return
    for name, *words in calls:
        assert name in commands, f"{rel}: `reconcile {name}` is not a command"
        known = commands[name]._option_string_actions
        for word in words:
            if word.startswith("--"):
                assert word.split("=", 1)[0] in known, f"`reconcile {name}` has no {word}"
    assert {name for name, *_ in calls} >= {"validate", "plan", "apply", "show"}


def test_every_step_the_workflows_run_is_a_step_of_the_script() -> None:
    script = scaffold(date(2030, 1, 1))[SCRIPT]
    known = set(re.findall(r"^  ([a-z-]+)\) cmd_", script, flags=re.M))
    for rel in (*GITHUB, GITLAB):
        text = scaffold(date(2030, 1, 1))[rel]
        for step in re.findall(r"bash \.ci/reconcile-ci\.sh ([a-z-]+)", text):
            assert step in known, f"{rel}: {SCRIPT} has no step {step}"


def test_repository_copies_match_the_scaffold_but_for_env_and_install() -> None:
    files = scaffold(date(2030, 1, 1))
    for rel in ALL:
        ours = (REPO / rel).read_text(encoding="utf-8").splitlines()
        theirs = files[rel].splitlines()
        assert len(ours) == len(theirs), rel
        for mine, scaffolded in zip(ours, theirs, strict=True):
            if mine != scaffolded:
                assert mine.strip().startswith(PER_REPO), f"{rel}: {mine!r} != {scaffolded!r}"
        if rel == SCRIPT:
            continue
        data = load("\n".join(ours))
        values = data["env"] if "env" in data else data["variables"]
        assert values["RECONCILE_ENVS"] == "default"  # this repository has no reconcile.toml
        assert values.get("RECONCILE_INSTALL", ".") == "."


def test_every_workflow_installs_the_same_pinned_source_quoted() -> None:
    files = scaffold(date(2030, 1, 1))
    for rel in (PLAN, APPLY, GITLAB):
        assert 'RECONCILE_INSTALL: "engagelab-reconcile==0.1.0"' in files[rel]
        installs = re.findall(r"pip install [^\n]*", files[rel])
        assert installs and all(i.endswith('"$RECONCILE_INSTALL"') for i in installs), installs


@pytest.mark.parametrize(("origin", "rel", "text"), [s for s in sources() if s[1] in GITHUB])
def test_every_action_is_pinned_to_a_commit_of_its_node24_major(
    origin: str, rel: str, text: str
) -> None:
    uses = re.findall(r"uses: ([\w./-]+)@(\S+)(.*)", text)
    assert uses, rel
    for action, ref, comment in uses:
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{rel}: {action}@{ref} is not a commit"
        major = re.search(r"# v(\d+)\.\d+\.\d+", comment)
        assert major, f"{rel}: {action}@{ref} does not say which release it is (# vX.Y.Z)"
        assert int(major.group(1)) >= NODE24[action], f"{rel}: {action} v{major.group(1)}"


READ_ONLY_SECRETS = {
    "RECONCILE_STATE_READ_URL",
    "ENGAGELAB_APP_KEY",
    "STAGING_ENGAGELAB_APP_KEY",
    "PRODUCTION_ENGAGELAB_APP_KEY",
}


def test_permissions_are_per_job_and_only_the_apply_job_has_secrets_and_pushes() -> None:
    for rel in GITHUB:
        data = workflow(rel)
        assert data["permissions"] == {}, f"{rel}: no workflow-wide permission"
        for name, job in data["jobs"].items():
            assert "permissions" in job, f"{rel}: job {name} must say its own permissions"
            text = yaml.safe_dump(job)
            if (rel, name) != (APPLY, "apply"):
                # Only what reads a PostgreSQL state: a read-only role's connection string and
                # the AppKeys (public ids); never a master secret or the state's write access.
                held = set(re.findall(r"secrets\.([A-Za-z0-9_]+)", text))
                assert held <= READ_ONLY_SECRETS, f"{rel}: job {name} holds {held}"
                assert job["permissions"].get("contents", "none") != "write", (rel, name)
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("actions/checkout"):
                    persist = step["with"]["persist-credentials"]
                    assert persist is ((rel, name) == (APPLY, "apply")), (rel, name)
    assert workflow(PLAN)["jobs"]["plan"]["permissions"] == {"contents": "read"}
    apply = workflow(APPLY)["jobs"]["apply"]
    assert apply["permissions"] == {"contents": "write"}
    assert apply["environment"] == "reconcile"  # the secrets live in a GitHub environment
    for step in apply["steps"]:
        for name, value in step.get("env", {}).items():
            assert value == f"${{{{ secrets.{name} }}}}"


def test_the_comment_job_runs_after_the_plan_run_and_checks_out_nothing() -> None:
    data = workflow(COMMENT)
    assert data["on"] == {"workflow_run": {"workflows": ["reconcile plan"], "types": ["completed"]}}
    assert workflow(PLAN)["name"] == "reconcile plan"
    job = data["jobs"]["comment"]
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert not [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout")]
    download = job["steps"][0]
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    script = job["steps"][1]["with"]["script"]
    assert "updateComment" in script and "deleteComment" in script
    assert workflow(COMMENT)["env"]["RECONCILE_ENVS"] == workflow(PLAN)["env"]["RECONCILE_ENVS"]
    assert "github-script" not in scaffold(date(2030, 1, 1))[PLAN]  # the plan job never writes


def test_the_plan_job_fails_the_check_when_apply_would_refuse_the_plan() -> None:
    plan_steps = {s.get("name"): s for s in steps(PLAN, "plan")}
    assert plan_steps["Validate"]["run"] == "bash .ci/reconcile-ci.sh validate"
    assert "continue-on-error" not in plan_steps["Plan"]
    assert "bash .ci/reconcile-ci.sh plan plan" in plan_steps["Plan"]["run"]
    assert plan_steps["Upload the plans"]["if"] == "always()"  # a red plan is still shown


def test_an_unreviewed_plan_waits_for_a_required_reviewer_by_default() -> None:
    data = workflow(APPLY)
    assert data["env"]["RECONCILE_ON_STALE"] == "approve"
    assert workflow(GITLAB)["variables"]["RECONCILE_ON_STALE"] == "approve"
    approve, apply = data["jobs"]["approve"], data["jobs"]["apply"]
    assert approve["environment"] == "reconcile-approval"
    assert approve["if"] == "needs.prepare.outputs.approval == 'required'"
    assert "secrets." not in yaml.safe_dump(approve)
    assert apply["needs"] == ["prepare", "approve"]
    condition = " ".join(apply["if"].split())
    assert "needs.approve.result == 'success'" in condition
    assert "needs.approve.result == 'skipped' && needs.prepare.outputs.approval == 'none'" in (
        condition
    )
    prepare = {s.get("name"): s for s in data["jobs"]["prepare"]["steps"]}
    assert "reconcile-approval" in prepare["Require reviewers for plans made again"]["run"]
    assert "gh pr comment" in prepare["Show a plan made again on the pull request"]["run"]
    checkout = apply["steps"][0]
    assert checkout["with"]["ref"] == "${{ needs.prepare.outputs.commit }}"


def test_the_state_is_pushed_only_after_this_job_read_it() -> None:
    by_name = {s.get("name"): s for s in steps(APPLY, "apply")}
    assert "steps.state.outcome == 'success'" in by_name["Push the state"]["if"]
    assert by_name["Read the state"]["id"] == "state"
    assert by_name["Keep the state as an artifact too"]["if"] == "always()"


def test_gitlab_pushes_the_state_in_the_script_and_separates_the_tokens() -> None:
    data = workflow(GITLAB)
    plan, template = data["reconcile-plan"], data[".reconcile-apply"]
    assert plan["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    plan_script = "\n".join(plan["script"])
    assert "RECONCILE_GITLAB_NOTE_TOKEN" in plan_script
    assert "RECONCILE_GITLAB_TOKEN" not in plan_script  # the protected token stays protected
    for job in ("reconcile-prepare", ".reconcile-apply"):
        assert "after_script" not in data[job]
        assert data[job]["resource_group"] == "reconcile-apply"
    script = "\n".join(template["script"])
    assert "trap push_state EXIT" in script and "push-state" in script
    assert template["artifacts"]["when"] == "always"
    manual = data["reconcile-apply-replanned"]
    assert manual["rules"][0]["when"] == "manual"
    assert manual["variables"]["RECONCILE_APPLIES_WHEN"] == "required"
    assert data["reconcile-apply"]["variables"]["RECONCILE_APPLIES_WHEN"] == "none"


def test_only_the_default_branch_applies_and_cancel_stops_the_apply() -> None:
    jobs = workflow(APPLY)["jobs"]
    prepare = " ".join(jobs["prepare"]["if"].split())
    assert "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)" in (
        prepare
    )
    assert jobs["apply"]["if"].startswith("!cancelled()")  # always() would ignore a cancel
    gitlab = workflow(GITLAB)
    for job in ("reconcile-prepare", ".reconcile-apply"):
        assert "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in gitlab[job]["rules"][0]["if"]
    assert gitlab[".reconcile-apply"]["environment"] == {"name": "reconcile"}


def test_the_state_branch_is_a_literal_that_fork_pull_requests_see_too() -> None:
    files = scaffold(date(2030, 1, 1))
    for rel in (PLAN, APPLY):
        assert "vars.RECONCILE_STATE_BRANCH" not in files[rel]
        assert workflow(rel)["env"]["RECONCILE_STATE_BRANCH"] == ""
    assert workflow(GITLAB)["variables"]["RECONCILE_STATE_BRANCH"] == ""


def test_the_apply_jobs_read_the_state_as_it_is_now() -> None:
    by_name = {s.get("name"): s for s in steps(APPLY, "apply")}
    assert by_name["Read the state"]["run"].startswith(
        'bash .ci/reconcile-ci.sh pull-state "$GITHUB_REF_NAME"'
    )
    script = "\n".join(workflow(GITLAB)[".reconcile-apply"]["script"])
    assert 'bash .ci/reconcile-ci.sh pull-state "$CI_DEFAULT_BRANCH"' in script
