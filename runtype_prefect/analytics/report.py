"""The static HTML report: KPIs, every chart and the top failures, in one offline file.

plotly.js is inlined once in the page head (a CDN reference renders a blank page offline), and
everything on the page comes from the analytics views through `queries` and `figures`.
"""

from __future__ import annotations

import html
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from . import figures, queries
from .connection import connect, resolve_analytics_path
from .queries import Filters

#: Records sampled for the execution-time distribution: enough for a smooth curve, small enough
#: to keep the page light.
REPORT_SAMPLE = 20_000

#: Sections of the report: (heading, [builder names]).
SECTIONS: list[tuple[str, list[str]]] = [
    ("How often runs succeed", ["success_rate", "outcomes", "flow_versions"]),
    ("How long they take", ["latency_percentiles", "latency_distribution"]),
    ("Where the time goes", ["step_durations", "latency_by_model", "model_latency_nights"]),
    ("What fails", ["error_pareto", "error_classes", "failure_heatmap"]),
    (
        "What it costs",
        ["cost_by_model", "tokens_by_model", "top_models", "cost_per_step", "cost_per_success"],
    ),
    ("Data freshness", ["freshness"]),
]


def kpi_title(night: date | None, trailing_nights: int, since: date | None) -> str:
    """Return the KPI header naming the night it describes and what it is compared with."""
    if night is None:
        return "Last night vs the trailing week"
    first = night - timedelta(days=trailing_nights)
    if since and since > first:
        first = since
    if first >= night:
        return f"Night {night} (no earlier night in this selection to compare with)"
    return f"Night {night} vs the nights {first} – {night - timedelta(days=1)}"


def build_figures(
    con: duckdb.DuckDBPyConnection, f: Filters = queries.ALL, *, trailing_nights: int = 7
) -> dict[str, go.Figure]:
    """Return every report figure (see `figures.BUILDERS`) for the selection ``f``."""
    rtn = queries.record_type_nights(con, f)
    models = queries.model_latency(con, f)
    usage = queries.model_usage(con, f)
    steps = queries.step_performance(con, f)
    night = queries.latest_night(con, f)
    return {
        "kpis": figures.kpi_figure(
            queries.kpis(
                con,
                night=night,
                trailing_nights=trailing_nights,
                record_types=f.record_types,
                since=f.start,
            ),
            title=kpi_title(night, trailing_nights, f.start),
        ),
        "success_rate": figures.success_rate_over_time(rtn),
        "outcomes": figures.outcomes_over_time(rtn),
        "flow_versions": figures.flow_version_comparison(queries.flow_versions(con, f)),
        "latency_percentiles": figures.latency_percentiles_over_time(rtn),
        "latency_distribution": figures.latency_distribution(
            queries.execution_times(con, f, limit=REPORT_SAMPLE)
        ),
        "step_durations": figures.step_durations(steps),
        "latency_by_model": figures.latency_by_model(models),
        "model_latency_nights": figures.model_latency_over_time(usage),
        "error_pareto": figures.error_pareto(queries.error_pareto(con, f)),
        "error_classes": figures.error_classes_over_time(queries.error_class_nights(con, f)),
        "failure_heatmap": figures.failure_heatmap(queries.failure_heatmap(con, f)),
        "cost_by_model": figures.cost_over_time_by_model(usage),
        "tokens_by_model": figures.tokens_over_time_by_model(usage),
        "top_models": figures.top_models_by_cost(models),
        "cost_per_step": figures.cost_per_step(steps),
        "cost_per_success": figures.cost_per_successful_record(rtn),
        "freshness": figures.freshness_figure(queries.freshness(con)),
    }


