"""What changed last night and what needs attention: the lines that open the report.

Read from the frames the report already has (the last night's batches, the gate's verdicts,
the failures, the records that keep failing, the KPIs), so the opening and the tables below it
can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import pandas as pd

from .queries import prints_as_zero

#: Outcomes of a landed night that need nobody: every record ran (some may have failed; the
#: success floor and the gate judge those).
SETTLED_OUTCOMES = {"completed", "completed_with_failures"}
#: KPI moves against the trailing nights worth a look: success rate in points, the rest relative.
SUCCESS_RATE_DROP_POINTS = 0.02
P95_RISE = 0.20
COST_RISE = 0.20

Level = Literal["alert", "watch"]


@dataclass(frozen=True)
class Notice:
    """One line of the report's opening: ``alert`` (something failed or degraded) or
    ``watch`` (a move worth a look)."""

    level: Level
    text: str


def _date(value: object) -> date:
    return pd.Timestamp(value).date()


def job_notices(batches: pd.DataFrame) -> list[Notice]:
    """Return an alert per job of the night whose outcome is not a settled one (failed, below
    the success floor, incomplete, over budget, cancelled, no records)."""
    notices = []
    for r in batches.itertuples(index=False):
        outcome = str(r.outcome or r.status or "unknown")
        if outcome in SETTLED_OUTCOMES:
            continue
        job = r.job_name or r.record_type
        notices.append(
            Notice(
                "alert",
                f"{job}: {outcome.replace('_', ' ')} ({r.failed:,} of {r.records:,} records"
                f" failed, batch {r.batch_id})",
            )
        )
    return notices


def gate_notices(quality: pd.DataFrame, night: date) -> list[Notice]:
    """Return an alert per metric the quality gate found degraded on ``night``."""
    notices = []
    tonight = quality[(quality["night"].dt.date == night) & (quality["verdict"] == "degraded")]
    for r in tonight.itertuples(index=False):
        if r.metric == "success_rate":
            moved = f"{r.current_value:.1%} vs {r.baseline_value:.1%} baseline"
        else:
            moved = f"{r.current_value:.2f}s vs {r.baseline_value:.2f}s baseline ({r.change:+.0%})"
        since = "" if pd.isna(r.degraded_since) else f", since {_date(r.degraded_since)}"
        unit = "" if pd.isna(r.moved) else f"; {r.moved}"
        notices.append(Notice("alert", f"{r.job}: {r.metric} degraded, {moved}{since}{unit}"))
    return notices


def new_error_notices(failures: pd.DataFrame, night: date) -> list[Notice]:
    """Return a line per error class first seen on ``night`` (per record type and step)."""
    new = failures[failures["first_seen"].dt.date == night]
    return [
        Notice(
            "watch",
            f"new error: {r.error_class} ({r.record_type} · {r.step_name}),"
            f" {r.failures:,} failure{'s' if r.failures != 1 else ''}",
        )
        for r in new.itertuples(index=False)
    ]


def kpi_notices(kpis: pd.DataFrame) -> list[Notice]:
    """Return a line per KPI that moved past its threshold against the trailing nights: the
    success rate down by `SUCCESS_RATE_DROP_POINTS`, p95 or the cost per night up by
    `P95_RISE` / `COST_RISE`."""
    by_metric = kpis.set_index("metric")
    notices = []

    def row(metric: str) -> pd.Series | None:
        if metric not in by_metric.index or pd.isna(by_metric.loc[metric, "delta"]):
            return None
        return by_metric.loc[metric]

    if (r := row("success_rate")) is not None and r["delta"] <= -SUCCESS_RATE_DROP_POINTS:
        notices.append(
            Notice(
                "watch",
                f"success rate {r['current']:.1%}, down {-r['delta'] * 100:.1f} points"
                f" from {r['previous']:.1%}",
            )
        )
    if (r := row("p95_s")) is not None and (r["delta_pct"] or 0) >= P95_RISE:
        notices.append(
            Notice(
                "watch",
                f"p95 execution time {r['current']:.2f}s, up {r['delta_pct']:.0%}"
                f" from {r['previous']:.2f}s",
            )
        )
    if (r := row("estimated_cost_per_night_usd")) is not None and (
        r["delta_pct"] or 0
    ) >= COST_RISE:
        notices.append(
            Notice(
                "watch",
                f"estimated cost ${r['current']:,.2f}, up {r['delta_pct']:.0%}"
                f" from ${r['previous']:,.2f} a night",
            )
        )
    return notices


def what_needs_attention(
    *,
    night: date,
    batches: pd.DataFrame,
    quality: pd.DataFrame,
    failures: pd.DataFrame,
    kpis: pd.DataFrame,
    chronic: pd.DataFrame,
) -> list[Notice]:
    """Return the notices of ``night``, alerts first: jobs that did not settle, degraded
    metrics, new error classes, KPI moves, and the records that keep failing."""
    notices = [
        *job_notices(batches),
        *gate_notices(quality, night),
        *kpi_notices(kpis),
        *new_error_notices(failures, night),
    ]
    if not chronic.empty:
        notices.append(
            Notice(
                "watch",
                f"{len(chronic):,} record{'s' if len(chronic) != 1 else ''} failed on at least"
                " 3 of their last 5 nights",
            )
        )
    return sorted(notices, key=lambda n: n.level != "alert")


def kpi_summary(kpis: pd.DataFrame) -> str:
    """Return one line of the night's main KPIs with their change against the trailing nights
    (``records 1,496 (±0.0%) · success 91.6% (+2.0 pts) · …``)."""
    by_metric = kpis.set_index("metric")
    parts = []
    shown = [
        ("records_per_night", "records", "{:,.0f}", False),
        ("success_rate", "success", "{:.1%}", True),
        ("p95_s", "p95", "{:.2f}s", False),
        ("estimated_cost_per_night_usd", "cost", "${:,.2f}", False),
    ]
    for metric, name, fmt, points in shown:
        if metric not in by_metric.index or pd.isna(by_metric.loc[metric, "current"]):
            continue
        r = by_metric.loc[metric]
        text = f"{name} {fmt.format(r['current'])}"
        if points and not pd.isna(r["delta"]):
            text += f" ({r['delta'] * 100:+.1f} pts)"
        elif not points and not pd.isna(r["delta_pct"]):
            change = r["delta_pct"]
            text += " (±0.0%)" if prints_as_zero(change) else f" ({change:+.1%})"
        parts.append(text)
    return " · ".join(parts)
