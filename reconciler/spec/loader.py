"""The desired-state builder: spec files + template files -> exact EngageLab API bodies.

`build_desired` is pure (bytes in, DesiredState out, clock passed in) and reports every problem at
once as a SpecError; `read_sources` is the only I/O; `load_desired` joins the two.
"""

from __future__ import annotations

import gc
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reconciler import engagelab as api
from reconciler.canonical import digest, digest_bytes
from reconciler.errors import ConfigError, Problem, SpecError
from reconciler.settings import Settings
from reconciler.spec.body import build_schedule
from reconciler.spec.desired import DesiredPlan, DesiredSchedule, DesiredState, SourceRef
from reconciler.spec.diagnostics import Issue, dotted
from reconciler.spec.model import Message, SpecFile, parse_file
from reconciler.spec.templates import TemplateBook
from reconciler.spec.yamlsrc import MAX_FILE_BYTES, Locator, YamlProblem, load

SPECS_DIR = "specs"
MIN_MESSAGE_BUDGET = 5000  # [ours] with the x2 below: 10,000 messages even at a small quota
TEMPLATES_DIR = "templates"


@dataclass(frozen=True, slots=True)
class Sources:
    """Every input file by project-relative POSIX path; `issues`: files that could not be read."""

    specs: Mapping[str, bytes]
    templates: Mapping[str, bytes]
    issues: tuple[Issue, ...] = ()


def load_desired(root: Path, settings: Settings, now: datetime) -> DesiredState:
    if not (root / SPECS_DIR).is_dir():
        # An empty plan from the wrong folder would read as "no changes" and keep CI green.
        raise ConfigError(
            f"{root / SPECS_DIR} is not a folder: run reconcile in a campaign repository, pass "
            "--root, or create one with `reconcile init`"
        )
    sources = read_sources(root)
    # The build allocates a large tree of acyclic objects; the cycle collector would rescan it
    # over and over (a third of the time for 10,000 schedules) and can find nothing to free.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return build_desired(sources, settings, now)
    finally:
        if was_enabled:
            gc.enable()


def read_sources(root: Path) -> Sources:
    """Read specs/*.yaml and templates/<name>/<lang>.yaml, refusing anything outside the tree."""
    issues: list[Issue] = []
    specs: dict[str, bytes] = {}
    templates: dict[str, bytes] = {}
    spec_dir, template_dir = root / SPECS_DIR, root / TEMPLATES_DIR
    if spec_dir.is_dir():
        for path in sorted([*spec_dir.glob("*.yaml"), *spec_dir.glob("*.yml")]):
            _read(root, spec_dir, path, specs, issues, "spec file")
    if template_dir.is_dir():
        for path in sorted(template_dir.glob("*/*.yaml")):
            _read(root, template_dir, path, templates, issues, "template file")
    return Sources(specs, templates, tuple(issues))


def _read(
    root: Path, inside: Path, path: Path, out: dict[str, bytes], issues: list[Issue], what: str
) -> None:
    rel = path.relative_to(root).as_posix()
    try:
        # Against the real project root, not the folder's own target: a symlinked specs/ or
        # templates/ folder would otherwise carry any file on the machine into the plan.
        allowed = root.resolve() / inside.relative_to(root)
        if not path.resolve().is_relative_to(allowed):
            issues.append(
                Issue(rel, (), "links outside the project", "replace the link by a real file")
            )
            return
        # Checked before opening: a FIFO would block the open, a device may act on it. Skipping
        # it instead would drop the campaign in silence, and the plan would delete it.
        if (odd := _not_regular(path.stat().st_mode, rel, what)) is not None:
            issues.append(odd)
            return
        # O_NONBLOCK: should the path turn into a FIFO since the stat, the open cannot block.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            if (odd := _not_regular(os.fstat(fd).st_mode, rel, what)) is not None:
                issues.append(odd)
                return
            out[rel] = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        issues.append(Issue(rel, (), f"cannot be read: {error.strerror}", "check the file"))


def _not_regular(mode: int, rel: str, what: str) -> Issue | None:
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    )
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    return Issue(rel, (), f"is {kind}, not a {what}", "rename or remove it")


