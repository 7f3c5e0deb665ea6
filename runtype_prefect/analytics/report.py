"""The static HTML report: what needs attention, KPIs, every chart and the tables, in one
offline file.

plotly.js and the figures travel inside the page, gzip-compressed (`payload`; a CDN reference
renders a blank page offline, and plotly.js alone is 4.8 MB uncompressed); the browser unpacks
them and draws the charts of the selection shown. Everything on the page comes from the
analytics views through `queries` and `figures`.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import figures, queries
from .attention import Notice, kpi_summary, what_needs_attention
from .payload import PAGE_SCRIPT, compressed_plotlyjs, figures_payload
from .queries import Filters
from .snapshot import connect, resolve_analytics_path

#: Records sampled for the execution-time distribution: enough for a smooth curve, small enough
#: to keep the page light.
REPORT_SAMPLE = 20_000

#: Sections of the report: (heading, [builder names]).
SECTIONS: list[tuple[str, list[str]]] = [
    ("How often runs succeed", ["success_rate", "outcomes", "flow_versions"]),
    ("How long they take", ["latency_percentiles", "latency_distribution", "batch_timing"]),
    ("Where the time goes", ["step_durations", "latency_by_model", "model_latency_nights"]),
    ("What fails", ["error_pareto", "error_classes", "failure_heatmap"]),
    (
        "What it costs",
        ["cost_by_model", "tokens_by_model", "top_models", "cost_per_step", "cost_per_success"],
    ),
    ("Data freshness", ["freshness"]),
]


def kpi_title(
    night: date | None, trailing_nights: int, since: date | None, earliest: date | None = None
) -> str:
    """Return the KPI header naming the night it describes and the nights it is compared with:
    the ``trailing_nights`` before it, none before ``since`` or the ``earliest`` night with
    data."""
    if night is None:
        return "Last night vs the trailing week"
    first = night - timedelta(days=trailing_nights)
    for floor in (since, earliest):
        if floor and floor > first:
            first = floor
    if first >= night:
        return f"Night {night} (no earlier night in this selection to compare with)"
    return f"Night {night} vs the nights {first} – {night - timedelta(days=1)}"


@dataclass(frozen=True)
class Frames:
    """What more than one part of a selection's page reads, read once: the trend frame, the
    latest night, the batches' timing (a chart, and the last night's batches table), the gate's
    verdicts and (for the whole report) the freshness frame."""

    record_type_nights: pd.DataFrame
    night: date | None
    batch_timing: pd.DataFrame
    quality: pd.DataFrame
    freshness: pd.DataFrame
    kpis: pd.DataFrame

    @classmethod
    def read(
        cls,
        con: duckdb.DuckDBPyConnection,
        f: Filters,
        freshness: pd.DataFrame | None = None,
        *,
        trailing_nights: int = 7,
    ) -> Frames:
        """Return the frames of selection ``f`` (``freshness`` when the caller has it), its
        KPIs comparing the latest night with the ``trailing_nights`` before it."""
        night = queries.latest_night(con, f)
        return cls(
            record_type_nights=queries.record_type_nights(con, f),
            night=night,
            batch_timing=queries.batch_timing(con, f),
            quality=queries.quality_history(con, f),
            freshness=queries.freshness(con) if freshness is None else freshness,
            kpis=queries.kpis(
                con,
                night=night,
                trailing_nights=trailing_nights,
                record_types=f.record_types,
                since=f.start,
            ),
        )


def build_figures(
    con: duckdb.DuckDBPyConnection,
    f: Filters = queries.ALL,
    *,
    trailing_nights: int = 7,
    frames: Frames | None = None,
) -> dict[str, go.Figure]:
    """Return every report figure (see `figures.BUILDERS`) for the selection ``f``
    (``frames``: its `Frames`, when the caller has read them)."""
    frames = frames or Frames.read(con, f, trailing_nights=trailing_nights)
    rtn, night = frames.record_type_nights, frames.night
    models = queries.model_latency(con, f)
    usage = queries.model_usage(con, f)
    steps = queries.step_performance(con, f)
    return {
        "kpis": figures.kpi_figure(
            frames.kpis,
            title=kpi_title(
                night,
                trailing_nights,
                f.start,
                earliest=rtn["night"].min().date() if not rtn.empty else None,
            ),
        ),
        "success_rate": figures.success_rate_over_time(rtn),
        "outcomes": figures.outcomes_over_time(rtn),
        "flow_versions": figures.flow_version_comparison(queries.flow_versions(con, f)),
        "latency_percentiles": figures.latency_percentiles_over_time(rtn),
        "latency_distribution": figures.latency_distribution(
            queries.execution_times(con, f, limit=REPORT_SAMPLE)
        ),
        "batch_timing": figures.batch_timing_over_time(frames.batch_timing),
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
        "freshness": figures.freshness_figure(frames.freshness),
        "quality_verdicts": figures.quality_verdicts_over_time(frames.quality),
    }


def _html_table(head: list[str], rows: list[list[str]], *, optional_last: bool = False) -> str:
    """Return a table of ``head`` (plain text) over ``rows`` (cells already HTML); with
    ``optional_last``, without the last column when every row left it empty."""
    if optional_last and not any(row[-1] for row in rows):
        head, rows = head[:-1], [row[:-1] for row in rows]
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


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
    rows = []
    for row in failures.head(top)[columns].itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, pd.Timestamp | datetime):
                value = pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")
            elif isinstance(value, int | np.integer):
                value = f"{value:,}"
            cells.append(html.escape(str(value)))
        rows.append(cells)
    return _html_table([c.replace("_", " ") for c in columns], rows)


def _chronic_table(chronic: pd.DataFrame, top: int = 15) -> str:
    """Records that failed on at least 3 of their last 5 nights, with their last error."""
    if chronic.empty:
        return "<p>No record failed on 3 of its last 5 nights.</p>"
    head = ["record", "record type", "job", "failed nights (of last 5)", "last failed", "error"]
    rows = []
    for r in chronic.head(top).itertuples(index=False):
        cells = [
            f"{r.record_name or r.record_id} ({r.record_id})",
            r.record_type,
            r.job_name or r.flow_id,
            f"{r.nights_failed} of {r.nights_run}",
            pd.Timestamp(r.last_failed_night).date(),
            r.last_error_class or "",
        ]
        rows.append([html.escape(str(c)) for c in cells])
    more = f"<p>{len(chronic) - top:,} more.</p>" if len(chronic) > top else ""
    return _html_table(head, rows) + more


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
        rows.append([html.escape(str(c)) for c in cells])
    head = ["job", "metric", "verdict", "tonight vs baseline", "degraded"]  # the last, when any is
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
        f"<p>Night {night}:</p>"
        + _html_table(head, rows, optional_last=True)
        + (f"<p>Degraded runs in this selection:</p><ul>{spans}</ul>" if spans else "")
    )


@dataclass(frozen=True)
class Links:
    """Where the last night's batches link to: the Prefect UI (the job's flow run, when the
    UI's address is known) and the batch's page (``{flow_id}``/``{batch_id}`` filled in)."""

    prefect_ui_url: str | None = None
    batch_url_template: str | None = None

    def flow_run(self, run_id: object) -> str | None:
        """Return the Prefect UI page of flow run ``run_id``, or None when it is unknown."""
        if not self.prefect_ui_url or not isinstance(run_id, str) or not run_id:
            return None
        return f"{self.prefect_ui_url.rstrip('/')}/runs/flow-run/{run_id}"

    def batch(self, flow_id: object, batch_id: str) -> str | None:
        """Return the page of one batch, or None without a template."""
        if not self.batch_url_template:
            return None
        return self.batch_url_template.replace("{flow_id}", str(flow_id or "")).replace(
            "{batch_id}", batch_id
        )


def _link(url: str | None, text: str) -> str:
    if not url:
        return html.escape(text)
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(text)}</a>'


def _num(value: object, fmt: str) -> str:
    return "" if value is None or pd.isna(value) else format(value, fmt)


def _chosen_records_html(chosen: pd.DataFrame, repairs: pd.DataFrame) -> str:
    """Return what the incremental nights ran and saved, and the repaired nights' success
    before and after their repairs, as tables ("" when there were neither)."""
    parts = []
    if not chosen.empty:
        parts.append(
            _html_table(
                ["record type", "incremental nights", "records run", "not run", "USD not spent"],
                [
                    [
                        html.escape(str(r.record_type)),
                        f"{int(r.nights):,}",
                        f"{int(r.records_run):,} of {int(r.type_records):,}",
                        f"{int(r.records_saved):,}",
                        f"${_num(r.usd_saved, ',.2f')}" if pd.notna(r.usd_saved) else "",
                    ]
                    for r in chosen.itertuples()
                ],
            )
        )
    if not repairs.empty:
        parts.append(
            _html_table(
                ["night", "job", "records", "first attempt", "after repair", "repaired"],
                [
                    [
                        str(pd.Timestamp(r.night).date()),
                        html.escape(str(r.job_name or r.record_type)),
                        f"{int(r.records):,}",
                        _num(r.first_attempt_success_rate, ".1%"),
                        _num(r.after_repair_success_rate, ".1%"),
                        f"{int(r.repaired):,}",
                    ]
                    for r in repairs.head(15).itertuples()
                ],
            )
        )
    return "".join(parts)


def _batches_table(batches: pd.DataFrame, links: Links) -> str:
    """The last night's batches: one row per job with its numbers, both costs, queue and wall
    time, and links to its Prefect flow run and its batch page."""
    if batches.empty:
        return "<p>No batches in this selection.</p>"
    night = pd.Timestamp(batches["night"].iloc[0]).date()
    head = [
        "job",
        "outcome",
        "records",
        "failed",
        "success rate",
        "p95 s",
        "estimated USD",
        "billed USD",
        "queued s",
        "ran s",
        "batch",
        "Prefect run",
    ]
    rows: list[list[str]] = []
    for r in batches.itertuples(index=False):
        run = links.flow_run(r.prefect_flow_run_id)
        cells = [
            html.escape(str(r.job_name or r.record_type)),
            html.escape(str(r.outcome or r.status or "").replace("_", " ")),
            f"{r.records:,}",
            f"{r.failed:,}",
            _num(r.success_rate, ".1%"),
            _num(r.p95_s, ".2f"),
            _num(r.estimated_cost_usd, ".4f"),
            _num(r.billed_cost_usd, ".4f"),
            _num(r.queue_wait_s, ",.1f"),
            _num(r.wall_s, ",.1f"),
            _link(links.batch(r.flow_id, r.batch_id), r.batch_id),
            _link(run, "flow run") if run else "",
        ]
        rows.append(cells)
    # The Prefect run column only when a Prefect UI is known.
    return f"<p>Night {night}:</p>" + _html_table(head, rows, optional_last=True)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem;
       color: #222; }
header p { color: #555; margin: .2rem 0; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { border: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
.chart { margin: 1rem 0; min-height: 450px; }
.chart.kpis { min-height: 440px; }
p.nights { color: #666; font-size: .85rem; margin-top: -.2rem; }
p.selector { margin-top: 1rem; font-size: 1rem; }
nav.toc { font-size: .9rem; margin: 1rem 0; line-height: 1.8; }
nav.toc a { margin-right: 1rem; white-space: nowrap; }
section.attention { background: #fafafa; border: 1px solid #ddd; padding: .2rem 1rem .6rem; }
section.attention h2 { margin-top: .8rem; border: 0; }
li.alert { color: #a50f15; }
li.alert::marker { content: "● "; }
li.watch::marker { content: "○ "; }
p.summary { font-size: 1rem; }
#charts-status { color: #666; }
"""


