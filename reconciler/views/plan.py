"""One plan, three views: terminal text, pull-request markdown, stable JSON. Pure `Plan -> str`.

Like octoDNS's plan outputs: the views only read the frozen Plan; nothing here decides anything.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from reconciler.diff import DiffOp, FieldDiff, natural_path
from reconciler.plan.planner import Action, Change, Plan, Window
from reconciler.plan.saved import plan_json
from reconciler.remote.drift import DriftItem
from reconciler.timing import format_utc
from reconciler.views.timeline import MAX_TASKS, to_mermaid

MAX_COMMENT_CHARS = 65_000  # GitHub refuses comment bodies over 65,536 characters
MAX_LISTED = 50  # blockers/warnings shown in a PR comment header before "and N more"

SYMBOLS: Mapping[Action, str] = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.RETIRE: "x",
    Action.SENT: "=",
    Action.NOOP: " ",
    Action.FORGET: ".",
    Action.EXPIRED: "!",
}
LABELS: Mapping[Action, str] = {
    Action.CREATE: "create",
    Action.UPDATE: "update",
    Action.REPLACE: "replace",
    Action.DELETE: "delete",
    Action.RETIRE: "retire: no call",
    Action.SENT: "already sent: no call",
    Action.NOOP: "no-op",
    Action.FORGET: "forget: no call",
    Action.EXPIRED: "expired: nothing will be sent",
}
_COLORS: Mapping[str, str] = {
    "+": "32",
    "~": "33",
    "-": "31",
    "-/+": "35",
    "x": "36",
    "!": "1;33",
    "blocked": "1;31",
}
_DIFF_SYMBOL = {DiffOp.CHANGED: "~", DiffOp.ADDED: "+", DiffOp.REMOVED: "-"}


# --- shared wording -------------------------------------------------------------------------


def quota_line(plan: Plan) -> str:
    q = plan.quota
    return (
        f"Push plans {q.plans_used}/{q.plans_limit}, "
        f"schedules {q.schedules_live}/{q.schedules_limit}."
    )


def summary_line(plan: Plan) -> str:
    s = plan.summary
    return (
        f"Plan: {s.create} to create, {s.update} to update, {s.replace} to replace, "
        f"{s.delete} to delete, {s.retire} to retire. {quota_line(plan)}"
    )


def extras_line(plan: Plan) -> str:
    s = plan.summary
    parts = [
        f"{n} {what}"
        for n, what in (
            (s.sent, "already sent (no call)"),
            (s.expired, "expired (nothing will be sent)"),
            (s.forget, "to forget (no call)"),
            (s.noop, "left as they are (not created)"),
        )
        if n
    ]
    return f"Also: {', '.join(parts)}." if parts else ""


def fires(window: Window | None) -> str:
    """When it really reaches people: over the inhabited time zones (device-local sends)."""
    if window is None:
        return ""
    smart = window.kind == "intelligent"
    if window.immediate:
        return (
            "fires immediately when applied, for users with no activity history "
            '(backup_time "now"); users with history get it at their own best moment'
        )
    first = window.real_first or window.first
    last = window.real_last or window.last
    if first is None or last is None:
        return "never fires"
    span = format_utc(first) if first == last else f"{format_utc(first)} .. {format_utc(last)}"
    where = " (device time, first to last inhabited zone)" if window.device_local else ""
    if smart:
        where += " for users with no activity history; others at their own best moment"
    label = "next fires" if window.kind == "periodical" else "fires"
    text = f"{label} {span}{where}"
    if len(window.next_starts) > 1:
        text += "; then from " + ", ".join(format_utc(t) for t in window.next_starts[1:])
    return text


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _leaves(value: Any, parts: tuple[str | int, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every leaf of a body, with natural paths; a list of scalars stays one value."""
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            yield from _leaves(value[key], (*parts, key))
    elif isinstance(value, list) and any(isinstance(v, Mapping | list) for v in value):
        for i, item in enumerate(value):
            yield from _leaves(item, (*parts, i))
    else:
        yield natural_path(parts), value


