#!/usr/bin/env bash
# The steps the reconcile CI jobs run, the same on GitHub Actions and GitLab CI (written by
# `reconcile init`; the workflows call `bash .ci/reconcile-ci.sh STEP ...`).
#
#   validate                 validate every environment; fails when any spec is invalid
#   plan DIR                 plan every environment into DIR (saved plan, markdown, comments);
#                            exit 7 when a plan has blockers (apply would refuse it), 1 on errors
#   pull-state               state branch mode: put the state branch's state/ in ./state
#   github-reviewed DIR      GitHub: download the merged pull request's reviewed plans into DIR,
#                            from the plan run of that pull request's head, checked by run id
#   gitlab-reviewed DIR      GitLab: the same, from the merge request's pipeline at its head
#   prepare REVIEWED OUT     per environment: the reviewed plan if `apply --check` passes, else a
#                            new plan (RECONCILE_ON_STALE); writes OUT/replanned and OUT/summary.md
#   apply DIR                apply DIR/<env>.json in order; stops at the first failure
#   push-state BRANCH MSG    commit state/ and push it to BRANCH; never merges a state that moved;
#                            nothing to do when every environment's state is in PostgreSQL
#
# Settings (environment): RECONCILE_ENVS (environments in apply order), RECONCILE_ON_STALE
# (approve | replan | fail), RECONCILE_STATE_BRANCH (empty: state/ lives on the main branch),
# RECONCILE_GIT_REMOTE (where push-state pushes; default origin).
set -euo pipefail

die() { echo "error: $*" >&2; exit 1; }
note() { echo "$*" >&2; }
ENVS=()
read_envs() {  # RECONCILE_ENVS into ENVS, or a clear stop (never a loop over nothing)
  read -r -a ENVS <<< "${RECONCILE_ENVS:-}"
  [ "${#ENVS[@]}" -gt 0 ] || die "RECONCILE_ENVS is empty: name the environments, in apply order"
}
summary() {  # append stdin to the run summary (GitHub), or to the job log
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat >> "$GITHUB_STEP_SUMMARY"; else cat; fi
}
output() {  # a step output (GitHub) and a dotenv line (GitLab artifacts:reports:dotenv)
  if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "$1=$2" >> "$GITHUB_OUTPUT"; fi
  if [ -n "${RECONCILE_DOTENV:-}" ]; then echo "RECONCILE_${1^^}=$2" >> "$RECONCILE_DOTENV"; fi
}

cmd_validate() {
  local failed="" env
  read_envs
  for env in "${ENVS[@]}"; do
    RECONCILE_ENV="$env" reconcile validate || failed="$failed $env"
  done
  [ -z "$failed" ] || die "invalid specs for:$failed (see above: each error names the file and line)"
}

cmd_plan() {
  local dir=${1:?plan DIR} blocked="" failed="" env code
  mkdir -p "$dir"
  read_envs
  for env in "${ENVS[@]}"; do
    code=0
    RECONCILE_ENV="$env" reconcile plan --detailed-exitcode --format markdown \
      --out "$dir/$env.json" --comments-dir "$dir/$env" > "$dir/$env.md" 2> "$dir/$env.err" \
      || code=$?
    cat "$dir/$env.err" >&2
    case "$code" in
      0 | 2) ;;
      7) blocked="$blocked $env" ;;
      *)
        failed="$failed $env"
        rm -f "$dir/$env.json"  # nothing of a failed plan may be taken for a reviewed one
        mkdir -p "$dir/$env"
        { echo "**The plan failed** (exit $code); nothing can be applied until this is fixed:"
          echo; echo '```'; cat "$dir/$env.err"; echo '```'; } > "$dir/$env/comment-1.md"
        cp "$dir/$env/comment-1.md" "$dir/$env.md" ;;
    esac
    { echo "## reconcile plan: $env"; cat "$dir/$env.md"; } | summary
  done
  [ -z "$failed" ] || die "the plan failed for:$failed"
  if [ -n "$blocked" ]; then
    echo "error: the plan has blockers for:$blocked; apply would refuse it (exit 7)" >&2
    exit 7
  fi
}