@dataclass(frozen=True)
class Selection:
    """One view of the page the analyst can pick: every record type, or one of them."""

    key: str
    label: str
    filters: Filters


@dataclass(frozen=True)
class SelectionPage:
    """A selection's part of the page: its HTML (charts as empty elements) and the figures to
    draw in them, keyed by element id."""

    html: str
    figures: dict[str, go.Figure]


def _slug(key: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in key.lower())


def _attention_html(night: date | None, kpis: pd.DataFrame, notices: list[Notice]) -> str:
    """The opening block: the night's KPIs in one line, then what needs attention."""
    if night is None:
        return ""
    items = (
        "".join(f'<li class="{n.level}">{html.escape(n.text)}</li>' for n in notices)
        or "<li>Nothing needs attention: every job settled, the quality gate found nothing"
        " degraded and no new error appeared.</li>"
    )
    summary = kpi_summary(kpis)
    return (
        '<section class="attention"><h2>What changed and what needs attention</h2>'
        f'<p class="summary">Night {night}: {html.escape(summary)}'
        " (change against the nights before it).</p>"
        f"<ul>{items}</ul></section>"
    )


def selection_html(
    con: duckdb.DuckDBPyConnection,
    selection: Selection,
    *,
    links: Links,
    trailing_nights: int = 7,
    main: bool = False,
    frames: Frames | None = None,
) -> SelectionPage:
    """Return one selection's part of the page: what needs attention, a table of contents, the
    KPIs, every section of charts and the tables. Element ids are ``chart-<name>`` /
    ``section-<n>`` on the ``main`` selection, ``chart-<key>-<name>`` / ``section-<key>-<n>``
    on the others; ``frames``: the selection's `Frames`, when the caller has read them."""
    f = selection.filters
    frames = frames or Frames.read(con, f, trailing_nights=trailing_nights)
    figs = build_figures(con, f, trailing_nights=trailing_nights, frames=frames)
    nights = frames.record_type_nights["night"]
    covered = (
        f"{selection.label}, nights {nights.min().date()} – {nights.max().date()}"
        if not nights.empty
        else f"{selection.label}: no nights with records"
    )
    night = frames.night
    batches = pd.DataFrame()
    if night is not None:
        last = Filters(start=night, end=night, record_types=f.record_types)
        batches = queries.batch_runs(con, last).merge(
            frames.batch_timing[["batch_id", "queue_wait_s", "wall_s"]],
            on="batch_id",
            how="left",
        )
    failures = queries.failures(con, f)
    chronic = queries.chronic_failures(con, f)
    prefix = "" if main else f"{_slug(selection.key)}-"
    drawn: dict[str, go.Figure] = {}

    def chart(name: str) -> str:
        div_id = f"chart-{prefix}{name}"
        drawn[div_id] = figs[name]
        return f'<div class="chart {name}" id="{div_id}"></div>'

    contents: list[tuple[str, str]] = []

    def heading(text: str) -> str:
        anchor = f"section-{prefix}{len(contents) + 1}"
        contents.append((anchor, text))
        return (
            f'<h2 id="{anchor}">{html.escape(text)}</h2>'
            f'<p class="nights">{html.escape(covered)}</p>'
        )

    body = [heading("Key figures"), chart("kpis")]
    body += [heading("Last night's batches"), _batches_table(batches, links)]
    for title, names in SECTIONS:
        body.append(heading(title))
        body.extend(chart(n) for n in names)
    body.append(heading("Top failures"))
    body.append(_failures_table(failures))
    body.append(heading("Records that fail night after night"))
    body.append(_chronic_table(chronic))
    body.append(heading("Quality gate"))
    body.append(chart("quality_verdicts"))
    body.append(_quality_table(frames.quality))
    chosen = _chosen_records_html(queries.chosen_records(con, f), queries.repaired_nights(con, f))
    if chosen:
        body.append(heading("Incremental nights and repairs"))
        body.append(chosen)
    notices = (
        what_needs_attention(
            night=night,
            batches=batches,
            quality=frames.quality,
            failures=failures,
            kpis=frames.kpis,
            chronic=chronic,
        )
        if night is not None
        else []
    )
    toc = (
        '<nav class="toc">'
        + " ".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in contents)
        + "</nav>"
    )
    opening = _attention_html(night, frames.kpis, notices) + toc
    return SelectionPage(opening + "".join(body), drawn)