def _diff_lines(change: Change) -> list[str]:
    if change.action is Action.CREATE and change.after is not None:
        return [
            f"+ {path} = {_value(v)}"
            for path, v in sorted(_leaves(change.after), key=lambda leaf: leaf[0])
        ]
    return [diff_line(d) for d in change.diffs]


def diff_line(d: FieldDiff) -> str:
    if d.op is DiffOp.CHANGED:
        return f"~ {d.path}: {_value(d.before)} -> {_value(d.after)}"
    if d.op is DiffOp.ADDED:
        return f"+ {d.path} = {_value(d.after)}"
    return f"- {d.path} = {_value(d.before)}"


def _title(change: Change) -> str:
    return f"{SYMBOLS[change.action]} {change.address} ({LABELS[change.action]})"


def _facts(change: Change) -> list[str]:
    facts = [change.reason]
    if change.action in (Action.CREATE, Action.UPDATE, Action.REPLACE):
        facts.append(fires(change.window))
    return [f for f in facts if f]


# --- text -----------------------------------------------------------------------------------


def _paint(text: str, code: str | None, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def _drift_text(plan: Plan) -> list[str]:
    if not plan.drift:
        return []
    out = [f"Drift (EngageLab read {format_utc(plan.refreshed_at)}):"] if plan.refreshed_at else []
    for item in plan.drift:
        out.append(f"  ~ {item.address}: {item.kind.value}: {item.detail}")
        out += [f"      {diff_line(d)}" for d in item.diffs]
    return [*out, ""]


def to_text(plan: Plan, *, color: bool = False) -> str:
    """Terraform-like text; ANSI colour only when asked (the CLI asks on a TTY)."""
    drift = _drift_text(plan)
    if _is_empty(plan):
        tail = f"No changes: EngageLab already matches the specs. {quota_line(plan)}\n"
        return "\n".join(drift) + tail if drift else tail
    out: list[str] = list(drift)
    for change in plan.changes:
        symbol = SYMBOLS[change.action]
        out.append(_paint(f"  {_title(change)}", _COLORS.get(symbol), color))
        out += [f"      {fact}" for fact in _facts(change)]
        for line in _diff_lines(change):
            out.append(_paint(f"      {line}", _COLORS.get(line.split(" ", 1)[0]), color))
        out.append("")
    if plan.blockers:
        out.append(
            _paint(
                "Blocked: apply refuses this plan before its first call:", _COLORS["blocked"], color
            )
        )
        out += [f"  ! {b.address}: {b.reason}" for b in plan.blockers]
        out.append("")
    if plan.unsafe:
        out += [_paint(f"Unsafe: {plan.unsafe_reason}", _COLORS["blocked"], color), ""]
    if plan.warnings:
        out.append(_paint("Warnings:", _COLORS["!"], color))
        out += [f"  ! {w}" for w in plan.warnings]
        out.append("")
    if plan.pending_checks:
        out.append(pending_line(plan))
        out += [f"  ? {address}" for address in plan.pending_checks[:MAX_LISTED]]
        if len(plan.pending_checks) > MAX_LISTED:
            out.append(f"  ... and {len(plan.pending_checks) - MAX_LISTED} more")
        out.append("")
    out.append(_paint(summary_line(plan), "1", color))
    if extras := extras_line(plan):
        out.append(extras)
    if plan.targets:
        out.append(f"Targeted: {', '.join(plan.targets)} (the rest of the specs is not planned).")
    if plan.expires_at is not None:
        out.append(f"Expires {format_utc(plan.expires_at)}, before the earliest send it touches.")
    return "\n".join(out) + "\n"


def _is_empty(plan: Plan) -> bool:
    return not (
        plan.changes or plan.blockers or plan.warnings or plan.unsafe or plan.pending_checks
    )


def pending_line(plan: Plan) -> str:
    return (
        f"Uniqueness checks pending ({len(plan.pending_checks)}): apply lists EngageLab to "
        "confirm a single live copy of each, and deletes a second copy an earlier create left:"
    )


# --- markdown -------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]#~|])")


def _md(text: str) -> str:
    """Copy from templates shown literally in a table cell: no markup, no HTML, one line, and
    no @mention (a word joiner after @), so copy in a PR comment never pings anyone."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text).replace("@", "@\u2060")
    return text.replace("\r", "").replace("\n", "<br>")


def _fence(lines: Sequence[str], lang: str) -> str:
    body = "\n".join(lines)
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", body)), default=0) + 1)
    return f"{ticks}{lang}\n{body}\n{ticks}"


def _copy_table(change: Change) -> str:
    if not change.language_copy or change.action not in (
        Action.CREATE,
        Action.UPDATE,
        Action.REPLACE,
    ):
        return ""
    changed = {
        d.path.split(".")[2]
        for d in change.diffs
        if d.path.startswith("options.multi_language.") and d.path.count(".") >= 2
    }
    rows = ["| language | title | alert |", "| --- | --- | --- |"]
    for lang in sorted(change.language_copy):
        fields = change.language_copy[lang]
        label = lang + (" (default)" if lang == change.default_language else "")
        if lang in changed:
            label += " **changed**"
        rows.append(
            f"| {label} | {_md(fields.get('title', ''))} | {_md(fields.get('alert', ''))} |"
        )
    return "\n".join(rows)


def _md_change(change: Change) -> str:
    parts = [f"#### `{_title(change)}`", "", " · ".join(_md(f) for f in _facts(change))]
    if table := _copy_table(change):
        parts += ["", table]
    lines = _diff_lines(change)
    if lines and change.action is Action.CREATE:
        parts += [
            "",
            "<details><summary>full body</summary>",
            "",
            _fence(lines, "diff"),
            "",
            "</details>",
        ]
    elif lines:
        parts += ["", _fence(lines, "diff")]
    return "\n".join(parts) + "\n"


def _md_drift(plan: Plan) -> list[str]:
    if not plan.drift:
        return []
    rows = [f"- `{item.address}`: **{item.kind.value}**: {_md(item.detail)}" for item in plan.drift]
    shown = rows[:MAX_LISTED]
    if len(rows) > MAX_LISTED:
        shown.append(f"- … and {len(rows) - MAX_LISTED} more (see the text plan)")
    return ["", "#### Drift (changed on EngageLab outside reconcile)", "", *shown]


def _md_head(plan: Plan) -> str:
    if _is_empty(plan):
        empty = f"**No changes.** EngageLab already matches the specs. {quota_line(plan)}"
        return "\n".join([empty, *_md_drift(plan)]) + "\n"
    head = ["### reconcile plan", "", f"**{summary_line(plan)}**", *_md_drift(plan)]
    if extras := extras_line(plan):
        head += ["", extras]
    for title, kind, items in (
        (
            "Blocked: apply refuses this plan before its first call",
            "CAUTION",
            [f"`{b.address}`: {_md(b.reason)}" for b in plan.blockers],
        ),
        ("Unsafe", "WARNING", [_md(plan.unsafe_reason or "")] if plan.unsafe else []),
        ("Warnings", "WARNING", [_md(w) for w in plan.warnings]),
        (pending_line(plan), "NOTE", [f"`{a}`" for a in plan.pending_checks]),
    ):
        if items:
            shown = items[:MAX_LISTED]
            if len(items) > MAX_LISTED:
                shown.append(f"… and {len(items) - MAX_LISTED} more (see the text plan)")
            head += ["", f"> [!{kind}]", f"> **{title}**"] + [f"> - {i}" for i in shown]
    meta = [f"made {format_utc(plan.created_at)}", f"state serial {plan.state_serial}"]
    if plan.expires_at is not None:
        meta.append(f"expires {format_utc(plan.expires_at)}")
    if plan.targets:
        meta.append("targeted: " + ", ".join(plan.targets))
    head += ["", f"<sub>{_md(' · '.join(meta))}</sub>"]
    return "\n".join(head) + "\n"


def _campaigns(plan: Plan) -> dict[str, list[Change]]:
    groups: dict[str, list[Change]] = {}
    for change in plan.changes:
        groups.setdefault(change.plan_id, []).append(change)
    return dict(sorted(groups.items()))


def _details(campaign: str, changes: Sequence[Change], blocks: Sequence[str], part: str) -> str:
    counts = Counter(LABELS[c.action].split(":")[0] for c in changes)
    tally = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    # Inside an HTML block markdown escapes are not undone: escape as HTML only.
    summary = f"<b>{html.escape(campaign)}</b>{part}: {tally}"
    return f"<details><summary>{summary}</summary>\n\n" + "\n".join(blocks) + "\n</details>\n"


def _md_sections(plan: Plan, budget: int) -> list[str]:
    """One collapsible section per campaign, split into continued sections over `budget`."""
    sections: list[str] = []
    for campaign, changes in _campaigns(plan).items():
        blocks = [_md_change(c) for c in changes]
        pieces: list[tuple[list[Change], list[str]]] = [([], [])]
        for change, block in zip(changes, blocks, strict=True):
            if len(block) > budget - 400:
                block = block[: budget - 500] + "\n… (truncated; see the text plan)\n"
            size = sum(len(b) + 1 for b in pieces[-1][1]) + len(block) + 400
            if pieces[-1][1] and size > budget:
                pieces.append(([], []))
            pieces[-1][0].append(change)
            pieces[-1][1].append(block)
        for i, (group, group_blocks) in enumerate(pieces):
            part = f" (part {i + 1} of {len(pieces)})" if len(pieces) > 1 else ""
            sections.append(_details(campaign, group, group_blocks, part))
    return sections


def _md_timeline(plan: Plan) -> list[str]:
    """A collapsed Mermaid gantt chart of the campaigns this plan changes."""
    if not plan.timeline:
        return []
    campaigns = sorted({e.campaign for e in plan.timeline})
    more = len(plan.timeline) - MAX_TASKS
    note = f"\n\nOnly the first {MAX_TASKS} firings are drawn; {more} more." if more > 0 else ""
    summary = html.escape(f"Timeline (UTC): {', '.join(campaigns)}")
    chart = _fence(to_mermaid(plan.timeline, plan.created_at).rstrip().splitlines(), "mermaid")
    return [f"<details><summary>{summary}</summary>\n\n{chart}{note}\n\n</details>\n"]


def to_markdown(plan: Plan) -> str:
    """The whole plan as one markdown document (may exceed one PR comment)."""
    if _is_empty(plan):
        return _md_head(plan)
    sections = _md_sections(plan, MAX_COMMENT_CHARS - 200)
    return "\n".join([_md_head(plan), *_md_timeline(plan), *sections])


def to_markdown_comments(plan: Plan, limit: int = MAX_COMMENT_CHARS) -> list[str]:
    """The markdown view split into pull-request comments, each shorter than `limit`."""
    head = _md_head(plan)
    if _is_empty(plan):
        return [head]
    budget = limit - 200  # room for the "part i of n" line added below
    comments = [head]
    for section in [*_md_timeline(plan), *_md_sections(plan, budget)]:
        if len(comments[-1]) + len(section) + 1 > budget:
            comments.append("")
        comments[-1] = comments[-1] + "\n" + section if comments[-1] else section
    if len(comments) == 1:
        return comments
    n = len(comments)
    return [
        f"<sub>reconcile plan, comment {i + 1} of {n}</sub>\n\n{c}" for i, c in enumerate(comments)
    ]


# --- json -----------------------------------------------------------------------------------


def to_json(plan: Plan) -> str:
    """format_version 1, sorted keys, byte-stable: the saved-plan file format too."""
    return plan_json(plan)


def drift_lines(items: Iterable[DriftItem]) -> list[str]:
    """Recorded -> remote, for people: the diffs read from the state's body to EngageLab's."""
    out: list[str] = []
    for item in items:
        out.append(f"  ~ {item.address}: {item.kind.value}: {item.detail}")
        out += [f"      {diff_line(d)}" for d in item.diffs]
    return out