state_source() {  # where the state branch is checked out, if any
  [ -n "${RECONCILE_STATE_BRANCH:-}" ] && [ -e .reconcile-state/.git ] && echo .reconcile-state
  return 0
}

PULLED=.reconcile-pulled  # written by pull-state: the commit whose state/ this job read

# state/ as it is in `commit` (none there: an empty state/).
state_from() {
  rm -rf state
  mkdir state
  if git cat-file -e "$1:state" 2> /dev/null; then git archive "$1" state | tar -x; fi
}

cmd_pull_state() {
  # pull-state [BRANCH]. State branch mode: state/ from RECONCILE_STATE_BRANCH. Otherwise, with
  # BRANCH: state/ from BRANCH as it is now (an apply job checks out the commit its plans were
  # checked against, and another apply may have pushed a newer state since). Without: this
  # checkout's. push-state later refuses to write a state this job did not read.
  local branch=${RECONCILE_STATE_BRANCH:-} remote=${RECONCILE_GIT_REMOTE:-origin} found=0
  local current=${1:-}
  rm -f "$PULLED"
  if [ -z "$branch" ] && [ -z "$current" ]; then
    note "state: state/ of this checkout"
    git rev-parse HEAD > "$PULLED"
    return
  fi
  if [ -z "$branch" ]; then
    git fetch --quiet "$remote" "refs/heads/$current"
    state_from FETCH_HEAD
    git rev-parse FETCH_HEAD > "$PULLED"
    note "state: from $current as it is now, $(git rev-parse --short FETCH_HEAD)"
    return
  fi
  if [ -z "$(state_source)" ]; then  # not checked out by the workflow (GitHub does): fetch it
    git worktree prune  # a reused build folder may have lost an earlier job's worktree
    git ls-remote --exit-code --heads "$remote" "$branch" > /dev/null || found=$?
    if [ "$found" = 2 ]; then
      note "state: branch $branch does not exist yet; using state/ of this checkout (the first"
      note "apply creates the branch)"
      git worktree add --quiet --detach .reconcile-state HEAD
      git rev-parse HEAD > "$PULLED"
      return
    fi
    [ "$found" = 0 ] || die "cannot read the state branch $branch from $remote"
    git fetch --quiet "$remote" "refs/heads/$branch"
    git worktree add --quiet --detach .reconcile-state FETCH_HEAD
  fi
  if [ -d .reconcile-state/state ]; then
    rm -rf state
    cp -a .reconcile-state/state state
    note "state: from branch $branch at $(git -C .reconcile-state rev-parse --short HEAD)"
  else
    note "state: branch $branch has no state/ yet; using state/ of this checkout"
  fi
  git -C .reconcile-state rev-parse HEAD > "$PULLED"  # push-state may now write the branch
}

cmd_github_reviewed() {
  local dir=${1:?github-reviewed DIR} workflow=${RECONCILE_PLAN_WORKFLOW:-reconcile-plan.yml}
  local repo=${GITHUB_REPOSITORY:?} sha=${GITHUB_SHA:?} pulls runs picked run pr
  pulls=$(mktemp) runs=$(mktemp)
  gh api "repos/$repo/commits/$sha/pulls" > "$pulls"
  picked=$(python3 - "$pulls" "$sha" <<'PY'
import json, sys
pulls, sha = json.load(open(sys.argv[1])), sys.argv[2]
merged = [p for p in pulls if p.get("merged_at")]
mine = [p for p in merged if p.get("merge_commit_sha") == sha] or merged
if mine:
    p = mine[0]
    print(p["number"], p["head"]["sha"], (p["head"].get("repo") or {}).get("full_name") or "-")
PY
)
  if [ -z "$picked" ]; then note "no merged pull request for $sha: no reviewed plan"; return; fi
  read -r pr head head_repo <<< "$picked"
  echo "$pr" > "$dir.pr"
  gh api "repos/$repo/actions/workflows/$workflow/runs?event=pull_request&head_sha=$head&per_page=100" \
    > "$runs"
  # Only the base repository's own pull_request run of the plan workflow, at the pull request's
  # head, from the pull request's head repository, that succeeded: a plan a fork uploaded
  # elsewhere, or one from another commit, is never taken for the reviewed one.
  run=$(python3 - "$runs" "$repo" "$head" "$head_repo" "$workflow" <<'PY'
import json, sys
runs, repo, head, head_repo, workflow = json.load(open(sys.argv[1])), *sys.argv[2:]
ok = [
    r for r in runs.get("workflow_runs", [])
    if r.get("event") == "pull_request" and r.get("head_sha") == head
    and r.get("conclusion") == "success"
    and (r.get("repository") or {}).get("full_name") == repo
    and (r.get("head_repository") or {}).get("full_name") == head_repo
    and r.get("path", "").split("@")[0] == f".github/workflows/{workflow}"
]
if ok:
    print(max(ok, key=lambda r: (r.get("created_at", ""), r.get("run_attempt", 1)))["id"])
PY
)
  if [ -z "$run" ]; then
    note "no successful plan run for pull request #$pr at $head: no reviewed plan"
    return
  fi
  if ! gh run download "$run" --repo "$repo" --name reconcile-plan --dir "$dir"; then
    rm -rf "$dir"  # expired (30 days) or removed: plan again, for approval
    note "the plans of run $run could not be downloaded: no reviewed plan"
    return
  fi
  note "reviewed plans: pull request #$pr, plan run $run (head $head)"
}