def build_desired(sources: Sources, settings: Settings, now: datetime) -> DesiredState:
    """Validate every spec and template and build every body; SpecError lists all problems."""
    issues: list[Issue] = list(sources.issues)
    book = TemplateBook(sources.templates, issues)
    files: list[SpecFile] = []
    total, budget = 0, 2 * max(settings.schedule_quota, MIN_MESSAGE_BUDGET)
    for rel in sorted(sources.specs):
        try:
            loaded = load(sources.specs[rel])
        except YamlProblem as problem:
            issues.append(
                Issue(rel, (), problem.message, problem.hint, line=problem.line, col=problem.col)
            )
            continue
        spec = parse_file(rel, loaded.value, loaded.marks, issues)
        if spec is not None:
            files.append(spec)
            total += len(spec.messages)
            if total > budget:
                issues.append(
                    Issue(
                        rel,
                        (),
                        f"the specs hold more than {budget} messages (twice the schedule quota)",
                        "remove old campaigns, or raise --schedule-quota if EngageLab raised it; "
                        "the remaining spec files were not read",
                    )
                )
                break
    plans = _plans(files, settings, issues)
    schedules: dict[str, DesiredSchedule] = {}
    first_seen: dict[str, Message] = {}
    live = 0
    for spec in files:
        for message in spec.messages:
            name_ok = _name_ok(message, first_seen, issues)
            built = build_schedule(
                spec, message, book, settings, now, issues
            )  # checks run regardless
            if built is None or not name_ok:
                continue
            schedule, is_live = built
            schedules[schedule.name] = schedule
            live += is_live
            if is_live and live == settings.schedule_quota + 1:
                issues.append(
                    Issue(
                        message.file,
                        message.path,
                        f"more live schedules than the quota of {settings.schedule_quota}",
                        "delete or disable some, or raise --schedule-quota if EngageLab raised it",
                    )
                )
    problems = _resolve(issues, sources)
    if any(not p.warning for p in problems):
        raise SpecError(problems)
    used = {rel: sources.specs[rel] for rel in sources.specs} | book.used_files()
    inputs = [[rel, digest_bytes(used[rel])] for rel in sorted(used)]
    return DesiredState(
        plans={k: plans[k] for k in sorted(plans)},
        schedules={k: schedules[k] for k in sorted(schedules)},
        inputs_digest=digest(inputs),
        warnings=tuple(problems),
        check_levels={s.plan_id: s.checks for s in files if s.checks and s.plan_id in plans},
    )


def _plans(
    files: list[SpecFile], settings: Settings, issues: list[Issue]
) -> dict[str, DesiredPlan]:
    plans: dict[str, DesiredPlan] = {}
    for spec in files:
        pid, line_col = spec.plan_id, spec.plan_mark
        where: tuple[str, int, int] = (spec.file, *line_col)
        if not pid:
            issues.append(
                _at(where, ("plan", "id"), "empty plan id", "EngageLab refuses it (27303)")
            )
        elif len(pid) > api.PLAN_ID_MAX or not api.PLAN_ID_RE.match(pid):
            issues.append(
                _at(
                    where,
                    ("plan", "id"),
                    f"{pid!r} is not a valid plan id",
                    f"letters, digits and _, not starting with _, at most {api.PLAN_ID_MAX} long",
                )
            )
        elif pid in plans:
            issues.append(
                _at(
                    where,
                    ("plan", "id"),
                    f"plan {pid!r} is already declared in {plans[pid].source}",
                    "give each spec file its own plan id",
                )
            )
        if len(spec.description) > api.PLAN_DESCRIPTION_MAX:
            issues.append(
                Issue(
                    spec.file,
                    ("plan", "description"),
                    f"description is {len(spec.description)} characters",
                    f"at most {api.PLAN_DESCRIPTION_MAX}",
                )
            )
        if pid and pid not in plans:
            plans[pid] = DesiredPlan(pid, spec.description, SourceRef(*where))
            if len(plans) == settings.plan_quota + 1:
                issues.append(
                    _at(
                        where,
                        ("plan", "id"),
                        f"more than {settings.plan_quota} push plans",
                        "EngageLab allows 100 per AppKey and cannot delete them; reuse a plan",
                    )
                )
    return plans


def _at(where: tuple[str, int, int], path: tuple[str, ...], message: str, hint: str) -> Issue:
    return Issue(where[0], path, message, hint, line=where[1], col=where[2])


_NAME_HINT = "letters, digits, _ and CJK characters only"


def _name_ok(message: Message, first_seen: dict[str, Message], issues: list[Issue]) -> bool:
    name, path = message.name, (*message.path, "name")
    if message.series_value is not None:
        path = (*message.path, "series", message.series_value)
    if not api.SCHEDULE_NAME_RE.match(name):
        issues.append(
            Issue(message.file, path, f"schedule name {name!r} is not allowed", _NAME_HINT)
        )
        return False
    size = len(name.encode("utf-8"))
    if size > api.SCHEDULE_NAME_MAX_BYTES:
        issues.append(
            Issue(
                message.file,
                path,
                f"schedule name is {size} bytes",
                f"at most {api.SCHEDULE_NAME_MAX_BYTES} bytes",
            )
        )
        return False
    earlier = first_seen.get(name)
    if earlier is not None:
        issues.append(
            Issue(
                message.file,
                path,
                f"schedule name {name!r} is already used in {earlier.file}",
                "schedule names must be unique across all specs",
            )
        )
        return False
    first_seen[name] = message
    return True


def _resolve(issues: list[Issue], sources: Sources) -> list[Problem]:
    locators: dict[str, Locator] = {}
    out: dict[tuple[str, int, int, str, str, str, bool], Problem] = {}
    for issue in issues:
        line, col = issue.line, issue.col
        if line is None or col is None:
            data = sources.specs.get(issue.file, sources.templates.get(issue.file))
            if data is None:
                line, col = 1, 1
            else:
                locator = locators.setdefault(issue.file, Locator(data))
                line, col = locator.locate(issue.path, key=issue.key)
        problem = Problem(
            issue.file, line, col, dotted(issue.path), issue.message, issue.hint, issue.warning
        )
        out.setdefault(
            (issue.file, line, col, problem.path, issue.message, issue.hint, issue.warning), problem
        )
    return sorted(out.values(), key=Problem.sort_key)