def _failures_table(failures: pd.DataFrame, top: int = 15) -> str:
    if failures.empty:
        return "<p>No failures in this selection.</p>"
    columns = [
        "error_class",
        "record_type",
        "step_name",
        "failures",
        "records",
        "nights",
        "first_seen",
        "last_seen",
        "example",
    ]
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
    rows = []
    for row in failures.head(top)[columns].itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, pd.Timestamp | datetime):
                value = pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")
            elif isinstance(value, int | np.integer):
                value = f"{value:,}"
            cells.append(f"<td>{html.escape(str(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _quality_table(history: pd.DataFrame) -> str:
    """The gate's verdicts of the latest judged night, and every degraded run in the
    selection (job, metric, since when, for how many nights)."""
    if history.empty:
        return "<p>The quality gate has not judged any night in this selection.</p>"
    latest = history[history["night"] == history["night"].max()]
    rows = []
    for r in latest.itertuples(index=False):
        if r.verdict == "no_verdict":
            figures_text = r.reason or ""
        elif r.metric == "success_rate":
            figures_text = (
                f"{r.current_value:.1%} vs {r.baseline_value:.1%} ({r.change * 100:+.1f} points)"
            )
        else:
            figures_text = f"{r.current_value:.2f}s vs {r.baseline_value:.2f}s ({r.change:+.0%})"
        since = (
            f"since {pd.Timestamp(r.degraded_since).date()}, night {r.degraded_nights}"
            if r.verdict == "degraded" and not pd.isna(r.degraded_since)
            else ""
        )
        cells = [r.job, r.metric, r.verdict.replace("_", " "), figures_text, since]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ["job", "metric", "verdict", "tonight vs baseline", ""])
    night = pd.Timestamp(latest["night"].iloc[0]).date()
    runs = (
        history[history["verdict"] == "degraded"]
        .groupby(["job", "metric", "degraded_since"], as_index=False)
        .agg(nights=("night", "count"), last=("night", "max"))
        .sort_values("last", ascending=False)
    )
    spans = "".join(
        f"<li>{html.escape(r.job)}: {html.escape(r.metric)} degraded"
        f" {pd.Timestamp(r.degraded_since).date()} – {pd.Timestamp(r.last).date()}"
        f" ({r.nights} night{'s' if r.nights != 1 else ''})</li>"
        for r in runs.itertuples(index=False)
    )
    return (
        f"<p>Night {night}:</p><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        + (f"<p>Degraded runs in this selection:</p><ul>{spans}</ul>" if spans else "")
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
header p { color: #555; margin: .2rem 0; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { border: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
.chart { margin: 1rem 0; }
"""


def render_html(
    figs: dict[str, go.Figure],
    failures: pd.DataFrame,
    *,
    source: Path,
    quality: pd.DataFrame | None = None,
    freshness: pd.DataFrame,
    since: date | None,
    generated_at: datetime,
    until: date | None = None,
) -> str:
    """Return the report page: header, KPIs, sections of charts, top failures."""
    if freshness.empty:
        fresh = "no nights landed yet"
    else:
        last = freshness.iloc[-1]
        landed = pd.Timestamp(last["last_landed_at"])
        age = generated_at - landed.to_pydatetime() if not pd.isna(landed) else None
        age_text = f", {age.total_seconds() / 3600:.1f} h before this report" if age else ""
        fresh = (
            f"latest night {pd.Timestamp(last['night']).date()}, landed "
            f"{landed.strftime('%Y-%m-%d %H:%M UTC') if not pd.isna(landed) else '?'}{age_text}"
        )

    def chart(name: str) -> str:
        return (
            '<div class="chart">'
            + figs[name].to_html(
                full_html=False,
                include_plotlyjs=False,
                div_id=f"chart-{name}",
                config={"displaylogo": False},
            )
            + "</div>"
        )

    body = [chart("kpis")]
    for heading, names in SECTIONS:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body.extend(chart(n) for n in names)
    body.append("<h2>Top failures</h2>")
    body.append(_failures_table(failures))
    if quality is not None:
        body.append("<h2>Quality gate</h2>")
        body.append(_quality_table(quality))
    scope = (
        f"nights {since} – {until}"
        if since and until
        else f"nights since {since}"
        if since
        else f"nights up to {until}"
        if until
        else "all nights"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Runtype results report</title>
<style>{STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<header><h1>Runtype results report</h1>
<p>Generated {generated_at.strftime("%Y-%m-%d %H:%M UTC")} from <code>{html.escape(str(source))}</code> ({scope}).</p>
<p>Freshness: {html.escape(fresh)}.</p></header>
{"".join(body)}
</body></html>
"""  # noqa: E501


def build_report(
    db: str | os.PathLike | None = None,
    out: str | os.PathLike = "report.html",
    *,
    since: date | None = None,
    until: date | None = None,
    trailing_nights: int = 7,
) -> Path:
    """Write the self-contained HTML report of ``db``'s analytics snapshot over the nights
    ``since``..``until`` (inclusive; default all); return its path. Every chart, the KPIs and the
    tables cover that selection.

    Raises `AnalyticsUnavailableError` when there is nothing to report on yet.
    """
    source = resolve_analytics_path(db)
    with connect(db) as con:
        f = Filters(start=since, end=until)
        figs = build_figures(con, f, trailing_nights=trailing_nights)
        failures = queries.failures(con, f)
        fresh = queries.freshness(con)
        quality = queries.quality_history(con, f)
    page = render_html(
        figs,
        failures,
        source=source,
        quality=quality,
        freshness=fresh,
        since=since,
        until=until,
        generated_at=datetime.now(UTC),
    )
    path = Path(out).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