cmd_gitlab_reviewed() {
  local dir=${1:?gitlab-reviewed DIR}
  python3 - "$dir" <<'PY'
# The plan job's artifact of the merge request's own pipeline at the merge request's head.
import io, json, os, sys, urllib.error, urllib.request, zipfile
api = f"{os.environ['CI_API_V4_URL']}/projects/{os.environ['CI_PROJECT_ID']}"
def get(path):
    request = urllib.request.Request(
        f"{api}/{path}", headers={"PRIVATE-TOKEN": os.environ["RECONCILE_GITLAB_TOKEN"]})
    with urllib.request.urlopen(request) as answer:
        return answer.read()
mrs = json.loads(get(f"repository/commits/{os.environ['CI_COMMIT_SHA']}/merge_requests"))
mrs = [m for m in mrs if m.get("state") == "merged"]
if not mrs:
    sys.exit(print("no merged merge request for this commit: no reviewed plan", file=sys.stderr))
mr = mrs[0]
pipelines = json.loads(get(f"merge_requests/{mr['iid']}/pipelines"))
ours = [p for p in pipelines if p.get("sha") == mr["sha"]
        and p.get("source", "merge_request_event") == "merge_request_event"
        and str(p.get("project_id", os.environ["CI_PROJECT_ID"])) == os.environ["CI_PROJECT_ID"]]
if not ours:
    sys.exit(print(f"no pipeline for !{mr['iid']} at {mr['sha']}: no reviewed plan",
                   file=sys.stderr))
jobs = json.loads(get(f"pipelines/{ours[0]['id']}/jobs?scope[]=success"))
job = next((j for j in jobs if j["name"] == "reconcile-plan"), None)
if job is None:
    sys.exit(print(f"no successful reconcile-plan job for !{mr['iid']}: no reviewed plan",
                   file=sys.stderr))
try:
    artifact = get(f"jobs/{job['id']}/artifacts")
except urllib.error.HTTPError as error:  # expired (30 days) or erased: plan again, for approval
    sys.exit(print(f"the plan job's artifacts answer HTTP {error.code}: no reviewed plan",
                   file=sys.stderr))
with zipfile.ZipFile(io.BytesIO(artifact)) as archive:
    for name in archive.namelist():
        if name.startswith("plan/") and not name.endswith("/"):
            target = os.path.join(sys.argv[1], name[len("plan/"):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                out.write(archive.read(name))
print(f"reviewed plans: !{mr['iid']}, job {job['id']} (head {mr['sha']})", file=sys.stderr)
PY
}

cmd_prepare() {
  local reviewed=${1:?prepare REVIEWED OUT} out=${2:?prepare REVIEWED OUT}
  local on_stale=${RECONCILE_ON_STALE:-approve} env code replanned="" why
  case "$on_stale" in approve | replan | fail) ;; *)
    die "RECONCILE_ON_STALE is '$on_stale': use approve (the default), replan or fail" ;;
  esac
  mkdir -p "$out"
  : > "$out/replanned"
  read_envs
  for env in "${ENVS[@]}"; do
    code=0
    if [ -f "$reviewed/$env.json" ]; then
      RECONCILE_ENV="$env" reconcile apply --check "$reviewed/$env.json" || code=$?
      why="the reviewed plan is stale (exit 3): the state or the specs moved since the review"
      [ "$code" = 4 ] && why="the reviewed plan expired (exit 4): a send it touches is too near"
      if [ "$code" = 0 ] && [ -f "$reviewed/$env.md" ] && ! cmp -s "$reviewed/$env.md" \
        <(RECONCILE_ENV="$env" reconcile show "$reviewed/$env.json" --format markdown); then
        code=3 why="the reviewed comment is not what the reviewed plan file says"
      fi
    else
      code=3 why="no reviewed plan (a push without a pull request, or its plan did not pass)"
    fi
    case "$code" in
      0)
        cp "$reviewed/$env.json" "$out/$env.json"
        note "$env: the reviewed plan is fresh; it is what will be applied"
        { echo "## $env: the reviewed plan"; echo;
          reconcile show "$out/$env.json" --format markdown; } | summary
        continue ;;
      3 | 4) ;;
      *) die "$env: the reviewed plan cannot be applied (exit $code); nothing was applied" ;;
    esac
    [ "$on_stale" != fail ] || { note "$env: $why"; die "$env: RECONCILE_ON_STALE=fail"; }
    code=0
    RECONCILE_ENV="$env" reconcile plan --detailed-exitcode --format markdown \
      --out "$out/$env.json" > "$out/$env.md" || code=$?
    case "$code" in
      0)
        note "$env: $why; planned again: no changes, nothing to approve"
        { echo "## $env: no changes after the merge"; echo; echo "$why; planned again: no"
          echo "change to apply."; } | summary
        continue ;;
      2) ;;
      7) die "$env: the new plan has blockers; apply would refuse it: see the plan above" ;;
      *) die "$env: planning again failed (exit $code)" ;;
    esac
    echo "$env" >> "$out/replanned"
    replanned="$replanned $env"
    { echo "## $env: NOT REVIEWED: planned again after the merge"; echo;
      echo "$why. This plan was made now, from the merged branch."
      if [ "$on_stale" = approve ]; then
        echo "It is applied only after someone approves it (see the run)."
      else
        echo "RECONCILE_ON_STALE=replan: it is applied without review."
      fi
      echo; cat "$out/$env.md"; } | tee -a "$out/summary.md" | summary
  done
  git rev-parse HEAD > "$out/commit"
  output commit "$(cat "$out/commit")"
  if [ -z "$replanned" ]; then
    output approval none
  elif [ "$on_stale" = approve ]; then
    output approval required
    note "planned again for:$replanned; applied only after approval"
  else
    output approval none
    note "planned again for:$replanned; RECONCILE_ON_STALE=replan applies it without review"
  fi
}