def render_html(
    blocks: list[tuple[Selection, SelectionPage]],
    *,
    source: Path,
    freshness: pd.DataFrame,
    since: date | None,
    generated_at: datetime,
    until: date | None = None,
) -> str:
    """Return the report page: a header, a record-type selector when there is more than one
    selection, each selection's part (`selection_html`, the first one shown), and the packed
    plotly.js and figures the page script unpacks and draws."""
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
    scope = (
        f"nights {since} – {until}"
        if since and until
        else f"nights since {since}"
        if since
        else f"nights up to {until}"
        if until
        else "all nights"
    )
    selector = ""
    if len(blocks) > 1:
        options = "".join(
            f'<option value="{html.escape(sel.key, quote=True)}">{html.escape(sel.label)}</option>'
            for sel, _ in blocks
        )
        selector = (
            '<p class="selector"><label>Record type: <select id="selection"'
            f' onchange="showSelection(this.value)">{options}</select></label>'
            " (every chart, KPI and table on the page follows it)</p>"
        )
    hidden = ' style="display:none"'
    sections = "".join(
        f'<div class="selection" data-key="{html.escape(sel.key, quote=True)}"'
        f"{'' if i == 0 else hidden}>{part.html}</div>"
        for i, (sel, part) in enumerate(blocks)
    )
    figs = {div_id: fig for _, part in blocks for div_id, fig in part.figures.items()}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Runtype results report</title>
