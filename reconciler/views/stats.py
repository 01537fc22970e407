"""Views of a StatsReport: terminal table, CSV, JSON, and a markdown block for pull requests. Pure.

Rates are shown as percentages with one decimal, "—" when their denominator is 0; CSV and JSON
carry the raw ratios (empty / null when undefined) for machines.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from reconciler import engagelab as api
from reconciler.remote.stats import Funnel, Row, StatsReport, percent

FORMATS = ("table", "csv", "json")
FORMAT_VERSION = 1  # `absent` and `unplaced` were added to v1: keys only grow
RATE_HEADERS = ("delivery", "click/deliv", "click/impr")
RATE_KEYS = ("delivery_rate", "click_rate", "impression_click_rate")


def _rates(funnel: Funnel) -> tuple[float | None, float | None, float | None]:
    return funnel.delivery_rate, funnel.click_rate, funnel.impression_click_rate


def _range(report: StatsReport) -> str:
    days = (report.end - report.start).days + 1
    return f"{report.start.isoformat()} .. {report.end.isoformat()} ({days} day{'s' * (days != 1)})"


def _cells(row: Row) -> list[str]:
    label = row.key if row.split == "total" else f"{row.split}: {row.key}"
    counts = [f"{getattr(row.funnel, k):,}" for k in api.STATS_FUNNEL]
    return [row.plan_id, label, *counts, *(percent(r) for r in _rates(row.funnel))]


def to_table(report: StatsReport) -> str:
    """Aligned text: per plan its total, then every non-empty split."""
    head = ["plan", "split", *api.STATS_FUNNEL, *RATE_HEADERS]
    rows = [_cells(r) for r in report.rows() if r.split == "total" or not r.funnel.empty]
    widths = [max(len(line[i]) for line in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        parts = [c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(cells)]
        return "  ".join(parts).rstrip()

    out = [f"Plan statistics {_range(report)}", "", line(head)]
    previous = None
    for cells in rows:
        if previous is not None and cells[0] != previous:
            out.append("")
        out.append(line(cells))
        previous = cells[0]
    if not rows:
        out.append("(no figures)")
    return "\n".join([*out, *_gaps(report), *_missing(report)]) + "\n"


def _missing(report: StatsReport) -> list[str]:
    if not report.missing:
        return []
    return ["", f"No figures from EngageLab for: {', '.join(report.missing)} (unknown plan ids?)"]


def _gaps(report: StatsReport, code: str = "") -> list[str]:
    """What the answer did not carry, and the figures that fit no row: said, never shown as 0."""
    out: list[str] = []
    for plan in report.plans:
        name = f"{code}{plan.plan_id}{code}"
        if plan.absent:
            out.append(f"{name}: EngageLab's answer has no {'/'.join(plan.absent)} split")
        if plan.unplaced:
            shown = "; ".join(plan.unplaced[:5]) + ("; ..." if len(plan.unplaced) > 5 else "")
            out.append(f"{name}: {len(plan.unplaced)} figure(s) fit no row: {shown}")
    return ["", *out] if out else []


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def to_csv(report: StatsReport) -> str:
    """Every row (empty splits included), raw counts and ratios."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["plan_id", "split", "key", "start", "end", *api.STATS_FUNNEL, *RATE_KEYS])
    for row in report.rows():
        writer.writerow(
            [
                row.plan_id,
                row.split,
                row.key,
                report.start.isoformat(),
                report.end.isoformat(),
                *(getattr(row.funnel, k) for k in api.STATS_FUNNEL),
                *(_ratio(r) for r in _rates(row.funnel)),
            ]
        )
    return buffer.getvalue()


def _funnel_json(funnel: Funnel) -> dict[str, Any]:
    out: dict[str, Any] = funnel.model_dump()
    out.update(zip(RATE_KEYS, _rates(funnel), strict=True))
    return out


def to_json(report: StatsReport) -> str:
    plans = [
        {
            "plan_id": p.plan_id,
            "total": _funnel_json(p.total),
            "by_type": {k: _funnel_json(f) for k, f in p.by_type.items()},
            "by_platform": {k: _funnel_json(f) for k, f in p.by_platform.items()},
            "by_channel": {k: _funnel_json(f) for k, f in p.by_channel.items()},
            "absent": list(p.absent),
            "unplaced": list(p.unplaced),
        }
        for p in report.plans
    ]
    doc = {
        "format_version": FORMAT_VERSION,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "plans": plans,
        "missing": list(report.missing),
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(report: StatsReport, fmt: str) -> str:
    if fmt == "csv":
        return to_csv(report)
    if fmt == "json":
        return to_json(report)
    return to_table(report)


def to_markdown(report: StatsReport) -> str:
    """A compact block for a pull-request plan: one row per affected plan."""
    head = ["plan", *api.STATS_FUNNEL, *RATE_HEADERS]
    out = [
        f"#### Recent figures of the affected push plans, {_range(report)}",
        "",
        "| " + " | ".join(head) + " |",
        "| --- |" + " ---: |" * (len(head) - 1),
    ]
    for plan in report.plans:
        f = plan.total
        counts = [f"{getattr(f, k):,}" for k in api.STATS_FUNNEL]
        rates = [percent(r) for r in _rates(f)]
        out.append(f"| `{plan.plan_id}` | " + " | ".join([*counts, *rates]) + " |")
    if not report.plans:
        out.append("| (no figures) |" + " |" * (len(head) - 1))
    out += _gaps(report, "`")
    if report.missing:
        out += ["", f"No figures yet for: {', '.join(f'`{p}`' for p in report.missing)}."]
    return "\n".join(out) + "\n"