cmd_apply() {
  local dir=${1:?apply DIR} env code
  read_envs
  for env in "${ENVS[@]}"; do
    [ -f "$dir/$env.json" ] || die "$env: no plan in $dir; later environments were not applied"
    code=0
    RECONCILE_ENV="$env" reconcile apply "$dir/$env.json" || code=$?
    [ "$code" = 0 ] || die "$env: apply exited $code; later environments were not applied"
  done
}

# Make `commit` (whose state/ is ours) a child of `tip`: tip's files, our state/. Pure git.
rebuild_on() {
  local tip=$1 commit=$2 index tree
  index=$(mktemp)
  GIT_INDEX_FILE=$index git read-tree "$tip"
  GIT_INDEX_FILE=$index git rm -r -q --cached --ignore-unmatch state
  GIT_INDEX_FILE=$index git read-tree --prefix=state/ "$commit:state"
  tree=$(GIT_INDEX_FILE=$index git write-tree)
  rm -f "$index"
  git log -1 --format=%B "$commit" | git commit-tree "$tree" -p "$tip"
}

# True when some environment keeps its state in a file (state/, committed back by push-state);
# false when RECONCILE_ENVS all keep theirs in PostgreSQL (`reconcile state where`).
files_to_push() {
  local env where
  [ -n "${RECONCILE_ENVS:-}" ] || return 0
  read_envs
  for env in "${ENVS[@]}"; do
    where=$(RECONCILE_ENV="$env" reconcile state where) || die "cannot tell where the state of $env is"
    case "$where" in
      postgres\ *) ;;
      *) return 0 ;;
    esac
  done
  return 1
}