<style>{STYLE}</style>
<script id="plotly-js" type="application/gzip+base64">{compressed_plotlyjs()}</script>
<script id="figures" type="application/gzip+base64">{figures_payload(figs)}</script>
<script type="text/javascript">{PAGE_SCRIPT}</script>
</head><body>
<header><h1>Runtype results report</h1>
<p>Generated {generated_at.strftime("%Y-%m-%d %H:%M UTC")} from <code>{html.escape(str(source))}</code> ({scope}).</p>
<p>Freshness: {html.escape(fresh)}.</p>{selector}
<p id="charts-status">Drawing the charts…</p></header>
{sections}
</body></html>
"""  # noqa: E501


def build_report(
    db: str | os.PathLike | None = None,
    out: str | os.PathLike = "report.html",
    *,
    since: date | None = None,
    until: date | None = None,
    trailing_nights: int = 7,
    links: Links | None = None,
    by_record_type: bool = True,
) -> Path:
    """Write the self-contained HTML report of ``db``'s analytics snapshot over the nights
    ``since``..``until`` (inclusive; default all); return its path. Every chart, the KPIs and the
    tables cover that selection, and each section names the nights it covers. With
    ``by_record_type`` (and more than one record type) a selector at the top shows the whole
    page for one record type at a time. ``links`` says where the last night's batches link to.

    Raises `AnalyticsUnavailableError` when there is nothing to report on yet.
    """
    source = resolve_analytics_path(db)
    links = links or Links()
    with connect(db) as con:
        f = Filters(start=since, end=until)
        every = Frames.read(con, f, trailing_nights=trailing_nights)
        selections = [Selection("all", "Every record type", f)]
        if by_record_type:
            types = sorted(every.record_type_nights["record_type"].unique())
            if len(types) > 1:
                selections += [
                    Selection(str(t), str(t), Filters(start=since, end=until, record_types=(t,)))
                    for t in types
                ]
        blocks = [
            (
                sel,
                selection_html(
                    con,
                    sel,
                    links=links,
                    trailing_nights=trailing_nights,
                    main=i == 0,
                    # the freshness frame is the whole report's: read once
                    frames=every
                    if i == 0
                    else Frames.read(
                        con, sel.filters, every.freshness, trailing_nights=trailing_nights
                    ),
                ),
            )
            for i, sel in enumerate(selections)
        ]
    page = render_html(
        blocks,
        source=source,
        freshness=every.freshness,
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
