"""`.ci/reconcile-ci.sh`, the steps of the CI jobs, run as the jobs run them.

Against real git repositories in temporary folders (a bare "origin" and clones of it) and the
emulator over loopback. Only GitHub's REST API is stood in for, by a `gh` on PATH that answers
from the shapes GitHub documents ("List workflow runs for a workflow", "List pull requests
associated with a commit": docs.github.com/en/rest/actions/workflow-runs and
docs.github.com/en/rest/commits/commits).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from reconciler.scaffold import scaffold
from tests.support.campaign import NOW, write_project
from tests.support.emulator import EMULATOR_NOW, EmulatorHandle

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".ci" / "reconcile-ci.sh"
APPLY = ".github/workflows/reconcile-apply.yml"
pytestmark = pytest.mark.slow  # git and bash subprocesses: about a minute in all
BRANCH = "reconcile-state"  # RECONCILE_STATE_BRANCH in the state-branch tests
BLOCKED_NOW = "2025-12-09T12:00:00+00:00"  # msg_00's local day has begun in UTC+14
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@dataclass
class Campaign:
    """A campaign repository (`work`, on main) and its remote (`origin`, a bare repository)."""

    work: Path
    origin: Path
    emulator: EmulatorHandle

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("ENGAGELAB_", "RECONCILE_"))
        }
        base.pop("GITHUB_STEP_SUMMARY", None)
        base.pop("GITHUB_OUTPUT", None)
        return {
            **base,
            **GIT_ENV,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
            "RECONCILE_ENVS": "default",
            "RECONCILE_NOW": NOW,
            "ENGAGELAB_BASE_URL": self.emulator.base_url,
            "ENGAGELAB_APP_KEY": self.emulator.app_key,
            "ENGAGELAB_MASTER_SECRET": self.emulator.master_secret,
            **extra,
        }

    def ci(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.ci_in(self.work, *args, **extra)

    def ci_in(self, cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """The script's step `args`, run in `cwd` as a job runs it."""
        return subprocess.run(
            ["bash", ".ci/reconcile-ci.sh", *args],
            cwd=cwd,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def clone(self, name: str) -> Path:
        target = self.work.parent / name
        git(self.work.parent, "clone", "--quiet", str(self.origin), str(target))
        return target

    def remote_file(self, branch: str, path: str) -> str:
        return git(self.origin, "show", f"{branch}:{path}")


def commit_all(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "--quiet", "-m", message)


@pytest.fixture
def campaign(emulator: EmulatorHandle, tmp_path: Path) -> Campaign:
    work, origin = tmp_path / "work", tmp_path / "origin.git"
    write_project(work, 2)
    (work / ".ci").mkdir()
    shutil.copy(SCRIPT, work / ".ci" / "reconcile-ci.sh")
    (work / "state").mkdir()
    (work / "state" / "default.json").write_text('{"serial": 0}\n', encoding="utf-8")
    (work / ".gitignore").write_text(
        "plan/\nplans/\nreviewed/\nreviewed.pr\n.reconcile-state/\nstate/*.lock\n", "utf-8"
    )
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(origin))
    git(tmp_path, "init", "--quiet", "-b", "main", str(work))
    (work / "state" / "default.json").unlink()  # no state yet: the first apply writes it
    (work / "state" / ".gitkeep").write_text("", encoding="utf-8")
    commit_all(work, "campaign")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "--quiet", "origin", "main")
    return Campaign(work, origin, emulator)


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines())


# --- plan: the pull-request check -------------------------------------------------------------


def test_a_plan_with_blockers_fails_the_check_and_still_shows_why(campaign: Campaign) -> None:
    done = campaign.ci("plan", "plan", RECONCILE_NOW=BLOCKED_NOW)
    assert done.returncode == 7, done.stderr
    assert "apply would refuse it (exit 7)" in done.stderr
    comment = (campaign.work / "plan" / "default" / "comment-1.md").read_text(encoding="utf-8")
    assert "Blocked: apply refuses this plan" in comment
    assert "## reconcile plan: default" in done.stdout  # the job log, without a run summary


def test_a_plan_without_blockers_passes_with_changes(campaign: Campaign) -> None:
    summary = campaign.work / "summary.md"
    done = campaign.ci("plan", "plan", GITHUB_STEP_SUMMARY=str(summary))
    assert done.returncode == 0, done.stderr
    assert (campaign.work / "plan" / "default.json").exists()
    assert "3 to create" in summary.read_text(encoding="utf-8")