cmd_push_state() {
  local branch=${1:?push-state BRANCH MESSAGE} message=${2:?push-state BRANCH MESSAGE}
  local remote=${RECONCILE_GIT_REMOTE:-origin} repo=. base="" tip attempt new
  local who=(-c "user.name=${RECONCILE_GIT_NAME:-reconcile[bot]}"
             -c "user.email=${RECONCILE_GIT_EMAIL:-reconcile@users.noreply.github.com}")
  if ! files_to_push; then
    note "state: every environment keeps its state in PostgreSQL; nothing is committed back"
    echo "The state of ${RECONCILE_ENVS:-every environment} is kept in PostgreSQL, not in git:" \
      "this job commits nothing back; the database keeps every version of it." | summary
    return
  fi
  [ -d state ] || die "no state/ folder here: nothing to push"
  [ -f "$PULLED" ] && base=$(cat "$PULLED")
  if [ -n "${RECONCILE_STATE_BRANCH:-}" ]; then
    if [ -z "$(state_source)" ] || [ -z "$base" ]; then
      die "state branch mode, but this job did not read the state branch (pull-state): not" \
        "pushing, so that this checkout's state/ never overwrites the branch's"
    fi
    repo=.reconcile-state
    rm -rf "$repo/state"
    cp -a state "$repo/state"
  fi
  cd "$repo"
  [ -n "$base" ] || base=$(git rev-parse HEAD)  # no pull-state: the checkout's own state
  git add -A state/
  if git diff --cached --quiet "$base" -- state/; then
    note "state unchanged"
    return
  fi
  git "${who[@]}" commit --quiet --allow-empty -m "$message"
  if [ "$(git rev-parse HEAD~1)" != "$base" ]; then  # the state came from a newer commit
    new=$(rebuild_on "$base" HEAD)
    git reset --quiet --soft "$new"
  fi
  for attempt in 1 2 3; do
    if git push --quiet "$remote" "HEAD:refs/heads/$branch"; then
      git fetch --quiet "$remote" "refs/heads/$branch"
      git merge-base --is-ancestor HEAD FETCH_HEAD \
        || die "the push of the state reported success, but $branch does not hold it"
      note "state pushed to $branch: $(git rev-parse --short HEAD)"
      return
    fi
    note "the push of the state was refused (attempt $attempt); reading $branch again"
    if ! git fetch --quiet "$remote" "refs/heads/$branch"; then
      continue
    fi
    tip=$(git rev-parse FETCH_HEAD)
    if ! git diff --quiet "$base" "$tip" -- state/; then
      die "state/ on $branch changed since this run read it ($(git rev-parse --short "$base")" \
        "-> $(git rev-parse --short "$tip")); two states are never merged. This run's state is" \
        "kept as it is in state/ and in the run's artifact: compare the two and commit the" \
        "right one by hand before the next apply"
    fi
    new=$(rebuild_on "$tip" HEAD)
    git reset --quiet --soft "$new"
    base=$tip
  done
  die "could not push the state to $branch after 3 attempts; it is in this run's artifact"
}

step=${1:-}
[ -n "$step" ] || die "usage: reconcile-ci.sh STEP [ARGS] (see the comment at the top)"
shift
case "$step" in
  validate) cmd_validate "$@" ;;
  plan) cmd_plan "$@" ;;
  pull-state) cmd_pull_state "$@" ;;
  github-reviewed) cmd_github_reviewed "$@" ;;
  gitlab-reviewed) cmd_gitlab_reviewed "$@" ;;
  prepare) cmd_prepare "$@" ;;
  apply) cmd_apply "$@" ;;
  push-state) cmd_push_state "$@" ;;
  *) die "unknown step '$step' (see the comment at the top of $0)" ;;
esac