def test_an_invalid_spec_fails_validate_and_plan_and_the_comment_names_the_file(
    campaign: Campaign,
) -> None:
    spec = campaign.work / "specs" / "camp.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("languages:", "langages:"), "utf-8")
    done = campaign.ci("validate")
    assert done.returncode == 1
    assert "camp.yaml" in done.stderr and "invalid specs for: default" in done.stderr
    done = campaign.ci("plan", "plan")
    assert done.returncode == 1
    assert not (campaign.work / "plan" / "default.json").exists()
    comment = (campaign.work / "plan" / "default" / "comment-1.md").read_text(encoding="utf-8")
    assert "The plan failed" in comment and "camp.yaml" in comment
    assert "Traceback" not in comment


def test_no_environment_is_an_error_not_an_empty_success(campaign: Campaign) -> None:
    for step in (("validate",), ("plan", "plan"), ("apply", "plans")):
        done = campaign.ci(*step, RECONCILE_ENVS="  ")
        assert done.returncode == 1 and "RECONCILE_ENVS is empty" in done.stderr, step


# --- prepare: the reviewed plan, or a new one that waits for approval ---------------------------


def review(campaign: Campaign) -> Path:
    """The pull request's plan run: its plan folder, as the apply workflow downloads it."""
    assert campaign.ci("plan", "plan").returncode == 0
    reviewed = campaign.work / "reviewed"
    (campaign.work / "plan").rename(reviewed)
    return reviewed


def prepare(
    campaign: Campaign, **extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    out = campaign.work / "github-output"
    out.write_text("", encoding="utf-8")
    done = campaign.ci("prepare", "reviewed", "plans", GITHUB_OUTPUT=str(out), **extra)
    return done, outputs(out) if out.read_text(encoding="utf-8") else {}


def test_a_fresh_reviewed_plan_is_kept_and_needs_no_approval(campaign: Campaign) -> None:
    reviewed = review(campaign)
    done, said = prepare(campaign)
    assert done.returncode == 0, done.stderr
    assert said["approval"] == "none"
    assert said["commit"] == git(campaign.work, "rev-parse", "HEAD")
    plans = campaign.work / "plans"
    assert (plans / "default.json").read_bytes() == (reviewed / "default.json").read_bytes()
    assert (plans / "replanned").read_text(encoding="utf-8") == ""


def test_a_stale_reviewed_plan_is_planned_again_and_waits_for_approval(campaign: Campaign) -> None:
    """The default must never apply a plan nobody saw (it used to: RECONCILE_ON_STALE=replan)."""
    reviewed = review(campaign)
    write_project(campaign.work, 2, fr="Coucou")  # another merge changed the copy
    done, said = prepare(campaign)
    assert done.returncode == 0, done.stderr
    assert said["approval"] == "required"
    plans = campaign.work / "plans"
    assert (plans / "replanned").read_text(encoding="utf-8").split() == ["default"]
    assert (plans / "default.json").read_bytes() != (reviewed / "default.json").read_bytes()
    shown = (plans / "summary.md").read_text(encoding="utf-8")
    assert "NOT REVIEWED" in shown and "Coucou" in shown and "after someone approves" in shown


def test_a_missing_reviewed_plan_is_planned_again_too(campaign: Campaign) -> None:
    (campaign.work / "reviewed").mkdir()
    done, said = prepare(campaign)
    assert done.returncode == 0, done.stderr
    assert said["approval"] == "required" and "no reviewed plan" in (
        campaign.work / "plans" / "summary.md"
    ).read_text(encoding="utf-8")


def test_replan_is_an_opt_in_and_fail_applies_nothing(campaign: Campaign) -> None:
    review(campaign)
    write_project(campaign.work, 2, fr="Coucou")
    done, said = prepare(campaign, RECONCILE_ON_STALE="replan")
    assert done.returncode == 0 and said["approval"] == "none"
    assert "applies it without review" in done.stderr
    shutil.rmtree(campaign.work / "plans")
    done, said = prepare(campaign, RECONCILE_ON_STALE="fail")
    assert done.returncode == 1 and "RECONCILE_ON_STALE=fail" in done.stderr
    assert not (campaign.work / "plans" / "default.json").exists()
    done, _ = prepare(campaign, RECONCILE_ON_STALE="yes")
    assert done.returncode == 1 and "use approve (the default), replan or fail" in done.stderr


def test_a_targeted_reviewed_plan_is_refused_in_ci(campaign: Campaign) -> None:
    reviewed = campaign.work / "reviewed"
    reviewed.mkdir()
    subprocess.run(
        [
            "reconcile",
            "plan",
            "--target",
            "schedule.msg_00",
            "--out",
            str(reviewed / "default.json"),
        ],
        cwd=campaign.work,
        env=campaign.env(),
        capture_output=True,
        check=True,
    )
    done, _ = prepare(campaign, CI="true")
    assert done.returncode == 1 and "cannot be applied (exit 6)" in done.stderr
    assert "CI applies only whole plans" in done.stderr


def test_a_replan_with_blockers_is_not_offered_for_approval(campaign: Campaign) -> None:
    (campaign.work / "reviewed").mkdir()
    done, said = prepare(campaign, RECONCILE_NOW=BLOCKED_NOW)
    assert done.returncode == 1 and "the new plan has blockers" in done.stderr
    assert said.get("approval") is None


# --- apply, then the state push ----------------------------------------------------------------


def test_apply_applies_the_prepared_plans_and_push_state_lands_on_the_remote(
    campaign: Campaign,
) -> None:
    review(campaign)
    assert prepare(campaign)[0].returncode == 0
    done = campaign.ci("apply", "plans")
    assert done.returncode == 0, done.stderr
    assert campaign.emulator.names() == {"msg_00": 1, "msg_01": 1}
    done = campaign.ci("push-state", "main", "reconcile: state [skip ci]")
    assert done.returncode == 0, done.stderr
    local = (campaign.work / "state" / "default.json").read_text(encoding="utf-8")
    assert campaign.remote_file("main", "state/default.json") == local.rstrip("\n")
    assert git(campaign.origin, "log", "-1", "--format=%s", "main") == "reconcile: state [skip ci]"
    again = campaign.ci("push-state", "main", "again")
    assert again.returncode == 0 and "state unchanged" in again.stderr


def applied(campaign: Campaign) -> str:
    """Apply the reviewed plan; return the state it wrote (not yet pushed)."""
    review(campaign)
    assert prepare(campaign)[0].returncode == 0
    assert campaign.ci("apply", "plans").returncode == 0
    return (campaign.work / "state" / "default.json").read_text(encoding="utf-8")


def test_a_branch_that_moved_elsewhere_gets_the_state_on_top(campaign: Campaign) -> None:
    state = applied(campaign)
    other = campaign.clone("other")
    (other / "NOTES.md").write_text("merged meanwhile\n", encoding="utf-8")
    commit_all(other, "another merge")
    git(other, "push", "--quiet", "origin", "main")
    done = campaign.ci("push-state", "main", "reconcile: state [skip ci]")
    assert done.returncode == 0, done.stderr
    assert campaign.remote_file("main", "NOTES.md") == "merged meanwhile"
    assert campaign.remote_file("main", "state/default.json") == state.rstrip("\n")
    assert git(campaign.origin, "log", "-1", "--format=%s", "main~1") == "another merge"


def test_a_state_that_moved_on_the_remote_is_never_merged_and_the_job_fails(
    campaign: Campaign,
) -> None:
    """It used to: `git pull --rebase` conflicted on `serial`, nothing was pushed, exit 0."""
    state = applied(campaign)
    other = campaign.clone("other")
    (other / "state" / "default.json").write_text('{"serial": 99}\n', encoding="utf-8")
    commit_all(other, "someone else's state")
    git(other, "push", "--quiet", "origin", "main")
    done = campaign.ci("push-state", "main", "reconcile: state [skip ci]")
    assert done.returncode == 1
    assert "two states are never merged" in done.stderr
    assert campaign.remote_file("main", "state/default.json") == '{"serial": 99}'
    kept = (campaign.work / "state" / "default.json").read_text(encoding="utf-8")
    assert kept == state and "<<<<<<<" not in kept  # what the artifact uploads
    assert git(campaign.work, "status", "--porcelain", "--untracked-files=no") == ""


def test_a_refused_push_fails_the_job(campaign: Campaign) -> None:
    applied(campaign)
    hook = campaign.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n", encoding="utf-8")
    hook.chmod(0o755)
    done = campaign.ci("push-state", "main", "reconcile: state [skip ci]")
    assert done.returncode == 1 and "after 3 attempts" in done.stderr
    with pytest.raises(subprocess.CalledProcessError):
        campaign.remote_file("main", "state/default.json")


def test_success_is_reported_only_once_the_remote_holds_the_state(campaign: Campaign) -> None:
    applied(campaign)
    elsewhere = campaign.work.parent / "elsewhere.git"
    git(campaign.work.parent, "clone", "--quiet", "--bare", str(campaign.origin), str(elsewhere))
    git(campaign.work, "remote", "set-url", "--push", "origin", str(elsewhere))  # a push mirror
    done = campaign.ci("push-state", "main", "reconcile: state [skip ci]")
    assert done.returncode == 1 and "does not hold it" in done.stderr


# --- a state branch that only the apply job writes --------------------------------------------


def test_the_state_branch_is_created_read_and_written_without_touching_main(
    campaign: Campaign,
) -> None:
    main_before = git(campaign.origin, "rev-parse", "main")
    no_branch_yet = campaign.ci("pull-state", RECONCILE_STATE_BRANCH=BRANCH)
    assert no_branch_yet.returncode == 0 and "does not exist yet" in no_branch_yet.stderr
    review(campaign)
    assert prepare(campaign, RECONCILE_STATE_BRANCH=BRANCH)[0].returncode == 0
    assert campaign.ci("apply", "plans", RECONCILE_STATE_BRANCH=BRANCH).returncode == 0
    done = campaign.ci(
        "push-state", "reconcile-state", "reconcile: state [skip ci]", RECONCILE_STATE_BRANCH=BRANCH
    )
    assert done.returncode == 0, done.stderr
    assert git(campaign.origin, "rev-parse", "main") == main_before
    state = (campaign.work / "state" / "default.json").read_text(encoding="utf-8")
    assert campaign.remote_file("reconcile-state", "state/default.json") == state.rstrip("\n")
    # A later job (a fresh clone of main, whose state/ is empty) plans against the branch's.
    later = campaign.clone("later")
    assert not (later / "state" / "default.json").exists()
    done = campaign.ci_in(later, "pull-state", RECONCILE_STATE_BRANCH=BRANCH)
    assert done.returncode == 0 and "from branch reconcile-state" in done.stderr
    assert (later / "state" / "default.json").read_text(encoding="utf-8") == state
    plan = campaign.ci_in(later, "plan", "plan", RECONCILE_STATE_BRANCH=BRANCH)
    assert "No changes" in (later / "plan" / "default.md").read_text(encoding="utf-8"), plan


def test_a_job_that_did_not_read_the_state_branch_never_writes_it(campaign: Campaign) -> None:

    applied(campaign)
    assert campaign.ci("pull-state", RECONCILE_STATE_BRANCH=BRANCH).returncode == 0
    assert (
        campaign.ci(
            "push-state", "reconcile-state", "first", RECONCILE_STATE_BRANCH=BRANCH
        ).returncode
        == 0
    )
    tip = git(campaign.origin, "rev-parse", "reconcile-state")
    fresh = campaign.clone("fresh")  # its state/ is main's: empty
    git(fresh, "worktree", "add", "--quiet", "--detach", ".reconcile-state", "origin/main")
    done = campaign.ci_in(
        fresh, "push-state", "reconcile-state", "clobber", RECONCILE_STATE_BRANCH=BRANCH
    )
    assert done.returncode == 1 and "did not read the state branch" in done.stderr
    assert git(campaign.origin, "rev-parse", "reconcile-state") == tip


# --- GitHub: which run's artifact is the reviewed plan -----------------------------------------

FAKE_GH = """\
#!{python}
import json, pathlib, sys
here = pathlib.Path({fixtures!r})
args = sys.argv[1:]
with open(here / "calls.log", "a") as log:
    log.write(" ".join(args) + "\\n")
if args[0] == "api":
    path = args[1].split("?")[0]
    sys.stdout.write((here / (path.replace("/", "_") + ".json")).read_text())
elif args[:2] == ["run", "download"] and (here / "expired").exists():
    sys.exit("no valid artifacts found to download")
elif args[:2] == ["run", "download"]:
    target = pathlib.Path(args[args.index("--dir") + 1])
    target.mkdir(parents=True, exist_ok=True)
    (target / "default.json").write_text("from run " + args[2])
else:
    sys.exit("fake gh: unexpected " + " ".join(args))
"""


def run_of(run_id: int, **changes: object) -> dict[str, object]:
    """One entry of `workflow_runs`, as GitHub lists it, for the pull request's own run."""
    run: dict[str, object] = {
        "id": run_id,
        "event": "pull_request",
        "head_sha": "h" * 40,
        "conclusion": "success",
        "path": ".github/workflows/reconcile-plan.yml",
        "created_at": f"2025-11-20T10:{run_id % 60:02d}:00Z",
        "run_attempt": 1,
        "repository": {"full_name": "acme/campaigns"},
        "head_repository": {"full_name": "alice/campaigns"},
    }
    run.update(changes)
    return run


MERGE_SHA = "m" * 40
RUNS_FILE = "repos_acme_campaigns_actions_workflows_reconcile-plan.yml_runs.json"


def fake_github(tmp_path: Path) -> Path:
    """A `gh` on PATH answering from fixture files, and the merged pull request #7 of
    alice/campaigns (head "h"*40) for the merge commit MERGE_SHA."""
    fixtures = tmp_path / "gh"
    fixtures.mkdir()
    gh = fixtures / "gh"
    gh.write_text(FAKE_GH.format(python=sys.executable, fixtures=str(fixtures)), "utf-8")
    gh.chmod(0o755)
    pulls = [
        {
            "number": 7,
            "merged_at": "2025-11-20T11:00:00Z",
            "merge_commit_sha": MERGE_SHA,
            "head": {"sha": "h" * 40, "repo": {"full_name": "alice/campaigns"}},
        }
    ]
    (fixtures / f"repos_acme_campaigns_commits_{MERGE_SHA}_pulls.json").write_text(
        json.dumps(pulls)
    )
    return fixtures


def github_reviewed(campaign: Campaign, fixtures: Path) -> subprocess.CompletedProcess[str]:
    """The step `github-reviewed reviewed` of the merge commit MERGE_SHA, with the fake gh."""
    return campaign.ci(
        "github-reviewed",
        "reviewed",
        PATH=f"{fixtures}{os.pathsep}{campaign.env()['PATH']}",
        GITHUB_REPOSITORY="acme/campaigns",
        GITHUB_SHA=MERGE_SHA,
    )


def test_github_takes_the_plan_of_the_pull_requests_own_run_never_a_planted_one(
    tmp_path: Path, campaign: Campaign
) -> None:
    fixtures = fake_github(tmp_path)
    later = "2025-11-20T11:59:00Z"  # each planted run is newer than the real one
    planted = [
        run_of(901, created_at=later, head_repository={"full_name": "mallory/campaigns"}),
        run_of(902, created_at=later, event="pull_request_target"),
        run_of(903, created_at=later, path=".github/workflows/other.yml"),
        run_of(904, created_at=later, head_sha="x" * 40),
        run_of(905, created_at=later, conclusion="failure"),  # its plan had blockers
        run_of(906, created_at=later, repository={"full_name": "mallory/campaigns"}),
    ]
    runs = {"workflow_runs": [*planted, run_of(42), run_of(41)]}
    name = RUNS_FILE
    (fixtures / name).write_text(json.dumps(runs))
    done = github_reviewed(campaign, fixtures)
    assert done.returncode == 0, done.stderr
    assert (campaign.work / "reviewed" / "default.json").read_text() == "from run 42"
    assert (campaign.work / "reviewed.pr").read_text().strip() == "7"
    calls = (fixtures / "calls.log").read_text()
    assert f"head_sha={'h' * 40}" in calls and "event=pull_request" in calls
    # Only planted runs: no reviewed plan at all (the apply then plans again, for approval).
    (fixtures / name).write_text(json.dumps({"workflow_runs": planted}))
    shutil.rmtree(campaign.work / "reviewed")
    done = github_reviewed(campaign, fixtures)
    assert done.returncode == 0 and "no successful plan run for pull request #7" in done.stderr
    assert not (campaign.work / "reviewed").exists()


# --- GitLab: the apply job's own script --------------------------------------------------------


def gitlab_apply_script() -> str:
    data = yaml.safe_load(scaffold(EMULATOR_NOW.date())[".gitlab-ci.yml"])
    return "\n".join(data[".reconcile-apply"]["script"])


def run_gitlab_apply(campaign: Campaign, **extra: str) -> subprocess.CompletedProcess[str]:
    defaults = {
        "CI_DEFAULT_BRANCH": "main",
        "CI_COMMIT_SHORT_SHA": "abc1234",
        "RECONCILE_COMMIT": git(campaign.work, "rev-parse", "HEAD"),
        "RECONCILE_GIT_REMOTE": str(campaign.origin),
    }
    env = campaign.env(**{**defaults, **extra})
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", gitlab_apply_script()],
        cwd=campaign.work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_gitlab_apply_pushes_the_state_in_its_script(campaign: Campaign) -> None:
    review(campaign)
    assert prepare(campaign)[0].returncode == 0
    done = run_gitlab_apply(campaign, RECONCILE_APPROVAL="none", RECONCILE_APPLIES_WHEN="none")
    assert done.returncode == 0, done.stderr
    assert campaign.emulator.names() == {"msg_00": 1, "msg_01": 1}
    assert '"serial"' in campaign.remote_file("main", "state/default.json")


def test_gitlab_apply_fails_when_the_state_push_fails_even_after_a_good_apply(
    campaign: Campaign,
) -> None:
    """It used to push in after_script, whose failures GitLab ignores."""
    review(campaign)
    assert prepare(campaign)[0].returncode == 0
    hook = campaign.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    hook.chmod(0o755)
    done = run_gitlab_apply(campaign, RECONCILE_APPROVAL="none", RECONCILE_APPLIES_WHEN="none")
    assert campaign.emulator.names() == {"msg_00": 1, "msg_01": 1}  # the apply itself worked
    assert done.returncode == 1 and "the state was not pushed" in done.stdout


def test_gitlab_applies_a_plan_made_again_only_in_the_manual_job(campaign: Campaign) -> None:
    (campaign.work / "reviewed").mkdir()
    assert prepare(campaign)[0].returncode == 0
    waiting = run_gitlab_apply(
        campaign, RECONCILE_APPROVAL="required", RECONCILE_APPLIES_WHEN="none"
    )
    assert waiting.returncode == 0 and "reconcile-apply-replanned" in waiting.stdout
    assert campaign.emulator.names() == {}
    approved = run_gitlab_apply(
        campaign, RECONCILE_APPROVAL="required", RECONCILE_APPLIES_WHEN="required"
    )
    assert approved.returncode == 0, approved.stderr
    assert campaign.emulator.names() == {"msg_00": 1, "msg_01": 1}


# --- GitHub: the jobs' own steps, end to end ----------------------------------------------------


def test_github_steps_plan_prepare_and_apply_the_reviewed_plans_against_the_emulator(
    make_emulator: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    """The scaffold's two environments, each at its own emulator, through the steps as written."""
    files = scaffold(EMULATOR_NOW.date())
    work = tmp_path / "work"
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text, encoding="utf-8")
    staging, production = make_emulator(), make_emulator()
    config = (work / "reconcile.toml").read_text(encoding="utf-8")
    for url in (staging.base_url, production.base_url):
        config = config.replace('data_center = "sgp"', f'base_url = "{url}"', 1)
    (work / "reconcile.toml").write_text(config, encoding="utf-8")
    git(tmp_path, "init", "--quiet", "-b", "main", str(work))
    commit_all(work, "campaign")
    campaign = Campaign(work, tmp_path / "none.git", staging)
    env = campaign.env(
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
        GITHUB_OUTPUT=str(tmp_path / "output"),
        **{f"{p}_ENGAGELAB_APP_KEY": staging.app_key for p in ("STAGING", "PRODUCTION")},
        **{
            f"{p}_ENGAGELAB_MASTER_SECRET": staging.master_secret for p in ("STAGING", "PRODUCTION")
        },
    )
    del env["ENGAGELAB_BASE_URL"]

    def run_steps(rel: str, job: str, names: tuple[str, ...]) -> str:
        said = ""
        data = yaml.safe_load(files[rel])
        env.update({k: str(v) for k, v in data["env"].items() if "${{" not in str(v)})
        env["RECONCILE_STATE_BRANCH"] = ""
        chosen = [s for s in data["jobs"][job]["steps"] if s.get("name") in names]
        assert [s["name"] for s in chosen] == list(names)
        for step in chosen:
            done = subprocess.run(
                ["bash", "-e", "-c", step["run"]],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, f"{step['name']}:\n{done.stdout}\n{done.stderr}"
            said += done.stdout + done.stderr
        return said

    run_steps(".github/workflows/reconcile-plan.yml", "plan", ("Validate", "Plan"))
    assert (work / "plan" / "production" / "comment-1.md").exists()
    (work / "plan").rename(work / "reviewed")  # what "Fetch the reviewed plans" downloads
    said = run_steps(
        ".github/workflows/reconcile-apply.yml", "prepare", ("Check them, or plan again",)
    )
    assert said.count("the reviewed plan is fresh") == 2
    assert "approval=none" in (tmp_path / "output").read_text(encoding="utf-8")
    said = run_steps(".github/workflows/reconcile-apply.yml", "apply", ("Read the state", "Apply"))
    assert said.count("Apply complete: 4 applied") == 2
    for emu in (staging, production):
        assert emu.names() == {"welcome_day_1": 1, "welcome_day_2": 1, "welcome_offer": 1}

    # The same reviewed plans again: stale now, and planned again, with nothing left to do.
    def prepare_again() -> tuple[str, str]:
        (tmp_path / "output").write_text("", encoding="utf-8")
        (tmp_path / "summary.md").write_text("", encoding="utf-8")
        shutil.rmtree(work / "plans")
        run_steps(
            ".github/workflows/reconcile-apply.yml", "prepare", ("Check them, or plan again",)
        )
        said = (tmp_path / "output").read_text(encoding="utf-8")
        return said, (tmp_path / "summary.md").read_text(encoding="utf-8")

    said, shown = prepare_again()
    assert "approval=none" in said and shown.count("no changes after the merge") == 2
    # A merge that changed the copy meanwhile: planned again, shown, and held for approval.
    offer = work / "templates" / "welcome_offer" / "en.yaml"
    offer.write_text(offer.read_text(encoding="utf-8").replace("%", " percent"), "utf-8")
    said, shown = prepare_again()
    assert "approval=required" in said, shown
    assert shown.count("the reviewed plan is stale (exit 3)") == 2 and "NOT REVIEWED" in shown


# --- what an adversarial review found (each fails without its fix) ---------------------------


def step_of(rel: str, job: str, name: str) -> str:
    data = yaml.safe_load(scaffold(EMULATOR_NOW.date())[rel])
    return str(next(s["run"] for s in data["jobs"][job]["steps"] if s.get("name") == name))


@pytest.mark.parametrize(
    ("gh_says", "code", "allowed"),
    [
        ('echo \'{"message": "Not Found"}\'; exit 1', 1, False),  # no such environment
        ('echo \'{"message": "Resource not accessible"}\'; exit 1', 1, False),
        ("echo 0", 0, False),  # the environment has no required reviewers
        ("echo 1", 0, True),
    ],
)
def test_the_approval_environment_check_fails_closed(
    tmp_path: Path, gh_says: str, code: int, allowed: bool
) -> None:
    """gh prints the error body on stdout and exits 1: that must never read as reviewers."""
    gh = tmp_path / "gh"
    gh.write_text(f"#!/bin/sh\n{gh_says}\n", encoding="utf-8")
    gh.chmod(0o755)
    del code  # what gh exits with is in the script itself
    done = subprocess.run(
        ["bash", "-e", "-c", step_of(APPLY, "prepare", "Require reviewers for plans made again")],
        env={
            **os.environ,
            "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_REPOSITORY": "acme/campaigns",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode == 0) is allowed, done.stdout


def test_a_late_run_of_an_old_pipeline_reads_the_state_as_it_is_now_and_sends_nothing(
    campaign: Campaign,
) -> None:
    """Pipeline 1 waits for approval; pipeline 2 (newer copy) applies; pipeline 1 is approved
    late: its plan must be refused as stale, never applied over the newer copy."""
    (campaign.work / "reviewed").mkdir()
    assert prepare(campaign)[0].returncode == 0  # pipeline 1: plans of the old commit
    old_commit = git(campaign.work, "rev-parse", "HEAD")
    shutil.move(str(campaign.work / "plans"), str(campaign.work.parent / "plans-1"))
    newer = campaign.clone("newer")
    write_project(newer, 2, fr="Coucou")
    commit_all(newer, "newer copy")
    git(newer, "push", "--quiet", "origin", "main")
    shutil.copy(SCRIPT, newer / ".ci" / "reconcile-ci.sh")
    (newer / "reviewed").mkdir()
    assert prepare(Campaign(newer, campaign.origin, campaign.emulator))[0].returncode == 0
    done = run_gitlab_apply(
        Campaign(newer, campaign.origin, campaign.emulator),
        RECONCILE_APPROVAL="none",
        RECONCILE_APPLIES_WHEN="none",
    )
    assert done.returncode == 0, done.stderr  # pipeline 2 applied the newer copy
    live = dict(campaign.emulator.names())
    mark = len(campaign.emulator.calls())
    # Pipeline 1's manual job, clicked now, in its own (old) checkout.
    git(campaign.work, "fetch", "--quiet", "origin")
    shutil.rmtree(campaign.work / "plans", ignore_errors=True)
    shutil.move(str(campaign.work.parent / "plans-1"), str(campaign.work / "plans"))
    late = run_gitlab_apply(
        campaign,
        RECONCILE_APPROVAL="none",
        RECONCILE_APPLIES_WHEN="none",
        RECONCILE_COMMIT=old_commit,
    )
    assert late.returncode != 0
    assert "stale" in late.stdout + late.stderr
    assert [c for c in campaign.emulator.calls()[mark:] if c.method != "GET"] == []
    assert campaign.emulator.names() == live


def test_an_expired_plan_artifact_means_no_reviewed_plan_not_a_crash(
    tmp_path: Path, campaign: Campaign
) -> None:
    fixtures = fake_github(tmp_path)
    (fixtures / RUNS_FILE).write_text(json.dumps({"workflow_runs": [run_of(42)]}))
    (fixtures / "expired").write_text("")  # the fake's `run download` then fails, as gh does
    done = github_reviewed(campaign, fixtures)
    assert done.returncode == 0 and "could not be downloaded: no reviewed plan" in done.stderr
    assert not (campaign.work / "reviewed").exists()


def test_a_reused_build_folder_reads_the_state_branch_again(campaign: Campaign) -> None:
    """A shell runner's `git clean -ffdx` removes the worktree folder git still knows."""
    assert campaign.ci("pull-state", RECONCILE_STATE_BRANCH=BRANCH).returncode == 0
    applied(campaign)
    assert campaign.ci("push-state", BRANCH, "first", RECONCILE_STATE_BRANCH=BRANCH).returncode == 0
    git(campaign.work, "clean", "-ffdxq")
    again = campaign.ci("pull-state", RECONCILE_STATE_BRANCH=BRANCH)
    assert again.returncode == 0, again.stderr
    assert "from branch reconcile-state" in again.stderr


def test_a_reviewed_comment_that_is_not_the_plan_file_is_not_taken_as_reviewed(
    campaign: Campaign,
) -> None:
    review(campaign)
    shown = campaign.work / "reviewed" / "default.md"
    shown.write_text(shown.read_text(encoding="utf-8") + "\nNothing to see here.\n", "utf-8")
    done, said = prepare(campaign)
    assert done.returncode == 0 and said["approval"] == "required"
    summary = (campaign.work / "plans" / "summary.md").read_text(encoding="utf-8")
    assert "the reviewed comment is not what the reviewed plan file says" in summary


def test_with_the_state_in_postgresql_the_apply_job_commits_nothing_back(
    campaign: Campaign, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_TEST_STATE_URL", pg_url)  # not RECONCILE_*: the job keeps it
    project = "ci-" + os.urandom(4).hex()
    state = f'state = {{ url_env = "CI_TEST_STATE_URL", project = "{project}" }}'
    (campaign.work / "reconcile.toml").write_text(f"[environments.default]\n{state}\n", "utf-8")
    commit_all(campaign.work, "the state moves to PostgreSQL")
    git(campaign.work, "push", "--quiet", "origin", "main")
    review(campaign)
    assert prepare(campaign)[0].returncode == 0
    done = campaign.ci("apply", "plans")
    assert done.returncode == 0, done.stderr
    assert campaign.emulator.names() == {"msg_00": 1, "msg_01": 1}
    assert not (campaign.work / "state" / "default.json").exists()
    before = git(campaign.origin, "rev-parse", "main")
    summary = campaign.work / "summary.md"
    done = campaign.ci("push-state", "main", "reconcile: state", GITHUB_STEP_SUMMARY=str(summary))
    assert done.returncode == 0, done.stderr
    assert "kept in PostgreSQL" in summary.read_text(encoding="utf-8")
    assert git(campaign.origin, "rev-parse", "main") == before  # nothing committed back
    # A second apply, as from another runner's fresh checkout, finds the state there.
    again = campaign.ci("plan", "plan")
    assert again.returncode == 0, again.stderr
    assert "No changes" in (campaign.work / "plan" / "default" / "comment-1.md").read_text("utf-8")
